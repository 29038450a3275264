#!/usr/bin/env bash
# pg-vs-sqlite.sh - casenet-bench on its two stores in the same minutes
# (issue 17 item 6, README "Performance"): a throwaway PostgreSQL 15 with
# fsync on (tests/store/pg_server.sh, CASENET_PG_FSYNC=on) and SQLite, both
# on the same file system (TMPDIR), runs alternating (the first store of
# each round alternates too): 2 KB messages at 256 in flight (8 connections
# x 32) and at fixed rates (--rate 1000, and 300, a rate below what the store
# must sustain). Prints one markdown table: receipts/s, p50/p99
# submit->receipt, notice p99, bytes written and CPU per message, as the
# median and the min-max of the rounds.
#
#     tests/bench/pg-vs-sqlite.sh [BUILD_DIR]      (default: build)
#
# Needs PostgreSQL 15 (postgresql-15, deploy/setup-debian.sh) and jq. As
# root the server runs as nobody (pg_server.sh). Environment: ROUNDS (3),
# DURATION (7 s measured) and WARMUP (1 s) per run, RATES ("1000 300"),
# KEEP=1 keeps the temporary directory (the server is stopped either way).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
BENCH=$BUILD/clients/bench/casenet-bench
PG_SERVER=$ROOT/tests/store/pg_server.sh
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-7}
WARMUP=${WARMUP:-1}
RATES=${RATES:-1000 300}
[ -x "$BENCH" ] || { echo "pg-vs-sqlite: $BENCH not found: build first (README \"Build\")" >&2; exit 2; }
command -v jq >/dev/null || { echo "pg-vs-sqlite: jq is needed: apt-get install jq" >&2; exit 2; }
[ -x "${PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ] ||
  { echo "pg-vs-sqlite: PostgreSQL 15 is not installed: deploy/setup-debian.sh" >&2; exit 2; }

T=$(mktemp -d "${TMPDIR:-/tmp}/pg-vs-sqlite.XXXXXX")
chmod 755 "$T" # as root the server runs as nobody, in $T/pg
cleanup() {
  "$PG_SERVER" stop "$T/pg" || true
  if [ "${KEEP:-0}" = 1 ]; then echo "pg-vs-sqlite: files kept in $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT

echo "pg-vs-sqlite: starting PostgreSQL 15 (fsync on)..." >&2
URI=$(CASENET_PG_FSYNC=on "$PG_SERVER" start "$T/pg")
PG_VERSION=$("${PG_BIN:-/usr/lib/postgresql/15/bin}/psql" "$URI" -qAtc "SHOW server_version")
PG_FSYNC=$("${PG_BIN:-/usr/lib/postgresql/15/bin}/psql" "$URI" -qAtc "SHOW fsync")
[ "$PG_FSYNC" = on ] || { echo "pg-vs-sqlite: the server runs with fsync=$PG_FSYNC" >&2; exit 1; }

RESULTS=$T/results.jsonl
run() { # STORE(sqlite|postgresql) MODE(256|rateR)
  local args=(--duration "$DURATION" --warmup "$WARMUP" --no-ceilings --json --workdir "$T")
  [ "$1" = postgresql ] && args+=(--store "$URI")
  case $2 in rate*) args+=(--rate "${2#rate}") ;; esac
  local out
  out=$("$BENCH" "${args[@]}" 2>"$T/bench.err" | tail -n 1) ||
    { echo "pg-vs-sqlite: casenet-bench failed:" >&2; cat "$T/bench.err" >&2; exit 1; }
  jq -c --arg s "$1" --arg m "$2" '{store: $s, run: $m} + .' <<<"$out" >>"$RESULTS"
}

read -r -a rates <<<"$RATES"
for round in $(seq 1 "$ROUNDS"); do
  order=(sqlite postgresql)
  [ $((round % 2)) = 0 ] && order=(postgresql sqlite)
  for mode in 256 "${rates[@]/#/rate}"; do
    for store in "${order[@]}"; do
      echo "pg-vs-sqlite: round $round/$ROUNDS, $store, $mode..." >&2
      run "$store" "$mode"
    done
  done
done

jq -rs --arg pg "$PG_VERSION" --arg rounds "$ROUNDS" --arg dur "$DURATION" --arg rates "$RATES" \
  -f /dev/stdin "$RESULTS" <<'JQ'
def med: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
def fmt($x): if $x == null then "–" elif $x >= 100 then ($x | round | tostring)
  elif $x >= 10 then ($x * 10 | round / 10 | tostring) else ($x * 100 | round / 100 | tostring) end;
def kb: if . == null then null else . / 1024 end;
. as $r
| def vals($s; $m; f): [$r[] | select(.store == $s and .run == $m) | f | select(. != null)];
  def cell($s; $m; f): vals($s; $m; f) as $v
    | if ($v | length) == 0 then "–" else "\(fmt($v | med)) (\(fmt($v | min))–\(fmt($v | max)))" end;
  def row($title; $m; f): "| \($title) | \(cell("sqlite"; $m; f)) | \(cell("postgresql"; $m; f)) |";
  def block($m; $name):
    row("\($name): receipts/s"; $m; .msgs_per_s),
    row("\($name): p50 ms"; $m; .p50_ms),
    row("\($name): p99 ms"; $m; .p99_ms),
    (if $m == "256" then empty else row("\($name): notice p99 ms"; $m; .notice_p99_ms),
      row("\($name): generator p99 behind schedule ms"; $m; .send_late_p99_ms) end),
    row("\($name): WAL KB per message (SQLite: its log's pages; PostgreSQL: WAL position)"; $m;
        if .store == "sqlite" then .log_bytes_per_msg else .pg_wal_bytes_per_msg end | kb),
    row("\($name): KB written to storage per message (broker + server + checkpoint)"; $m;
        if .broker_write_bytes_per_msg == null then null
        else .broker_write_bytes_per_msg + (.pg_write_bytes_per_msg // 0)
          + (.pg_checkpoint_bytes_per_msg // 0) end | kb),
    row("\($name): casenetd CPU µs per message (loop thread)"; $m;
        if .receipts == 0 then null else .broker_loop_cpu_s * 1e6 / .receipts end),
    row("\($name): casenetd CPU µs per message (all threads)"; $m;
        if .receipts == 0 then null else .broker_cpu_s * 1e6 / .receipts end),
    row("\($name): server CPU µs per message"; $m; .pg_cpu_us_per_msg);
"SQLite and PostgreSQL \($pg) (fsync on), \($rounds) alternating rounds of \($dur) s each; median (min–max):\n",
"| | SQLite | PostgreSQL |",
"|---|---|---|",
block("256"; "256 in flight"),
($rates | split(" ") | map(select(. != ""))[] as $rate | block("rate\($rate)"; "--rate \($rate)")),
"",
"load average during the runs: \([$r[].machine.loadavg[0]] | min)–\([$r[].machine.loadavg[0]] | max)"
JQ
