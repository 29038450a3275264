#!/usr/bin/env bash
# bench_pg.sh - casenet-bench --store postgresql://... (README "Performance")
# on a throwaway PostgreSQL 15 (tests/store/pg_server.sh): a short run at a
# fixed rate answers every Submit with a receipt, reports the server's WAL
# bytes, and its database (one of the run's own) is dropped at the end;
# --store sqlite:DIR runs in DIR and refuses a DIR that holds a store; the
# usage errors of --store. Skipped (77) without PostgreSQL 15. Speed is
# never asserted.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || fail "jq is required (Debian package jq)"
here=$(cd "$(dirname "$0")/../store" && pwd)
pgbin=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$pgbin/initdb" ]; then
  echo "SKIP: PostgreSQL 15 is not installed (deploy/setup-debian.sh)"
  exit 77
fi
BENCH=${CASENET_BENCH:-$(dirname "$CASENET")/../bench/casenet-bench}
[ -x "$BENCH" ] || fail "casenet-bench not found at $BENCH"
export TMPDIR=$T
pgdir=$T/pg
cleanup() {
  "$here/pg_server.sh" stop "$pgdir" || true
  rm -rf "$T"
}
trap cleanup EXIT
chmod 755 "$T" # as root the server runs as nobody, in $T/pg

# jq_true FILE FILTER: the last line of FILE is JSON and FILTER holds on it.
jq_true() {
  tail -n 1 "$1" | jq -e "$2" >/dev/null || fail "$(basename "$1"): last line fails: $2"
}
# databases: the server's databases, one a line.
databases() {
  "$pgbin/psql" "$URI" -qAtc "SELECT datname FROM pg_database ORDER BY 1"
}

step "usage"
expect_exit 0 "$BENCH" --help
expect_contains "$T/out" "--store SPEC"
expect_exit 2 "$BENCH" --store mysql://x
expect_contains "$T/err" "bad value for --store: 'mysql://x'"
expect_exit 2 "$BENCH" --store sqlite:
expect_contains "$T/err" "bad value for --store"
expect_exit 2 "$BENCH" --store sqlite:/x --network "$T/n" --broker tcp://127.0.0.1:1
expect_contains "$T/err" "drop --broker and --init"

step "a throwaway PostgreSQL server"
URI=$("$here/pg_server.sh" start "$pgdir")
before=$(databases)

step "casenet-bench --store postgresql://..."
expect_exit 0 "$BENCH" --json --no-ceilings --duration 1 --warmup 0 --rate 100 --members 3 \
  --connections 2 --store "$URI"
jq_true "$T/out" '.store == "postgresql" and .receipts > 0'
jq_true "$T/out" '.receipts == .sent and .errors == 0 and .notices == .receipts'
jq_true "$T/out" '.receipt_verify_failures == 0'
# the server's WAL grew by at least the envelopes; the SQLite-only figures are null
jq_true "$T/out" '.pg_wal_bytes_per_msg > 2048 and .page_size == 0 and .log_bytes_per_msg == null'
expect_contains "$T/out" "store        PostgreSQL, the run's database casenet_bench_"
expect_contains "$T/out" "server WAL   "
[ "$(databases)" = "$before" ] || fail "the run's database was not dropped: $(databases)"

step "casenet-bench --store sqlite:DIR"
expect_exit 0 "$BENCH" --json --no-ceilings --duration 1 --warmup 0 --rate 100 --members 3 \
  --connections 2 --store "sqlite:$T/sq" --keep
jq_true "$T/out" '.store == "sqlite" and .receipts > 0 and .page_size > 0'
[ -f "$T/sq/casenet.db" ] || fail "no store in $T/sq"
expect_exit 1 "$BENCH" --no-ceilings --duration 1 --store "sqlite:$T/sq"
expect_contains "$T/err" "holds a store already"

echo "bench_pg: ok"
