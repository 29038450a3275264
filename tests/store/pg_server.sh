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
# For replication tests (tests/store/replication.sh, deploy/postgresql/):
#   pg_server.sh standby PRIMARY_DIR DIR [NAME]
#                            a streaming standby of the server started in
#                            PRIMARY_DIR: pg_basebackup -R into DIR (as
#                            `start`), application_name NAME (default
#                            standby1, the name synchronous_standby_names
#                            uses), started and waited for until it streams;
#                            prints its URI as `start` does
#   pg_server.sh crash DIR   SIGKILL to the server's postmaster and every
#                            process it started: a machine that stops dead
#   pg_server.sh promote DIR promotes the standby in DIR and waits until it
#                            accepts writes
#
# initdb refuses to run as root: as root, the server runs as the user
# $CASENET_PG_USER (default nobody), which owns DIR. fsync is off (a test
# server; CASENET_PG_FSYNC=on for measurements). PG_BIN overrides
# /usr/lib/postgresql/15/bin.
set -euo pipefail
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
usage="usage: pg_server.sh start|stop|crash|promote DIR, or standby PRIMARY_DIR DIR [NAME]"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "$usage" >&2
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
standby)
  if [ -z "${3:-}" ] || [ ! -f "$dir/data/postmaster.pid" ]; then
    echo "pg_server.sh standby: PRIMARY_DIR must hold a running server (pg_server.sh start)" >&2
    exit 2
  fi
  primary=$(cd "$dir" && pwd)/data
  dir=$3
  name=${4:-standby1}
  pport=$(sed -n 4p "$primary/postmaster.pid")
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ ${#as[@]} -eq 0 ] || chown "$user" "$dir"
  # -R writes standby.signal and primary_conninfo (with application_name).
  "${as[@]}" "$bin/pg_basebackup" -D "$dir/data" -R -X stream -c fast --no-sync \
    -d "host=127.0.0.1 port=$pport user=casenet application_name=$name" \
    >"$dir/basebackup.log" 2>&1 || {
    cat "$dir/basebackup.log" >&2
    exit 1
  }
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    if "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=${CASENET_PG_FSYNC:-off}" start >/dev/null; then
      # Streaming once the primary's walsender for NAME says so.
      for _ in $(seq 1 600); do
        state=$("$bin/psql" "postgresql://casenet@127.0.0.1:$pport/postgres" -qAt -c \
          "SELECT state FROM pg_stat_replication WHERE application_name = '$name'" || true)
        if [ "$state" = streaming ]; then
          echo "postgresql://casenet@127.0.0.1:$port/postgres?host=$dir"
          exit 0
        fi
        sleep 0.1
      done
      echo "pg_server.sh standby: $name does not stream after 60 s" >&2
      cat "$dir/server.log" >&2
      exit 1
    fi
  done
  cat "$dir/server.log" >&2
  exit 1
  ;;
crash)
  pm=$(sed -n 1p "$dir/data/postmaster.pid")
  # Stopped first, so that it starts no process between the listing of its
  # children and the SIGKILL to all of them.
  kill -STOP "$pm"
  # shellcheck disable=SC2046 # one pid per word
  kill -KILL "$pm" $(ps -o pid= --ppid "$pm") 2>/dev/null || true
  # Gone, or a zombie nobody reaps (a container's init may not).
  while [ -e "/proc/$pm" ] && [ "$(awk '{print $3}' "/proc/$pm/stat" 2>/dev/null)" != Z ]; do
    sleep 0.05
  done
  ;;
promote)
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null
  ;;
*)
  echo "$usage" >&2
  exit 2
  ;;
esac
