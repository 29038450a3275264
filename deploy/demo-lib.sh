# demo-lib.sh - shared by demo.sh, demo-console.sh and demo-offline.sh
# (sourced, not run): the build the live demos start with, step headings,
# commands shown as a user would type them, the fictitious network the demos
# build and a free loopback port. Expects $CASENET (absolute path; set by
# build_casenet) and runs in the demo's working directory.

bold='' plain=''
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
n=0
step() {
  n=$((n + 1))
  printf '\n%s%d. %s%s\n' "$bold" "$n" "$*" "$plain"
}
# show ARGS...: prints the casenet command line as a user would type it.
show() {
  local out="   \$ casenet" a
  for a in "$@"; do
    if [[ $a =~ [[:space:]\(\),] ]]; then out+=" '$a'"; else out+=" $a"; fi
  done
  printf '%s\n' "$out"
}
# run ARGS...: shows and runs casenet ARGS, indenting its output; stops the
# demo if the command fails.
run() {
  show "$@"
  local rc=0
  "$CASENET" "$@" > run.out 2>&1 || rc=$?
  sed 's/^/     /' run.out
  if [ "$rc" != 0 ]; then
    echo "demo: 'casenet $*' failed with exit code $rc" >&2
    exit 1
  fi
}

# build_casenet TOP: installs what is missing (deploy/setup-debian.sh), builds
# casenet and casenetd in TOP/build; sets $CASENET and $CASENETD.
build_casenet() {
  "$1/deploy/setup-debian.sh"
  echo "demo: building casenet (build/)"
  cmake -S "$1" -B "$1/build" >/dev/null
  cmake --build "$1/build" -j"$(nproc)" --target casenet casenetd >/dev/null
  CASENET=$1/build/clients/cli/casenet
  CASENETD=$1/build/broker/casenetd
}

# free_port: prints a loopback TCP port nothing listens on; stops the demo if
# none is found.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "demo: no free port found" >&2
  exit 1
}

# make_network: the authority and five members (keys generated locally, only
# the public halves admitted), in ./authority, ./keys and ./directory.
make_network() {
  step "The network authority creates its signing key (kept offline)"
  run admin init --out authority

  step "Each member generates its keys locally and sends only ID.pub to the authority"
  local id
  for id in vn.broker vn.hotline111 vn.police.a05 vn.molisa.hanoi vn.mps.coord; do
    "$CASENET" keygen "$id" --out keys >/dev/null
    printf '   %-18s keys/%s.key (0600, stays with the member), keys/%s.pub\n' "$id" "$id" "$id"
  done

  step "The authority admits them into the signed directory"
  admit vn.broker --role broker --name "casenet broker"
  admit vn.hotline111 --role intake --group hotline --name "Child helpline 111"
  admit vn.police.a05 --role responder --role takedown-requester --group police \
    --name "Cyber police unit A05 (fictitious)"
  admit vn.molisa.hanoi --role responder --group social-services --group hn \
    --name "Social services, Ha Noi (fictitious)"
  admit vn.mps.coord --role coordinator --name "Network coordinator"
  run admin show directory --authority authority/authority.pub
}

admit() {
  local id=$1
  shift
  run admin add --authority authority/authority.key --directory directory \
    --member "keys/$id.pub" "$@"
}

# write_referral FILE [URGENCY]: a fictitious referral (no real person),
# emergency unless URGENCY (e.g. URGENCY_STANDARD) says otherwise. The
# payload's urgency is the message's: `send` takes it from there.
write_referral() {
  sed "s/URGENCY_EMERGENCY/${2:-URGENCY_EMERGENCY}/" > "$1" <<'JSON'
{
  "referral": {
    "caseId": "HL111-DEMO-0001",
    "intakeChannel": "INTAKE_CHANNEL_PHONE",
    "intakeReceivedAtMs": "1735700000000",
    "harmCategories": ["HARM_CATEGORY_SEXTORTION"],
    "urgency": "URGENCY_EMERGENCY",
    "children": [{"ageYears": 14, "sex": "SEX_FEMALE"}],
    "numberOfChildren": 1,
    "place": {"provinceCode": "01", "communeCode": "00070"},
    "currentCondition": "Threatened with publication of images tonight; safe at home with a parent.",
    "actionsTaken": ["Counselled by phone", "Advised not to pay and to keep the messages"],
    "artefacts": [{"platform": "example-social", "accountId": "acct-demo-5521",
                   "url": "https://social.example/u/acct-demo-5521"}],
    "requestedAction": "Identify the account holder, preserve evidence, contact the family.",
    "legalBasis": {"kind": "LEGAL_BASIS_KIND_VITAL_INTEREST", "reference": "Decree 56/2017 art. 26"},
    "language": "vi",
    "summary": "Demo: trẻ 14 tuổi bị đe doạ tống tiền qua mạng xã hội."
  }
}
JSON
}
