#!/usr/bin/env bash
# vs-rabbitmq.sh - casenet and RabbitMQ side by side on this machine, runs
# alternating in the same minutes (issue 20, README "Performance"):
# 2 KB messages, each durable before it is confirmed, at 1 and 256 in
# flight: casenet-bench against the casenetd it starts, and a tiny C client
# (amqp_bench.c, built here) publishing persistent messages with publisher
# confirms to a classic and a quorum queue of a RabbitMQ started on loopback
# in a temporary directory (no system service). Then casenet-bench at
# --rate 1000. Prints one markdown table with every target of the issue and
# the measured ratio.
#
#     sudo tests/bench/vs-rabbitmq.sh [BUILD_DIR]      (default: build)
#
# Installs Debian's rabbitmq-server and librabbitmq-dev with apt-get when
# they are missing (so: as root); needs jq and a C compiler. Environment:
# ROUNDS (3), DURATION (7 s measured) and WARMUP (1 s) per run, BASELINE
# (another casenet-bench, e.g. the previous main's, run alternately as
# "casenet (baseline)"), KEEP=1 keeps the temporary directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
BENCH=$BUILD/clients/bench/casenet-bench
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-7}
WARMUP=${WARMUP:-1}
SIZE=2048
[ -x "$BENCH" ] || { echo "vs-rabbitmq: $BENCH not found: build first (README \"Build\")" >&2; exit 2; }
command -v jq >/dev/null || { echo "vs-rabbitmq: jq is needed: apt-get install jq" >&2; exit 2; }

missing=()
for p in rabbitmq-server librabbitmq-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "vs-rabbitmq: ${missing[*]} not installed: run as root (it installs them) or apt-get install ${missing[*]}" >&2
    exit 2
  fi
  echo "vs-rabbitmq: installing ${missing[*]}..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/vs-rabbitmq.XXXXXX")
RMQ_BIN=/usr/lib/rabbitmq/bin
NODE="casenetbench$$@localhost"
EPMD_BEFORE=$(pgrep -x epmd || true)
rmq_env() {
  env HOME="$T/rmq" RABBITMQ_MNESIA_BASE="$T/rmq/mnesia" RABBITMQ_LOG_BASE="$T/rmq/log" \
    RABBITMQ_NODENAME="$NODE" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$PORT" \
    RABBITMQ_DIST_PORT="$((PORT + 1))" RABBITMQ_CONFIG_FILE="$T/rmq/rabbitmq" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$T/rmq/enabled_plugins" \
    RABBITMQ_CONF_ENV_FILE="$T/rmq/env.conf" RABBITMQ_PID_FILE="$T/rmq/pid" "$@"
}
cleanup() {
  if [ -s "$T/rmq/pid" ]; then # stop, given the pid file, waits for the process to end
    local pid
    pid=$(cat "$T/rmq/pid")
    rmq_env timeout 60 "$RMQ_BIN/rabbitmqctl" -n "$NODE" stop "$T/rmq/pid" >/dev/null 2>&1 ||
      kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if [ -z "$EPMD_BEFORE" ]; then # the Erlang port mapper our node started
    local e
    e=$(pgrep -x epmd || true)
    [ -z "$e" ] || kill "$e" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "vs-rabbitmq: files kept in $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT

cc -O2 -o "$T/amqp_bench" "$ROOT/tests/bench/amqp_bench.c" -lrabbitmq

# RabbitMQ on a free loopback port, its own data, cookie and logs.
PORT=$(( (RANDOM % 20000) + 30000 ))
mkdir -p "$T/rmq"
echo "[]." >"$T/rmq/enabled_plugins"
: >"$T/rmq/env.conf"
echo "loopback_users = none" >"$T/rmq/rabbitmq.conf"
echo "vs-rabbitmq: starting RabbitMQ ($NODE, port $PORT)..." >&2
rmq_env "$RMQ_BIN/rabbitmq-server" >"$T/rmq/server.out" 2>&1 &
for _ in 1 2 3 4 5 6; do
  rmq_env timeout 30 "$RMQ_BIN/rabbitmqctl" -n "$NODE" await_startup >/dev/null 2>&1 && break
done
rmq_env "$RMQ_BIN/rabbitmqctl" -n "$NODE" status >/dev/null 2>&1 ||
  { echo "vs-rabbitmq: RabbitMQ did not start; see $T/rmq/server.out" >&2; KEEP=1; exit 1; }
RMQ_VERSION=$(dpkg-query -W -f '${Version}' rabbitmq-server)

RESULTS=$T/results.jsonl
# record SYSTEM DEPTH JSON: one result line.
record() {
  jq -c --arg s "$1" --arg d "$2" '{system: $s, depth: $d} + .' <<<"$3" >>"$RESULTS"
}
run_rabbit() { # QUEUE DEPTH
  local out
  out=$("$T/amqp_bench" 127.0.0.1 "$PORT" "$1" "$2" "$DURATION" "$WARMUP" "$SIZE")
  record "rabbitmq-$1" "$2" "$out"
}
run_casenet() { # NAME BENCH DEPTH(1|256|rate1000)
  local args=(--duration "$DURATION" --warmup "$WARMUP" --size "$SIZE" --no-ceilings --json)
  case $3 in
    1) args+=(--connections 1 --inflight 1 --pool 8000) ;;
    256) args+=(--connections 8 --inflight 32 --pool 48000) ;;
    rate1000) args+=(--rate 1000) ;;
  esac
  local out
  out=$("$2" "${args[@]}" 2>"$T/casenet.err" | tail -n 1) ||
    { echo "vs-rabbitmq: casenet-bench failed:" >&2; cat "$T/casenet.err" >&2; exit 1; }
  record "$1" "$3" "$out"
}

