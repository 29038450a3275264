#!/usr/bin/env bash
# second_client.sh - it.second_client: a second client in Python, written from
# proto/PROTOCOL.md and docs/ alone (tests/protocol/second_client.py), against a
# real casenetd and the C CLI on a make_network network. Skips (77) without
# Debian's python3-zmq (with CURVE) and python3-nacl.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/../cli/lib.sh"
PY=${CASENET_PYTHON3:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
if ! "$PY" -c 'import zmq, nacl.bindings, sys; sys.exit(0 if zmq.has("curve") else 1)' 2>/dev/null; then
  echo "SKIP: python3-zmq (with CURVE) and python3-nacl are needed (deploy/setup-debian.sh)"
  exit 77
fi
# shellcheck source=tests/cli/broker.sh
source "$(dirname "$0")/../cli/broker.sh"
# tight limits, so that each refusal of §7 can be provoked in a few requests
broker_args=(--max-pair-backlog 10 --member-quota 1MB --blob-quota 16MB --max-connections 4)
broker_up "$T/net"
export N BROKER_ENDPOINT CASENET T
"$PY" "$(dirname "$0")/second_client.py" || {
  tail -n 30 "$T/broker.log" >&2
  fail "the second client failed"
}
