#!/usr/bin/env bash
# pg_broker.sh - runs a broker integration test (a test binary that starts
# casenetd through tests/testlib/network.c) with every casenetd it starts on
# PostgreSQL: a throwaway server (pg_server.sh) for the whole run, and one
# database per broker data directory, so that a broker restarted on the same
# directory finds its rows again.
#
#   pg_broker.sh TEST_BINARY [ARGS...]
#
# Inside, it is also the broker wrapper (CASENET_BROKER_WRAPPER):
#   pg_broker.sh --wrap CASENETD ARGS...   adds --store postgresql://... to
#                                          casenetd's arguments.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
psql=${PG_BIN:-/usr/lib/postgresql/15/bin}/psql

if [ "${1:-}" = --wrap ]; then
  shift
  data=
  prev=
  for a in "$@"; do
    [ "$prev" = --data ] && data=$a
    prev=$a
  done
  db=cn_$(printf '%s' "$data" | md5sum | cut -c1-16)
  "$psql" "$CASENET_PG_ADMIN" -qAtc \
    "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
    "$psql" "$CASENET_PG_ADMIN" -qc "CREATE DATABASE $db" >/dev/null
  exec "$@" --store "${CASENET_PG_ADMIN/\/postgres\?//$db?}"
fi

if [ $# -lt 1 ]; then
  echo "usage: pg_broker.sh TEST_BINARY [ARGS...]" >&2
  exit 2
fi
if [ ! -x "${PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ]; then
  echo "pg_broker.sh: PostgreSQL 15 is not installed (deploy/setup-debian.sh)" >&2
  exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/casenet-pg-XXXXXX")
trap '"$here/pg_server.sh" stop "$dir"' EXIT
CASENET_PG_ADMIN=$("$here/pg_server.sh" start "$dir")
export CASENET_PG_ADMIN
CASENET_BROKER_WRAPPER="$here/pg_broker.sh --wrap" "$@"
