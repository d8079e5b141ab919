#!/usr/bin/env bash
# A project-local PostgreSQL 15 cluster with hotmesh preloaded.
#   scripts/pg-cluster.sh start|stop|restart|status|destroy|url|psql [psql args]
# Settings (environment):
#   HOTMESH_PG_PORT   port                     (default 28815)
#   HOTMESH_PG_DIR    cluster directory        (default /tmp/hotmesh-run/cluster)
#   HOTMESH_PG_DB     database with the extension (default hotmesh)
#   HOTMESH_PG_CONF   extra postgresql.conf lines, used when the cluster is created
#   HOTMESH_PG_PRELOAD=0  leave hotmesh out of shared_preload_libraries (no workers)
#   HOTMESH_PG_PRELOAD_MORE  more libraries to preload, comma-separated (e.g. auto_explain)
#   PG_CONFIG         the PostgreSQL whose programs run the cluster (default: pg_config on PATH)
# The server runs as OS user `postgres` when this is called as root (Postgres refuses
# to run as root). Clients connect over TCP as role postgres (trust, loopback only).
set -euo pipefail
CMD=${1:-}
[ $# -gt 0 ] && shift
PORT=${HOTMESH_PG_PORT:-28815}
DIR=${HOTMESH_PG_DIR:-/tmp/hotmesh-run/cluster}
DB=${HOTMESH_PG_DB:-hotmesh}
BIN=$("${PG_CONFIG:-pg_config}" --bindir)

as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
psql_() { "$BIN/psql" -X -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }
running() { [ -s "$DIR/data/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; }

init() {
  [ -s "$DIR/data/PG_VERSION" ] && return
  mkdir -p "$DIR"
  chmod 755 "$(dirname "$DIR")" 2>/dev/null || true
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
  as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --locale=C.UTF-8 -E UTF8 >/dev/null
  as_pg tee -a "$DIR/data/postgresql.conf" >/dev/null <<CONF
# --- hotmesh (scripts/pg-cluster.sh) ---
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
$(libs=$( [ "${HOTMESH_PG_PRELOAD:-1}" = 0 ] || echo hotmesh ); libs=$(echo "$libs,${HOTMESH_PG_PRELOAD_MORE:-}" | sed 's/^,//; s/,$//')
  [ -n "$libs" ] && echo "shared_preload_libraries = '$libs'" || echo "# hotmesh not preloaded" )
max_worker_processes = 32
log_line_prefix = '%m [%p] %b '
${HOTMESH_PG_CONF:-}
CONF
}

start() {
  init
  if ! running; then
    # RUST_BACKTRACE in the caller's shell would make every ERROR that passes through
    # the extension capture a backtrace into the log: slow and noisy. Keep it off.
    RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0 \
      as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null
  fi
  if [ "$(psql_ -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    psql_ -d postgres -qc "CREATE DATABASE \"$DB\""
  fi
  psql_ -d "$DB" -qc "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS hotmesh" >/dev/null
  echo "cluster up: port $PORT, data $DIR/data, log $DIR/server.log, database $DB"
}

stop() {
  if running; then as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w -t 60 stop >/dev/null; fi
}

case "$CMD" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if running; then echo "running (port $PORT)"; else echo "stopped"; exit 3; fi ;;
  destroy) stop; rm -rf "$DIR" ;;
  url) echo "postgres://postgres@127.0.0.1:$PORT/$DB" ;;
  psql) psql_ -d "$DB" "$@" ;;
  *) echo "usage: $0 start|stop|restart|status|destroy|url|psql [args]" >&2; exit 2 ;;
esac
