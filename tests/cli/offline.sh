#!/usr/bin/env bash
# offline.sh - the CLI without a broker: keygen, the authority's directory
# (init, add, show, revoke for good, renew and the warning before expiry, a
# named network), member homes, seal -> open round trip, and every
# refusal a case worker may meet: a tampered message, a message for someone
# else, a world-readable key, an older directory, bad payload JSON.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || fail "jq is required (Debian package jq)"
N=$T/net

step "keygen"
expect_exit 0 "$CASENET" keygen vn.test.one --out "$T/k"
[ "$(stat -c %a "$T/k/vn.test.one.key")" = 600 ] || fail "secret key is not 0600"
[ -s "$T/k/vn.test.one.pub" ] || fail "no public key file"
expect_exit 1 "$CASENET" keygen vn.test.one --out "$T/k"
expect_contains "$T/err" "refusing to overwrite"

step "admin init, add, show"
make_network "$N"
[ "$(stat -c %a "$N/authority/authority.key")" = 600 ] || fail "authority key is not 0600"
expect_exit 1 "$CASENET" admin init --out "$N/authority"
expect_exit 0 "$CASENET" admin show "$N/directory" --authority "$N/authority/authority.pub"
expect_contains "$T/out" "signature verified"
expect_contains "$T/out" "directory version 5"
for id in vn.broker vn.hotline111 vn.police.a05 vn.molisa.hanoi vn.coord; do
  expect_contains "$T/out" "$id"
done
expect_contains "$T/out" "Cyber police A05"
expect_contains "$T/out" "takedown-requester"
expect_contains "$T/out" "UTC"
expect_exit 0 "$CASENET" admin show "$N/directory"
expect_contains "$T/out" "signature NOT verified (no --authority given)"
expect_exit 0 "$CASENET" admin show "$N/directory" --authority "$N/authority/authority.pub" --json
jq -e '.version == 5 and (.members | length) == 5 and .signature == "signature verified"' \
  "$T/out" >/dev/null || fail "admin show --json"
jq -e '.members[] | select(.id == "vn.police.a05") | .status == "active" and
       (.groups | index("police")) != null and (.keys | length) == 3' "$T/out" >/dev/null ||
  fail "admin show --json: police member"

step "names from the directory cannot drive the terminal"
# A display name that sets the window title, clears the screen and hides
# what follows: shown escaped, never as raw control characters.
cp "$N/directory" "$T/dir.esc"
expect_exit 0 "$CASENET" admin add --authority "$N/authority/authority.key" \
  --directory "$T/dir.esc" --member "$T/k/vn.test.one.pub" --role intake \
  --name $'Police\e]0;pwned\a\e[2J\e[8m hidden\xc2\x9b'
expect_exit 0 "$CASENET" admin show "$T/dir.esc" --authority "$N/authority/authority.pub"
if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$T/out"; then
  fail "admin show printed a control character"
fi
if LC_ALL=C grep -q $'\xc2[\x80-\x9f]' "$T/out"; then fail "admin show printed a C1 control"; fi
expect_contains "$T/out" 'Police\x1b]0;pwned\x07\x1b[2J\x1b[8m hidden\xc2\x9b'

step "a directory signed by another authority does not verify"
"$CASENET" admin init --out "$T/rogue" >/dev/null
expect_exit 3 "$CASENET" admin show "$N/directory" --authority "$T/rogue/authority.pub"
expect_contains "$T/err" "BAD_SIGNATURE"
expect_exit 3 "$CASENET" admin add --authority "$T/rogue/authority.key" \
  --directory "$N/directory" --member "$T/k/vn.test.one.pub" --role intake
cmp -s "$N/directory" "$N/directory.v5" || fail "a refused add changed the directory"

step "init refuses an existing home, and a tampered directory"
expect_exit 1 "$CASENET" init --home "$N/home/vn.hotline111" --key "$N/keys/vn.hotline111.key" \
  --authority "$N/authority/authority.pub" --directory "$N/directory"
expect_contains "$T/err" "--force"
cp "$N/directory" "$T/bad-directory"
flip_byte "$T/bad-directory" 40
expect_exit 3 "$CASENET" init --home "$T/h2" --key "$N/keys/vn.hotline111.key" \
  --authority "$N/authority/authority.pub" --directory "$T/bad-directory"
