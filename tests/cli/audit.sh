#!/usr/bin/env bash
# audit.sh - `casenet audit` against a real casenetd: a few thousand real
# events; `audit log` (table, JSON Lines, least visibility), `audit verify`
# live and from the remembered head, `audit prove`, `audit export` and
# `verify --file`; then the broker's database is tampered with by hand
# (sqlite3) and every change must be caught, live and offline, naming the
# event index or the head size: one byte of an event, the last event
# deleted, two events swapped, forged heads, a database replaced by another
# history (caught by the head the home remembers).
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
for tool in jq sqlite3; do
  command -v "$tool" >/dev/null || fail "$tool is required (Debian package $tool)"
done
# shellcheck source=tests/cli/broker.sh
source "$(dirname "$0")/broker.sh"
BIN=${CASENET_BINARY_DIR:-$(dirname "$CASENET")/../..}
TOOL=${CASENET_AUDIT_TOOL:-$BIN/tests/casenet_audit_tool}
[ -x "$TOOL" ] || fail "casenet_audit_tool not found at $TOOL"
EVENTS=${AUDIT_TEST_EVENTS:-3000}
N=$T/net
DB=$N/data/casenet.db
# The fill sends thousands of messages from one member to another in
# seconds: past the per-member Submit rate and per-sender inbox cap.
printf '[limits]\nsubmit_rate = 0\nmax_pair_backlog = 0\n' >"$T/casenetd.ini"
broker_args=(--config "$T/casenetd.ini")

# The size of the broker's latest head, as stored.
latest_head() { sqlite3 "$DB" "SELECT COALESCE(MAX(size), 0) FROM tree_heads"; }

# Waits until the broker has signed a head of at least $1 events.
wait_head() {
  local _
  for _ in $(seq 1 100); do
    [ "$(latest_head)" -ge "$1" ] && return 0
    sleep 0.2
  done
  fail "no head of size $1 after 20 s (latest $(latest_head))"
}

# names_place FILE K: FILE names event K itself ("event K:") or
# a head whose interval [A, S) holds K ("head of size S: root mismatch: an
# event in [A, S)").
names_place() {
  local f=$1 k=$2 a s
  grep -qE "event $k: " "$f" && return 0
  if [[ $(cat "$f") =~ head\ of\ size\ ([0-9]+):\ root\ mismatch:\ an\ event\ in\ \[([0-9]+),\ ([0-9]+)\) ]]; then
    s=${BASH_REMATCH[1]}
    a=${BASH_REMATCH[2]}
    [ "$a" -le "$k" ] && [ "$k" -lt "$s" ] && return 0
  fi
  fail "$(basename "$f") does not name event $k or an interval holding it"
}

# Restores the database saved after the clean stop, applies SQL, restarts.
tamper() {
  stop_broker
  rm -rf "$N/data"
  cp -a "$T/data.good" "$N/data"
  sqlite3 "$DB" "$1"
  start_broker "$BROKER_ENDPOINT"
}

# Both offline checks of one tampered log: an export from index 0, verified
# by a home that remembers nothing and by one that remembers the head.
verify_export_fails() {
  expect_exit 0 "$CASENET" audit export --home "$COORD"
  cp "$T/out" "$T/tampered.export"
  expect_exit 3 "$CASENET" audit verify --home "$FRESH" --file "$T/tampered.export"
  cp "$T/err" "$T/err.fresh"
  expect_exit 3 "$CASENET" audit verify --home "$COORD" --file "$T/tampered.export"
}

step "network, broker, $EVENTS events"
broker_up "$N"
COORD=$N/home/vn.coord
HOT=$N/home/vn.hotline111
POL=$N/home/vn.police.a05
MOL=$N/home/vn.molisa.hanoi
"$TOOL" fill "$HOT" vn.police.a05 "$EVENTS" 4 || fail "fill"
write_referral "$T/referral.json"
id=$("$CASENET" send --home "$HOT" --to vn.police.a05 --kind referral \
  <"$T/referral.json" 2>/dev/null) || fail "send"
"$CASENET" read "$id" --home "$POL" >/dev/null 2>&1 || fail "read"
wait_head $((EVENTS + 2))