for round in $(seq 1 "$ROUNDS"); do
  for depth in 1 256; do
    echo "vs-rabbitmq: round $round/$ROUNDS, $depth in flight..." >&2
    run_rabbit classic "$depth"
    run_rabbit quorum "$depth"
    run_casenet casenet "$BENCH" "$depth"
    [ -z "${BASELINE:-}" ] || run_casenet "casenet (baseline)" "$BASELINE" "$depth"
  done
  echo "vs-rabbitmq: round $round/$ROUNDS, casenet --rate 1000..." >&2
  run_casenet casenet "$BENCH" rate1000
  [ -z "${BASELINE:-}" ] || run_casenet "casenet (baseline)" "$BASELINE" rate1000
done

# The table: ranges over the rounds, ratios of the medians.
jq -rs --arg rmq "$RMQ_VERSION" --arg rounds "$ROUNDS" --arg dur "$DURATION" -f /dev/stdin \
  "$RESULTS" <<'JQ'
def med: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
def fmt($x): if $x == null then "–" elif $x >= 100 then ($x | round | tostring)
  elif $x >= 10 then ($x * 10 | round / 10 | tostring) else ($x * 100 | round / 100 | tostring) end;
def kb($x): if $x == null then null else $x / 1024 end;
def ratio($a; $b): if $a == null or $b == null or $b == 0 then null else $a / $b end;
def met($ok): if $ok == null then "?" elif $ok then "yes" else "no" end;
. as $r
| def vals($s; $d; $f): [$r[] | select(.system == $s and .depth == $d) | .[$f] | select(. != null)];
  def span($s; $d; $f): vals($s; $d; $f) as $v
    | if ($v | length) == 0 then "–" else "\(fmt($v | min))–\(fmt($v | max))" end;
  def m($s; $d; $f): vals($s; $d; $f) | med;
  ([$r[].system] | unique | map(select(startswith("casenet")))) as $cn
