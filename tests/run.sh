#!/usr/bin/env bash
# run.sh - the project's test command: installs the build dependencies
# (Debian 12), then builds casenet and runs the whole ctest suite twice, once
# plain with -Werror and once under AddressSanitizer + UndefinedBehaviorSanitizer,
# then the integration tests with casenetd and the test programs under
# valgrind memcheck, then a short libFuzzer smoke run of every harness.
#   CASENET_FUZZ_SECONDS     seconds per fuzz harness (default 60; 0 skips)
#   CASENET_SKIP_ASAN=1      skip the sanitizer pass (quicker local runs)
#   CASENET_SKIP_VALGRIND=1  skip the valgrind pass
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/setup-debian.sh"
jobs=$(nproc)
fuzz_seconds=${CASENET_FUZZ_SECONDS:-60}

build() {
  local dir=$1
  shift
  cmake -S "$top" -B "$dir" -DCASENET_WERROR=ON -DCASENET_TESTS=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
}

echo "== plain build (-Werror) and tests"
build "$top/build"
ctest --test-dir "$top/build" --output-on-failure -j2

if [ "${CASENET_SKIP_ASAN:-0}" != 1 ]; then
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
  build "$top/build-asan" -DCMAKE_C_COMPILER=clang -DCASENET_SANITIZER=address,undefined
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$top/build-asan" --output-on-failure -j2
fi

if [ "${CASENET_SKIP_VALGRIND:-0}" != 1 ]; then
  echo "== valgrind memcheck: integration tests, casenetd included (plain build)"
  # Invalid accesses and definite leaks fail, in the test programs and in
  # every casenetd they start (the fixture and online.sh prefix it with
  # CASENET_BROKER_WRAPPER; a broker with errors exits 1 at its stop).
  vg="valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1"
  vg_start=$SECONDS
  vg_logs=$(mktemp -d)
  vg_run() {
    local name=$1
    shift
    if CASENET_BROKER_WRAPPER="$vg" CASENET_SOURCE_DIR="$top" CASENET_BINARY_DIR="$top/build" \
      CASENET_TESTVECTORS="$top/tests/vectors" CASENET="$top/build/clients/cli/casenet" \
      "$@" >"$vg_logs/$name.log" 2>&1; then
      echo "-- valgrind $name: ok"
    else
      tail -n 80 "$vg_logs/$name.log"
      echo "valgrind: $name failed" >&2
      return 1
    fi
  }
  # Two at a time (the machine has two cores).
  vg_run broker $vg "$top/build/tests/test_broker" &
  p1=$!
  vg_run hostile $vg "$top/build/tests/test_hostile" &
  p2=$!
  vg_ok=0
  wait $p1 || vg_ok=1
  wait $p2 || vg_ok=1
  vg_run client $vg "$top/build/tests/test_client" &
  p1=$!
  vg_run cli.online bash "$top/tests/cli/online.sh" &
  p2=$!
  wait $p1 || vg_ok=1
  wait $p2 || vg_ok=1
  rm -rf "$vg_logs"
  [ $vg_ok = 0 ] || exit 1
  echo "-- valgrind pass: $((SECONDS - vg_start)) s"
fi

if [ "$fuzz_seconds" != 0 ]; then
  echo "== libFuzzer smoke: ${fuzz_seconds}s per harness"
  build "$top/build-fuzz" -DCMAKE_C_COMPILER=clang -DCASENET_FUZZ=ON \
    -DCASENET_SANITIZER=address,undefined -DCASENET_TESTS=ON
  # One harness on a scratch copy of its seed corpus (libFuzzer writes new
  # inputs into the first directory); two harnesses at a time, one per core.
  fuzz_one() {
    local h=$1 name corpus work log
    name=$(basename "$h")
    corpus="$top/tests/fuzz/corpus/${name#fuzz_}"
    work=$(mktemp -d)
    log="$work.log"
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
    if ! "$h" -max_total_time="$fuzz_seconds" -print_final_stats=1 "$work" >"$log" 2>&1; then
      tail -n 60 "$log"
      echo "fuzz: $name found a failure (inputs kept in $work)" >&2
      return 1
    fi
    echo "-- $name: $(grep -E '^stat::number_of_executed_units' "$log" | tr -s ' ')"
    rm -rf "$work" "$log"
  }
  pids=()
  fuzz_failed=0
  for h in "$top"/build-fuzz/tests/fuzz_*; do
    [ -x "$h" ] || continue
    fuzz_one "$h" &
    pids+=($!)
    if [ ${#pids[@]} -ge 2 ]; then
      wait "${pids[0]}" || fuzz_failed=1
      pids=("${pids[@]:1}")
    fi
  done
  for p in "${pids[@]}"; do
    wait "$p" || fuzz_failed=1
  done
  [ "$fuzz_failed" = 0 ] || exit 1
fi
echo "== all test passes done"
