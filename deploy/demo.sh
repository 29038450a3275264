#!/usr/bin/env bash
# demo.sh - the README's first command: installs what casenet needs (Debian 12),
# builds it, and runs a demo network on this machine: the authority admits a
# broker, the child helpline 111, the cyber police, provincial social services
# and a coordinator; casenetd starts on loopback; the hotline sends an
# emergency referral with an exported chat attached to the police, who read it,
# save the attachment (its SHA-256 checked) and acknowledge it with signed
# receipts that reach the hotline; social services run `casenet watch`, which
# takes a second referral into their spool and acknowledges it unattended;
# the hotline shares the hashes of a known file with a platform, which
# matches an upload against its bank and reports the match back;
# the inbox states and the audit trail are printed. Every case detail is
# fictitious. Everything lives in ./demo-run. On a terminal it then starts
# the hotline's and the police's web consoles (deploy/demo-console.sh) and
# prints their addresses and logins, until Ctrl-C.
#   DEMO_PORT=N      loopback port for the broker (default: a free one)
#   DEMO_CONSOLE=0   end after the terminal demo, without the consoles
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
here=$top/deploy

# shellcheck source=deploy/demo-lib.sh
source "$here/demo-lib.sh"
build_casenet "$top"

D=$top/demo-run
rm -rf "$D"
mkdir -p "$D"
cd "$D"
broker_pid=
watch_pid=
stop_broker() {
  if [ -n "$broker_pid" ]; then
    kill -TERM "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=
  fi
}
stop_watch() {
  if [ -n "$watch_pid" ]; then
    kill -TERM "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
    watch_pid=
  fi
}
trap 'stop_watch; stop_broker' EXIT

make_network
# A platform that receives the hotline's hashes (the hash bank step below).
"$CASENET" keygen vn.platform.x --out keys >/dev/null
admit vn.platform.x --role platform --group platforms --name "Example platform (fictitious)"
ENDPOINT=tcp://127.0.0.1:${DEMO_PORT:-$(free_port)}

step "The operator starts the broker (CURVE on loopback; log in demo-run/broker.log)"
printf '   $ casenetd --data data --listen %s --key keys/vn.broker.key \\\n' "$ENDPOINT"
printf '              --directory directory --authority authority/authority.pub \\\n'
# The demo shortens the deadlines of standard messages to seconds, so that an
# escalation can be seen; deploy/policy.ini holds the real defaults.
cat > policy.ini <<'INI'
[standard]
deliver_within = 3s
accept_within = 6s
INI
printf '              --policy policy.ini   (standard: deliver within 3 s, accept within 6 s)\n'
"$CASENETD" --data data --listen "$ENDPOINT" --key keys/vn.broker.key --directory directory \
  --authority authority/authority.pub --policy policy.ini 2> broker.log &
broker_pid=$!

step "Each member sets up its home: its key, the pinned authority key, the directory, the broker"
for id in vn.hotline111 vn.police.a05 vn.molisa.hanoi vn.mps.coord; do
  run init --home "home/$id" --key "keys/$id.key" --authority authority/authority.pub \
    --directory directory --broker "$ENDPOINT"
done
for _ in $(seq 1 50); do
  "$CASENET" directory pull --home home/vn.mps.coord --timeout 1 >/dev/null 2>&1 && break
  kill -0 "$broker_pid" 2>/dev/null || { cat broker.log >&2; echo "demo: casenetd stopped" >&2; exit 1; }
  sleep 0.1
done

step "A counsellor at 111 writes an emergency referral (fictitious: no real person)"
write_referral referral.json
sed 's/^/     /' referral.json

# The evidence travels with it: a (fictitious) exported chat, sealed end to end.
printf '[21:02] unknown: send me the photos or I post the video\n[21:03] child: please stop\n' \
  > chat-export.txt
