#!/usr/bin/env bash
# errors.sh - mistakes new users make get messages that say what is wrong
# (issue 12, items 12 and 13): a missing file is "no such file: PATH"; the
# wrong key given as --authority is named for what it is; an unknown role
# names the role and the valid ones (usage, exit 2); endpoints are checked
# where they are given (casenet init --broker, casenetd --listen); casenetd
# --version; --check-config prints dates, not epoch milliseconds.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
CASENETD=${CASENETD:-${CASENET_BINARY_DIR:-$(dirname "$CASENET")/../..}/broker/casenetd}
[ -x "$CASENETD" ] || fail "casenetd not found at $CASENETD"
cd "$T"
"$CASENET" admin init --out auth >/dev/null
"$CASENET" keygen vn.broker --out keys >/dev/null
"$CASENET" keygen vn.police.a05 --out keys >/dev/null
add() { "$CASENET" admin add --directory directory --member "keys/$1.pub" --role "$2" "${@:3}"; }

step "item 12: a missing file is 'no such file: PATH'"
expect_exit 4 add vn.police.a05 responder --authority auth/missing.key
expect_contains "$T/err" "no such file: auth/missing.key"
expect_not_contains "$T/err" "input/output error"
expect_exit 4 "$CASENET" admin add --authority auth/authority.key --directory directory \
  --member keys/missing.pub --role responder
expect_contains "$T/err" "no such file: keys/missing.pub"
expect_exit 4 "$CASENET" init --home home --key keys/missing.key --authority auth/authority.pub \
  --directory directory
expect_contains "$T/err" "no such file: keys/missing.key"
expect_exit 4 "$CASENET" admin show missing-directory
expect_contains "$T/err" "no such file: missing-directory"

step "item 12: the wrong key as --authority is named, never 'chmod 600'"
expect_exit 1 add vn.police.a05 responder --authority auth/authority.pub
expect_contains "$T/err" "auth/authority.pub is the authority's public key, not its secret key"
expect_contains "$T/err" "authority.key"
expect_not_contains "$T/err" "chmod"
expect_exit 1 add vn.police.a05 responder --authority keys/vn.police.a05.key
expect_contains "$T/err" "secret key of member vn.police.a05"
expect_not_contains "$T/err" "unknown role"
expect_exit 1 add vn.police.a05 responder --authority keys/vn.police.a05.pub
expect_contains "$T/err" "public key of member vn.police.a05"
expect_not_contains "$T/err" "chmod"
[ ! -e directory ] || fail "a refused admin add wrote the directory"

step "item 12: an unknown role names itself and the valid ones, exit 2"
expect_exit 2 add vn.police.a05 responder,polis --authority auth/authority.key
expect_contains "$T/err" "unknown role 'polis'"
expect_contains "$T/err" "takedown-requester"
expect_contains "$T/err" "coordinator"
expect_exit 0 add vn.broker broker --authority auth/authority.key
expect_exit 0 add vn.police.a05 responder --authority auth/authority.key

step "item 13: casenet init --broker without tcp:// is refused at once"
expect_exit 2 "$CASENET" init --home home --key keys/vn.police.a05.key \
  --authority auth/authority.pub --directory directory --broker 127.0.0.1:17400
expect_contains "$T/err" "tcp://HOST:PORT"
[ ! -e home/state ] || fail "init stored a bad endpoint"
expect_exit 0 "$CASENET" init --home home --key keys/vn.police.a05.key \
  --authority auth/authority.pub --directory directory --broker tcp://127.0.0.1:17400
expect_exit 2 "$CASENET" inbox --home home --broker localhost:17400
expect_contains "$T/err" "invalid broker endpoint 'localhost:17400'"

step "item 13: casenetd --version, --listen checked, --check-config prints dates"
expect_exit 0 "$CASENETD" --version
grep -qE '^casenetd [0-9]+\.[0-9]+' "$T/out" || fail "casenetd --version: $(cat "$T/out")"
broker=(--data data --key keys/vn.broker.key --directory directory --authority auth/authority.pub)
expect_exit 1 "$CASENETD" "${broker[@]}" --listen 127.0.0.1:17400 --check-config
expect_contains "$T/err" "invalid listen endpoint '127.0.0.1:17400'"
expect_contains "$T/err" "tcp://"
printf '[broker]\nlisten = 127.0.0.1:17400\n' >bad.conf
expect_exit 1 "$CASENETD" "${broker[@]}" --config bad.conf --check-config
expect_contains "$T/err" "invalid listen endpoint"
expect_exit 1 "$CASENETD" "${broker[@]/vn.broker.key/missing.key}" --listen tcp://127.0.0.1:17400 \
  --check-config
expect_contains "$T/err" "keys/missing.key: no such file"
expect_exit 0 "$CASENETD" "${broker[@]}" --listen tcp://127.0.0.1:17400 --check-config
expect_contains "$T/out" "configuration OK"
grep -qE 'expires 20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-9:]{8}Z' "$T/out" ||
  fail "--check-config does not print the expiry as a date"
grep -qE '[0-9]{13}' "$T/out" && fail "--check-config prints epoch milliseconds"
BENCH=${CASENET_BINARY_DIR:-$(dirname "$CASENET")/../..}/clients/bench/casenet-bench
if [ -x "$BENCH" ]; then
  expect_exit 2 "$BENCH" --broker 127.0.0.1:17400 --network net
  expect_contains "$T/err" "bad value for --broker"
fi
echo "errors.sh: all passed"