| "Side by side (\($rounds) alternating rounds of \($dur) s each; min–max; RabbitMQ \($rmq)):\n",
  "| | " + ($cn | join(" | ")) + " | RabbitMQ classic | RabbitMQ quorum |",
  "|---|" + ($cn | map("---|") | join("")) + "---|---|",
  (["1", "256"][] as $d
   | ("| \($d) in flight: confirmed msgs/s | " + ($cn | map(. as $s | span($s; $d; "msgs_per_s")) | join(" | "))
      + " | \(span("rabbitmq-classic"; $d; "msgs_per_s")) | \(span("rabbitmq-quorum"; $d; "msgs_per_s")) |"),
     ("| \($d) in flight: p50 ms | " + ($cn | map(. as $s | span($s; $d; "p50_ms")) | join(" | "))
      + " | \(span("rabbitmq-classic"; $d; "p50_ms")) | \(span("rabbitmq-quorum"; $d; "p50_ms")) |"),
     ("| \($d) in flight: p99 ms | " + ($cn | map(. as $s | span($s; $d; "p99_ms")) | join(" | "))
      + " | \(span("rabbitmq-classic"; $d; "p99_ms")) | \(span("rabbitmq-quorum"; $d; "p99_ms")) |"),
     ("| \($d) in flight: broker bytes written per message | "
      + ($cn | map(. as $s | vals($s; $d; "broker_write_bytes_per_msg") | map(. / 1024)
                   | if length == 0 then "–" else "\(fmt(min))–\(fmt(max)) KB" end) | join(" | "))
      + " | | |"),
     ("| \($d) in flight: commits/s, log pages per commit | "
      + ($cn | map(. as $s | "\(span($s; $d; "commits_per_s")), \(span($s; $d; "pages_per_commit"))") | join(" | "))
      + " | | |")),
  ("| --rate 1000: p99 receipt / notice ms | "
   + ($cn | map(. as $s | "\(span($s; "rate1000"; "p99_ms")) / \(span($s; "rate1000"; "notice_p99_ms"))") | join(" | "))
   + " | | |"),
  "",
  "Targets (issue 20; medians of the rounds, casenet = this build):\n",
  "| Target | casenet | reference | ratio or limit | met |",
  "|---|---|---|---|---|",
  (m("casenet"; "1"; "p50_ms") as $a | m("rabbitmq-quorum"; "1"; "p50_ms") as $b | ratio($a; $b) as $q
   | "| 1 in flight: p50 ≤ 1.2 × quorum p50 | \(fmt($a)) ms | \(fmt($b)) ms | \(fmt($q)) × (≤ 1.2) | \(met(if $q == null then null else $q <= 1.2 end)) |"),
  (m("casenet"; "256"; "msgs_per_s") as $a | m("rabbitmq-classic"; "256"; "msgs_per_s") as $b | ratio($a; $b) as $q
   | "| 256 in flight: receipts/s ≥ classic msgs/s | \(fmt($a))/s | \(fmt($b))/s | \(fmt($q)) × (≥ 1) | \(met(if $q == null then null else $q >= 1 end)) |"),
  (m("casenet"; "256"; "p99_ms") as $a | m("rabbitmq-quorum"; "256"; "p99_ms") as $b | ratio($a; $b) as $q
   | "| 256 in flight: p99 ≤ quorum p99 | \(fmt($a)) ms | \(fmt($b)) ms | \(fmt($q)) × (≤ 1) | \(met(if $q == null then null else $q <= 1 end)) |"),
  (m("casenet"; "rate1000"; "p99_ms") as $a
   | "| --rate 1000: receipt p99 ≤ 10 ms | \(fmt($a)) ms | | ≤ 10 ms | \(met(if $a == null then null else $a <= 10 end)) |"),
  (m("casenet"; "rate1000"; "notice_p99_ms") as $a
   | "| --rate 1000: notice p99 ≤ 15 ms | \(fmt($a)) ms | | ≤ 15 ms | \(met(if $a == null then null else $a <= 15 end)) |"),
  (kb(m("casenet"; "256"; "broker_write_bytes_per_msg")) as $a
   | "| bytes written per 2 KB message at saturation ≤ 8 KB | \(fmt($a)) KB | | ≤ 8 KB | \(met(if $a == null then null else $a <= 8 end)) |"),
  (kb(m("casenet"; "1"; "broker_write_bytes_per_msg")) as $a
   | "| bytes written per 2 KB message at 1 in flight ≤ 24 KB | \(fmt($a)) KB | | ≤ 24 KB | \(met(if $a == null then null else $a <= 24 end)) |")
JQ
