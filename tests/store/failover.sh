#!/usr/bin/env bash
# failover.sh - two casenetd on one PostgreSQL database (pg_server.sh), the
# members' homes listing both (--broker tcp://a,tcp://b). A sender submits
# while the active broker is killed with SIGKILL, FAILOVERS times (default 2),
# each time restarted as the standby; then the active broker is stopped
# cleanly (SIGTERM): it hands the lease back and the standby takes over well
# within the lease's TTL; then a paused (SIGSTOP) active broker loses the
# lease and, after SIGCONT, commits nothing and stops (fencing).
# Checks that every receipted message reaches its recipient exactly once and
# that the coordinator's `casenet audit verify` passes from the head it
# remembered before the first failover. Prints each takeover time: from the
# kill to the standby answering a request.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/../cli/lib.sh"
command -v jq >/dev/null || fail "jq is required (Debian package jq)"
here=$(cd "$(dirname "$0")" && pwd)
pgbin=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$pgbin/initdb" ]; then
  echo "SKIP: PostgreSQL 15 is not installed (deploy/setup-debian.sh)"
  exit 77
fi
CASENETD=${CASENETD:-${CASENET_BINARY_DIR:-$(dirname "$CASENET")/../..}/broker/casenetd}
failovers=${FAILOVERS:-2}
N=$T/net
declare -A pid=() port=()
sender=
pgdir=

cleanup() {
  [ -z "$sender" ] || kill "$sender" 2>/dev/null || true
  for b in a b; do
    if [ -n "${pid[$b]:-}" ]; then
      kill -CONT "${pid[$b]}" 2>/dev/null || true
      kill -9 "${pid[$b]}" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
  [ -z "$pgdir" ] || "$here/pg_server.sh" stop "$pgdir" || true
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# start B: casenetd B on its port and data directory, in the background.
start() {
  local b=$1
  mkdir -p "$N/data-$b"
  "$CASENETD" --data "$N/data-$b" --listen "tcp://127.0.0.1:${port[$b]}" \
    --key "$N/keys/vn.broker.key" --directory "$N/directory" \
    --authority "$N/authority/authority.pub" --store "$PG" --submit-rate 0 >>"$T/broker-$b.log" 2>&1 &
  pid[$b]=$!
}

# answers B: whether broker B answers a directory pull on its own endpoint.
answers() {
  "$CASENET" directory pull --home "$N/home/vn.coord" --broker "tcp://127.0.0.1:${port[$1]}" \
    --timeout 1 >/dev/null 2>&1
}

# wait_for WHAT SECONDS CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
  local what=$1 until=$(($(now_ms) + $2 * 1000))
  shift 2
  until "$@"; do
    [ "$(now_ms)" -lt "$until" ] || fail "$what within the time allowed"
    sleep 0.05
  done
}

logged() { grep -q "$2" "$T/broker-$1.log"; }
receipts_at_least() { [ "$(wc -l <"$T/receipted")" -ge "$1" ]; }

step "PostgreSQL and the network"
# Not under $T: the server may run as another user (pg_server.sh).
pgdir=$(mktemp -d "${TMPDIR:-/tmp}/casenet-pg-XXXXXX")
PG=$("$here/pg_server.sh" start "$pgdir")
make_network "$N"
write_referral "$T/referral.json"
port[a]=$((20000 + RANDOM % 20000))
port[b]=$((port[a] + 1 + RANDOM % 1000))
list="tcp://127.0.0.1:${port[a]},tcp://127.0.0.1:${port[b]}"

step "a takes the lease, b waits as the standby and binds nothing"
start a
wait_for "broker a answering" 30 answers a
start b
wait_for "broker b waiting as the standby" 10 logged b 'event=standby'
answers b && fail "the standby answers requests"
for id in vn.hotline111 vn.police.a05 vn.molisa.hanoi vn.coord; do
  sed -i "s|^broker=.*|broker=$list|" "$N/home/$id/state"
done
# The broker signs a head every 2 s: verify until one is remembered.
head_remembered() {
  "$CASENET" audit verify --home "$N/home/vn.coord" >/dev/null 2>&1 &&
    [ -s "$N/home/vn.coord/audit.state" ]
}
wait_for "the coordinator remembering a signed head" 30 head_remembered
cp "$N/home/vn.coord/audit.state" "$T/head.before"

step "a sender submits through the failovers"
: >"$T/receipted"
(
  i=0
  while :; do
    i=$((i + 1))
    if id=$("$CASENET" send --home "$N/home/vn.hotline111" --to vn.police.a05 --kind referral \
      --urgency emergency --timeout 30 <"$T/referral.json" 2>>"$T/sender.err"); then
      echo "$id" >>"$T/receipted"
    else
      echo "send $i failed" >>"$T/sender.err"
    fi
  done
) &
sender=$!

