#!/usr/bin/env bash
# watch.sh - `casenet watch` against a real casenetd on loopback: N messages
# sent while it runs and M while it is stopped give N+M spool files and N+M
# `delivered` receipts, without duplicates; a failing --exec gets no receipt
# and is retried; watch killed (SIGKILL) while its command runs, after the
# spool write, and again between hand-over and receipt: on restart nothing is
# handed over twice and the receipt is sent; SIGTERM during a slow command
# finishes the message; a broker restart; forwarded receipts; one watch per
# home. Crashes are real: the hand-over command kills watch, no test hooks.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || fail "jq is required (Debian package jq)"
# shellcheck source=tests/cli/broker.sh
source "$(dirname "$0")/broker.sh"
N=$T/net
HOT=$N/home/vn.hotline111
POL=$N/home/vn.police.a05
watch_pid=
stop_watch() {
  if [ -n "$watch_pid" ]; then
    kill -9 "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
    watch_pid=
  fi
}
trap 'stop_watch; stop_broker; rm -rf "$T"' EXIT

# wait_until SECONDS WHAT CMD...: polls CMD every 0.1 s.
wait_until() {
  local secs=$1 what=$2 i
  shift 2
  for i in $(seq 1 $((secs * 10))); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  for f in "$T"/watch*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
  fail "timed out waiting for: $what"
}

# start_watch LOG ARGS...: runs watch for the police in the background.
start_watch() {
  local log=$1
  shift
  "$CASENET" watch --home "$POL" "$@" 2>>"$T/$log" &
  watch_pid=$!
  echo "$watch_pid" >"$T/watch.pid"
  wait_until 30 "watch connected ($log)" grep -q "event=connect .*outcome=connected" "$T/$log"
}

# term_watch: SIGTERM, and the exit status must be 0.
term_watch() {
  local rc=0
  kill -TERM "$watch_pid"
  wait "$watch_pid" || rc=$?
  watch_pid=
  [ "$rc" = 0 ] || fail "watch exited $rc after SIGTERM"
}

# send_one TAG: a referral from the hotline to the police; its id goes to
# $T/ids (and stdout).
send_one() {
  local id
  id=$(echo '{"referral": {"caseId": "W-'"$1"'", "summary": "watch test '"$1"'",
      "urgency": "URGENCY_URGENT_TAKEDOWN", "harmCategories": ["HARM_CATEGORY_OTHER"],
      "legalBasis": {"kind": "LEGAL_BASIS_KIND_STATUTORY_DUTY"}}}' |
    "$CASENET" send --home "$HOT" --to vn.police.a05 --kind referral --urgency urgent-takedown \
      2>>"$T/send.err") || fail "send $1"
  echo "$id" >>"$T/ids"
  echo "$id"
}

# delivered_receipts: the hotline's receipt rows from the police, status
# delivered, as a JSON array of the acknowledged message ids.
delivered_receipts() {
  "$CASENET" inbox --home "$HOT" --json 2>/dev/null |
    jq -sc '[.[] | select(.kind == "receipt" and .from == "vn.police.a05"
      and .status == "delivered" and .receipt_verified) | .in_reply_to]'
}
n_receipts() { delivered_receipts | jq length; }
has_receipts() { [ "$(n_receipts)" -ge "$1" ]; }
n_files() { find "$1" -maxdepth 1 -name '*.json' | wc -l; }
has_files() { [ "$(n_files "$1")" -ge "$2" ]; }
police_state() {
  "$CASENET" inbox --home "$POL" --json | jq -r --arg id "$1" 'select(.id == $id) | .state'
}

step "network, broker"
broker_up "$N"
: >"$T/ids"

step "usage"
expect_exit 2 "$CASENET" watch --home "$POL"
expect_contains "$T/err" "--spool DIR, --exec CMD or both"
expect_exit 2 "$CASENET" watch --home "$POL" --spool "$T/s" extra
expect_exit 0 "$CASENET" watch --help
expect_contains "$T/out" "example:"

S=$T/spool
step "N=5 messages sent while watch runs: 5 files, 5 receipts"
start_watch watch1.log --spool "$S"
for i in 1 2 3 4 5; do send_one "n$i" >/dev/null; done
wait_until 60 "5 spool files" has_files "$S" 5
wait_until 60 "5 delivered receipts" has_receipts 5
term_watch
expect_contains "$T/watch1.log" "event=stop"

step "M=4 messages sent while watch is stopped, then watch again: 9 files, 9 receipts"
for i in 1 2 3 4; do send_one "m$i" >/dev/null; done
[ "$(n_receipts)" = 5 ] || fail "receipts appeared while watch was stopped"
start_watch watch2.log --spool "$S"
wait_until 60 "9 spool files" has_files "$S" 9
wait_until 60 "9 delivered receipts" has_receipts 9
term_watch

