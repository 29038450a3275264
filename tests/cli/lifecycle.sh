#!/usr/bin/env bash
# lifecycle.sh - the referral lifecycle through the CLI against a real
# casenetd with 4 s / 8 s standard and emergency deadlines: group addressing (@police is
# expanded into explicit recipients), `status` (timeline, signers, verified
# receipts, who may see it), a note as a STATUS reply, `cases`, escalation
# notices readable with `read`, `overdue` (coordinators only, drills apart),
# refused transitions, and a takedown request / result under the default
# urgent-takedown policy (accept within 24 h).
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || fail "jq is required (Debian package jq)"
# shellcheck source=tests/cli/broker.sh
source "$(dirname "$0")/broker.sh"
N=$T/net
broker_args=(--policy "$T/policy.ini")

# hex_to_b64 HEX: the base64 of the bytes HEX spells (how payload JSON shows bytes).
hex_to_b64() {
  # shellcheck disable=SC2059 # the format is the bytes
  printf "$(sed 's/../\\x&/g' <<<"$1")" | base64
}

# wait_inbox HOME KIND REPLY_TO COUNT: waits (20 s at most) until HOME's inbox
# holds COUNT rows of KIND answering REPLY_TO.
wait_inbox() {
  local home=$1 kind=$2 re=$3 want=$4 n=0
  for _ in $(seq 1 100); do
    n=$("$CASENET" inbox --home "$home" --json | jq -s --arg k "$kind" --arg re "$re" \
      '[.[] | select(.kind == $k and .in_reply_to == $re)] | length')
    [ "$n" -ge "$want" ] && { echo "$n"; return 0; }
    sleep 0.2
  done
  echo "$n"
}

# wait_deadline_pass: waits until the broker has run a whole deadline pass
# that started after this call, so that nothing (more) firing means something.
# A sentinel referral of info urgency (no deliver/accept deadline), expiring
# in 1 s, must be dead-lettered to the hotline: its notice is committed with
# everything else that pass settled, and any deadline wrongly still open is
# due before the sentinel's. A bare sleep proved nothing on a loaded machine.
wait_deadline_pass() {
  local sid
  [ -f "$T/sentinel.json" ] ||
    sed 's/"URGENCY_EMERGENCY"/"URGENCY_INFO"/' "$T/referral.json" >"$T/sentinel.json"
  expect_exit 0 "$CASENET" send --home "$H/vn.hotline111" --to vn.police.a05 --kind referral \
    --expires-in 1s <"$T/sentinel.json"
  sid=$(head -n 1 "$T/out")
  [[ $sid =~ ^[0-9a-f]{32}$ ]] || fail "the sentinel was not sent"
  [ "$(wait_inbox "$H/vn.hotline111" dead-letter "$sid" 1)" = 1 ] ||
    fail "no deadline pass ran (the sentinel $sid was not dead-lettered)"
}

step "help"
for cmd in status cases overdue; do
  expect_exit 0 "$CASENET" $cmd --help
  expect_contains "$T/out" "usage: casenet $cmd"
  expect_contains "$T/out" "--json"
  expect_contains "$T/out" "example:"
done
expect_exit 2 "$CASENET" status not-an-id
expect_exit 2 "$CASENET" cases --kind nonsense

step "network: two police units in group police, a platform; 4 s / 8 s deadlines"
make_network "$N"
add_member() {
  local id=$1
  shift
  "$CASENET" keygen "$id" --out "$N/keys" >/dev/null
  "$CASENET" admin add --authority "$N/authority/authority.key" --directory "$N/directory" \
    --member "$N/keys/$id.pub" "$@" >/dev/null
  "$CASENET" init --home "$N/home/$id" --key "$N/keys/$id.key" \
    --authority "$N/authority/authority.pub" --directory "$N/directory" >/dev/null
}
add_member vn.police.pc02 --role responder --group police --name "Police PC02"
add_member vn.platform.x --role platform --group platforms --name "Example platform"
cat >"$T/policy.ini" <<'INI'
; short deadlines for the test; urgent-takedown keeps its default (1h / 24h)
[standard]
deliver_within = 4s
accept_within = 8s
[emergency]
deliver_within = 4s
accept_within = 8s
INI
expect_exit 0 "$CASENETD" --check-config --data "$N/data" --listen tcp://127.0.0.1:1 \
  --key "$N/keys/vn.broker.key" --directory "$N/directory" \
  --authority "$N/authority/authority.pub" --policy "$T/policy.ini"
expect_contains "$T/out" "urgent-takedown  deliver_within = 1h     accept_within = 24h"
expect_contains "$T/out" "standard         deliver_within = 4s     accept_within = 8s"
# The shipped example is the defaults.
expect_exit 0 "$CASENETD" --check-config --data "$N/data" --listen tcp://127.0.0.1:1 \
  --key "$N/keys/vn.broker.key" --directory "$N/directory" \
  --authority "$N/authority/authority.pub" --policy "$(dirname "$0")/../../deploy/policy.ini"
