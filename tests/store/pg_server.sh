#!/usr/bin/env bash
# pg_server.sh - a throwaway PostgreSQL 15 server for tests: initdb in a
# temporary directory, listening on a unix socket there and on a random
# loopback port, trust authentication for the superuser "casenet".
#
#   pg_server.sh start DIR   creates DIR (must not exist or be empty), starts
#                            the server, prints its conninfo URI
#                            (postgresql://casenet@127.0.0.1:PORT/postgres?host=DIR)
#   pg_server.sh stop DIR    stops the server (immediate) and removes DIR
#
# initdb refuses to run as root: as root, the server runs as the user
# $CASENET_PG_USER (default nobody), which owns DIR. fsync is off (a test
# server; CASENET_PG_FSYNC=on for measurements). PG_BIN overrides
# /usr/lib/postgresql/15/bin.
set -euo pipefail
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: pg_server.sh start|stop DIR" >&2
  exit 2
fi
as=()
if [ "$(id -u)" = 0 ]; then
  user=${CASENET_PG_USER:-nobody}
  as=(runuser -u "$user" --)
fi

case "$cmd" in
start)
  if [ ! -x "$bin/initdb" ]; then
    echo "pg_server.sh: no $bin/initdb: install postgresql-15 (deploy/setup-debian.sh)" >&2
    exit 1
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ ${#as[@]} -eq 0 ] || chown "$user" "$dir"
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U casenet --auth=trust -E UTF8 --no-locale \
    --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
  }
  # A random port; another server may hold it, so a few tries.
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    if "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=${CASENET_PG_FSYNC:-off}" start >/dev/null; then
      echo "postgresql://casenet@127.0.0.1:$port/postgres?host=$dir"
      exit 0
    fi
  done
  cat "$dir/server.log" >&2
  exit 1
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: pg_server.sh start|stop DIR" >&2
  exit 2
  ;;
esac
