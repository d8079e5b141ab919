#!/usr/bin/env bash
# A project-local PostgreSQL 15 cluster with hotmesh preloaded.
#   scripts/pg-cluster.sh start|stop|restart|status|destroy|url|tls-root|psql [psql args]
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
# TLS: the cluster has a self-signed CA of its own, $DIR/tls/ca.crt (`tls-root` prints the
# path), and a server certificate it signed for localhost and 127.0.0.1; the server offers
# TLS (ssl = on) but does not require it, so plain URLs keep working and
#   postgres://postgres@localhost:$PORT/$DB?sslmode=verify-full&sslrootcert=$DIR/tls/ca.crt
# verifies the server. `start` adds it to a cluster created before it existed.
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
TLS=$DIR/tls

# The CA and the server certificate (made once, kept across restarts: a client holding
# ca.crt keeps trusting the server), and the postgresql.conf lines that use them.
# Idempotent: a cluster made before TLS gets both on its next `start`.
tls() {
  if [ ! -s "$TLS/server.crt" ]; then
    local tmp
    tmp=$(mktemp -d "$DIR/tls.XXXXXX")
    # P-256 keys: quick to make, and both OpenSSL (the server) and rustls (the client) take
    # them. The server certificate names what a client may verify (verify-full: rustls
    # checks the subjectAltName only), and must not claim to be a CA (rustls refuses that).
    if ! (cd "$tmp" && umask 077 &&
      openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout ca.key -out ca.crt -days 3650 -subj "/CN=hotmesh test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
      openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout server.key -out server.csr -subj "/CN=localhost" &&
      printf '%s\n' "subjectAltName = DNS:localhost, IP:127.0.0.1" "basicConstraints = critical, CA:FALSE" \
        "keyUsage = critical, digitalSignature" "extendedKeyUsage = serverAuth" >server.ext &&
      openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -CAserial ca.srl \
        -days 3650 -extfile server.ext -out server.crt &&
      rm server.csr server.ext && chmod 644 ca.crt server.crt) >"$DIR/tls-openssl.log" 2>&1; then
      cat "$DIR/tls-openssl.log" >&2
      rm -rf "$tmp"
      echo "pg-cluster.sh: openssl could not make the TLS files in $TLS" >&2
      exit 1
    fi
    rm -f "$DIR/tls-openssl.log"
    chmod 755 "$tmp"
    # the server refuses a key file that others can read or that it does not own
    if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$tmp"; fi
    rm -rf "$TLS" && mv "$tmp" "$TLS"
  fi
  if ! grep -qxF "ssl_cert_file = '$TLS/server.crt'" "$DIR/data/postgresql.conf"; then
    as_pg tee -a "$DIR/data/postgresql.conf" >/dev/null <<CONF
# --- hotmesh TLS (scripts/pg-cluster.sh): offered, not required ---
ssl = on
ssl_cert_file = '$TLS/server.crt'
ssl_key_file = '$TLS/server.key'
CONF
    # a server already running takes the ssl settings on a reload
    if running; then as_pg "$BIN/pg_ctl" -D "$DIR/data" reload >/dev/null; fi
  fi
}

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
# every e2e suite has a database of its own (over 16 of them): an engine worker each, and
# a bridge worker where a transport is configured
max_worker_processes = 64
hotmesh.max_databases = 40
log_line_prefix = '%m [%p] %b '
${HOTMESH_PG_CONF:-}
CONF
}

start() {
  init
  # a new cluster, and one made before TLS existed here, alike
  tls
  if ! running; then
    # RUST_BACKTRACE in the caller's shell would make every ERROR that passes through
    # the extension capture a backtrace into the log: slow and noisy. Keep it off.
    RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0 \
      as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null
  fi
  if [ "$(psql_ -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    psql_ -d postgres -qc "CREATE DATABASE \"$DB\""
  fi
  # a cluster made by an older build keeps its older SQL: bring it to the library just
  # installed (the upgrade scripts keep every row), or the new library runs on old tables
  psql_ -d "$DB" -qc "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS hotmesh; ALTER EXTENSION hotmesh UPDATE" >/dev/null
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
  tls-root) echo "$TLS/ca.crt" ;;
  psql) psql_ -d "$DB" "$@" ;;
  *) echo "usage: $0 start|stop|restart|status|destroy|url|tls-root|psql [args]" >&2; exit 2 ;;
esac