expect_contains "$T/out" "emergency        deliver_within = 15m    accept_within = 1h"
expect_contains "$T/out" "urgent-takedown  deliver_within = 1h     accept_within = 24h"
expect_contains "$T/out" "standard         deliver_within = 24h    accept_within = 48h"
expect_contains "$T/out" "info             deliver_within = none   accept_within = none"
printf '[standard]\ndeliver_within = soon\n' >"$T/bad.ini"
expect_exit 1 "$CASENETD" --check-config --data "$N/data" --listen tcp://127.0.0.1:1 \
  --key "$N/keys/vn.broker.key" --directory "$N/directory" \
  --authority "$N/authority/authority.pub" --policy "$T/bad.ini"
expect_contains "$T/err" "bad.ini:2"
start_broker
for id in vn.hotline111 vn.police.a05 vn.police.pc02 vn.molisa.hanoi vn.coord vn.platform.x; do
  if grep -q '^broker=' "$N/home/$id/state"; then
    sed -i "s|^broker=.*|broker=$BROKER_ENDPOINT|" "$N/home/$id/state"
  else
    echo "broker=$BROKER_ENDPOINT" >>"$N/home/$id/state"
  fi
  "$CASENET" directory pull --home "$N/home/$id" >/dev/null || fail "directory pull $id"
done
H=$N/home
write_referral "$T/referral.json"

step "send to @police: the header names both units; a05 takes it at once"
expect_exit 0 "$CASENET" send --home "$H/vn.hotline111" --to @police --kind referral \
  --urgency emergency < "$T/referral.json"
id=$(head -n 1 "$T/out")
[[ $id =~ ^[0-9a-f]{32}$ ]] || fail "send printed '$id'"
expect_exit 0 "$CASENET" read "$id" --home "$H/vn.police.a05"
expect_exit 0 "$CASENET" ack "$id" --home "$H/vn.police.a05"
expect_exit 0 "$CASENET" ack "$id" --status accepted --home "$H/vn.police.a05"
expect_exit 0 "$CASENET" status "$id" --json --home "$H/vn.hotline111"
jq -e '[.recipients[].recipient] == ["vn.police.a05", "vn.police.pc02"]' "$T/out" >/dev/null ||
  fail "@police did not expand into both units"
jq -e '.broker_receipt_verified and .from == "vn.hotline111" and .urgency == "emergency"
  and .recipients[0].steps[0].state == "queued"' "$T/out" >/dev/null || fail "status header"
expect_exit 0 "$CASENET" read "$id" --home "$H/vn.police.pc02"

step "the timeline shows who signed each step"
expect_exit 0 "$CASENET" status "$id" --json --home "$H/vn.hotline111"
jq -e '.recipients[0] | .state == "accepted" and ([.steps[].state] ==
  ["queued", "fetched", "delivered", "accepted"]) and .steps[2].signed_by == "vn.police.a05"
  and .steps[2].receipt_verified and .steps[3].receipt_verified
  and (.deadlines | length) == 2' "$T/out" >/dev/null || fail "a05's timeline"
expect_exit 0 "$CASENET" status "$id" --home "$H/vn.hotline111"
expect_contains "$T/out" "signed by vn.police.a05 (verified)"
expect_contains "$T/out" "receipt signed by the broker"
expect_exit 0 "$CASENET" status "$id" --json --home "$H/vn.police.a05"
jq -e '[.recipients[].recipient] == ["vn.police.a05"]' "$T/out" >/dev/null ||
  fail "a recipient sees more than its own row"
expect_exit 0 "$CASENET" status "$id" --json --home "$H/vn.coord"
jq -e '.recipients | length == 2' "$T/out" >/dev/null || fail "the coordinator's view"
expect_exit 5 "$CASENET" status "$id" --home "$H/vn.molisa.hanoi"
expect_contains "$T/err" "NOT_FOUND"

step "refused transitions"
expect_exit 5 "$CASENET" ack "$id" --status completed --outcome resolved --home "$H/vn.police.pc02"
expect_contains "$T/err" "CONFLICT"
expect_exit 2 "$CASENET" ack "$id" --status completed --home "$H/vn.police.a05"
expect_exit 5 "$CASENET" ack "$id" --home "$H/vn.molisa.hanoi"
expect_contains "$T/err" "NOT_FOUND"

step "a note travels encrypted as a STATUS reply"
echo '{"status": {"caseId": "HL111-2025-000417", "status": "CASE_STATUS_ACCEPTED",
  "note": "Officer assigned; family contacted."}}' >"$T/note.json"