step "spool content, receipts, no duplicates"
[ "$(n_files "$S")" = 9 ] || fail "$(n_files "$S") spool files, not 9"
[ -z "$(find "$S" -name '.*')" ] || fail "temporary files left in the spool"
while read -r id; do
  f=$S/$id.json
  [ -f "$f" ] || fail "no spool file for $id"
  jq -e --arg id "$id" '.message.id == $id and .message.from == "vn.hotline111"
    and .message.kind == "referral" and .message.urgency == "urgent-takedown"
    and .message.status == "actual" and .message.recipients == ["vn.police.a05"]
    and (.message.received_at | test("Z$")) and (.message.envelope_hash | length) == 64
    and (.payload.referral.caseId | startswith("W-"))
    and (.payload.referral.summary | startswith("watch test"))' "$f" >/dev/null ||
    fail "spool file $f: $(cat "$f")"
  [ "$(police_state "$id")" = delivered ] || fail "$id is not delivered at the police"
done <"$T/ids"
delivered_receipts | jq -e --slurpfile ids <(jq -R . "$T/ids") \
  'length == 9 and (unique | length) == 9 and (sort == ($ids | sort))' >/dev/null ||
  fail "receipts: $(delivered_receipts)"
n=$(cat "$T/watch1.log" "$T/watch2.log" | grep -c "event=message .*outcome=acknowledged" || true)
[ "$n" = 9 ] || fail "$n acknowledged log lines, not 9"
grep "event=message" "$T/watch1.log" | head -n 1 |
  grep -qE '^ts=[0-9T:.-]+Z level=info event=message msg=[0-9a-f]{32} from=vn.hotline111 kind=referral outcome=acknowledged' ||
  fail "log line format: $(grep "event=message" "$T/watch1.log" | head -n 1)"

step "--once with nothing pending: exit 0, nothing handed over again"
expect_exit 0 "$CASENET" watch --home "$POL" --spool "$S" --once
[ "$(n_files "$S")" = 9 ] || fail "--once wrote files again"
expect_not_contains "$T/err" "event=message"

step "--exec failing: no receipt; retried until it succeeds, then one receipt"
mkdir -p "$T/exec-out"
cat >"$T/flaky.sh" <<EOF
#!/bin/sh
[ -e "$T/fail" ] && exit 3
cat > "$T/exec-out/\$CASENET_MESSAGE_ID.json"
EOF
chmod +x "$T/flaky.sh"
touch "$T/fail"
start_watch watch3.log --exec "$T/flaky.sh"
id=$(send_one flaky)
wait_until 60 "exec failure logged" grep -q "msg=$id .*outcome=exec-failed.*error=\"exit 3\"" \
  "$T/watch3.log"
# The retry's failure proves watch is done with the first one: a receipt it
# sent for it would be recorded by then (watch waits for the broker's answer).
exec_failures() { [ "$(grep -c "msg=$1 .*outcome=exec-failed" "$T/watch3.log")" -ge "$2" ]; }
wait_until 60 "the failed command retried" exec_failures "$id" 2
[ "$(n_receipts)" = 9 ] || fail "a receipt was sent although the command failed"
[ "$(police_state "$id")" = fetched ] || fail "$id is not left fetched after a failed exec"
rm "$T/fail"
wait_until 60 "receipt after a successful retry" has_receipts 10
term_watch
jq -e --arg id "$id" '.message.id == $id and .payload.referral.caseId == "W-flaky"' \
  "$T/exec-out/$id.json" >/dev/null || fail "exec got the wrong JSON"
[ "$(grep -c "msg=$id .*outcome=acknowledged" "$T/watch3.log")" = 1 ] || fail "not one ack"

step "watch killed (SIGKILL) while its command runs, after the spool write"
S2=$T/spool2
mkdir -p "$T/taken"
# The agency's command: takes the spool file away (as an importer would),
# records the call, and the first time kills watch before it can record the
# hand-over or send the receipt.
cat >"$T/crash.sh" <<EOF
#!/bin/sh
echo "\$CASENET_MESSAGE_ID" >> "$T/crash.calls"
[ -f "\$CASENET_SPOOL_FILE" ] && mv "\$CASENET_SPOOL_FILE" "$T/taken/"
if [ ! -e "$T/crashed" ]; then
  touch "$T/crashed"
  kill -9 \$(cat "$T/watch.pid")
fi
cat > /dev/null
EOF
chmod +x "$T/crash.sh"
start_watch watch4.log --spool "$S2" --exec "$T/crash.sh"
id=$(send_one crash)
rc=0
wait "$watch_pid" || rc=$?
watch_pid=
[ "$rc" = 137 ] || fail "watch was not killed (exit $rc)"
[ -f "$T/taken/$id.json" ] || fail "the spool file was not written before the crash"
[ "$(n_receipts)" = 10 ] || fail "a receipt went out before the crash"
start_watch watch5.log --spool "$S2" --exec "$T/crash.sh"
wait_until 60 "receipt after the restart" has_receipts 11
term_watch
[ "$(n_files "$S2")" = 0 ] || fail "the spool file was written a second time after the crash"
[ -z "$(find "$S2" -name '.*')" ] || fail "temporary files left in spool2"
# The command had not finished when watch died: it runs again (documented).
[ "$(grep -c "$id" "$T/crash.calls")" = 2 ] || fail "command calls: $(cat "$T/crash.calls")"
delivered_receipts | jq -e --arg id "$id" '[.[] | select(. == $id)] | length == 1' >/dev/null ||
  fail "not exactly one receipt for $id"

