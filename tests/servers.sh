#!/usr/bin/env bash
# Throwaway servers for the tests, on 127.0.0.1 only: a PostgreSQL cluster made by initdb in a
# temporary folder (as an unprivileged user when run as root), with a random password.
#
#   eval "$(tests/servers.sh start)"     # prints `export MOODINDEX_TEST_PG_URL=...` and the folder
#   .venv/bin/python -m pytest -q        # the database tests now also run on PostgreSQL
#   tests/servers.sh stop "$MOODINDEX_TEST_SERVERS"
#
# Needs Debian's `postgresql` package (initdb, pg_ctl under /usr/lib/postgresql/*/bin).
set -euo pipefail

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$dir/initdb" ] || { echo "servers.sh: initdb not found: apt-get install postgresql" >&2; exit 1; }
  echo "$dir"
}

# Run a command as the unprivileged owner of the cluster (PostgreSQL refuses to run as root).
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

start() {
  local top bin port password
  top=$(mktemp -d "${TMPDIR:-/tmp}/moodindex-servers.XXXXXX")
  chmod 0755 "$top"
  bin=$(pg_bin)
  port=$(free_port)
  password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
  mkdir "$top/pg"
  printf '%s\n' "$password" > "$top/pg.pw"
  if [ "$(id -u)" = 0 ]; then chown nobody "$top/pg" "$top/pg.pw"; fi
  chmod 0700 "$top/pg"
  chmod 0600 "$top/pg.pw"
  as_owner "$bin/initdb" -D "$top/pg/data" -U moodindex --pwfile="$top/pg.pw" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --no-locale >"$top/initdb.log" 2>&1 \
    || { cat "$top/initdb.log" >&2; exit 1; }
  rm -f "$top/pg.pw"
  # loopback only; the socket in the cluster's own folder, not /var/run/postgresql
  as_owner "$bin/pg_ctl" -D "$top/pg/data" -l "$top/pg/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $top/pg -c max_connections=200 -c fsync=off" \
    >/dev/null || { cat "$top/pg/server.log" >&2; exit 1; }
  PGPASSWORD="$password" "$bin/psql" -h 127.0.0.1 -p "$port" -U moodindex -d postgres -q \
    -c "CREATE DATABASE moodindex_test" >/dev/null
  # pg_trgm (migration 0008's trigram index on photos.path) once, in public: created by the first
  # test's migration instead it would live in that test's schema and go when the schema is dropped
  PGPASSWORD="$password" "$bin/psql" -h 127.0.0.1 -p "$port" -U moodindex -d moodindex_test -q \
    -c "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public" >/dev/null
  echo "export MOODINDEX_TEST_SERVERS='$top'"
  echo "export MOODINDEX_TEST_PG_URL='postgresql://moodindex:$password@127.0.0.1:$port/moodindex_test'"
}

stop() {
  local top=${1:?usage: servers.sh stop FOLDER}
  case "$top" in */moodindex-servers.*) ;; *) echo "servers.sh: not a servers folder: $top" >&2; exit 1;; esac
  if [ -d "$top/pg/data" ]; then
    as_owner "$(pg_bin)/pg_ctl" -D "$top/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf -- "$top"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-${MOODINDEX_TEST_SERVERS:-}}" ;;
  *) echo "usage: $0 start | stop FOLDER" >&2; exit 2 ;;
esac
