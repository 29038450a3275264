#!/usr/bin/env bash
# friction.sh - small things that decide whether people trust the tool
# (issue 12, item 15): send refuses a terminal on stdin with a hint;
# publishing the same directory twice is "already current" (exit 0); a dead
# letter voids the row's pending accept deadline; `audit log --kind` takes
# the names users see (escalation) and lists the valid ones.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/cli/broker.sh
source "$(dirname "$0")/broker.sh"
command -v jq >/dev/null || fail "jq is required (Debian package jq)"
broker_up "$T/net"
HL=$N/home/vn.hotline111
write_referral "$T/referral.json"

step "send with a terminal on stdin refuses at once, with a hint"
# script(1) gives the command a terminal; timeout catches a send that waits.
rc=0
timeout 20 script -qec "'$CASENET' send --home '$HL' --to vn.police.a05 --kind referral" \
  /dev/null >"$T/out" 2>&1 </dev/null || rc=$?
[ "$rc" = 2 ] || fail "send on a terminal exited $rc (124: it waited for input)"
expect_contains "$T/out" "stdin, which is a terminal"
expect_contains "$T/out" "< payload.json"

step "publishing the same directory twice is idempotent"
"$CASENET" admin add --authority "$N/authority/authority.key" --directory "$N/directory" \
  --member "$N/keys/vn.coord.pub" --role coordinator --name "Network coordinator" >/dev/null
expect_exit 0 "$CASENET" directory publish "$N/directory" --home "$HL"
expect_contains "$T/out" "published"
expect_exit 0 "$CASENET" directory publish "$N/directory" --home "$HL"
expect_contains "$T/out" "already current"

step "a dead letter voids the accept deadline"
id=$("$CASENET" send --home "$HL" --to vn.police.a05 --kind referral --expires-in 1s \
  <"$T/referral.json" 2>/dev/null)
for _ in $(seq 1 100); do
  "$CASENET" status "$id" --json --home "$HL" >"$T/out" 2>"$T/err" || fail "status"
  jq -e '.recipients[0].state == "dead"' "$T/out" >/dev/null && break
  sleep 0.2
done
jq -e '.recipients[0].state == "dead"' "$T/out" >/dev/null || fail "the message did not die"
jq -e '.recipients[0].deadlines | map(select(.kind == "accept")) | .[0].state == "void"' \
  "$T/out" >/dev/null || fail "the accept deadline of a dead row is not void"
jq -e '.recipients[0].deadlines | map(select(.kind == "deliver")) | .[0].state == "void"' \
  "$T/out" >/dev/null || fail "the deliver deadline of a dead row is not void"

step "audit log --kind takes the names users see and lists the valid ones"
expect_exit 0 "$CASENET" audit log --kind escalation --home "$HL"
expect_exit 0 "$CASENET" audit log --kind dead-letter --home "$HL" --json
jq -e -s --arg id "$id" 'map(select(.message_id == $id)) | length == 1 and
  .[0].event == "dead-lettered"' "$T/out" >/dev/null || fail "--kind dead-letter"
expect_exit 2 "$CASENET" audit log --kind escalate --home "$HL"
expect_contains "$T/err" "escalated (escalation)"
expect_contains "$T/err" "broker-start"
echo "friction.sh: all passed"
