#!/usr/bin/env bash
# Runs pytest against a private, throwaway PostgreSQL cluster: Debian's postgresql server binaries,
# a fresh data directory in a temporary folder, listening on 127.0.0.1 on a free port (and a socket
# in that folder), trust authentication, fsync off. pytest-django creates test_quantdash in it; the
# worker, web and runtime processes the tests start get that database through DATABASE_URL
# (tests/support/processes.py, child_env). The cluster is stopped and deleted on exit.
#
#   scripts/test-postgres.sh [pytest arguments]
#
# As root the server runs as the `postgres` user (initdb refuses root). PG_BIN overrides where the
# server binaries are (default: the newest /usr/lib/postgresql/*/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
  echo "PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BIN)" >&2
  exit 2
fi

dir=$(mktemp -d /tmp/quantdash-pg-XXXXXX)
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown postgres: "$dir"

cleanup() {
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

as_owner "$PG_BIN/initdb" -D "$dir/data" -U quantdash --auth=trust --encoding=UTF8 \
  --locale=C.UTF-8 >"$dir/initdb.log"
# Throwaway data: durability settings off make the suite's many flushes and TRUNCATEs cheap.
as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
  "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
   -c full_page_writes=off -c max_connections=200" >/dev/null
"$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U quantdash quantdash

export DATABASE_URL="postgres://quantdash@127.0.0.1:$port/quantdash"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir)"
status=0
"$PY" -m pytest "$@" || status=$?
exit $status