expect_exit 0 "$CASENET" send --home "$H/vn.police.a05" --to vn.hotline111 --kind status \
  --urgency info --reply-to "$id" < "$T/note.json"
note=$(head -n 1 "$T/out")
expect_exit 0 "$CASENET" inbox --home "$H/vn.hotline111" --json
jq -e --arg n "$note" --arg id "$id" 'select(.id == $n) | .kind == "status"
  and .in_reply_to == $id and .from == "vn.police.a05"' "$T/out" >/dev/null ||
  fail "the note is not in the sender's inbox as a reply"
expect_exit 0 "$CASENET" read "$note" --home "$H/vn.hotline111"
jq -e '.status.note == "Officer assigned; family contacted."' "$T/out" >/dev/null ||
  fail "the note does not read back"
expect_not_contains "$N/data/casenet.db" "Officer assigned"

step "cases: the sender's referrals and where each stands"
expect_exit 0 "$CASENET" cases --json --home "$H/vn.hotline111"
jq -se --arg id "$id" '[.[] | select(.id == $id)] | length == 1 and (.[0].recipients | map(.state))
  == ["accepted", "fetched"]' "$T/out" >/dev/null || fail "cases --json"
expect_exit 0 "$CASENET" cases --open --kind referral --home "$H/vn.hotline111" --wide
expect_contains "$T/out" "$id"
expect_exit 0 "$CASENET" cases --json --home "$H/vn.police.a05"
jq -se --arg n "$note" 'map(.id) == [$n]' "$T/out" >/dev/null || fail "a05's cases"

step "pc02 never answers: escalations to the sender and the coordinator, readable"
[ "$(wait_inbox "$H/vn.hotline111" escalation "$id" 2)" = 2 ] || fail "no escalations"
wait_deadline_pass
[ "$(wait_inbox "$H/vn.hotline111" escalation "$id" 2)" = 2 ] || fail "escalated more than once"
[ "$(wait_inbox "$H/vn.coord" escalation "$id" 2)" = 2 ] || fail "the coordinator was not told"
expect_exit 0 "$CASENET" inbox --home "$H/vn.police.pc02" --json
jq -se 'map(select(.kind == "escalation")) | length == 0' "$T/out" >/dev/null ||
  fail "the overdue recipient got the notice"
expect_exit 0 "$CASENET" inbox --home "$H/vn.hotline111" --json
notice=$(jq -r --arg id "$id" 'select(.kind == "escalation" and .in_reply_to == $id) | .id' \
  "$T/out" | head -n 1)
expect_exit 0 "$CASENET" read "$notice" --home "$H/vn.hotline111" --json-meta
jq -e --arg b64 "$(hex_to_b64 "$id")" '.notice.messageId == $b64
  and .notice.recipient == "vn.police.pc02" and .notice.sender == "vn.hotline111"
  and (.notice.reason | test("OVERDUE$"))' "$T/out" >/dev/null || fail "the notice's payload"
expect_contains "$T/err" "vn.broker"
expect_exit 0 "$CASENET" cases --home "$H/vn.hotline111" --wide
expect_contains "$T/out" "vn.police.pc02=fetched!"
expect_contains "$T/out" "vn.police.a05=accepted "
expect_exit 0 "$CASENET" status "$id" --json --home "$H/vn.hotline111"
jq -e '(.recipients[0].deadlines | map(.state) == ["met", "met"]) and
  (.recipients[1].deadlines | map(.state) == ["breached", "breached"]) and
  (.recipients[1].deadlines | all(.notice != null)) and .recipients[1].overdue' "$T/out" \
  >/dev/null || fail "a05 taken in time, pc02 breached"

step "overdue: coordinators only; exercise counted apart"
expect_exit 0 "$CASENET" send --home "$H/vn.hotline111" --to vn.police.a05 --kind referral \
  --status exercise < "$T/referral.json"
drill=$(head -n 1 "$T/out")
[ "$(wait_inbox "$H/vn.coord" escalation "$drill" 2)" = 2 ] || fail "the drill did not escalate"
expect_exit 0 "$CASENET" overdue --home "$H/vn.coord"
expect_contains "$T/out" "actual (2)"
expect_contains "$T/out" "exercise and test (2)"
expect_exit 0 "$CASENET" overdue --json --home "$H/vn.coord"
jq -se --arg id "$id" --arg d "$drill" '
  ([.[] | select(.id == $id and .message_status == "actual" and .recipient == "vn.police.pc02")]
   | map(.deadline) | sort == ["accept", "deliver"]) and
  ([.[] | select(.id == $d)] | all(.message_status == "exercise"))' "$T/out" >/dev/null ||
  fail "overdue --json"
