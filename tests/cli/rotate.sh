#!/usr/bin/env bash
# rotate.sh - key rotation against a real casenetd on loopback, following
# docs/cli.md "Rotating a member's keys": a referral queued before the
# rotation still opens after `keygen --rotate`, re-admission and publication;
# a sender with the old directory gets STALE_DIRECTORY from the broker and
# `send` pulls the directory and reseals once by itself; `init --force`
# refuses to replace a keyring with one lacking its box keys; a keyring that
# lacks the box key a message is wrapped to says which key and whether it is
# a retired one (RETIRED_KEY_MISSING) or one it never held (UNKNOWN_KEY),
# never CRYPTO.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || fail "jq is required (Debian package jq)"
# shellcheck source=tests/cli/broker.sh
source "$(dirname "$0")/broker.sh"
N=$T/net
P=$N/home/vn.police.a05
H=$N/home/vn.hotline111
# box_key_id DIRECTORY MEMBER: the member's box key ids, oldest first.
box_key_ids() {
  "$CASENET" admin show "$1" --json |
    jq -r --arg m "$2" '.members[] | select(.id == $m) | .keys[] | select(.use == "box") | .key_id'
}

step "network, broker and a referral queued for the police"
broker_up "$N"
write_referral "$T/referral.json"
old_box=$(box_key_ids "$N/directory" vn.police.a05)
[[ $old_box =~ ^[0-9a-f]{16}$ ]] || fail "no box key id for vn.police.a05: '$old_box'"
expect_exit 0 "$CASENET" send --home "$H" --to vn.police.a05 --kind referral \
  --urgency emergency <"$T/referral.json"
queued=$(head -n 1 "$T/out")
# An offline copy sealed to the old key, for the missing-key checks below,
# and a note the police sign with their old signing key.
"$CASENET" seal --home "$H" --to vn.police.a05 --kind referral --urgency emergency \
  <"$T/referral.json" >"$T/old.msg"
echo '{"status": {"caseId": "HL111-2025-000417", "status": "CASE_STATUS_ACCEPTED"}}' |
  "$CASENET" seal --home "$P" --to vn.hotline111 --kind status --urgency info >"$T/note.msg"

step "member: keygen --rotate keeps the old box key and says so"
expect_exit 0 "$CASENET" keygen --rotate --home "$P" --out "$T/outbox"
expect_contains "$T/out" "kept: 1 old box key"
expect_contains "$T/out" "$T/outbox/vn.police.a05.pub"
expect_contains "$T/err" "cannot connect"
[ "$(stat -c %a "$P/member.key")" = 600 ] || fail "rotated keyring is not mode 600"
expect_exit 2 "$CASENET" keygen --rotate vn.police.a05 --home "$P"

step "authority: re-admission with the new public keys, published through a member"
expect_exit 0 "$CASENET" admin add --authority "$N/authority/authority.key" \
  --directory "$N/directory" --member "$T/outbox/vn.police.a05.pub" --role responder \
  --role takedown-requester --group police --name "Cyber police A05"
mapfile -t boxes < <(box_key_ids "$N/directory" vn.police.a05)
[ "${#boxes[@]}" = 2 ] || fail "the directory should list the old and the new box key: ${boxes[*]}"
new_box=${boxes[0]}
[ "$new_box" = "$old_box" ] && new_box=${boxes[1]}
expect_exit 0 "$CASENET" directory publish "$N/directory" --home "$N/home/vn.coord"

step "member: pull, then the referral queued before the rotation opens"
expect_exit 0 "$CASENET" directory pull --home "$P"
expect_exit 0 "$CASENET" read "$queued" --home "$P"
expect_contains "$T/out" "HL111-2025-000417"

step "the police's old signature still verifies, with the new directory too"
# (a copy of the hotline's home: the hotline itself stays on the old directory)
cp -a "$H" "$T/hotline-new"
expect_exit 0 "$CASENET" directory update "$N/directory" --home "$T/hotline-new"
expect_exit 0 "$CASENET" open --home "$T/hotline-new" <"$T/note.msg"
expect_contains "$T/out" "CASE_STATUS_ACCEPTED"

step "sender with the old directory: STALE_DIRECTORY, pulled and resealed once"
v_before=$(sed -n 's/^directory_version=//p' "$H/state")
expect_exit 0 "$CASENET" send --home "$H" --to vn.police.a05 --kind referral \
  --urgency emergency <"$T/referral.json"
resent=$(head -n 1 "$T/out")
[[ $resent =~ ^[0-9a-f]{32}$ ]] || fail "send printed '$resent', not a message id"
expect_contains "$T/err" "STALE_DIRECTORY"
expect_contains "$T/err" "sealed the message again"
v_after=$(sed -n 's/^directory_version=//p' "$H/state")
[ "$v_after" -gt "$v_before" ] || fail "the sender's home kept directory version $v_before"
expect_contains "$T/broker.log" "STALE_DIRECTORY"
expect_exit 0 "$CASENET" read "$resent" --home "$P"
expect_contains "$T/out" "HL111-2025-000417"

step "keyring replaced instead of rotated: the missing key is named, never CRYPTO"
"$CASENET" keygen vn.police.a05 --out "$T/wrongkeys" >/dev/null
expect_exit 0 "$CASENET" init --home "$T/wrong" --key "$T/wrongkeys/vn.police.a05.key" \
  --authority "$N/authority/authority.pub" --directory "$N/directory"
expect_exit 1 "$CASENET" open --home "$T/wrong" <"$T/old.msg"
expect_contains "$T/err" "RETIRED_KEY_MISSING"
expect_contains "$T/err" "box key $old_box, a retired key of vn.police.a05"
expect_not_contains "$T/err" "CRYPTO"
"$CASENET" seal --home "$H" --to vn.police.a05 --kind referral --urgency emergency \
  <"$T/referral.json" >"$T/new.msg"
expect_exit 1 "$CASENET" open --home "$T/wrong" <"$T/new.msg"
expect_contains "$T/err" "UNKNOWN_KEY"
expect_contains "$T/err" "box key $new_box, which the keyring of vn.police.a05 never held"
expect_not_contains "$T/err" "CRYPTO"
# init --force will not drop the rotated keyring's box keys.
expect_exit 1 "$CASENET" init --force --home "$P" --key "$T/wrongkeys/vn.police.a05.key" \
  --authority "$N/authority/authority.pub" --directory "$N/directory"
expect_contains "$T/err" "holds 2 box keys ($old_box, ...) that the new keyring lacks"
expect_contains "$T/err" "keygen --rotate"
# The rotated keyring opens both.
expect_exit 0 "$CASENET" open --home "$P" <"$T/old.msg"
expect_exit 0 "$CASENET" open --home "$P" <"$T/new.msg"

echo "PASS"
