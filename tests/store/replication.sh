#!/usr/bin/env bash
# replication.sh - PostgreSQL streaming replication under a real casenetd
# (issue 17 item 4, deploy/postgresql/README.md). Per scenario: a primary and
# a streaming standby on loopback (pg_server.sh start / standby), a broker
# whose store names both (host=a,b with target_session_attrs=read-write),
# SENDERS (default 4) `casenet send` loops recording every receipt, then the
# primary killed with SIGKILL (process and children) under load, the standby
# promoted, and the broker following it: the one that loses its database
# session stops (event=lease_lost, exit 1) and is started again, as
# systemd's Restart=on-failure does, on the same store spec. Then:
#   sync   synchronous_commit=remote_apply, the standby synchronous; its
#          walsender is held (SIGSTOP) until a commit waits for it, then the
#          crash: every receipted message is in its recipient's inbox on the
#          promoted standby (receipts lost must be 0) and the coordinator's
#          `casenet audit verify` passes from the head it remembered under
#          load;
#   async  asynchronous replication, crash under load: the receipts lost are
#          counted (often 0 on loopback); if the coordinator's remembered
#          head is beyond the promoted log, audit verify must fail and say
#          so, otherwise it must pass;
#   lag    asynchronous with a standby that falls behind (its walsender held
#          while receipts and a signed head go on): receipts are lost, and
#          the coordinator whose head is beyond the promoted log detects it.
# Prints per scenario: receipted, lost, promotion-to-first-receipt time.
# SCENARIOS="sync async lag" (default) picks some; KEEP=1 keeps $T.
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
senders=${SENDERS:-4}
pgdirs=()
broker=
loops=()

cleanup() {
  [ -z "$broker" ] || kill -9 "$broker" 2>/dev/null || true
  for p in "${loops[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for d in "${pgdirs[@]}"; do "$here/pg_server.sh" stop "$d" || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# wait_for WHAT SECONDS CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
  local what=$1 until=$(($(now_ms) + $2 * 1000))
  shift 2
  until "$@"; do
    [ "$(now_ms)" -lt "$until" ] || fail "$what within the time allowed"
    sleep 0.05
  done
}

