#!/usr/bin/env bash
# human.sh - human-facing output (issue 12, items 14 and 16): `casenet read`
# on a terminal shows ids in hex and times as dates (a broker notice's
# messageId and dueAtMs too), --json or a redirect keeps protobuf's canonical
# JSON; tables fit 100 columns (--wide shows every column), show the
# sender's display name, and a unique id prefix is accepted where a message
# id is typed (an ambiguous one lists the candidates).
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/cli/broker.sh
source "$(dirname "$0")/broker.sh"
command -v jq >/dev/null || fail "jq is required (Debian package jq)"
broker_up "$T/net"
HL=$N/home/vn.hotline111
POL=$N/home/vn.police.a05
write_referral "$T/referral.json"

# on_tty CMD...: runs CMD with a terminal as stdout (script(1)); output in $T/out.
on_tty() {
  local q
  printf -v q '%q ' "$@"
  script -qec "$q" /dev/null </dev/null | tr -d '\r' >"$T/out"
}
# max_width FILE: the widest line, in characters.
max_width() { LC_ALL=C.UTF-8 awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$1"; }

step "item 14: a dead-letter notice read on a terminal shows hex ids and dates"
id=$("$CASENET" send --home "$HL" --to vn.police.a05 --kind referral --expires-in 1s \
  <"$T/referral.json" 2>/dev/null)
notice=
for _ in $(seq 1 100); do
  notice=$("$CASENET" inbox --home "$HL" --json |
    jq -r --arg id "$id" 'select(.kind == "dead-letter" and .in_reply_to == $id) | .id')
  [ -n "$notice" ] && break
  sleep 0.2
done
[ -n "$notice" ] || fail "no dead-letter notice"
on_tty "$CASENET" read "$notice" --home "$HL"
expect_contains "$T/out" "\"messageId\": \"$id\""
grep -qE '"dueAtMs": "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-9:]{8}(\.[0-9]{3})?Z"' "$T/out" ||
  fail "dueAtMs is not a date"
grep -qE '"[a-zA-Z]+Ms": "[0-9]+"' "$T/out" && fail "an epoch time is left on the terminal"
on_tty "$CASENET" read "$notice" --home "$HL" --json
grep -qE '"dueAtMs": "[0-9]{13}"' "$T/out" || fail "--json is not canonical"
expect_exit 0 "$CASENET" read "$notice" --home "$HL"
jq -e '.notice.dueAtMs | test("^[0-9]+$")' "$T/out" >/dev/null ||
  fail "redirected output is not canonical JSON"

step "item 16: tables fit 100 columns, show display names; --wide shows all"
for s in exercise test actual; do
  "$CASENET" send --home "$HL" --to vn.police.a05,vn.molisa.hanoi --kind referral \
    --status "$s" <"$T/referral.json" >/dev/null
done
expect_exit 0 "$CASENET" inbox --home "$POL"
[ "$(max_width "$T/out")" -le 100 ] || fail "inbox is $(max_width "$T/out") columns wide"
expect_contains "$T/out" "Child helpline"
expect_exit 0 "$CASENET" inbox --home "$POL" --wide
expect_contains "$T/out" "vn.hotline111 (Child helpline 111)"
"$CASENET" inbox --home "$POL" --json | jq -r 'select(.state != "dead") | .id' | head -n 1 >"$T/first"
expect_contains "$T/out" "$(cat "$T/first")"
expect_exit 0 "$CASENET" cases --home "$HL"
[ "$(max_width "$T/out")" -le 100 ] || fail "cases is $(max_width "$T/out") columns wide"
expect_contains "$T/out" "vn.molisa.hanoi="
expect_exit 0 "$CASENET" audit log --home "$N/home/vn.coord"
[ "$(max_width "$T/out")" -le 100 ] || fail "audit log is $(max_width "$T/out") columns wide"
expect_exit 0 "$CASENET" audit log --home "$N/home/vn.coord" --wide
expect_contains "$T/out" "TIME (LOCAL)"

step "item 16: a unique id prefix is accepted, an ambiguous one lists candidates"
full=$(cat "$T/first")
expect_exit 0 "$CASENET" read "${full:0:8}" --home "$POL" --json
jq -e '.referral.caseId' "$T/out" >/dev/null || fail "read by prefix"
expect_exit 0 "$CASENET" status "${full:0:6}" --home "$HL"
expect_contains "$T/out" "message $full"
expect_exit 0 "$CASENET" ack "${full:0:10}" --home "$POL"
expect_contains "$T/out" "$full"
expect_exit 0 "$CASENET" audit log --message "${full:0:7}" --home "$HL" --json
jq -e -s --arg id "$full" 'length > 0 and all(.message_id == $id)' "$T/out" >/dev/null ||
  fail "audit log --message by prefix"
# Sixteen hex digits: among 17 rows two share a first digit (pigeonhole).
amb=
for _ in $(seq 1 17); do
  amb=$("$CASENET" inbox --home "$POL" --json | jq -r '.id[0:1]' | sort | uniq -d | head -n 1)
  [ -n "$amb" ] && break
  "$CASENET" send --home "$HL" --to vn.police.a05 --kind referral <"$T/referral.json" \
    >/dev/null 2>&1
done
[ -n "$amb" ] || fail "no two ids share a first digit"
expect_exit 2 "$CASENET" read "$amb" --home "$POL"
expect_contains "$T/err" "id prefix $amb is ambiguous"
n=$(grep -cE "^  $amb[0-9a-f]{31}$" "$T/err") || true
[ "$n" -ge 2 ] || fail "the candidates are not listed"
expect_exit 5 "$CASENET" read ffffffffffffffffffffffffffff --home "$POL"
expect_contains "$T/err" "no message id starting with"
expect_exit 2 "$CASENET" read zz12 --home "$POL"
echo "human.sh: all passed"