[ "$(stat -c %a "$N/home/vn.police.a05")" = 700 ] || fail "home is not 0700"
[ "$(stat -c %a "$N/home/vn.police.a05/member.key")" = 600 ] || fail "member.key is not 0600"
expect_exit 0 "$CASENET" directory show --home "$N/home/vn.police.a05"
expect_contains "$T/out" "signature verified"

step "seal by the hotline, open by the police: the payload comes back unchanged"
write_referral "$T/referral.json"
expect_exit 0 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind referral --urgency emergency < "$T/referral.json"
mv "$T/out" "$T/msg"
id=$(grep -oE '[0-9a-f]{32}' "$T/err" | head -1)
[ -n "$id" ] || fail "seal did not report the message id"
expect_exit 0 "$CASENET" open --home "$N/home/vn.police.a05" < "$T/msg"
cp "$T/out" "$T/opened.json"
diff <(jq -S . "$T/referral.json") <(jq -S . "$T/opened.json") >&2 ||
  fail "the opened payload differs from what was sealed"
expect_contains "$T/err" "vn.hotline111"
expect_contains "$T/err" "referral"
expect_contains "$T/err" "emergency"
expect_contains "$T/err" "$id"
# the CLI's canonical form is a fixed point
expect_exit 0 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind referral < "$T/opened.json"
mv "$T/out" "$T/msg2"
expect_exit 0 "$CASENET" open --home "$N/home/vn.police.a05" < "$T/msg2"
cmp -s "$T/out" "$T/opened.json" || fail "canonical JSON is not a fixed point"
expect_exit 0 "$CASENET" open --home "$N/home/vn.police.a05" --json-meta < "$T/msg"
tail -n 1 "$T/err" | jq -e --arg id "$id" '.id == $id and .from == "vn.hotline111" and
  .kind == "referral" and .urgency == "emergency" and .verified' >/dev/null ||
  fail "open --json-meta"
grep -qF "fictitious test case" "$T/msg" && fail "the payload text is visible in the sealed message"

step "several recipients, by list and by group"
expect_exit 0 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.police.a05,@social-services \
  --kind referral --status exercise < "$T/referral.json"
mv "$T/out" "$T/msg3"
for id2 in vn.police.a05 vn.molisa.hanoi; do
  expect_exit 0 "$CASENET" open --home "$N/home/$id2" < "$T/msg3"
  expect_contains "$T/err" "exercise"
done

step "one urgency: the payload's; --urgency may repeat it, never contradict it"
expect_exit 0 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.police.a05 --kind referral \
  < "$T/referral.json"
mv "$T/out" "$T/msg4"
expect_exit 0 "$CASENET" open --json-meta --home "$N/home/vn.police.a05" < "$T/msg4"
jq -e '.urgency == "emergency"' "$T/err" >/dev/null || fail "the urgency is not the payload's"
expect_exit 1 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.police.a05 --kind referral \
  --urgency standard < "$T/referral.json"
expect_contains "$T/err" "--urgency standard contradicts the payload's urgency emergency"

step "required fields: every missing one is named"
echo '{"referral": {"summary": "only a summary"}}' > "$T/thin.json"
expect_exit 1 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.police.a05 --kind referral \
  < "$T/thin.json"
expect_contains "$T/err" "the referral lacks caseId, urgency, harmCategories, legalBasis.kind"
echo '{"takedownRequest": {"caseId": "X", "items": [{"itemId": "1"}],
  "legalBasis": {"kind": "LEGAL_BASIS_KIND_STATUTORY_DUTY"}}}' > "$T/thin.json"
expect_exit 1 "$CASENET" seal --home "$N/home/vn.police.a05" --to vn.molisa.hanoi \
  --kind takedown-request < "$T/thin.json"
expect_contains "$T/err" "the takedownRequest lacks items[0].locator.url"

step "the role matrix: who may send which kind to whom"
expect_exit 1 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.coord --kind referral \
  < "$T/referral.json"
expect_contains "$T/err" "vn.coord is coordinator (FORBIDDEN)"
expect_exit 1 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.broker --kind referral \
  < "$T/referral.json"
expect_contains "$T/err" "vn.broker is the broker: no member sends it messages"

step "a tampered message is refused (exit 3) and prints no payload"
size=$(stat -c %s "$T/msg")
for off in -1 -40 $((size / 2)) 30 12 3; do
  cp "$T/msg" "$T/tampered"
  flip_byte "$T/tampered" "$off"
  expect_exit 3 "$CASENET" open --home "$N/home/vn.police.a05" < "$T/tampered"
  [ -s "$T/out" ] && fail "a tampered message printed a payload (offset $off)"
