#!/usr/bin/env bash
# help.sh - every subcommand has --help (exit 0, naming each option and an
# example); `casenet help CMD` is the same; unknown commands and options are
# usage errors (exit 2); --version works.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"

step "top-level help and version"
expect_exit 0 "$CASENET" --help
for word in keygen admin init directory seal open send inbox read ack watch audit "exit codes" \
  BAD_SIGNATURE ROLLBACK PERMISSIONS UNAVAILABLE; do
  expect_contains "$T/out" "$word"
done
expect_exit 0 "$CASENET" --version
expect_contains "$T/out" "casenet "
expect_exit 2 "$CASENET"
expect_exit 2 "$CASENET" frobnicate
expect_contains "$T/err" "unknown command 'frobnicate'"
expect_exit 2 "$CASENET" help frobnicate

# subcommand: options its --help must mention
check() {
  local cmd=$1
  shift
  # shellcheck disable=SC2086
  expect_exit 0 "$CASENET" $cmd --help
  expect_contains "$T/out" "usage: casenet $cmd"
  expect_contains "$T/out" "example:"
  local o
  for o in "$@" --help; do expect_contains "$T/out" "$o"; done
  cp "$T/out" "$T/help1"
  # shellcheck disable=SC2086
  expect_exit 0 "$CASENET" help $cmd
  cmp -s "$T/out" "$T/help1" || fail "'casenet help $cmd' differs from '$cmd --help'"
  # shellcheck disable=SC2086
  expect_exit 2 "$CASENET" $cmd --no-such-option
  expect_contains "$T/err" "--no-such-option"
}

step "subcommand help"
check keygen --out
check "admin init" --out --network --directory --valid-days
check "admin add" --authority --directory --member --role --group --name --valid-days
check "admin revoke" --authority --directory --member --valid-days
check "admin suspend" --authority --directory --member
check "admin reinstate" --authority --directory --member
check "admin renew" --authority --directory --valid-days
check "admin show" --authority --json
check init --home --key --authority --directory --broker --force
check "directory update" --home
check "directory pull" --home --broker --timeout
check "directory publish" --home --broker --timeout
check "directory show" --home --json
check seal --to --kind --urgency --status --case --reply-to --expires-in --home
check open --home --json-meta
check send --to --kind --urgency --status --case --reply-to --expires-in --home --broker --timeout
check inbox --state --json --limit --home --broker --timeout
check read --json-meta --home --broker --timeout
check ack --status --reason --outcome --note --home --broker --timeout
check "audit log" --member --message --case --kind --since --until --limit --json --home --broker \
  --timeout
check "audit verify" --file --full --home --broker --timeout
check "audit export" --from --home --broker --timeout
check "audit prove" --index --home --broker --timeout
check watch --spool --exec --once --home --broker --timeout --rescan --exec-timeout

step "groups list their subcommands"
expect_exit 0 "$CASENET" admin --help
for s in init add revoke suspend reinstate renew show; do expect_contains "$T/out" "$s"; done
expect_exit 2 "$CASENET" admin
expect_exit 2 "$CASENET" admin frobnicate
expect_exit 0 "$CASENET" directory --help
for s in update pull publish show; do expect_contains "$T/out" "$s"; done
expect_exit 0 "$CASENET" audit --help
for s in log verify export prove; do expect_contains "$T/out" "$s"; done
expect_exit 2 "$CASENET" audit frobnicate

step "argument errors are usage errors"
expect_exit 2 "$CASENET" keygen "Bad_Id" --out "$T/k"
expect_contains "$T/err" "invalid member id"
expect_exit 2 "$CASENET" keygen vn.x
expect_exit 2 "$CASENET" seal --kind referral
expect_exit 2 "$CASENET" seal --to vn.police.a05 --kind nonsense
expect_exit 2 "$CASENET" seal --to vn.police.a05 --kind referral --expires-in 5y
expect_exit 2 "$CASENET" seal --to vn.police.a05 --kind referral --case abc
expect_exit 2 "$CASENET" inbox --state nonsense
expect_exit 2 "$CASENET" ack 00112233445566778899aabbccddeeff --status declined
expect_exit 2 "$CASENET" read not-an-id
expect_exit 2 "$CASENET" audit log --kind nonsense
expect_exit 2 "$CASENET" audit log --since yesterday-ish
expect_exit 2 "$CASENET" audit prove not-an-id
expect_exit 2 "$CASENET" audit verify --file x --full
echo "PASS"