port_of() {
  local p=${1#*@127.0.0.1:}
  echo "${p%%/*}"
}
sql() { "$pgbin/psql" "$1" -qAt -c "$2"; }
receipts() { cat "$S"/receipted.* 2>/dev/null | wc -l; }
receipts_at_least() { [ "$(receipts)" -ge "$1" ]; }
# receipts_after MS COUNT: COUNT receipts given after time MS.
receipts_after() {
  [ "$(cat "$S"/receipted.* | awk -v t="$1" '$1 > t' | wc -l)" -ge "$2" ]
}
logged() { grep -q "$1" "$S/broker.log"; }
exited() { ! kill -0 "$broker" 2>/dev/null; }

# start_broker: casenetd on the scenario's network and store, in the
# background.
start_broker() {
  "$CASENETD" --data "$N/data" --listen "tcp://127.0.0.1:$port" \
    --key "$N/keys/vn.broker.key" --directory "$N/directory" \
    --authority "$N/authority/authority.pub" --store "$store" --submit-rate 0 \
    >>"$S/broker.log" 2>&1 &
  broker=$!
}

answers() {
  "$CASENET" directory pull --home "$N/home/vn.coord" --timeout 1 >/dev/null 2>&1
}
# started: the broker answers; fails at once, with its log, if it exited.
started() {
  kill -0 "$broker" 2>/dev/null || fail "casenetd exited at start: $(tail -n 5 "$S/broker.log")"
  answers
}

# coord_head: the coordinator's audit verify; prints the remembered size.
coord_head() {
  "$CASENET" audit verify --home "$N/home/vn.coord" --timeout 5 >"$S/verify.out" 2>"$S/verify.err" ||
    return 1
  sed -n 's/^trusted head: size \([0-9]*\),.*/\1/p' "$S/verify.out"
}
head_beyond() {
  local got
  got=$(coord_head) && [ -n "$got" ] && [ "$got" -gt "$1" ] && echo "$got" >"$S/head"
}

# sender I: sends referrals until stopped, one "time_ms id" line per receipt.
sender() {
  local i=$1 home=$N/home/sender$1 to=vn.police.a05 id
  [ $((i % 2)) = 0 ] || to=vn.molisa.hanoi
  while [ ! -e "$S/stop" ]; do
    if id=$("$CASENET" send --home "$home" --to "$to" --kind referral --urgency emergency \
      --timeout 20 <"$T/referral.json" 2>>"$S/sender.err"); then
      echo "$(now_ms) $id" >>"$S/receipted.$i"
    fi
  done
}

# hold_walsender: SIGSTOP to the primary's walsender (the standby gets
# nothing more); its pid in $S/walsender.
hold_walsender() {
  sql "$primary" "SELECT pid FROM pg_stat_replication WHERE application_name = 'standby1'" \
    >"$S/walsender"
  [ -s "$S/walsender" ] || fail "no walsender for standby1 on the primary"
  kill -STOP "$(cat "$S/walsender")"
}
commit_waits_for_standby() {
  [ "$(sql "$primary" "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")" -ge 1 ]
}
standby_behind_head() {
  local applied
  applied=$(sql "$standby" "SELECT count(*) FROM audit")
  head_beyond "$applied"
}

# scenario NAME: one primary/standby pair, one broker, the load, the crash.
scenario() {
  local name=$1 sync=
  S=$T/$name N=$T/$name/net
  mkdir -p "$S"
  step "$name: a primary and a streaming standby"
  local pd sd
  pd=$(mktemp -d "${TMPDIR:-/tmp}/casenet-pg-XXXXXX")
  sd=$(mktemp -d "${TMPDIR:-/tmp}/casenet-pg-XXXXXX")
  pgdirs+=("$pd" "$sd")
  primary=$("$here/pg_server.sh" start "$pd")
  standby=$("$here/pg_server.sh" standby "$pd" "$sd" standby1)
  if [ "$name" = sync ]; then
    sql "$primary" "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" >/dev/null
    sql "$primary" "SELECT pg_reload_conf()" >/dev/null
    is_sync() {
      [ "$(sql "$primary" "SELECT sync_state FROM pg_stat_replication")" = sync ]
    }
    wait_for "standby1 becoming synchronous" 10 is_sync
    sync="&synchronous_commit=remote_apply"
  fi
  # Both servers in the broker's store: libpq takes the first that accepts
  # writes, at every (re)connection.
  store="postgresql://casenet@127.0.0.1:$(port_of "$primary"),127.0.0.1:$(port_of "$standby")/postgres?target_session_attrs=read-write&connect_timeout=2$sync"

  step "$name: a broker on both servers, $senders senders"
  # Below Linux's ephemeral range (32768-60999): no outgoing connection
  # holds it.
  port=$((10000 + RANDOM % 20000))
  BROKER_ENDPOINT=tcp://127.0.0.1:$port make_network "$N"
  for i in $(seq 1 "$senders"); do cp -a "$N/home/vn.hotline111" "$N/home/sender$i"; done
  start_broker
  wait_for "the broker answering" 30 started
  if [ -n "$sync" ]; then
    logged 'synchronous_commit=remote_apply' || fail "the broker's session is not remote_apply"
  fi
  for i in $(seq 1 "$senders"); do
    sender "$i" &
    loops+=($!)
  done
  wait_for "20 receipts" 60 receipts_at_least 20
  # A head signed under load, remembered by the coordinator (every 2 s).
  local size0
  size0=$(sql "$primary" "SELECT count(*) FROM audit")
  wait_for "the coordinator remembering a head signed under load" 30 head_beyond "$size0"

  case $name in
  sync)
    hold_walsender
    wait_for "a commit waiting for the synchronous standby" 30 commit_waits_for_standby
    ;;
  lag)
    local have
    have=$(receipts)
    hold_walsender
    wait_for "10 receipts while the standby lags" 60 receipts_at_least $((have + 10))
    wait_for "a remembered head beyond the standby" 30 standby_behind_head
    ;;
  esac

  step "$name: the primary killed (SIGKILL), the standby promoted"
  local crash_receipts t_crash t_promote first
  crash_receipts=$(receipts)
  t_crash=$(now_ms)
  "$here/pg_server.sh" crash "$pd"
  "$here/pg_server.sh" promote "$sd"
  t_promote=$(now_ms)
  local promoted_size remembered
  promoted_size=$(sql "$standby" "SELECT count(*) FROM audit")
  remembered=$(cat "$S/head")
  # The broker reconnects through the same spec, finds its lease's session
  # gone, stops; started again (systemd: Restart=on-failure) it takes the lease
  # once expired.
  wait_for "the broker stopping on its lost lease" 30 exited
  local rc=0
  wait "$broker" || rc=$?
  [ "$rc" = 1 ] || fail "the broker that lost its lease exited $rc, not 1"
  logged 'event=lease_lost' || fail "the broker stopped without event=lease_lost"
  start_broker
  wait_for "5 receipts after the promotion" 60 receipts_after "$t_promote" 5
  touch "$S/stop" # each sender finishes the send in hand
  wait "${loops[@]}"
  loops=()
  first=$(cat "$S"/receipted.* | awk -v t="$t_promote" '$1 > t {print $1}' | sort -n | head -n 1)

  step "$name: receipted messages on the promoted standby"
  cat "$S"/receipted.* | awk '{print $2}' | sort >"$S/sent"
  [ -z "$(uniq -d "$S/sent")" ] || fail "a receipt was given twice"
  : >"$S/inbox"
  for r in vn.police.a05 vn.molisa.hanoi; do
    expect_exit 0 "$CASENET" inbox --home "$N/home/$r" --json --state any
    jq -r .id "$T/out" >>"$S/inbox"
  done
  sort -o "$S/inbox" "$S/inbox"
  [ -z "$(uniq -d "$S/inbox")" ] || fail "a message is twice in an inbox"
  comm -23 "$S/sent" "$S/inbox" >"$S/lost"
  local sent lost
  sent=$(wc -l <"$S/sent") lost=$(wc -l <"$S/lost")
  # The recipients open the last messages receipted before the crash.
  local id
  for id in $(cat "$S"/receipted.* | sort -n | head -n "$crash_receipts" | tail -n 3 |
    awk '{print $2}' | sort | comm -12 - "$S/inbox"); do
    for r in vn.police.a05 vn.molisa.hanoi; do
      "$CASENET" read --home "$N/home/$r" "$id" >/dev/null 2>&1 && continue 2
    done
    fail "receipted message $id is listed but no recipient can read it"
  done
  echo "FIGURES $name: $sent receipted, $lost lost, first receipt" \
    "$((first - t_promote)) ms after the promotion ($((first - t_crash)) ms after the crash); log $promoted_size events on the promoted standby," \
    "coordinator's head $remembered"

  step "$name: the coordinator's audit verify"
  if [ "$remembered" -gt "$promoted_size" ]; then
    [ "$name" != sync ] || fail "remote_apply: the remembered head is beyond the promoted log"
    expect_exit 3 "$CASENET" audit verify --home "$N/home/vn.coord"
    expect_contains "$T/err" "remembered head of size $remembered"
    echo "detected: $(head -n 1 "$T/err")"
  else
    verified() { expect_exit 0 "$CASENET" audit verify --home "$N/home/vn.coord"; }
    wait_for "audit verify passing after the failover" 30 verified
    echo "the coordinator's head ($remembered) is within the promoted log: verify passes"
  fi
  if [ "$lost" -gt 0 ]; then
    # What the sender of a lost message hears when it asks after it.
    local f
    id=$(head -n 1 "$S/lost")
    f=$(grep -l "$id" "$S"/receipted.*)
    expect_exit 5 "$CASENET" status --home "$N/home/sender${f##*.}" "$id"
    expect_contains "$T/err" NOT_FOUND
    echo "the sender of lost message $id: $(cat "$T/err")"
  fi
  case $name in
  sync) [ "$lost" = 0 ] || fail "remote_apply lost $lost receipted messages: $(cat "$S/lost")" ;;
  lag) [ "$lost" -gt 0 ] || fail "the lagging standby lost nothing: the lag was not injected" ;;
  async) [ "$lost" -gt 0 ] || echo "async: nothing receipted was lost in this run" ;;
  esac
  kill "$broker" 2>/dev/null || true
  wait "$broker" 2>/dev/null || true
  broker=
}

write_referral "$T/referral.json"
for s in ${SCENARIOS:-sync async lag}; do
  case $s in
  sync | async | lag) scenario "$s" ;;
  *) fail "unknown scenario $s (sync, async, lag)" ;;
  esac
done
echo "PASS"
