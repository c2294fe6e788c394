#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, listening on 127.0.0.1 only.
#
#   .ci/postgres.sh start DIR   initdb into DIR/data, start the server on 5432 (or a free port when
#                               5432 is taken), create role streak/streak and database streak, and
#                               print `export STREAK_TEST_POSTGRES_URL=...` on stdout (eval it).
#   .ci/postgres.sh stop DIR    stop that server and remove DIR.
#
# Uses only the server binaries of Debian's `postgresql` package (/usr/lib/postgresql/*/bin), never
# a cluster of pg_createcluster's nor whatever pg_ctl is first on PATH. Each run gets its own data
# directory and port, so a server already running on this machine (a Debian cluster, another run)
# does not get in the way. DIR records the pid of the process that owns the server
# (STREAK_PG_OWNER_PID, default: the caller); `start` first stops and removes the servers of owners
# that have died (a killed .ci/run), so no server is left behind for long.
#
# As root, server commands run as the `postgres` user (created by the postgresql package).
# Settings favour speed over durability (fsync off): this is for tests only.
set -euo pipefail

MARKER=".streak-ci-postgres"

log() { printf '[postgres.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] \
    || die "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)"
  printf '%s\n' "$dir"
}

# Run a command as the server's owner: `postgres` when we are root (initdb refuses root).
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

port_is_free() {
  python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
# As PostgreSQL does: a port whose old connections linger in TIME_WAIT is free; a listener is not.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

stop_server() {
  local dir=$1 bindir
  [[ -f "$dir/$MARKER" ]] || { log "$dir is not a server of this script: left alone"; return 0; }
  bindir=$(pg_bindir)
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
      || as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 \
      || log "could not stop the server in $dir (see $dir/server.log)"
  fi
  rm -rf -- "$dir"
}

sweep_orphans() {
  local dir owner
  for dir in "${TMPDIR:-/tmp}"/streak-ci-pg.*; do
    [[ -f "$dir/$MARKER" ]] || continue
    owner=$(cat "$dir/owner.pid" 2>/dev/null || echo "")
    if [[ -n "$owner" ]] && kill -0 "$owner" 2>/dev/null; then
      continue
    fi
    log "stopping the server left by dead process ${owner:-?} in $dir"
    stop_server "$dir"
  done
}

start_server() {
  local dir=$1 bindir port url
  bindir=$(pg_bindir)
  sweep_orphans
  mkdir -p "$dir"
  [[ -z "$(ls -A "$dir")" ]] || die "$dir is not empty"
  touch "$dir/$MARKER"
  echo "${STREAK_PG_OWNER_PID:-$PPID}" >"$dir/owner.pid"
  mkdir -p "$dir/sock"
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' user (apt-get install postgresql)"
    chown -R postgres:postgres "$dir"
  fi

  if port_is_free "${STREAK_PG_PORT:-5432}"; then
    port=${STREAK_PG_PORT:-5432}
  else
    port=$(free_port)
    log "port ${STREAK_PG_PORT:-5432} is taken on 127.0.0.1: using $port"
  fi

  as_pg "$bindir/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }

  cat >>"$dir/data/postgresql.conf" <<EOF

# .ci/postgres.sh: a throwaway test server
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
log_min_messages = warning
# Test databases live for seconds. An autovacuum worker (a superuser process) on one would make the
# test's DROP DATABASE ... WITH (FORCE) fail: the streak role may not terminate it.
autovacuum = off
EOF

  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { tail -n 30 "$dir/server.log" >&2 || true; die "the server did not start"; }

  as_pg "$bindir/psql" -X -q -h "$dir/sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE streak LOGIN CREATEDB PASSWORD 'streak'" \
    -c "CREATE DATABASE streak OWNER streak" >/dev/null

  url="postgresql://streak:streak@127.0.0.1:$port/streak"
  # Prove the URL the tests will get works over TCP with the password.
  PGCONNECT_TIMEOUT=5 "$bindir/psql" -X -q -tA "$url" -c "SELECT 1" >/dev/null \
    || die "cannot log in with $url"
  log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') ready on 127.0.0.1:$port (data in $dir)"
  printf 'export STREAK_TEST_POSTGRES_URL=%q\n' "$url"
}

case "${1:-}" in
  start) [[ $# -eq 2 ]] || die "usage: $0 start DIR"; start_server "$2" ;;
  stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop_server "$2" ;;
  *) die "usage: $0 start DIR | stop DIR" ;;
esac
