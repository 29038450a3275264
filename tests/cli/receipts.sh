#!/usr/bin/env bash
# receipts.sh - forwarded receipts in the sender's inbox (issue 12, item 4):
# `casenet read` shows the verified receipt, reading (or `ack`, or watch's
# hand-over) settles the row (queued -> fetched at the broker), and the
# default inbox view leaves settled receipts out (`--state any` shows them).
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/cli/broker.sh
source "$(dirname "$0")/broker.sh"
command -v jq >/dev/null || fail "jq is required (Debian package jq)"
broker_up "$T/net"
HL=$N/home/vn.hotline111
POL=$N/home/vn.police.a05
write_referral "$T/referral.json"

step "the police acknowledge a referral twice: two receipts reach the hotline"
id=$("$CASENET" send --home "$HL" --to vn.police.a05 --kind referral --urgency emergency \
  <"$T/referral.json" 2>/dev/null)
expect_exit 0 "$CASENET" ack "$id" --home "$POL"
expect_exit 0 "$CASENET" ack "$id" --status accepted --home "$POL"
expect_exit 0 "$CASENET" inbox --home "$HL" --json
mapfile -t rids < <(jq -r 'select(.kind == "receipt") | .id' "$T/out")
[ "${#rids[@]}" = 2 ] || fail "expected two receipt rows, got ${#rids[@]}"
jq -e -s 'map(select(.kind == "receipt")) | all(.state == "queued")' "$T/out" >/dev/null ||
  fail "new receipt rows are not queued"

step "read shows the verified receipt and settles the row"
expect_exit 0 "$CASENET" read "${rids[0]}" --home "$HL"
jq -e --arg id "$id" '.receipt.message_id == $id and .receipt.recipient == "vn.police.a05"
  and .receipt.status == "delivered" and (.receipt.signed_at | test("Z$"))' "$T/out" \
  >/dev/null || fail "read does not print the receipt"
expect_contains "$T/err" "signature verified"
expect_exit 0 "$CASENET" inbox --home "$HL" --state fetched --json
jq -e --arg r "${rids[0]}" 'select(.id == $r) | .state == "fetched"' "$T/out" >/dev/null ||
  fail "the read receipt row did not settle (still queued)"

step "ack on a receipt row settles it too, and sends nothing back"
expect_exit 0 "$CASENET" ack "${rids[1]}" --home "$HL"
expect_contains "$T/out" "settled"
expect_exit 0 "$CASENET" inbox --home "$POL" --json
jq -e -s 'map(select(.kind == "receipt")) | length == 0' "$T/out" >/dev/null ||
  fail "acknowledging a receipt sent a receipt back"

step "the default inbox view leaves settled receipts out; --state any shows them"
expect_exit 0 "$CASENET" inbox --home "$HL"
expect_not_contains "$T/out" "${rids[0]}"
expect_not_contains "$T/out" "${rids[1]}"
expect_contains "$T/err" "2 settled receipts not shown"
expect_exit 0 "$CASENET" inbox --home "$HL" --state any --wide
expect_contains "$T/out" "${rids[0]}"
expect_contains "$T/out" "${rids[1]}"

step "watch hands a receipt over and settles it"
id2=$("$CASENET" send --home "$HL" --to vn.police.a05 --kind referral --urgency emergency \
  <"$T/referral.json" 2>/dev/null)
expect_exit 0 "$CASENET" ack "$id2" --home "$POL"
expect_exit 0 "$CASENET" watch --home "$HL" --spool "$T/spool" --once
expect_exit 0 "$CASENET" inbox --home "$HL" --json --state queued
jq -e -s 'map(select(.kind == "receipt")) | length == 0' "$T/out" >/dev/null ||
  fail "watch left a receipt row queued"
echo "receipts.sh: all passed"
