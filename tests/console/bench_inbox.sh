#!/usr/bin/env bash
# bench_inbox.sh - GET /api/v1/inbox latency of `casenet console` with N rows
# (default 10000) in the member's inbox: casenet-bench --scale stores them in
# a fresh network, a real casenetd serves it, the console lists them for each
# page request (newest first, 50 a page, pages spread over the whole list).
# Prints p50, p99 and max over R requests (default 100). Run by hand:
#   tests/console/bench_inbox.sh [N] [R]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${CASENET_BINARY_DIR:-$top/build}
N=${1:-10000}
R=${2:-100}
T=$(mktemp -d "${TMPDIR:-/tmp}/casenet-console-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
"$B/clients/bench/casenet-bench" --network "$T/net" --scale "$N" --no-load --no-ceilings \
  --members 4 >"$T/bench.log" 2>&1
port=$((20000 + RANDOM % 40000))
"$B/broker/casenetd" --data "$T/net/data" --listen "tcp://127.0.0.1:$port" \
  --key "$T/net/bench.broker.key" --directory "$T/net/directory.pb" \
  --authority "$T/net/authority.pub" --config "$T/net/casenetd.ini" 2>"$T/broker.log" &
pids+=($!)
home=$T/home
"$B/clients/cli/casenet" init --home "$home" --key "$T/net/bench.m001.key" \
  --authority "$T/net/authority.pub" --directory "$T/net/directory.pb" \
  --broker "tcp://127.0.0.1:$port" >/dev/null
echo "bench-password" | "$B/clients/cli/casenet" console user add bench --role caseworker \
  --home "$home" >/dev/null
"$B/clients/cli/casenet" console --home "$home" --listen 127.0.0.1:0 \
  --assets "$top/clients/console/www" >"$T/console.out" 2>"$T/console.err" &
pids+=($!)
for _ in $(seq 1 100); do grep -q "listening on" "$T/console.out" && break; sleep 0.1; done
url=$(sed -n 's/.*listening on //p' "$T/console.out")
curl -s -c "$T/jar" -H 'Content-Type: application/json' \
  -d '{"username":"bench","password":"bench-password"}' "${url}api/v1/session" >/dev/null
total=$(curl -s -b "$T/jar" "${url}api/v1/inbox?limit=1" | sed -n 's/.*"total":\([0-9]*\).*/\1/p')
[ "$total" = "$N" ] || { echo "bench_inbox: the inbox holds $total rows, not $N" >&2; exit 1; }
for i in $(seq 1 "$R"); do
  curl -s -b "$T/jar" -o /dev/null -w '%{time_total}\n' \
    "${url}api/v1/inbox?limit=50&offset=$(((i * 9973) % N))"
done | sort -n | awk -v n="$N" '{ a[NR] = $1 * 1000 } END {
  printf "GET /api/v1/inbox with %d rows: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d requests)\n",
    n, a[int((NR + 1) * 0.50)], a[int((NR - 1) * 0.99) + 1], a[NR], NR }'