expect_exit 5 "$CASENET" overdue --home "$H/vn.police.a05"
expect_contains "$T/err" "FORBIDDEN"
expect_exit 0 "$CASENET" ack "$id" --home "$H/vn.police.pc02"
expect_exit 0 "$CASENET" overdue --json --home "$H/vn.coord"
jq -se --arg id "$id" '[.[] | select(.id == $id)] | map(.deadline) == ["accept"]' "$T/out" \
  >/dev/null || fail "a late delivery still shows as overdue for delivery"

step "takedown: request to a platform (accept within 24 h), per-item result, completed"
cat >"$T/takedown.json" <<'JSON'
{"takedownRequest": {"caseId": "HL111-2025-000417",
  "items": [{"itemId": "1", "category": "HARM_CATEGORY_SEXTORTION",
             "locator": {"platform": "example-social", "accountId": "acct-demo-5521",
                         "url": "https://social.example/u/acct-demo-5521"}},
            {"itemId": "2", "category": "HARM_CATEGORY_SEXTORTION",
             "locator": {"platform": "example-social", "url": "https://social.example/p/77"}}],
  "legalBasis": {"kind": "LEGAL_BASIS_KIND_CRIME_PREVENTION", "reference": "Decree 147/2024"}}}
JSON
expect_exit 0 "$CASENET" send --home "$H/vn.police.a05" --to @platforms --kind takedown-request \
  --urgency urgent-takedown < "$T/takedown.json"
tid=$(head -n 1 "$T/out")
expect_exit 0 "$CASENET" read "$tid" --home "$H/vn.platform.x"
jq -e '.takedownRequest.items | length == 2' "$T/out" >/dev/null || fail "takedown payload"
expect_exit 0 "$CASENET" ack "$tid" --home "$H/vn.platform.x"
expect_exit 0 "$CASENET" ack "$tid" --status accepted --home "$H/vn.platform.x"
expect_exit 0 "$CASENET" status "$tid" --json --home "$H/vn.police.a05"
jq -e 'def ms: sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601;
  (.received_at | ms) as $r | .recipients[0] | .recipient == "vn.platform.x"
  and .state == "accepted" and (.deadlines[] | select(.kind == "accept")
  | ((.due_at | ms) - $r) == 86400 and .state == "pending")
  and (.deadlines[] | select(.kind == "deliver") | ((.due_at | ms) - $r) == 3600)' \
  "$T/out" >/dev/null || fail "urgent-takedown deadlines are not 1 h / 24 h"
cat >"$T/result.json" <<'JSON'
{"takedownResult": {"caseId": "HL111-2025-000417",
  "results": [{"itemId": "1", "outcome": "TAKEDOWN_OUTCOME_ACCOUNT_LOCKED", "actedAtMs": "1735700300000"},
              {"itemId": "2", "outcome": "TAKEDOWN_OUTCOME_REMOVED", "actedAtMs": "1735700300000"}]}}
JSON
expect_exit 0 "$CASENET" send --home "$H/vn.platform.x" --to vn.police.a05 \
  --kind takedown-result --urgency info --reply-to "$tid" < "$T/result.json"
rid=$(head -n 1 "$T/out")
# Free text is refused as an outcome: a receipt is kept in clear forever.
expect_exit 2 "$CASENET" ack "$tid" --status completed --outcome "2 of 2 items acted on" \
  --home "$H/vn.platform.x"
expect_exit 0 "$CASENET" ack "$tid" --status completed --outcome resolved \
  --note "2 of 2 items acted on" --home "$H/vn.platform.x"
nid=$(sed -n 's/^note \([0-9a-f]\{32\}\) sealed to vn.police.a05$/\1/p' "$T/out")
[ -n "$nid" ] || fail "ack names no note"
expect_not_contains "$N/data/casenet.db" "items acted on"
expect_exit 0 "$CASENET" read "$nid" --home "$H/vn.police.a05"
jq -e '.status.note == "2 of 2 items acted on" and .status.status == "CASE_STATUS_CLOSED"' \
  "$T/out" >/dev/null || fail "the note does not read back"
expect_exit 0 "$CASENET" read "$rid" --home "$H/vn.police.a05"
jq -e '[.takedownResult.results[].outcome] ==
  ["TAKEDOWN_OUTCOME_ACCOUNT_LOCKED", "TAKEDOWN_OUTCOME_REMOVED"]' "$T/out" >/dev/null ||
  fail "takedown result"
expect_exit 0 "$CASENET" status "$tid" --json --home "$H/vn.police.a05"
jq -e --arg n "$nid" '.recipients[0].state == "completed" and
  .recipients[0].steps[-1].outcome == "resolved" and .recipients[0].steps[-1].note == $n' \
  "$T/out" >/dev/null || fail "takedown not completed"
expect_exit 0 "$CASENET" cases --open --json --home "$H/vn.police.a05"
jq -se --arg t "$tid" 'map(.id) | index($t) == null' "$T/out" >/dev/null ||
  fail "a completed takedown is still open"
echo "PASS"