step "audit log: table and JSON Lines; a coordinator sees all, a member its own"
expect_exit 0 "$CASENET" audit log --home "$COORD" --limit 5 --wide
expect_contains "$T/out" "TIME (LOCAL)"
expect_contains "$T/out" "TIME (UTC)"
expect_contains "$T/out" "directory-published"
expect_contains "$T/out" "broker-start"
expect_contains "$T/out" "vn.hotline111"
expect_exit 0 "$CASENET" audit log --home "$COORD" --json --kind submitted
[ "$(wc -l <"$T/out")" = $((EVENTS + 1)) ] || fail "expected $((EVENTS + 1)) submitted events"
jq -e -s 'all(.[]; .event == "submitted" and .actor == "vn.hotline111"
  and (.parties | index("vn.police.a05")) and (.message_id | length == 32)
  and (.time | test("Z$")) and .status == "ok")' "$T/out" >/dev/null ||
  fail "audit log --json rows"
expect_exit 0 "$CASENET" audit log --home "$COORD" --json --message "$id"
jq -e -s 'map(.event) == ["submitted", "fetched"]' "$T/out" >/dev/null ||
  fail "the message's events: submitted, fetched"
expect_exit 0 "$CASENET" audit log --home "$POL" --json --since 1d
[ "$(wc -l <"$T/out")" -ge $((EVENTS + 2)) ] || fail "the recipient sees its events"
jq -e -s 'all(.[]; .parties | index("vn.police.a05"))' "$T/out" >/dev/null ||
  fail "a member saw an event it is not party to"
expect_not_contains "$T/out" "broker-start"
expect_exit 0 "$CASENET" audit log --home "$MOL" --json
[ -s "$T/out" ] && fail "social services see events of others"
expect_exit 5 "$CASENET" audit log --home "$POL" --member vn.hotline111
expect_contains "$T/err" "FORBIDDEN"
expect_exit 0 "$CASENET" audit log --home "$COORD" --json --member vn.police.a05 --kind audit-queried
[ "$(wc -l <"$T/out")" -ge 1 ] || fail "the member's queries are audit events"
expect_exit 2 "$CASENET" audit log --home "$COORD" --kind nonsense

step "audit verify: live, then from the remembered head"
expect_exit 0 "$CASENET" audit verify --home "$COORD"
expect_contains "$T/out" "audit log verified"
[[ $(cat "$T/out") =~ trusted\ head:\ size\ ([0-9]+) ]] || fail "no trusted head"
S=${BASH_REMATCH[1]}
[ "$S" -ge $((EVENTS + 2)) ] || fail "trusted head $S too small"
[ -s "$COORD/audit.state" ] || fail "the head is not remembered"
expect_exit 0 "$CASENET" audit verify --home "$COORD"
expect_contains "$T/out" "(index $S to"
expect_exit 5 "$CASENET" audit verify --home "$POL"
expect_contains "$T/err" "FORBIDDEN"

step "audit prove: the sender's and the recipient's own events"
expect_exit 0 "$CASENET" audit prove --home "$HOT" "$id"
expect_contains "$T/out" "submitted"
expect_contains "$T/out" "included under the signed head of size"
expect_exit 0 "$CASENET" audit prove --home "$POL" "$id"
expect_contains "$T/out" "fetched"
expect_exit 5 "$CASENET" audit prove --home "$MOL" "$id"
submitted_at=$("$CASENET" audit log --home "$HOT" --json --message "$id" --kind submitted |
  jq -r .index)
expect_exit 0 "$CASENET" audit prove --home "$HOT" --index "$submitted_at"
expect_contains "$T/out" "event $submitted_at"

step "audit export and verify --file"
expect_exit 0 "$CASENET" audit export --home "$COORD"
cp "$T/out" "$T/good.export"
FRESH=$T/fresh
cp -a "$COORD" "$FRESH"
rm -f "$FRESH/audit.state"
expect_exit 0 "$CASENET" audit verify --home "$FRESH" --file "$T/good.export"
expect_exit 0 "$CASENET" audit verify --home "$COORD" --file "$T/good.export"
[[ $(cat "$T/out") =~ trusted\ head:\ size\ ([0-9]+) ]] || fail "no trusted head"
S=${BASH_REMATCH[1]} # the head the coordinator's home remembers from now on
rm -f "$FRESH/audit.state"
cp "$T/good.export" "$T/bad.export"
flip_byte "$T/bad.export" 2000
expect_exit 3 "$CASENET" audit verify --home "$FRESH" --file "$T/bad.export"
rm -f "$FRESH/audit.state"

