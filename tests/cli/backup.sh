#!/usr/bin/env bash
# backup.sh - `casenetd backup` taken while a sender submits, `verify-backup`
# (and a backup with one event byte changed, which it must refuse), the
# output's mode, `casenetd restore` and the refusal to serve a restored
# store, then both decisions: --replay of the coordinator's export (the
# log is back at the coordinator's head, same root) and --new-epoch (the
# coordinator's `audit verify --full` reports the epoch change and the
# events lost; plain verify says what to run). An emergency referral whose
# deliver deadline was pending in the backup and escalated after it is
# settled by both decisions, so the restored broker never escalates it
# again: with the escalation's notice id (replay) or without one (epoch).
# A message that expires after the backup (dead-lettered, its notice sent)
# is settled by both decisions too: its row dead and its expiry deadline
# breached, with the DEAD_LETTERED event's notice id (replay) or without
# one (epoch), so that its sender never gets a second DEAD_LETTER notice.
# An attachment sent before the backup is in it (verify-backup checks its
# chunks; one chunk removed fails it) and, restored, downloads identical;
# an upload no Submit references is left out.
# Last, a backup newer than the coordinator's head restores without an epoch.
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
printf '[emergency]\ndeliver_within = 6s\naccept_within = none\n' >"$T/policy.ini"
broker_args=(--config "$T/casenetd.ini" --policy "$T/policy.ini")