done
head -c $((size - 10)) "$T/msg" > "$T/truncated"
expect_exit 3 "$CASENET" open --home "$N/home/vn.police.a05" < "$T/truncated"

step "a member that is not a recipient cannot open it"
expect_exit 3 "$CASENET" open --home "$N/home/vn.molisa.hanoi" < "$T/msg"
expect_contains "$T/err" "not addressed to vn.molisa.hanoi"
expect_contains "$T/err" "NOT_RECIPIENT"
[ -s "$T/out" ] && fail "a non-recipient got a payload"

step "a secret key readable by others is refused"
chmod 644 "$N/home/vn.police.a05/member.key"
expect_exit 3 "$CASENET" open --home "$N/home/vn.police.a05" < "$T/msg"
expect_contains "$T/err" "permissions"
expect_contains "$T/err" "PERMISSIONS"
chmod 600 "$N/home/vn.police.a05/member.key"
chmod 755 "$N/home/vn.police.a05"
expect_exit 3 "$CASENET" open --home "$N/home/vn.police.a05" < "$T/msg"
expect_contains "$T/err" "chmod 700"
chmod 700 "$N/home/vn.police.a05"
chmod 644 "$N/keys/vn.coord.key"
expect_exit 3 "$CASENET" init --home "$T/h3" --key "$N/keys/vn.coord.key" \
  --authority "$N/authority/authority.pub" --directory "$N/directory"
expect_contains "$T/err" "permissions"
[ -e "$T/h3" ] && fail "init created a home from a world-readable key"

step "payload JSON errors name the field"
echo '{"referral": {"caseId": "X", "bogusField": 1}}' > "$T/bad1.json"
expect_exit 1 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind referral < "$T/bad1.json"
expect_contains "$T/err" "bogusField"
echo '{"referral": {"children": [{"ageYears": "fourteen"}]}}' > "$T/bad2.json"
expect_exit 1 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind referral < "$T/bad2.json"
expect_contains "$T/err" "ageYears"
echo '{"referral": {"summary": "unterminated' > "$T/bad3.json"
expect_exit 1 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind referral < "$T/bad3.json"
expect_contains "$T/err" "invalid payload JSON"
expect_exit 1 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind status < "$T/referral.json"

step "a member cannot address itself"
expect_exit 1 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.police.a05,vn.hotline111 \
  --kind referral < "$T/referral.json"
expect_contains "$T/err" "cannot address a message to itself (vn.hotline111)"
expect_contains "$T/err" "FORBIDDEN"

step "unknown recipients are named"
expect_exit 1 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.police.x \
  --kind referral < "$T/referral.json"
expect_contains "$T/err" "recipient vn.police.x is not in the directory (UNKNOWN_RECIPIENT)"
expect_contains "$T/err" "casenet directory pull"

step "revocation, directory update, rollback"
expect_exit 0 "$CASENET" admin revoke --authority "$N/authority/authority.key" \
  --directory "$N/directory" --member vn.molisa.hanoi
expect_contains "$T/out" "version 6"
cp "$N/directory" "$N/directory.v6"
expect_exit 0 "$CASENET" admin show "$N/directory" --json
jq -e '.members[] | select(.id == "vn.molisa.hanoi") | .status == "revoked"' "$T/out" \
  >/dev/null || fail "revoked member not shown as revoked"
expect_exit 1 "$CASENET" admin revoke --authority "$N/authority/authority.key" \
  --directory "$N/directory" --member vn.nobody
cmp -s "$N/directory" "$N/directory.v6" || fail "a refused revoke changed the directory"
expect_exit 0 "$CASENET" directory update "$N/directory.v6" --home "$N/home/vn.hotline111"
expect_contains "$T/out" "version 6"
expect_exit 1 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.molisa.hanoi \
  --kind referral < "$T/referral.json"
expect_contains "$T/err" "revoked"
expect_exit 3 "$CASENET" directory update "$N/directory.v5" --home "$N/home/vn.hotline111"
expect_contains "$T/err" "ROLLBACK"
expect_exit 0 "$CASENET" directory show --home "$N/home/vn.hotline111"
expect_contains "$T/out" "directory version 6"
# a rolled-back file put in place by hand is refused on load
cp "$N/directory.v5" "$N/home/vn.hotline111/directory"
expect_exit 3 "$CASENET" seal --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind referral < "$T/referral.json"
expect_contains "$T/err" "ROLLBACK"
cp "$N/directory.v6" "$N/home/vn.hotline111/directory"