step "stop cleanly: the last head covers BROKER_STOP"
stop_broker
L=$(sqlite3 "$DB" "SELECT MAX(idx) FROM audit")
[ "$(sqlite3 "$DB" "SELECT kind FROM audit WHERE idx = $L")" = 12 ] || fail "last event is not BROKER_STOP"
[ "$(latest_head)" = $((L + 1)) ] || fail "no head over BROKER_STOP (latest $(latest_head), log $((L + 1)))"
cp -a "$N/data" "$T/data.good"
# A head well before the remembered one: the event just before it is the
# one to change (that head's root then differs).
H1=$(sqlite3 "$DB" "SELECT MIN(size) FROM tree_heads WHERE size > 100")
K=$((H1 - 1))
[ "$K" -lt "$S" ] || fail "no head before the remembered one"

step "tamper: one byte of event $K"
tamper "UPDATE audit SET event = substr(event, 1, length(event) - 1) ||
  CASE WHEN substr(event, -1, 1) = X'00' THEN X'01' ELSE X'00' END WHERE idx = $K"
expect_exit 3 "$CASENET" audit verify --home "$COORD" --full
names_place "$T/err" "$K"
verify_export_fails
names_place "$T/err.fresh" "$K"
names_place "$T/err" "$K"

step "tamper: the last event ($L) deleted"
tamper "DELETE FROM audit_parties WHERE idx = $L; DELETE FROM audit WHERE idx = $L"
expect_exit 3 "$CASENET" audit verify --home "$COORD"
names_place "$T/err" "$L"
expect_contains "$T/err" "head of size $((L + 1))"
verify_export_fails
names_place "$T/err" "$L"

step "tamper: events 500 and 501 swapped"
tamper "CREATE TEMP TABLE sw AS SELECT idx, event FROM audit WHERE idx IN (500, 501);
  UPDATE audit SET event = (SELECT event FROM sw WHERE sw.idx = 1001 - audit.idx)
  WHERE idx IN (500, 501)"
expect_exit 3 "$CASENET" audit verify --home "$COORD" --full
expect_contains "$T/err" "event 500: its index field says 501"
verify_export_fails
expect_contains "$T/err" "event 500: its index field says 501"

step "tamper: the head of size $H1 re-signed with another key"
forged=$("$TOOL" forge-head "$(sqlite3 "$T/data.good/casenet.db" \
  "SELECT hex(checkpoint) FROM tree_heads WHERE size = $H1")") || fail "forge-head"
tamper "UPDATE tree_heads SET checkpoint = X'$forged' WHERE size = $H1"
expect_exit 3 "$CASENET" audit verify --home "$COORD" --full
expect_contains "$T/err" "head of size $H1: not signed by the broker key"
verify_export_fails
expect_contains "$T/err.fresh" "head of size $H1: not signed by the broker key"
expect_contains "$T/err" "head of size $H1: not signed by the broker key"

step "tamper: the latest head (size $((L + 1))) re-signed with another key"
forged=$("$TOOL" forge-head "$(sqlite3 "$T/data.good/casenet.db" \
  "SELECT hex(checkpoint) FROM tree_heads WHERE size = $((L + 1))")") || fail "forge-head"
tamper "UPDATE tree_heads SET checkpoint = X'$forged' WHERE size = $((L + 1))"
expect_exit 3 "$CASENET" audit verify --home "$COORD"
expect_contains "$T/err" "head of size $((L + 1))"
expect_contains "$T/err" "forged or altered"
verify_export_fails
expect_contains "$T/err" "head of size $((L + 1)): not signed by the broker key"

step "the untouched database still verifies"
tamper "SELECT 1" >/dev/null
expect_exit 0 "$CASENET" audit verify --home "$COORD" --full
[[ $(cat "$T/out") =~ trusted\ head:\ size\ ([0-9]+) ]] || fail "no trusted head"
S=${BASH_REMATCH[1]}

step "a rewritten database: caught by the head the home remembers"
stop_broker
rm -rf "$N/data"
start_broker "$BROKER_ENDPOINT"
"$TOOL" fill "$HOT" vn.police.a05 20 2 || fail "fill"
wait_head 20
expect_exit 3 "$CASENET" audit verify --home "$COORD"
expect_contains "$T/err" "remembered head of size"
expect_contains "$T/err" "cut short or rewritten"
"$TOOL" fill "$HOT" vn.police.a05 $((S + 100)) 4 || fail "fill"
wait_head $((S + 1))
expect_exit 3 "$CASENET" audit verify --home "$COORD"
expect_contains "$T/err" "remembered head of size $S"
expect_contains "$T/err" "not consistent"
expect_contains "$T/err" "root mismatch"
stop_broker
if grep -qE "Sanitizer|runtime error" "$T/broker.log"; then
  grep -E -A5 "Sanitizer|runtime error" "$T/broker.log" >&2
  fail "casenetd reported a sanitizer error"
fi
echo "OK"
