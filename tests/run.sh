#!/usr/bin/env bash
# run.sh - the project's test command: installs the build dependencies
# (Debian 12), then builds casenet and runs the whole ctest suite twice, once
# plain with -Werror and once under AddressSanitizer + UndefinedBehaviorSanitizer,
# then a short libFuzzer smoke run of every harness.
#   CASENET_FUZZ_SECONDS   seconds per fuzz harness (default 20; 0 skips)
#   CASENET_SKIP_ASAN=1    skip the sanitizer pass (quicker local runs)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/setup-debian.sh"
jobs=$(nproc)
fuzz_seconds=${CASENET_FUZZ_SECONDS:-20}

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

if [ "$fuzz_seconds" != 0 ]; then
  echo "== libFuzzer smoke: ${fuzz_seconds}s per harness"
  build "$top/build-fuzz" -DCMAKE_C_COMPILER=clang -DCASENET_FUZZ=ON \
    -DCASENET_SANITIZER=address,undefined -DCASENET_TESTS=ON
  for h in "$top"/build-fuzz/tests/fuzz_*; do
    [ -x "$h" ] || continue
    name=$(basename "$h")
    corpus="$top/tests/fuzz/corpus/${name#fuzz_}"
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
    log="$work.log"
    if ! "$h" -max_total_time="$fuzz_seconds" -print_final_stats=1 "$work" >"$log" 2>&1; then
      tail -n 60 "$log"
      echo "fuzz: $name found a failure (input saved in the directory above)" >&2
      exit 1
    fi
    echo "-- $name: $(grep -E '^stat::number_of_executed_units' "$log" | tr -s ' ')"
    rm -rf "$work" "$log"
  done
fi
echo "== all test passes done"