step "revocation is final; the broker's entry is never suspended or revoked"
AK=$N/authority/authority.key
for verb in reinstate suspend; do
  expect_exit 1 "$CASENET" admin $verb --authority "$AK" --directory "$N/directory" \
    --member vn.molisa.hanoi
  expect_contains "$T/err" "revocation is final"
  expect_contains "$T/err" "new id"
done
expect_exit 1 "$CASENET" admin add --authority "$AK" --directory "$N/directory" \
  --member "$N/keys/vn.molisa.hanoi.pub" --role responder
expect_contains "$T/err" "revocation is final"
for verb in suspend revoke; do
  expect_exit 1 "$CASENET" admin $verb --authority "$AK" --directory "$N/directory" \
    --member vn.broker
  expect_contains "$T/err" "network's broker"
done
cmp -s "$N/directory" "$N/directory.v6" || fail "a refused change changed the directory"
# suspension is not final
expect_exit 0 "$CASENET" admin suspend --authority "$AK" --directory "$N/directory" \
  --member vn.coord
expect_exit 0 "$CASENET" admin reinstate --authority "$AK" --directory "$N/directory" \
  --member vn.coord
expect_contains "$T/out" "version 8"
# A fork of version 5 renewed past version 6 (molisa still active in it) is
# refused by a home that holds version 6, whoever signed it.
cp "$N/directory.v5" "$T/fork"
expect_exit 0 "$CASENET" admin renew --authority "$AK" --directory "$T/fork"
expect_exit 0 "$CASENET" admin renew --authority "$AK" --directory "$T/fork"
expect_contains "$T/out" "version 7"
expect_exit 1 "$CASENET" directory update "$T/fork" --home "$N/home/vn.hotline111"
expect_contains "$T/err" "revocation is final"
expect_exit 0 "$CASENET" directory show --home "$N/home/vn.hotline111"
expect_contains "$T/out" "directory version 6"

step "admin renew, and the warning before expiry"
expect_exit 0 "$CASENET" admin renew --authority "$AK" --directory "$N/directory" --valid-days 3
expect_contains "$T/out" "renewed; version 9"
expect_exit 0 "$CASENET" admin show "$N/directory" --authority "$N/authority/authority.pub" --json
jq -e '.members[] | select(.id == "vn.molisa.hanoi") | .status == "revoked"' "$T/out" \
  >/dev/null || fail "renew changed a member"
expect_exit 0 "$CASENET" directory update "$N/directory" --home "$N/home/vn.police.a05"
expect_exit 0 "$CASENET" open --home "$N/home/vn.police.a05" < "$T/msg"
expect_contains "$T/err" "directory version 9 expires at"
expect_contains "$T/err" "casenet admin renew"
expect_exit 0 "$CASENET" admin renew --authority "$AK" --directory "$N/directory"
expect_exit 0 "$CASENET" directory update "$N/directory" --home "$N/home/vn.police.a05"
expect_exit 0 "$CASENET" open --home "$N/home/vn.police.a05" < "$T/msg"
expect_not_contains "$T/err" "expires at"

step "admin init --network names the network; later versions keep it"
expect_exit 2 "$CASENET" admin init --out "$T/net2" --network vn.cop
expect_exit 2 "$CASENET" admin init --out "$T/net2" --network "Not A Name" --directory "$T/d2"
expect_exit 0 "$CASENET" admin init --out "$T/net2" --network vn.cop --directory "$T/d2"
expect_contains "$T/out" "network vn.cop; version 1, 0 members"
expect_exit 0 "$CASENET" admin add --authority "$T/net2/authority.key" --directory "$T/d2" \
  --member "$N/keys/vn.coord.pub" --role coordinator
expect_exit 0 "$CASENET" admin show "$T/d2" --json
jq -e '.network == "vn.cop" and .version == 2' "$T/out" >/dev/null ||
  fail "the network name was not kept"

step "CASENET_HOME selects the home"
CASENET_HOME="$N/home/vn.police.a05" expect_exit 0 "$CASENET" open < "$T/msg"
expect_exit 3 "$CASENET" open --home "$N/home/vn.coord" < "$T/msg"
echo "PASS"
