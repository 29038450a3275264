#!/usr/bin/env bash
# online.sh - the online subcommands against a real casenetd on loopback:
# send (message id only after the broker's receipt), inbox (table, JSON
# Lines, paging, receipts), read, ack, directory pull/publish, and the exit
# codes for a refused request (5), a revoked member and an unreachable broker.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || fail "jq is required (Debian package jq)"
# shellcheck source=tests/cli/broker.sh
source "$(dirname "$0")/broker.sh"

step "network and broker"
broker_up "$T/net"
write_referral "$T/referral.json"

step "send: the message id after the broker's receipt"
expect_exit 0 "$CASENET" send --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind referral --urgency emergency < "$T/referral.json"
id=$(head -n 1 "$T/out")
[[ $id =~ ^[0-9a-f]{32}$ ]] || fail "send printed '$id', not a message id"
expect_contains "$T/err" "accepted by vn.broker"

step "inbox: table and JSON Lines"
expect_exit 0 "$CASENET" inbox --home "$N/home/vn.police.a05" --wide
expect_contains "$T/out" "$id"
expect_contains "$T/out" "vn.hotline111"
expect_contains "$T/out" "referral"
expect_contains "$T/out" "emergency"
expect_contains "$T/out" "queued"
expect_exit 0 "$CASENET" inbox --home "$N/home/vn.police.a05" --json
jq -e --arg id "$id" 'select(.id == $id) | .from == "vn.hotline111" and .kind == "referral"
  and .urgency == "emergency" and .state == "queued" and (.received_at | test("Z$"))
  and .in_reply_to == null' "$T/out" >/dev/null || fail "inbox --json row"
expect_exit 0 "$CASENET" inbox --home "$N/home/vn.molisa.hanoi" --json
[ -s "$T/out" ] && fail "a non-recipient sees the message in its inbox"

step "read: verified, decrypted payload"
expect_exit 0 "$CASENET" read "$id" --home "$N/home/vn.police.a05"
diff <(jq -S . "$T/referral.json") <(jq -S . "$T/out") >&2 || fail "read payload differs"
expect_contains "$T/err" "vn.hotline111"
expect_exit 0 "$CASENET" inbox --home "$N/home/vn.police.a05" --state fetched --json
jq -e --arg id "$id" 'select(.id == $id) | .state == "fetched"' "$T/out" >/dev/null ||
  fail "the read message is not in state fetched"
expect_exit 5 "$CASENET" read "$id" --home "$N/home/vn.molisa.hanoi"
expect_contains "$T/err" "NOT_FOUND"
expect_exit 5 "$CASENET" read 00000000000000000000000000000000 --home "$N/home/vn.police.a05"

step "ack: delivered, then accepted; the sender sees both receipts"
expect_exit 0 "$CASENET" ack "$id" --home "$N/home/vn.police.a05"
expect_contains "$T/out" "delivered"
expect_exit 0 "$CASENET" ack "$id" --status accepted --home "$N/home/vn.police.a05"
expect_exit 0 "$CASENET" inbox --home "$N/home/vn.police.a05" --json
jq -e --arg id "$id" 'select(.id == $id) | .state == "accepted"' "$T/out" >/dev/null ||
  fail "the message is not accepted"
expect_exit 0 "$CASENET" inbox --home "$N/home/vn.hotline111" --json
jq -se --arg id "$id" '[.[] | select(.kind == "receipt" and .in_reply_to == $id
  and .from == "vn.police.a05" and .receipt_verified)] | map(.status) | sort ==
  ["accepted", "delivered"]' "$T/out" >/dev/null || fail "the sender's inbox lacks the receipts"
expect_exit 0 "$CASENET" inbox --home "$N/home/vn.hotline111" --wide
expect_contains "$T/out" "re $id accepted"

step "inbox pages through everything; --limit stops early"
for i in $(seq 1 102); do
  echo '{"infoRequest": {"caseId": "DRILL-'"$i"'", "questions": ["status?"]}}' |
    "$CASENET" send --home "$N/home/vn.hotline111" --to vn.molisa.hanoi --kind info-request \
      --urgency info --status exercise >/dev/null 2>"$T/err" || fail "send $i"
done
expect_exit 0 "$CASENET" inbox --home "$N/home/vn.molisa.hanoi" --json
[ "$(wc -l < "$T/out")" = 102 ] || fail "inbox --json did not page through 102 rows"
jq -e 'select(.message_status == "exercise")' "$T/out" >/dev/null || fail "exercise not shown"
expect_exit 0 "$CASENET" inbox --home "$N/home/vn.molisa.hanoi" --json --limit 5
[ "$(wc -l < "$T/out")" = 5 ] || fail "--limit 5"
expect_exit 0 "$CASENET" inbox --home "$N/home/vn.molisa.hanoi"
expect_contains "$T/out" "[exercise]"

step "directory publish and pull; a revoked member is refused"
"$CASENET" admin revoke --authority "$N/authority/authority.key" --directory "$N/directory" \
  --member vn.molisa.hanoi >/dev/null
expect_exit 0 "$CASENET" directory publish "$N/directory" --home "$N/home/vn.coord"
expect_contains "$T/out" "version 6"
expect_exit 3 "$CASENET" directory publish "$N/directory.v5" --home "$N/home/vn.coord"
expect_contains "$T/err" "ROLLBACK"
expect_exit 0 "$CASENET" directory pull --home "$N/home/vn.police.a05"
expect_contains "$T/out" "version 6"
rc=0
"$CASENET" inbox --home "$N/home/vn.molisa.hanoi" --timeout 2 >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 3 ] || [ "$rc" = 6 ] || fail "a revoked member got exit $rc, not 3 or 6"

step "broker unreachable: exit 6"
stop_broker
echo '{"referral": {"caseId": "X", "urgency": "URGENCY_STANDARD", "summary": "x",
  "harmCategories": ["HARM_CATEGORY_OTHER"],
  "legalBasis": {"kind": "LEGAL_BASIS_KIND_STATUTORY_DUTY"}}}' > "$T/small.json"
expect_exit 6 "$CASENET" send --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind referral --timeout 1 < "$T/small.json"
[ -s "$T/out" ] && fail "send printed a message id without a receipt"
expect_exit 6 "$CASENET" inbox --home "$N/home/vn.police.a05" --timeout 1
echo "PASS"