# The broker's options for the restore decisions (no listening).
flags() {
  echo --config "$T/casenetd.ini" --policy "$T/policy.ini" --data "$N/data" --listen "$BROKER_ENDPOINT" \
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

# The deliver deadline of the emergency referral in database $1: state
# (1 pending, 3 breached) and whether it names a notice.
deadline() {
  sqlite3 "$1" "SELECT d.state, d.notice_id IS NOT NULL FROM deadlines d JOIN inbox i
    ON i.seq = d.seq WHERE i.recipient = 'vn.molisa.hanoi' AND d.kind = 1"
}

# wait_notice KIND: the sender's inbox holds a notice of KIND.
wait_notice() {
  local _
  for _ in $(seq 1 100); do
    "$CASENET" inbox --home "$N/home/vn.hotline111" --json | grep -q "\"kind\":\"$1\"" &&
      return 0
    sleep 0.2
  done
  fail "no $1 notice after 20 s"
}

# The row of message $EXP in database $1 and its expiry deadline: row state
# (1 queued, 7 dead), deadline state (1 pending, 3 breached) and whether it
# names a notice.
expiry() {
  sqlite3 "$1" "SELECT i.state, d.state, d.notice_id IS NOT NULL FROM deadlines d JOIN inbox i
    ON i.seq = d.seq WHERE i.message_id = X'$EXP' AND d.kind = 3"
}

step "backup while a sender submits, an emergency deadline pending"
broker_up "$N"
COORD=$N/home/vn.coord
write_referral "$T/referral.json"
head -c 3000000 /dev/urandom >"$T/evidence.bin"
expect_exit 0 "$CASENET" send --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind referral --attach "$T/evidence.bin" <"$T/referral.json"
ATT=$(head -n 1 "$T/out")
expect_exit 0 "$CASENET" send --home "$N/home/vn.hotline111" --to vn.molisa.hanoi \
  --kind referral --urgency emergency <"$T/referral.json"
expect_exit 0 "$CASENET" send --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind referral --expires-in 6s <"$T/referral.json"
EXP=$(head -n 1 "$T/out")
# an upload no Submit references (in progress): left out of the backup
mkdir "$N/data/blobs/00000000000000000000000000000abc"
printf 'vn.hotline111 2 2000034 %s\n' "$(date +%s%3N)" \
  >"$N/data/blobs/00000000000000000000000000000abc/meta"
"$TOOL" fill "$N/home/vn.hotline111" vn.police.a05 1500 2 &
fill_pid=$!
sleep 0.5 # let the fill start: the backup must run under load
(umask 022 && expect_exit 0 "$CASENETD" backup --data "$N/data" --out "$T/b1.backup")
expect_contains "$T/out" "backup of $N/data written to $T/b1.backup"
expect_contains "$T/out" "1 attachment blobs of 3000051 bytes"
[ "$(sqlite3 "$T/b1.backup" "SELECT count(*) FROM casenet_backup_blobs WHERE blob LIKE '%abc'")" = 0 ] ||
  fail "the upload in progress is in the backup"
wait "$fill_pid" || fail "fill"
[ "$(stat -c %a "$T/b1.backup")" = 600 ] || fail "backup mode $(stat -c %a "$T/b1.backup")"
expect_exit 1 "$CASENETD" backup --data "$N/data" --out "$T/b1.backup"
expect_contains "$T/err" "never overwrites"
NB=$(sqlite3 "$T/b1.backup" "SELECT count(*) FROM audit")
echo "backup holds $NB events"
[ "$(deadline "$T/b1.backup")" = "1|0" ] || fail "the deadline is not pending in the backup"
[ "$(expiry "$T/b1.backup")" = "1|1|0" ] || fail "the expiry is not pending in the backup"

step "verify-backup"
expect_exit 0 "$CASENETD" verify-backup "$T/b1.backup" --authority "$N/authority/authority.pub"
expect_contains "$T/out" "is a good backup"
expect_contains "$T/out" "audit log of $NB events verified"
cp "$T/b1.backup" "$T/bad.backup"
sqlite3 "$T/bad.backup" \
  "UPDATE audit SET event = substr(event, 1, 9) || X'7E' || substr(event, 11) WHERE idx = 7"
expect_exit 1 "$CASENETD" verify-backup "$T/bad.backup" --authority "$N/authority/authority.pub"
expect_contains "$T/err" "the audit log does not verify"

step "verify-backup checks the attachment's chunks"
expect_exit 0 "$CASENETD" verify-backup "$T/b1.backup" --authority "$N/authority/authority.pub"
expect_contains "$T/out" "1 attachment blobs (3000051 bytes of chunks) agree with their metas"
cp "$T/b1.backup" "$T/chunk.backup"
sqlite3 "$T/chunk.backup" "DELETE FROM casenet_backup_blobs WHERE name = '1'"
expect_exit 1 "$CASENETD" verify-backup "$T/chunk.backup" --authority "$N/authority/authority.pub"
expect_contains "$T/err" ": chunk 1 of 3 is missing"
expect_contains "$T/err" "the attachment blobs are incomplete"
sqlite3 "$T/chunk.backup" "DELETE FROM casenet_backup_blobs"
expect_exit 1 "$CASENETD" verify-backup "$T/chunk.backup" --authority "$N/authority/authority.pub"
expect_contains "$T/err" "is missing (message $ATT, not yet completed, references it)"

step "the deadline escalates; the coordinator remembers a later head and exports the log"
wait_notice escalation
wait_notice dead-letter
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
expect_contains "$T/out" "1 attachment blobs)"
[ "$(find "$N/data/blobs" -type f ! -perm 600 | wc -l)" = 0 ] || fail "a blob file is not 0600"
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
expect_contains "$T/out" "the log is again at the head of size $M (same root); "
[ "$(deadline "$N/data/casenet.db")" = "3|1" ] || fail "replay: the deadline is not settled"
[ "$(expiry "$N/data/casenet.db")" = "7|3|1" ] || fail "replay: the expiry is not settled"
start_broker "$EP"
mkdir "$T/saved"
expect_exit 0 "$CASENET" read "$ATT" --home "$N/home/vn.police.a05" --json \
  --save-attachments "$T/saved"
cmp -s "$T/evidence.bin" "$T/saved/evidence.bin" || fail "the restored attachment differs"
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
[ "$(deadline "$N/data/casenet.db")" = "3|0" ] || fail "epoch: the deadline is not settled"
[ "$(expiry "$N/data/casenet.db")" = "7|3|0" ] || fail "epoch: the expiry is not settled"
expect_contains "$T/out" "1 rows dead-lettered without a new notice"
start_broker "$EP"
expect_exit 3 "$CASENET" audit verify --home "$COORD"
expect_contains "$T/err" "casenet audit verify --full"
expect_exit 0 "$CASENET" audit verify --full --home "$COORD"
expect_contains "$T/out" "epoch change: the broker's log was restored from a backup at size $NB; $((M - NB)) events lost ($NB..$((M - 1)))"
expect_exit 0 "$CASENET" audit verify --home "$COORD"
expect_not_contains "$T/out" "epoch change"

step "an export file from 0 reports the epoch change too"
"$CASENET" audit export --home "$COORD" >"$T/epoch.export" || fail "export"
cp "$T/coord.state" "$COORD/audit.state"
expect_exit 0 "$CASENET" audit verify --home "$COORD" --file "$T/epoch.export"
expect_contains "$T/out" "$((M - NB)) events lost ($NB..$((M - 1)))"

step "a backup newer than the coordinator's head: nothing lost, no epoch"
expect_exit 0 "$CASENETD" backup --data "$N/data" --out "$T/b2.backup"
stop_broker
rm -rf "$N/data"
expect_exit 0 "$CASENETD" restore "$T/b2.backup" --data "$N/data"
# shellcheck disable=SC2046
expect_exit 0 "$CASENETD" restore --new-epoch --last-head "$COORD/audit.state" $(flags)
expect_contains "$T/out" "nothing was lost"
[ "$(sqlite3 "$N/data/casenet.db" "SELECT count(*) FROM audit WHERE kind = 13")" = 1 ] ||
  fail "a second LOG_RESTORED was written"
start_broker "$EP"
expect_exit 0 "$CASENET" audit verify --home "$COORD"
expect_not_contains "$T/out" "epoch change"
echo "OK"
