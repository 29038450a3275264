# shellcheck shell=bash
# lib.sh - assertions and fixtures shared by the CLI test scripts (sourced).
# Every script sets -euo pipefail, sources this file and gets:
#   $CASENET  the casenet binary (set by ctest; ./build/clients/cli/casenet otherwise)
#   $T        a fresh temporary directory, removed on exit
#   $T/out $T/err  stdout and stderr of the last expect_exit
set -euo pipefail

CASENET=${CASENET:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/clients/cli/casenet}
[ -x "$CASENET" ] || { echo "FAIL: casenet binary not found at $CASENET" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/casenet-cli-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
export TZ=UTC
unset CASENET_HOME

fail() {
  echo "FAIL: $*" >&2
  for f in "$T/out" "$T/err"; do
    [ -s "$f" ] && { echo "--- $(basename "$f"):" >&2; head -c 4000 "$f" | cat -v >&2; echo >&2; }
  done
  exit 1
}

step() { echo "== $*"; }

# expect_exit CODE CMD...: runs CMD (stdin inherited), stdout to $T/out,
# stderr to $T/err, and fails unless it exits with CODE.
expect_exit() {
  local want=$1 rc=0
  shift
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" = "$want" ] || fail "expected exit $want, got $rc: $*"
}

# expect_contains FILE TEXT: FILE contains TEXT (fixed string).
expect_contains() {
  grep -qF -- "$2" "$1" || fail "$(basename "$1") does not contain '$2'"
}

expect_not_contains() {
  if grep -qF -- "$2" "$1"; then fail "$(basename "$1") contains '$2'"; fi
}

# flip_byte FILE OFFSET: xors one bit of the byte at OFFSET (negative:
# from the end).
flip_byte() {
  local f=$1 off=$2 size b
  size=$(stat -c %s "$f")
  [ "$off" -lt 0 ] && off=$((size + off))
  b=$(od -An -tu1 -j"$off" -N1 "$f" | tr -d ' ')
  # shellcheck disable=SC2059 # the format is the one byte to write
  printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# make_network DIR: an authority, keys for a broker, the hotline, a police
# unit, social services and a coordinator, a signed directory DIR/directory
# (copies of each version as DIR/directory.vN) and a home per member in
# DIR/home/ID.
make_network() {
  local d=$1 v=0
  "$CASENET" admin init --out "$d/authority" >/dev/null
  add() {
    local id=$1
    shift
    "$CASENET" keygen "$id" --out "$d/keys" >/dev/null
    "$CASENET" admin add --authority "$d/authority/authority.key" --directory "$d/directory" \
      --member "$d/keys/$id.pub" "$@" >/dev/null
    v=$((v + 1))
    cp "$d/directory" "$d/directory.v$v"
  }
  add vn.broker --role broker --name "Network broker"
  add vn.hotline111 --role intake --group hotline --name "Child helpline 111"
  add vn.police.a05 --role responder --role takedown-requester --group police \
    --name "Cyber police A05"
  add vn.molisa.hanoi --role responder --group social-services --group hn \
    --name "Social services Ha Noi"
  add vn.coord --role coordinator --name "Network coordinator"
  local id
  for id in vn.hotline111 vn.police.a05 vn.molisa.hanoi vn.coord; do
    "$CASENET" init --home "$d/home/$id" --key "$d/keys/$id.key" \
      --authority "$d/authority/authority.pub" --directory "$d/directory" \
      ${BROKER_ENDPOINT:+--broker "$BROKER_ENDPOINT"} >/dev/null
  done
}

# A realistic but fictitious emergency referral (no real person).
write_referral() {
  cat >"$1" <<'JSON'
{
  "referral": {
    "caseId": "HL111-2025-000417",
    "intakeChannel": "INTAKE_CHANNEL_PHONE",
    "intakeReceivedAtMs": "1735700000000",
    "harmCategories": ["HARM_CATEGORY_SEXTORTION", "HARM_CATEGORY_GROOMING"],
    "urgency": "URGENCY_EMERGENCY",
    "children": [{"ageYears": 14, "sex": "SEX_FEMALE"}],
    "numberOfChildren": 1,
    "place": {"provinceCode": "01", "communeCode": "00070"},
    "currentCondition": "Child distressed, threatened with publication tonight; safe at home with a parent.",
    "actionsTaken": ["Counselled by phone", "Advised not to pay or send more images"],
    "artefacts": [{"platform": "example-social", "accountId": "acct-demo-5521",
                   "url": "https://social.example/u/acct-demo-5521",
                   "contentHash": "sha256:9f2c4e0d1b7a3c5e8f6a2d4b0c9e7f1a3b5d7c9e1f3a5b7d9c1e3f5a7b9d1c3e"}],
    "requestedAction": "Identify the account holder and preserve evidence; contact the family.",
    "legalBasis": {"kind": "LEGAL_BASIS_KIND_VITAL_INTEREST", "reference": "Decree 56/2017 art. 26"},
    "language": "vi",
    "summary": "Ẩn danh: trẻ 14 tuổi bị tống tiền qua mạng xã hội (fictitious test case)."
  }
}
JSON
}