step "The hotline sends it to the cyber police with the exported chat attached: signed, encrypted for them, receipted by the broker"
show send --home home/vn.hotline111 --to vn.police.a05 --kind referral --attach chat-export.txt
printf '       < referral.json   (the urgency, emergency, comes from the payload)\n'
"$CASENET" send --home home/vn.hotline111 --to vn.police.a05 --kind referral \
  --attach chat-export.txt < referral.json > send.out 2> send.err
sed 's/^/     /' send.out send.err
id=$(head -n 1 send.out)

step "The broker stored ciphertext only: the case text is nowhere in its data directory"
if grep -rqa -e "publication of images" -e "send me the photos" data; then
  echo "demo: plaintext found in the broker's data directory" >&2
  exit 1
fi
echo "     grep -r -e 'publication of images' -e 'send me the photos' data/  ->  nothing found"

step "The police see it in their inbox"
run inbox --home home/vn.police.a05

step "The police read it and save the attachment: verified against the hotline's directory key, then decrypted"
mkdir -p evidence
run read "$id" --home home/vn.police.a05 --save-attachments evidence
cmp -s chat-export.txt evidence/chat-export.txt ||
  { echo "demo: the attachment did not arrive identical" >&2; exit 1; }
echo "     evidence/chat-export.txt is identical to what the hotline attached (SHA-256 checked)"

step "Social services were not addressed: the broker does not hand it to them"
show read "$id" --home home/vn.molisa.hanoi
rc=0
"$CASENET" read "$id" --home home/vn.molisa.hanoi > refused.out 2>&1 || rc=$?
sed 's/^/     /' refused.out
echo "     exit code $rc"
[ "$rc" != 0 ] || { echo "demo: a non-recipient read the referral" >&2; exit 1; }

step "The police acknowledge: delivered, then accepted (each a receipt signed by the police)"
run ack "$id" --status delivered --home home/vn.police.a05
run ack "$id" --status accepted --home home/vn.police.a05

step "The hotline sees both receipts, their signatures verified"
run inbox --home home/vn.hotline111

step "Inbox states at the police"
run inbox --home home/vn.police.a05 --state any --json

step "Social services run an unattended agent: it hands each message to their case system, then acknowledges"
show watch --home home/vn.molisa.hanoi --spool spool/vn.molisa.hanoi
"$CASENET" watch --home home/vn.molisa.hanoi --spool spool/vn.molisa.hanoi 2> watch.log &
watch_pid=$!
for _ in $(seq 1 100); do
  grep -q "outcome=connected" watch.log && break
  kill -0 "$watch_pid" 2>/dev/null || { cat watch.log >&2; echo "demo: casenet watch stopped" >&2; exit 1; }
  sleep 0.1
done
show send --home home/vn.hotline111 --to vn.molisa.hanoi --kind referral
printf '       < referral.json\n'
"$CASENET" send --home home/vn.hotline111 --to vn.molisa.hanoi --kind referral \
  < referral.json > send2.out 2> send2.err
sed 's/^/     /' send2.out
id2=$(head -n 1 send2.out)
acked=
for _ in $(seq 1 100); do
  if "$CASENET" inbox --home home/vn.hotline111 --json 2>/dev/null |
    grep -q "\"in_reply_to\":\"$id2\",\"status\":\"delivered\""; then
    acked=1
    break
  fi
  sleep 0.1
done
[ -n "$acked" ] || { cat watch.log >&2; echo "demo: no automated acknowledgement" >&2; exit 1; }
echo "     the agent's log (one line per message):"
grep "event=message" watch.log | sed 's/^/       /'
echo "     handed over as spool/vn.molisa.hanoi/$id2.json:"
head -c 300 "spool/vn.molisa.hanoi/$id2.json" | sed 's/^/       /'
printf ' ...\n'
echo "     the hotline sees the automated 'delivered' receipt, signed by social services:"
run inbox --home home/vn.hotline111
stop_watch

