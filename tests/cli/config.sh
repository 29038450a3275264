#!/usr/bin/env bash
# config.sh - casenetd's configuration (issue 16 item 5, issue 15 item 3):
# docs/configuration.md is what `casenetd --help-config` prints, an unknown
# --help-config=FORMAT exits 2 naming the formats; the example
# deploy/casenetd.conf and deploy/policy.ini pass --check-config;
# --check-config on a fresh data directory creates nothing; errors name the
# file, the line and the allowed range; a start that fails writes no
# broker-start audit event.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CASENETD=${CASENETD:-${CASENET_BINARY_DIR:-$(dirname "$CASENET")/../..}/broker/casenetd}
[ -x "$CASENETD" ] || fail "casenetd not found at $CASENETD"
command -v sqlite3 >/dev/null || fail "sqlite3 is required (Debian package sqlite3)"
cd "$T"

step "docs/configuration.md is casenetd --help-config's output"
"$CASENETD" --help-config >help-config.md
diff -u "$SRC/docs/configuration.md" help-config.md ||
  fail "docs/configuration.md is stale: casenetd --help-config >docs/configuration.md"
expect_exit 0 "$CASENETD" --help-config=markdown
cmp -s "$SRC/docs/configuration.md" "$T/out" || fail "--help-config=markdown differs from --help-config"
for fmt in scdoc scdoc-flags; do
  expect_exit 0 "$CASENETD" --help-config=$fmt
  expect_contains "$T/out" "batch-max"
done
expect_exit 2 "$CASENETD" --help-config=bogus
expect_contains "$T/err" "--help-config=FORMAT: markdown, scdoc or scdoc-flags"
[ ! -s "$T/out" ] || fail "--help-config=bogus printed a reference"
expect_exit 0 "$CASENETD" --help
expect_contains "$T/out" "--batch-max N"
expect_contains "$T/out" "([limits] batch_max; default 256; a whole number"
expect_exit 0 "$CASENETD" --version
expect_contains "$T/out" "libsodium"

"$CASENET" admin init --out auth >/dev/null
"$CASENET" keygen vn.broker --out keys >/dev/null
"$CASENET" admin add --authority auth/authority.key --directory directory \
  --member keys/vn.broker.pub --role broker >/dev/null
paths=(--key keys/vn.broker.key --directory directory --authority auth/authority.pub)

step "--check-config on a fresh data directory creates nothing"
expect_exit 0 "$CASENETD" --data fresh --listen tcp://127.0.0.1:1 "${paths[@]}" \
  --check-config
expect_contains "$T/out" "configuration OK"
expect_contains "$T/out" "does not exist yet"
[ ! -e fresh ] || fail "--check-config created $(find fresh)"
mkdir empty
expect_exit 0 "$CASENETD" --data empty --listen tcp://127.0.0.1:1 "${paths[@]}" --check-config
[ -z "$(ls -A empty)" ] || fail "--check-config wrote into the data directory: $(ls -A empty)"
expect_contains "$T/out" "[broker] data                  = empty                    (command line)"
expect_contains "$T/out" "[limits] batch_max             = 256                      (default)"

step "the example deploy/casenetd.conf and deploy/policy.ini pass"
expect_exit 0 "$CASENETD" --config "$SRC/deploy/casenetd.conf" --data empty "${paths[@]}" \
  --policy "$SRC/deploy/policy.ini" --check-config
expect_contains "$T/out" "configuration OK"
expect_contains "$T/out" "[limits] submit_rate           = 60/min                   (file)"
expect_contains "$T/out" "[broker] listen                = tcp://0.0.0.0:7400       (file)"
expect_contains "$T/out" "[broker] key                   = keys/vn.broker.key       (command line)"

step "errors name the file, the line and the allowed range"
printf '[broker]\nlisten = tcp://127.0.0.1:1\n[limits]\nbatch_max = 0\n' >bad.conf
expect_exit 1 "$CASENETD" --config bad.conf --data empty "${paths[@]}" --check-config
expect_contains "$T/err" \
  "bad.conf:4: [limits] batch_max = 0 is out of range: expected a whole number from 1 to 65536"
printf '[limits]\nbatch_size = 10\n' >bad.conf
expect_exit 1 "$CASENETD" --config bad.conf --data empty "${paths[@]}" --check-config
expect_contains "$T/err" "bad.conf:2: unknown key [limits] batch_size"
printf '[limits]\nbatch_max = 10\nbatch_max = 20\n' >bad.conf
expect_exit 1 "$CASENETD" --config bad.conf --data empty "${paths[@]}" --check-config
expect_contains "$T/err" "bad.conf:3: [limits] batch_max is given twice (first on line 2)"
# a line longer than a line may hold is named as such, not as a syntax
# error on the line after it; 199 characters still fit
long=$(printf '%0180d' 0)
printf '[broker]\nstore = sqlite:/tmp/%s\nbogus = 1\n' "${long:1}" >bad.conf
expect_exit 1 "$CASENETD" --config bad.conf --data empty "${paths[@]}" --check-config
expect_contains "$T/err" "bad.conf:3: unknown key [broker] bogus"
printf '[broker]\nstore = sqlite:/tmp/%s\nbogus = 1\n' "$long" >bad.conf
expect_exit 1 "$CASENETD" --config bad.conf --data empty "${paths[@]}" --check-config
expect_contains "$T/err" "bad.conf:2: the line is longer than the 199 characters a line may hold"
expect_exit 1 "$CASENETD" --data empty "${paths[@]}" --listen tcp://127.0.0.1:1 \
  --clock-skew 2d --check-config
expect_contains "$T/err" "--clock-skew = 2d is out of range: expected a duration from 1s to 1d"
expect_exit 1 "$CASENETD" --data empty "${paths[@]}" --listen tcp://127.0.0.1:1 \
  --store mysql://db/casenet --check-config
expect_contains "$T/err" "unknown store; use sqlite:DIR or postgresql://"
[ -z "$(ls -A empty)" ] || fail "a refused --check-config wrote into the data directory"

step "a start that fails writes no broker-start event"
broker_starts() { sqlite3 "$1/casenet.db" "SELECT count(*) FROM audit WHERE kind = 11"; }
# bind fails: the ipc endpoint's directory does not exist
expect_exit 1 "$CASENETD" --data d1 --listen "ipc://$T/no/such/dir/sock" "${paths[@]}"
expect_contains "$T/err" "cannot listen on"
[ "$(broker_starts d1)" = 0 ] || fail "a start that could not bind wrote broker-start"
# a directory signed by another authority
"$CASENET" admin init --out other >/dev/null
expect_exit 1 "$CASENETD" --data d2 --listen tcp://127.0.0.1:1 --key keys/vn.broker.key \
  --directory directory --authority other/authority.pub
expect_contains "$T/err" "no valid directory"
[ ! -e d2/casenet.db ] || [ "$(broker_starts d2)" = 0 ] ||
  fail "a start with a bad directory wrote broker-start"
echo "OK"
