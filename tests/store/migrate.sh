#!/usr/bin/env bash
# migrate.sh - `casenetd migrate`: a broker on SQLite with traffic (messages
# read, acknowledged and accepted, a receipt forwarded, a coordinator's
# remembered head), stopped; its store copied into an empty PostgreSQL
# database (pg_server.sh); a second migrate into it refused; the broker
# started again on PostgreSQL: the members' inboxes hold the same rows in
# the same states, a new message flows, and the coordinator's `casenet audit
# verify` passes from the head it remembered on SQLite.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/../cli/lib.sh"
command -v jq >/dev/null || fail "jq is required (Debian package jq)"
# shellcheck source=tests/cli/broker.sh
source "$(dirname "$0")/../cli/broker.sh"
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "${PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ]; then
  echo "SKIP: PostgreSQL 15 is not installed (deploy/setup-debian.sh)"
  exit 77
fi
pgdir=$(mktemp -d "${TMPDIR:-/tmp}/casenet-pg-XXXXXX")
trap 'stop_broker; "$here/pg_server.sh" stop "$pgdir"; rm -rf "$T"' EXIT
PG=$("$here/pg_server.sh" start "$pgdir")

step "a broker on SQLite with traffic"
broker_up "$T/net"
write_referral "$T/referral.json"
ids=()
for i in 1 2 3; do
  expect_exit 0 "$CASENET" send --home "$N/home/vn.hotline111" --to vn.police.a05 \
    --to vn.molisa.hanoi --kind referral --urgency emergency <"$T/referral.json"
  ids+=("$(head -n 1 "$T/out")")
done
expect_exit 0 "$CASENET" read "${ids[0]}" --home "$N/home/vn.police.a05"
expect_exit 0 "$CASENET" ack "${ids[0]}" --status accepted --home "$N/home/vn.police.a05"
expect_exit 0 "$CASENET" ack "${ids[1]}" --home "$N/home/vn.molisa.hanoi"
# The broker signs a head every 2 s: verify until one is remembered.
for _ in $(seq 1 100); do
  expect_exit 0 "$CASENET" audit verify --home "$N/home/vn.coord"
  [ -s "$N/home/vn.coord/audit.state" ] && break
  sleep 0.1
done
[ -s "$N/home/vn.coord/audit.state" ] || fail "the coordinator remembers no head"
for id in vn.police.a05 vn.molisa.hanoi vn.hotline111; do
  "$CASENET" inbox --home "$N/home/$id" --json | jq -c '{id, state, kind}' >"$T/before.$id"
done
for i in 0 1; do
  "$CASENET" status "${ids[$i]}" --home "$N/home/vn.hotline111" --json >"$T/status.$i"
done
stop_broker

step "migrate into an empty PostgreSQL database; a second time is refused"
expect_exit 0 "$CASENETD" migrate --from "sqlite:$N/data" --to "$PG"
expect_contains "$T/out" "audit tree verified"
expect_contains "$T/out" "3 messages"
expect_exit 1 "$CASENETD" migrate --from "sqlite:$N/data" --to "$PG"
expect_contains "$T/err" "not empty"

step "the broker on PostgreSQL: the same inboxes, new traffic, the remembered head"
broker_args=(--store "$PG")
start_broker
for id in vn.police.a05 vn.molisa.hanoi vn.hotline111; do
  "$CASENET" inbox --home "$N/home/$id" --json | jq -c '{id, state, kind}' >"$T/after.$id"
  diff "$T/before.$id" "$T/after.$id" >&2 || fail "$id's inbox differs after the migration"
done
for i in 0 1; do
  "$CASENET" status "${ids[$i]}" --home "$N/home/vn.hotline111" --json >"$T/out"
  diff <(jq -S . "$T/status.$i") <(jq -S . "$T/out") >&2 ||
    fail "status of ${ids[$i]} (steps, deadlines, receipts) differs after the migration"
done
expect_exit 0 "$CASENET" read "${ids[2]}" --home "$N/home/vn.police.a05"
expect_exit 0 "$CASENET" send --home "$N/home/vn.hotline111" --to vn.police.a05 \
  --kind referral --urgency emergency <"$T/referral.json"
expect_exit 0 "$CASENET" audit verify --home "$N/home/vn.coord"
echo "PASS"
