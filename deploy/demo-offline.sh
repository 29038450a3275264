#!/usr/bin/env bash
# demo-offline.sh - a casenet network in a temporary directory, without a
# broker: the authority admits six members, the child helpline 111 seals an
# emergency referral for the cyber police, the police open it, and a copy
# altered by one byte is refused. Every case detail is fictitious.
#   CASENET=path/to/casenet   (default ./build/clients/cli/casenet)
#   DEMO_KEEP=1               keep the directory afterwards
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CASENET=${CASENET:-./build/clients/cli/casenet}
if [ ! -x "$CASENET" ]; then
  echo "demo: no casenet binary at $CASENET; build first (cmake -S . -B build && cmake --build build)" >&2
  exit 1
fi
CASENET=$(cd "$(dirname "$CASENET")" && pwd)/$(basename "$CASENET")
D=$(mktemp -d "${TMPDIR:-/tmp}/casenet-demo.XXXXXX")
if [ "${DEMO_KEEP:-0}" = 1 ]; then
  trap 'echo; echo "(kept $D)"' EXIT
else
  trap 'rm -rf "$D"' EXIT
fi
cd "$D"

# shellcheck source=deploy/demo-lib.sh
source "$here/demo-lib.sh"

# refused FILE CMD...: runs casenet CMD... < FILE, which must fail with exit 3
# and print no payload.
refused() {
  local in=$1 rc=0
  shift
  show "$@"
  printf '       < %s\n' "$in"
  "$CASENET" "$@" < "$in" > refused.out 2> refused.err || rc=$?
  sed 's/^/     /' refused.err
  echo "     exit code $rc; payload printed: $([ -s refused.out ] && echo YES || echo none)"
  if [ "$rc" != 3 ] || [ -s refused.out ]; then
    echo "demo: expected a refusal with exit code 3" >&2
    exit 1
  fi
}
# flip FILE OFFSET: changes one bit of the byte at OFFSET.
flip() {
  local b
  b=$(od -An -tu1 -j"$2" -N1 "$1" | tr -d ' ')
  # shellcheck disable=SC2059 # the format is the one byte to write
  printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

make_network

step "The helpline, the police and social services set up their homes (pin the authority key)"
for id in vn.hotline111 vn.police.a05 vn.molisa.hanoi; do
  run init --home "home/$id" --key "keys/$id.key" \
    --authority authority/authority.pub --directory directory
done

step "A counsellor at 111 writes an emergency referral (fictitious: no real person)"
write_referral referral.json
sed 's/^/     /' referral.json

step "The helpline seals it for the police: signed by 111, encrypted for vn.police.a05 only"
show seal --home home/vn.hotline111 --to vn.police.a05 --kind referral --urgency emergency
printf '       < referral.json > referral.msg\n'
"$CASENET" seal --home home/vn.hotline111 --to vn.police.a05 --kind referral \
  --urgency emergency < referral.json > referral.msg 2> seal.log
sed 's/^/     /' seal.log
if grep -q "publication" referral.msg; then
  echo "demo: plaintext visible in the sealed message" >&2
  exit 1
fi
echo "     (referral.msg holds none of the text: a broker passing it on cannot read it)"

step "The police open it: signature checked against the directory key, then decrypted"
show open --home home/vn.police.a05
printf '       < referral.msg\n'
"$CASENET" open --home home/vn.police.a05 < referral.msg 2>&1 | sed 's/^/     /'

step "Social services are not a recipient: they cannot open it"
refused referral.msg open --home home/vn.molisa.hanoi

step "One bit of the signed header is changed in transit: refused"
cp referral.msg tampered-header.msg
flip tampered-header.msg 12
refused tampered-header.msg open --home home/vn.police.a05

step "One bit of the encrypted content is changed in transit: refused"
cp referral.msg tampered-content.msg
flip tampered-content.msg $(($(stat -c %s referral.msg) - 20))
refused tampered-content.msg open --home home/vn.police.a05

printf '\n%sDone.%s Through a broker the same steps are casenet send, inbox, read and ack.\n' \
  "$bold" "$plain"