step "Nobody picks up a standard referral to the police in time: the broker escalates it"
write_referral standard.json URGENCY_STANDARD
show send --home home/vn.hotline111 --to vn.police.a05 --kind referral
printf '       < standard.json   (the same referral with "urgency": "URGENCY_STANDARD")\n'
"$CASENET" send --home home/vn.hotline111 --to vn.police.a05 --kind referral \
  < standard.json > send3.out 2> send3.err
sed 's/^/     /' send3.out
id3=$(head -n 1 send3.out)
escalation=
for _ in $(seq 1 100); do
  escalation=$("$CASENET" inbox --home home/vn.mps.coord --json 2>/dev/null |
    jq -r 'select(.kind == "escalation") | .id' | head -n 1)
  [ -n "$escalation" ] && break
  sleep 0.1
done
[ -n "$escalation" ] || { tail -n 20 broker.log >&2; echo "demo: no escalation" >&2; exit 1; }
echo "     (3 s later, with no 'delivered' receipt from the police)"
echo "     the coordinator's inbox holds a broker-signed escalation notice:"
run inbox --home home/vn.mps.coord
run read "$escalation" --home home/vn.mps.coord
run overdue --home home/vn.mps.coord
run status "$id3" --home home/vn.hotline111

step "The hotline shares the hashes of known abuse material with the platforms: hashes only, never the file"
printf 'fictitious stand-in for an image the hotline classified\n' > known.jpg
echo "     (known.jpg: a stand-in file; its md5, sha1 and sha256 are computed here)"
run init --home home/vn.platform.x --key keys/vn.platform.x.key --authority authority/authority.pub \
  --directory directory --broker "$ENDPOINT"
run hashes contribute --home home/vn.hotline111 --to @platforms --category baseline \
  --reference HN-2026-0001 known.jpg

step "The platform imports them into its own bank and checks two uploads (exit 0: match, 1: none)"
run hashes import --home home/vn.platform.x
run hashes list --home home/vn.platform.x
cp known.jpg upload-1.jpg
printf 'a holiday photo (fictitious)\n' > upload-2.jpg
run hashes match --home home/vn.platform.x upload-1.jpg
show hashes match --home home/vn.platform.x upload-2.jpg
rc=0
"$CASENET" hashes match --home home/vn.platform.x upload-2.jpg > run.out 2>&1 || rc=$?
[ "$rc" = 1 ] || { cat run.out >&2; echo "demo: upload-2.jpg matched (exit $rc)" >&2; exit 1; }
echo "     (nothing printed, exit 1: upload-2.jpg is not in the bank)"
sha=$(sha256sum known.jpg | cut -d' ' -f1)
run hashes feedback --home home/vn.platform.x --to vn.hotline111 --match "sha256:$sha" --count 1
echo "     the hotline learns that its entry matched (a count, no content):"
run hashes import --home home/vn.hotline111
run hashes list --home home/vn.hotline111 --feedback

step "The coordinator reviews the audit trail: who sent what to whom, when (never content)"
run audit log --home home/vn.mps.coord
sleep 2.5 # the broker signs a tree head every 2 s when the log grew
run audit verify --home home/vn.mps.coord
if ! grep -q "verified" run.out; then
  echo "demo: audit verify did not report a verified log" >&2
  exit 1
fi

step "The broker stops cleanly (SIGTERM)"
stop_broker
tail -n 5 broker.log | sed 's/^/     /'

printf '\n%sDone.%s Keys, homes, the broker data and its log are in demo-run/.\n' "$bold" "$plain"
# On a terminal the demo goes on with the web consoles of the hotline, the
# police and the coordinator, for a person at a browser; run unattended (CI,
# a pipe) it ends here. DEMO_CONSOLE=0 ends it here on a terminal too.
if [ -t 0 ] && [ -t 1 ] && [ "${DEMO_CONSOLE:-1}" != 0 ]; then
  step "The consoles: the hotline's, the police's and the coordinator's staff in a browser"
  exec "$here/demo-console.sh"
fi
printf 'The web consoles of the hotline, the police and the coordinator (overdue board,\n'
printf 'network figures), in a browser: deploy/demo-console.sh\n'