active=a standby=b
: >"$T/takeover"
for n in $(seq 1 "$failovers"); do
  have=$(wc -l <"$T/receipted")
  wait_for "5 more receipts before failover $n" 60 receipts_at_least $((have + 5))
  t0=$(now_ms)
  kill -9 "${pid[$active]}"
  wait "${pid[$active]}" 2>/dev/null || true
  wait_for "broker $standby taking over" 30 answers "$standby"
  echo $(($(now_ms) - t0)) >>"$T/takeover"
  echo "failover $n: $standby took over in $(tail -n 1 "$T/takeover") ms"
  : >"$T/broker-$active.log"
  start "$active"
  wait_for "broker $active waiting as the standby" 10 logged "$active" 'event=standby'
  tmp=$active active=$standby standby=$tmp
done
have=$(wc -l <"$T/receipted")
wait_for "5 more receipts after the last failover" 60 receipts_at_least $((have + 5))
kill "$sender"
wait "$sender" 2>/dev/null || true
sender=

step "every receipted message is in the recipient's inbox exactly once"
expect_exit 0 "$CASENET" inbox --home "$N/home/vn.police.a05" --json
jq -r .id "$T/out" | sort >"$T/inbox"
sort -u "$T/receipted" >"$T/sent"
[ "$(wc -l <"$T/sent")" = "$(wc -l <"$T/receipted")" ] || fail "a receipt was given twice"
[ -z "$(uniq -d "$T/inbox")" ] || fail "a message is twice in the inbox"
missing=$(comm -23 "$T/sent" "$T/inbox")
[ -z "$missing" ] || fail "receipted but not delivered: $missing"
echo "$(wc -l <"$T/sent") receipted, all delivered once"

step "audit verify from the head remembered before the failovers"
cmp -s "$T/head.before" "$N/home/vn.coord/audit.state" || fail "the remembered head moved"
# Until a head signed after the failovers is remembered (every 2 s); each
# verify must pass.
verified_newer() {
  expect_exit 0 "$CASENET" audit verify --home "$N/home/vn.coord"
  ! cmp -s "$T/head.before" "$N/home/vn.coord/audit.state"
}
wait_for "audit verify up to a head signed after the failovers" 30 verified_newer

step "a clean stop (SIGTERM) hands the lease back: the standby takes over within the TTL"
# STORE_LEASE_TTL_MS (broker/store.h): without the hand-back the standby
# waits for the lease to expire, TTL minus at most one renewal tick (1 s)
# after the stop.
ttl_ms=3000
t0=$(now_ms)
kill -TERM "${pid[$active]}"
rc=0
wait "${pid[$active]}" || rc=$?
[ "$rc" = 0 ] || fail "broker $active exited $rc on SIGTERM"
logged "$active" 'event=lease_released' || fail "broker $active did not hand its lease back"
wait_for "broker $standby taking over after the clean stop" 30 answers "$standby"
took=$(($(now_ms) - t0))
echo "clean stop: $standby took over in $took ms (lease TTL $ttl_ms ms)"
[ "$took" -lt "$ttl_ms" ] || fail "the takeover after SIGTERM took $took ms, not under the TTL"
: >"$T/broker-$active.log"
start "$active"
wait_for "broker $active waiting as the standby" 10 logged "$active" 'event=standby'
tmp=$active active=$standby standby=$tmp
expect_exit 0 "$CASENET" send --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind referral --urgency emergency --timeout 30 <"$T/referral.json"

step "fencing: a paused active broker loses the lease and commits nothing"
psql=("$pgbin/psql" "$PG" -qAt)
kill -STOP "${pid[$active]}"
wait_for "broker $standby taking over from the paused one" 30 answers "$standby"
events=$("${psql[@]}" -c "SELECT count(*) FROM audit")
token=$("${psql[@]}" -c "SELECT token FROM broker_lease")
kill -CONT "${pid[$active]}"
rc=0
wait "${pid[$active]}" || rc=$?
[ "$rc" != 0 ] || fail "the fenced broker exited 0"
logged "$active" 'event=lease_lost' || fail "the fenced broker did not log lease_lost"
[ "$("${psql[@]}" -c "SELECT count(*) FROM audit")" = "$events" ] ||
  fail "the fenced broker committed events after SIGCONT"
[ "$("${psql[@]}" -c "SELECT token FROM broker_lease")" = "$token" ] ||
  fail "the fenced broker took the lease back"
pid[$active]=
expect_exit 0 "$CASENET" send --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind referral --urgency emergency --timeout 30 <"$T/referral.json"
expect_exit 0 "$CASENET" audit verify --home "$N/home/vn.coord"

sort -n "$T/takeover" >"$T/sorted"
k=$(wc -l <"$T/sorted")
echo "takeover ms over $k failovers: p50 $(sed -n "$(((k + 1) / 2))p" "$T/sorted")" \
  "p99 $(sed -n "$(((k * 99 + 99) / 100))p" "$T/sorted")" \
  "max $(tail -n 1 "$T/sorted")"
echo "PASS"
