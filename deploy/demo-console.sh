#!/usr/bin/env bash
# demo-console.sh - the consoles in a browser: builds casenet, sets up the
# demo network (fictitious members) with casenetd on loopback (standard
# deadlines shortened to seconds), gives the hotline 111, the cyber police
# and the network coordinator one staff account each and starts their
# consoles; the hotline sends two referrals, one of which nobody takes in
# time, so that the coordinator's overdue board and network page have
# something to show. Prints the three URLs and logins, then keeps running
# until Ctrl-C. Everything lives in ./demo-run/console.
#   DEMO_PORT=N               loopback port for the broker (default: a free one)
#   DEMO_CONSOLE_PORTS=A,B,C  the consoles' ports (default 8111,8112,8113)
#   DEMO_SECONDS=N          stop after N seconds instead of waiting for Ctrl-C
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
here=$top/deploy

# shellcheck source=deploy/demo-lib.sh
source "$here/demo-lib.sh"
build_casenet "$top"

D=$top/demo-run/console
rm -rf "$D"
mkdir -p "$D"
cd "$D"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

make_network >/dev/null
# As in demo.sh: standard referrals are overdue after seconds, not hours.
printf '[standard]\ndeliver_within = 3s\naccept_within = 6s\n' > policy.ini
ENDPOINT=tcp://127.0.0.1:${DEMO_PORT:-$(free_port)}
"$CASENETD" --data data --listen "$ENDPOINT" --key keys/vn.broker.key --directory directory \
  --authority authority/authority.pub --policy policy.ini 2> broker.log &
pids+=($!)
for id in vn.hotline111 vn.police.a05 vn.mps.coord; do
  "$CASENET" init --home "home/$id" --key "keys/$id.key" --authority authority/authority.pub \
    --directory directory --broker "$ENDPOINT" >/dev/null
done

# Traffic for the coordinator's pages: an emergency referral to social
# services and a standard one to the police that nobody takes (overdue
# after 3 s; accepting it in the police console takes it off the board).
for _ in $(seq 1 100); do
  "$CASENET" directory pull --home home/vn.hotline111 --timeout 1 >/dev/null 2>&1 && break
  sleep 0.1
done
write_referral emergency.json
write_referral standard.json URGENCY_STANDARD
"$CASENET" send --home home/vn.hotline111 --to vn.molisa.hanoi --kind referral \
  < emergency.json > send.out 2> send.err || { cat send.err >&2; exit 1; }
"$CASENET" send --home home/vn.hotline111 --to vn.police.a05 --kind referral \
  < standard.json >> send.out 2> send.err || { cat send.err >&2; exit 1; }

consoles=(vn.hotline111 vn.police.a05 vn.mps.coord)
IFS=, read -r port_hl port_po port_co <<<"${DEMO_CONSOLE_PORTS:-8111,8112,8113}"
declare -A user=([vn.hotline111]=lan [vn.police.a05]=minh [vn.mps.coord]=thu)
declare -A role=([vn.hotline111]=caseworker [vn.police.a05]=supervisor [vn.mps.coord]=viewer)
declare -A port=([vn.hotline111]=$port_hl [vn.police.a05]=$port_po [vn.mps.coord]=$port_co)
declare -A pass url
for id in "${consoles[@]}"; do
  pass[$id]=$(head -c 15 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "${pass[$id]}" |
    "$CASENET" console user add "${user[$id]}" --role "${role[$id]}" --home "home/$id" >/dev/null
  "$CASENET" console --home "home/$id" --listen "127.0.0.1:${port[$id]}" \
    --assets "$top/clients/console/www" > "console-$id.out" 2> "console-$id.log" &
  pids+=($!)
done
for id in "${consoles[@]}"; do
  for _ in $(seq 1 100); do
    grep -q "listening on" "console-$id.out" 2>/dev/null && break
    sleep 0.1
  done
  url[$id]=$(sed -n 's/.*listening on //p' "console-$id.out")
  [ -n "${url[$id]}" ] || { cat "console-$id.log" >&2; echo "demo: console of $id did not start" >&2; exit 1; }
done

printf '\n%sThe consoles are running%s (logs in demo-run/console/):\n\n' "$bold" "$plain"
printf '  Hotline 111 (send a referral):  %s   user %s   password %s\n' \
  "${url[vn.hotline111]}" "${user[vn.hotline111]}" "${pass[vn.hotline111]}"
printf '  Cyber police A05 (receive):     %s   user %s   password %s\n' \
  "${url[vn.police.a05]}" "${user[vn.police.a05]}" "${pass[vn.police.a05]}"
printf '  Network coordinator:            %s   user %s   password %s\n' \
  "${url[vn.mps.coord]}" "${user[vn.mps.coord]}" "${pass[vn.mps.coord]}"
printf '    (its Overdue board lists the standard referral to the police within\n'
printf '     seconds; its Network page the two referrals, by agency and urgency)\n'
printf '\nAll can be open in the same browser: each console has its own session cookie.\n'
if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
else
  printf 'Ctrl-C stops the consoles and the broker.\n'
  wait "${pids[0]}"
fi