step "watch killed between hand-over and receipt: restart sends the receipt only"
S3=$T/spool3
# The command takes the message and freezes the broker, so the receipt cannot
# go out; the test then kills watch.
cat >"$T/freeze.sh" <<EOF
#!/bin/sh
echo "\$CASENET_MESSAGE_ID" >> "$T/freeze.calls"
if [ ! -e "$T/frozen" ]; then
  touch "$T/frozen"
  kill -STOP \$(cat "$T/broker.pid")
fi
cat > /dev/null
EOF
chmod +x "$T/freeze.sh"
start_watch watch6.log --spool "$S3" --exec "$T/freeze.sh" --timeout 2
id=$(send_one freeze)
wait_until 60 "receipt pending" grep -q "msg=$id .*outcome=receipt-pending" "$T/watch6.log"
stop_watch
kill -CONT "$broker_pid"
# The receipt frame may sit in the frozen broker's socket buffer and be
# recorded once it resumes: the restart then resends the same signed bytes,
# which the broker answers as the first time.
start_watch watch7.log --spool "$S3" --exec "$T/freeze.sh"
wait_until 60 "receipt after the restart" has_receipts 12
term_watch
expect_contains "$T/watch7.log" "msg=$id from=vn.hotline111 kind=referral outcome=acknowledged-after-restart"
[ "$(wc -l <"$T/freeze.calls")" = 1 ] || fail "handed over again: $(cat "$T/freeze.calls")"
[ "$(n_files "$S3")" = 1 ] || fail "spool3 holds $(n_files "$S3") files"
delivered_receipts | jq -e --arg id "$id" '[.[] | select(. == $id)] | length == 1' >/dev/null ||
  fail "not exactly one receipt for $id"
expect_not_contains "$T/watch7.log" "outcome=acknowledged "

step "SIGTERM during a slow command: the message is finished before exit"
cat >"$T/slow.sh" <<EOF
#!/bin/sh
touch "$T/slow-started"
sleep 3
cat > /dev/null
EOF
chmod +x "$T/slow.sh"
start_watch watch8.log --exec "$T/slow.sh"
id=$(send_one slow)
wait_until 60 "slow command started" test -e "$T/slow-started"
term_watch
[ "$(police_state "$id")" = delivered ] || fail "SIGTERM: $id not acknowledged before exit"
expect_contains "$T/watch8.log" "msg=$id from=vn.hotline111 kind=referral outcome=acknowledged"
[ "$(n_receipts)" = 13 ] || fail "receipts after SIGTERM: $(n_receipts)"

step "one watch per home"
start_watch watch9.log --spool "$S"
expect_exit 1 "$CASENET" watch --home "$POL" --spool "$S"
expect_contains "$T/err" "another casenet watch is running"

step "the broker restarts under a running watch: new messages still arrive"
ep=$BROKER_ENDPOINT
stop_broker
start_broker "$ep"
a=$(send_one restart1)
b=$(send_one restart2)
wait_until 60 "receipts after the broker restart" has_receipts 15
term_watch
[ -f "$S/$a.json" ] && [ -f "$S/$b.json" ] || fail "files after the broker restart"

step "forwarded receipts are handed to the sender's watch; none is sent back"
S4=$T/spool-hotline
rows=$("$CASENET" inbox --home "$HOT" --json | jq -s '[.[] | select(.kind == "receipt")] | length')
expect_exit 0 "$CASENET" watch --home "$HOT" --spool "$S4" --once
[ "$(n_files "$S4")" = "$rows" ] || fail "$(n_files "$S4") receipt files for $rows receipt rows"
f=$(find "$S4" -name '*.json' | head -n 1)
jq -e '.message.kind == "receipt" and .message.from == "vn.police.a05"
  and .receipt.status == "delivered" and .receipt.recipient == "vn.police.a05"
  and .receipt.sender == "vn.hotline111" and .message.in_reply_to == .receipt.message_id
  and (.payload == null)' "$f" >/dev/null || fail "receipt file: $(cat "$f")"
expect_exit 0 "$CASENET" watch --home "$HOT" --spool "$S4" --once
expect_not_contains "$T/err" "event=message"
[ "$(n_files "$S4")" = "$rows" ] || fail "receipts handed over twice"
"$CASENET" inbox --home "$POL" --json | jq -se '[.[] | select(.kind == "receipt")] | length == 0' \
  >/dev/null || fail "a receipt was acknowledged with a receipt"

step "--once without a broker: exit 6"
stop_broker
expect_exit 6 "$CASENET" watch --home "$POL" --spool "$S" --once --timeout 1
echo "PASS"
