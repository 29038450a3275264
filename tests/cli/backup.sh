#!/usr/bin/env bash
# backup.sh - `casenetd backup` taken while a sender submits, `verify-backup`
# (and a backup with one event byte changed, which it must refuse), the
# output's mode, `casenetd restore` and the refusal to serve a restored
# store, then both decisions: --replay of the coordinator's export (the
# log is back at the coordinator's head, same root) and --new-epoch (the
# coordinator's `audit verify --full` reports the epoch change and the
# events lost; plain verify says what to run).
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || fail "sqlite3 is required (Debian package sqlite3)"
# shellcheck source=tests/cli/broker.sh
source "$(dirname "$0")/broker.sh"
BIN=${CASENET_BINARY_DIR:-$(dirname "$CASENET")/../..}
TOOL=${CASENET_AUDIT_TOOL:-$BIN/tests/casenet_audit_tool}
[ -x "$TOOL" ] || fail "casenet_audit_tool not found at $TOOL"
N=$T/net
printf '[limits]\nsubmit_rate = 0\nmax_pair_backlog = 0\n' >"$T/casenetd.ini"
broker_args=(--config "$T/casenetd.ini")

# The broker's options for the restore decisions (no listening).
flags() {
  echo --config "$T/casenetd.ini" --data "$N/data" --listen "$BROKER_ENDPOINT" \
    --key "$N/keys/vn.broker.key" --directory "$N/directory" \
    --authority "$N/authority/authority.pub"
}

# Waits until the broker has signed a head covering every event.
wait_signed() {
  local _ db=$N/data/casenet.db
  for _ in $(seq 1 100); do
    [ "$(sqlite3 "$db" "SELECT COALESCE(MAX(size), 0) FROM tree_heads")" = \
      "$(sqlite3 "$db" "SELECT count(*) FROM audit")" ] && return 0
    sleep 0.2
  done
  fail "no head covers the log after 20 s"
}

step "backup while a sender submits"
broker_up "$N"
COORD=$N/home/vn.coord
"$TOOL" fill "$N/home/vn.hotline111" vn.police.a05 1500 2 &
fill_pid=$!
sleep 0.5 # let the fill start: the backup must run under load
(umask 022 && expect_exit 0 "$CASENETD" backup --data "$N/data" --out "$T/b1.backup")
expect_contains "$T/out" "backup of $N/data written to $T/b1.backup"
wait "$fill_pid" || fail "fill"
[ "$(stat -c %a "$T/b1.backup")" = 600 ] || fail "backup mode $(stat -c %a "$T/b1.backup")"
expect_exit 1 "$CASENETD" backup --data "$N/data" --out "$T/b1.backup"
expect_contains "$T/err" "never overwrites"
NB=$(sqlite3 "$T/b1.backup" "SELECT count(*) FROM audit")
echo "backup holds $NB events"

step "verify-backup"
expect_exit 0 "$CASENETD" verify-backup "$T/b1.backup" --authority "$N/authority/authority.pub"
expect_contains "$T/out" "is a good backup"
expect_contains "$T/out" "audit log of $NB events verified"
cp "$T/b1.backup" "$T/bad.backup"
sqlite3 "$T/bad.backup" \
  "UPDATE audit SET event = substr(event, 1, 9) || X'7E' || substr(event, 11) WHERE idx = 7"
expect_exit 1 "$CASENETD" verify-backup "$T/bad.backup" --authority "$N/authority/authority.pub"
expect_contains "$T/err" "the audit log does not verify"

step "the coordinator remembers a later head and exports the log"
wait_signed
expect_exit 0 "$CASENET" audit verify --home "$COORD"
M=$(sed -n 's/^trusted head: size \([0-9]*\),.*/\1/p' "$T/out")
[ "$M" -gt "$NB" ] || fail "remembered head $M is not beyond the backup's $NB"
# The export after the verify: it covers the remembered head.
"$CASENET" audit export --home "$COORD" >"$T/full.export" || fail "export"
cp "$COORD/audit.state" "$T/coord.state"
EP=$BROKER_ENDPOINT
stop_broker
mv "$N/data" "$T/data.orig"

step "restore refuses a non-empty directory; a restored store does not serve"
mkdir -p "$T/full" && touch "$T/full/x"
expect_exit 1 "$CASENETD" restore "$T/b1.backup" --data "$T/full"
expect_contains "$T/err" "is not empty"
expect_exit 0 "$CASENETD" restore "$T/b1.backup" --data "$N/data"
expect_contains "$T/err" "casenetd restore --new-epoch"
[ "$(stat -c %a "$N/data")" = 700 ] || fail "data dir mode"
[ "$(stat -c %a "$N/data/casenet.db")" = 600 ] || fail "db mode"
[ ! -e "$N/data/directory.pb" ] || [ "$(stat -c %a "$N/data/directory.pb")" = 600 ] ||
  fail "directory.pb mode"
# shellcheck disable=SC2046 # flags are words
expect_exit 3 "$CASENETD" --check-config $(flags)
expect_contains "$T/err" "was restored from a backup"
# shellcheck disable=SC2046
expect_exit 3 "$CASENETD" $(flags)
expect_contains "$T/err" "event=store_restored"

step "replay: the coordinator's export brings the log back to its head"
# shellcheck disable=SC2046
expect_exit 0 "$CASENETD" restore --replay "$T/full.export" --last-head "$COORD/audit.state" $(flags)
expect_contains "$T/out" "the log is again at the head of size $M (same root)"
start_broker "$EP"
expect_exit 0 "$CASENET" audit verify --home "$COORD"
expect_contains "$T/out" "trusted head: size"
expect_not_contains "$T/out" "epoch change"
stop_broker

step "new epoch: verify reports the events lost"
rm -rf "$N/data"
expect_exit 0 "$CASENETD" restore "$T/b1.backup" --data "$N/data"
cp "$T/coord.state" "$COORD/audit.state"
# shellcheck disable=SC2046
expect_exit 0 "$CASENETD" restore --new-epoch --last-head "$COORD/audit.state" $(flags)
expect_contains "$T/out" "log restored from backup at size $NB, previous head $M"
start_broker "$EP"
expect_exit 3 "$CASENET" audit verify --home "$COORD"
expect_contains "$T/err" "casenet audit verify --full"
expect_exit 0 "$CASENET" audit verify --full --home "$COORD"
expect_contains "$T/out" "epoch change: the broker's log was restored from a backup at size $NB; $((M - NB)) events lost ($NB..$((M - 1)))"
expect_exit 0 "$CASENET" audit verify --home "$COORD"
expect_not_contains "$T/out" "epoch change"
echo "OK"
