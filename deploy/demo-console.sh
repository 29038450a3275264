#!/usr/bin/env bash
# demo-console.sh - the agency consoles in a browser: builds casenet, sets up
# the demo network (fictitious members) with casenetd on loopback, gives the
# hotline 111 and the cyber police one staff account each and starts their
# consoles; prints the two URLs and logins, then keeps running until Ctrl-C.
# Everything lives in ./demo-run/console.
#   DEMO_PORT=N             loopback port for the broker (default: a free one)
#   DEMO_CONSOLE_PORTS=A,B  the consoles' ports (default 8111,8112)
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
ENDPOINT=tcp://127.0.0.1:${DEMO_PORT:-$(free_port)}
"$CASENETD" --data data --listen "$ENDPOINT" --key keys/vn.broker.key --directory directory \
  --authority authority/authority.pub 2> broker.log &
pids+=($!)
for id in vn.hotline111 vn.police.a05; do
  "$CASENET" init --home "home/$id" --key "keys/$id.key" --authority authority/authority.pub \
    --directory directory --broker "$ENDPOINT" >/dev/null
done

IFS=, read -r port_hl port_po <<<"${DEMO_CONSOLE_PORTS:-8111,8112}"
declare -A user=([vn.hotline111]=lan [vn.police.a05]=minh)
declare -A role=([vn.hotline111]=caseworker [vn.police.a05]=supervisor)
declare -A port=([vn.hotline111]=$port_hl [vn.police.a05]=$port_po)
declare -A pass url
for id in vn.hotline111 vn.police.a05; do
  pass[$id]=$(head -c 15 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "${pass[$id]}" |
    "$CASENET" console user add "${user[$id]}" --role "${role[$id]}" --home "home/$id" >/dev/null
  "$CASENET" console --home "home/$id" --listen "127.0.0.1:${port[$id]}" \
    --assets "$top/clients/console/www" > "console-$id.out" 2> "console-$id.log" &
  pids+=($!)
done
for id in vn.hotline111 vn.police.a05; do
  for _ in $(seq 1 100); do
    grep -q "listening on" "console-$id.out" 2>/dev/null && break
    sleep 0.1
  done
  url[$id]=$(sed -n 's/.*listening on //p' "console-$id.out")
  [ -n "${url[$id]}" ] || { cat "console-$id.log" >&2; echo "demo: console of $id did not start" >&2; exit 1; }
done

printf '\n%sThe agency consoles are running%s (logs in demo-run/console/):\n\n' "$bold" "$plain"
printf '  Hotline 111 (send a referral):  %s   user %s   password %s\n' \
  "${url[vn.hotline111]}" "${user[vn.hotline111]}" "${pass[vn.hotline111]}"
printf '  Cyber police A05 (receive):     %s   user %s   password %s\n' \
  "${url[vn.police.a05]}" "${user[vn.police.a05]}" "${pass[vn.police.a05]}"
printf '\nBoth can be open in the same browser: each console has its own session cookie.\n'
if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
else
  printf 'Ctrl-C stops the consoles and the broker.\n'
  wait "${pids[0]}"
fi
