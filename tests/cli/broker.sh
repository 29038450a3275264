# shellcheck shell=bash
# broker.sh - a real casenetd on loopback for the CLI test scripts (sourced
# after lib.sh). Gives:
#   $CASENETD                      the broker binary
#   broker_args=(...)              extra casenetd arguments for the next
#                                  start (e.g. --policy FILE); empty at first
#   start_broker [ENDPOINT]        starts casenetd on the network $N, on
#                                  ENDPOINT (a restart after stop_broker) or
#                                  else a free port, waits until it answers a
#                                  directory pull, points the four
#                                  make_network homes at it; sets
#                                  $BROKER_ENDPOINT, $broker_pid and writes
#                                  the pid to $T/broker.pid
#   broker_up DIR                  make_network DIR, then start_broker; sets
#                                  $N (= DIR)
#   stop_broker                    stops it (also on exit), SIGCONT first in
#                                  case a test froze it
# CASENET_BROKER_WRAPPER (e.g. valgrind ...) runs casenetd under a checker.
CASENETD=${CASENETD:-${CASENET_BINARY_DIR:-$(dirname "$CASENET")/../..}/broker/casenetd}
[ -x "$CASENETD" ] || fail "casenetd not found at $CASENETD"
broker_pid=
broker_args=()
BROKER_ENDPOINT=
read -r -a broker_wrapper <<<"${CASENET_BROKER_WRAPPER:-}"
stop_broker() {
  if [ -n "$broker_pid" ]; then
    kill -CONT "$broker_pid" 2>/dev/null || true
    kill "$broker_pid" 2>/dev/null || true
    local st=0
    wait "$broker_pid" 2>/dev/null || st=$?
    broker_pid=
    if [ ${#broker_wrapper[@]} -gt 0 ] && [ "$st" != 0 ]; then
      tail -n 40 "$T/broker.log" >&2
      fail "casenetd under ${broker_wrapper[0]} exited with status $st"
    fi
  fi
}
trap 'stop_broker; rm -rf "$T"' EXIT

# shellcheck disable=SC2120 # the scripts that restart pass ENDPOINT
start_broker() {
  local tries=100 id try
  [ ${#broker_wrapper[@]} -eq 0 ] || tries=300
  for try in 1 2 3 4 5 6 7 8; do
    if [ -n "${1:-}" ] && [ "$try" = 1 ]; then
      BROKER_ENDPOINT=$1
    else
      BROKER_ENDPOINT=tcp://127.0.0.1:$((20000 + RANDOM % 40000))
    fi
    "${broker_wrapper[@]}" "$CASENETD" --data "$N/data" --listen "$BROKER_ENDPOINT" \
      --key "$N/keys/vn.broker.key" --directory "$N/directory" \
      --authority "$N/authority/authority.pub" "${broker_args[@]}" >>"$T/broker.log" 2>&1 &
    broker_pid=$!
    echo "$broker_pid" >"$T/broker.pid"
    for _ in $(seq 1 "$tries"); do
      kill -0 "$broker_pid" 2>/dev/null || break
      if "$CASENET" directory pull --home "$N/home/vn.coord" --broker "$BROKER_ENDPOINT" \
        --timeout 1 >/dev/null 2>&1; then
        for id in vn.hotline111 vn.police.a05 vn.molisa.hanoi vn.coord; do
          sed -i "s|^broker=.*|broker=$BROKER_ENDPOINT|" "$N/home/$id/state"
        done
        return 0
      fi
      sleep 0.1
    done
    stop_broker
  done
  cat "$T/broker.log" >&2
  fail "casenetd did not start"
}

broker_up() {
  N=$1
  make_network "$N"
  # shellcheck disable=SC2119 # a free port
  start_broker
}
