#!/usr/bin/env bash
# Source this file: it exports DATABASE_URL pointing at a PostgreSQL server for the tests.
#   1. $DATABASE_URL if already set;
#   2. else the server on 127.0.0.1:5432 if one answers;
#   3. else a throwaway cluster under var/pgtest started with the local binaries
#      (initdb refuses to run as root, so it runs as the `postgres` user then).
# A cluster started here is stopped by brightrun_stop_postgres (called on exit by test.sh).

BRIGHTRUN_PG_STARTED=""

_pg_bin() {
  local name=$1
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  ls /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1
}

_pg_answers() {  # host port
  local isready; isready=$(_pg_bin pg_isready)
  [ -n "$isready" ] && "$isready" -q -h "$1" -p "$2" -t 2
}

_as_pg_user() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

brightrun_stop_postgres() {
  if [ -n "$BRIGHTRUN_PG_STARTED" ]; then
    _as_pg_user "$(_pg_bin pg_ctl)" -D "$BRIGHTRUN_PG_STARTED" -m fast stop >/dev/null 2>&1 || true
  fi
}

if [ -n "${DATABASE_URL:-}" ]; then
  echo "PostgreSQL: using DATABASE_URL from the environment"
elif _pg_answers 127.0.0.1 5432; then
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/brightrun"
  echo "PostgreSQL: using the server on 127.0.0.1:5432"
else
  initdb=$(_pg_bin initdb); pg_ctl=$(_pg_bin pg_ctl)
  if [ -z "$initdb" ] || [ -z "$pg_ctl" ]; then
    echo "PostgreSQL: no server answers on 127.0.0.1:5432 and no initdb/pg_ctl binaries were found." >&2
    echo "Install PostgreSQL (apt-get install postgresql) or set DATABASE_URL." >&2
    return 1 2>/dev/null || exit 1
  fi
  port=${BRIGHTRUN_PG_PORT:-55432}
  data="$PWD/var/pgtest"
  mkdir -p "$data"
  [ "$(id -u)" = "0" ] && chown postgres "$data" && chmod 700 "$data"
  if [ ! -f "$data/PG_VERSION" ]; then
    _as_pg_user "$initdb" -D "$data" -A trust -U postgres --no-sync >/dev/null
  fi
  if ! _pg_answers 127.0.0.1 "$port"; then
    _as_pg_user "$pg_ctl" -D "$data" -l "$data/server.log" -w \
      -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null
    BRIGHTRUN_PG_STARTED="$data"
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/brightrun"
  echo "PostgreSQL: started a throwaway cluster in var/pgtest on port $port"
fi
