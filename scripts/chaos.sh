#!/usr/bin/env bash
# The chaos suite: thousands of workflows run while worker processes, the engine worker,
# client backends and the whole server are killed again and again; then every job is
# checked: started, completed, lost, applied twice, stuck (all but the first two must be 0).
#
#   scripts/chaos.sh                                   # 3000 workflows over 180 s
#   CHAOS_WORKFLOWS=300 CHAOS_SECONDS=40 scripts/chaos.sh
#
# On its own it builds and installs the extension into a private PostgreSQL copy
# (scripts/pg-private.sh) and runs its own cluster (port CHAOS_PORT, 28900, under
# CHAOS_RUN_DIR, /tmp/chaos-run), destroyed at the end (CHAOS_KEEP=1 keeps it).
# Inside scripts/test.sh (HOTMESH_TEST_URL and HOTMESH_CLUSTER_SCRIPT set) it uses that
# cluster, in a database of its own (e2e_chaos), and restarts it with that script.
#
# Settings: CHAOS_WORKFLOWS (3000), CHAOS_SECONDS (180: workflows start evenly over this
# time and the kills go on as long), CHAOS_WORKERS (3 worker processes), CHAOS_KILL_MIN and
# CHAOS_KILL_MAX (1 and 3: seconds between two kills), CHAOS_DOWN (1: seconds the server
# stays down), CHAOS_DRAIN_SECONDS (120: after the last start, how long every job has to
# end), CHAOS_SKIP_INSTALL=1 (use what is installed), CHAOS_PG_PRIVATE (the private
# PostgreSQL copy, $CHAOS_RUN_DIR/pg), and the driver's (tests/chaos/main.rs: timers, signals, ...).
#
# Kills, in a fixed rotation (so a short run has every kind):
#   worker   SIGKILL of a Rust worker process (hotmesh-chaos worker), restarted at once
#   backend  pg_terminate_backend of up to 3 client backends whose query calls hotmesh.*
#   engine   pg_terminate_backend of the database's engine worker (the launcher restarts it)
#   crash    kill -9 of the engine worker: PostgreSQL resets every backend (crash restart)
#   server   pg_ctl stop -m immediate, then start
#   turn     hotmesh.turn_ring(true): the ring of partitions turns under the load (its jobs
#            that have not ended move to the part before; ARCHITECTURE.md, "Retention")
#
# Bridge mode: CHAOS_BRIDGE=redis or nats. The worker processes run on that transport (a
# redis-server or nats-server started here on port CHAOS_BRIDGE_PORT, 28901, its data under
# the logs) and a bridge process (hotmesh-chaos bridge, hold CHAOS_BRIDGE_HOLD, 6 s) relays
# chaos.work; the judge is the same. The rotation adds two kills:
#   bridge     SIGKILL of the bridge, restarted at once (what it held comes back after the hold)
#   transport  kill -9 of redis-server / nats-server, started again after CHAOS_DOWN, same data
#   CHAOS_BRIDGE=nats CHAOS_WORKFLOWS=300 CHAOS_SECONDS=40 scripts/chaos.sh
# With CHAOS_BRIDGE_IN=database the bridge is the extension's bridge worker instead (a row in
# hotmesh.transports), and the bridge kill is pg_terminate_backend of it (its engine worker
# starts another).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CHAOS_WORKFLOWS=${CHAOS_WORKFLOWS:-3000}
export CHAOS_SECONDS=${CHAOS_SECONDS:-180}
export CHAOS_DRAIN_SECONDS=${CHAOS_DRAIN_SECONDS:-120}
WORKERS=${CHAOS_WORKERS:-3}
KILL_MIN=${CHAOS_KILL_MIN:-1}
KILL_MAX=${CHAOS_KILL_MAX:-3}
DOWN=${CHAOS_DOWN:-1}
export PGCONNECT_TIMEOUT=3

if [ -n "${HOTMESH_TEST_URL:-}" ] && [ -n "${HOTMESH_CLUSTER_SCRIPT:-}" ]; then
  # inside scripts/test.sh: its cluster (PG_CONFIG, HOTMESH_PG_DIR/PORT are exported there)
  OWN=0
  CLUSTER=$HOTMESH_CLUSTER_SCRIPT
  DB=e2e_chaos
  URL=${HOTMESH_TEST_URL%/*}/$DB
  LOGS=${HOTMESH_RUN_DIR:-/tmp/hotmesh-run}/chaos
else
  OWN=1
  RUN=${CHAOS_RUN_DIR:-/tmp/chaos-run}
  mkdir -p "$RUN" && chmod 755 "$RUN"
  eval "$(bash scripts/pg-private.sh "${CHAOS_PG_PRIVATE:-$RUN/pg}")"
  if [ "${CHAOS_SKIP_INSTALL:-0}" != 1 ]; then
    bash scripts/install.sh --pg-config "$PG_CONFIG" >/dev/null
  fi
  export HOTMESH_PG_DIR=$RUN/chaos-cluster
  export HOTMESH_PG_PORT=${CHAOS_PORT:-28900}
  export HOTMESH_PG_DB=chaos
  export HOTMESH_PG_CONF="max_connections = 200"
  CLUSTER=$ROOT/scripts/pg-cluster.sh
  DB=chaos
  URL="postgres://postgres@127.0.0.1:$HOTMESH_PG_PORT/$DB"
  LOGS=$RUN/chaos-logs
fi
PORT=${HOTMESH_PG_PORT:?}
PGDATA=${HOTMESH_PG_DIR:?}/data
BIN=$("${PG_CONFIG:-pg_config}" --bindir)
export CHAOS_URLS=$URL
rm -rf "$LOGS" && mkdir -p "$LOGS"

as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
# one query; empty output (and no failure) when the server is down
q() { "$BIN/psql" -X -h 127.0.0.1 -p "$PORT" -U postgres -d "${2:-$DB}" -Atq -c "$1" 2>/dev/null || true; }

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build -q -p hotmesh-tests --bin hotmesh-chaos
CHAOS=$TARGET/debug/hotmesh-chaos

running() { as_pg "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }
# Waits until the server accepts connections, starting it if it is down. Never stop a
# server with -m fast while it is in crash recovery: PostgreSQL 15 (15.20 here) can hang
# there (the startup process leaves, the checkpointer is never told to), so the stops
# below are immediate, and a fast stop (test.sh's, at the end) only comes after this.
ensure_up() {
  local deadline=$((SECONDS + 120))
  until [ "$(q 'SELECT 1')" = 1 ]; do
    if ! running; then "$CLUSTER" start >/dev/null 2>&1 || true; fi
    if [ "$SECONDS" -gt "$deadline" ]; then
      echo "chaos: the server did not come back within 120 s" >&2
      return 1
    fi
    sleep 0.3
  done
}

# this run's part of the server log: kept in $LOGS, its ERRORs and WARNINGs counted
SERVER_LOG=$HOTMESH_PG_DIR/server.log
LOG_FROM=0
server_log_summary() {
  [ -f "$SERVER_LOG" ] || return 0
  tail -c +$((LOG_FROM + 1)) "$SERVER_LOG" >"$LOGS/server.log" 2>/dev/null || return 0
  grep -E ' (ERROR|WARNING|PANIC):' "$LOGS/server.log" | sed -E 's/^.*(ERROR|WARNING|PANIC): +//' |
    sed -E 's/[0-9]+/N/g' | sort | uniq -c | sort -rn >"$LOGS/server-errors.txt" || true
  echo "chaos: server log: $(grep -cE ' PANIC:' "$LOGS/server.log") PANIC, $(grep -cE ' ERROR:' "$LOGS/server.log") ERROR, $(grep -cE ' WARNING:' "$LOGS/server.log") WARNING lines (by message: $LOGS/server-errors.txt)"
}

# the bridge mode's transport server and bridge process
BRIDGE=${CHAOS_BRIDGE:-}
TPORT=${CHAOS_BRIDGE_PORT:-28901}
case $BRIDGE in
  "") ;;
  redis) export CHAOS_STREAM_URL=redis://127.0.0.1:$TPORT/ ;;
  nats) export CHAOS_STREAM_URL=nats://127.0.0.1:$TPORT ;;
  *) echo "chaos: CHAOS_BRIDGE is redis or nats, not $BRIDGE" >&2; exit 2 ;;
esac
TPID=
BPID=
start_transport() {
  mkdir -p "$LOGS/$BRIDGE-data"
  if [ "$BRIDGE" = redis ]; then
    redis-server --port "$TPORT" --bind 127.0.0.1 --dir "$LOGS/$BRIDGE-data" --appendonly yes \
      --appendfsync always --save '' >>"$LOGS/redis.log" 2>&1 &
  else
    # Debian puts nats-server in /usr/sbin
    "$(command -v nats-server || echo /usr/sbin/nats-server)" -a 127.0.0.1 -p "$TPORT" -js \
      -sd "$LOGS/$BRIDGE-data" >>"$LOGS/nats.log" 2>&1 &
  fi
  TPID=$!
  local i
  for i in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$TPORT") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "chaos: $BRIDGE did not start on port $TPORT (log: $LOGS/$BRIDGE.log)" >&2
  return 1
}
BRIDGE_IN=${CHAOS_BRIDGE_IN:-process}
start_bridge() {
  if [ "$BRIDGE_IN" = database ]; then
    q "INSERT INTO hotmesh.transports (name, url, topics, hold)
       VALUES ('chaos', '$CHAOS_STREAM_URL', '{chaos.work}', '${CHAOS_BRIDGE_HOLD:-6} seconds')
       ON CONFLICT (name) DO NOTHING" >/dev/null
    return
  fi
  "$CHAOS" bridge >>"$LOGS/bridge.log" 2>&1 &
  BPID=$!
}

declare -a WPID=()
DPID=
cleanup() {
  set +e
  { for p in "${WPID[@]}" $DPID $BPID $TPID; do kill -9 "$p"; wait "$p"; done; } 2>/dev/null
  server_log_summary
  if [ "$OWN" = 1 ] && [ "${CHAOS_KEEP:-0}" != 1 ]; then
    as_pg "$BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
    "$CLUSTER" destroy
  else
    ensure_up
  fi
}
trap cleanup EXIT

if [ "$OWN" = 1 ]; then
  "$CLUSTER" destroy
  "$CLUSTER" start >/dev/null
else
  "$CLUSTER" start >/dev/null   # idempotent: it runs already
  q "DROP DATABASE IF EXISTS $DB WITH (FORCE)" postgres >/dev/null
  q "CREATE DATABASE $DB" postgres >/dev/null
fi
q "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS hotmesh" >/dev/null
"$CHAOS" setup 2>>"$LOGS/setup.log"

start_worker() {
  "$CHAOS" worker >>"$LOGS/worker-$1.log" 2>&1 &
  WPID[$1]=$!
}
if [ -n "$BRIDGE" ]; then
  start_transport
  start_bridge
fi
for i in $(seq 0 $((WORKERS - 1))); do start_worker "$i"; done

declare -A KILLS=([worker]=0 [backend]=0 [engine]=0 [crash]=0 [server]=0 [bridge]=0 [transport]=0 [turn]=0 [skipped]=0)
kill_bridge() {
  if [ "$BRIDGE_IN" = database ]; then
    local t
    t=$(q "SELECT bool_or(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE datname = current_database() AND backend_type = 'hotmesh bridge'")
    if [ "$t" = t ]; then KILLS[bridge]=$((KILLS[bridge] + 1)); else KILLS[skipped]=$((KILLS[skipped] + 1)); fi
    return
  fi
  kill -9 "$BPID" 2>/dev/null || true
  wait "$BPID" 2>/dev/null || true
  start_bridge
  KILLS[bridge]=$((KILLS[bridge] + 1))
}
kill_transport() {
  kill -9 "$TPID" 2>/dev/null || true
  wait "$TPID" 2>/dev/null || true
  sleep "$DOWN"
  start_transport
  KILLS[transport]=$((KILLS[transport] + 1))
}
kill_worker() {
  local i=$((RANDOM % WORKERS))
  kill -9 "${WPID[$i]}" 2>/dev/null || true
  wait "${WPID[$i]}" 2>/dev/null || true
  start_worker "$i"
  KILLS[worker]=$((KILLS[worker] + 1))
}
kill_backends() {
  local n
  n=$(q "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM (
           SELECT pid FROM pg_stat_activity
            WHERE datname = current_database() AND backend_type = 'client backend'
              AND pid <> pg_backend_pid() AND query LIKE '%hotmesh.%'
            ORDER BY state = 'active' DESC, random() LIMIT 3) s")
  if [ "${n:-0}" -gt 0 ]; then KILLS[backend]=$((KILLS[backend] + n)); else KILLS[skipped]=$((KILLS[skipped] + 1)); fi
}
engine_pid() { q "SELECT pid FROM hotmesh.workers() WHERE database = current_database() AND pid IS NOT NULL"; }
kill_engine() {
  local t
  t=$(q "SELECT pg_terminate_backend(pid) FROM hotmesh.workers() WHERE database = current_database() AND pid IS NOT NULL")
  if [ "$t" = t ]; then KILLS[engine]=$((KILLS[engine] + 1)); else KILLS[skipped]=$((KILLS[skipped] + 1)); fi
}
crash_engine() {
  local pid
  pid=$(engine_pid)
  if [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; then
    KILLS[crash]=$((KILLS[crash] + 1))
  else
    KILLS[skipped]=$((KILLS[skipped] + 1))
  fi
}
restart_server() {
  as_pg "$BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
  sleep "$DOWN"
  ensure_up
  KILLS[server]=$((KILLS[server] + 1))
}
turn_ring() {
  # a turn that has no lock within 200 ms gives up (and changes nothing): skipped
  if [ "$(q "SELECT hotmesh.turn_ring(true)")" = t ]; then KILLS[turn]=$((KILLS[turn] + 1)); else KILLS[skipped]=$((KILLS[skipped] + 1)); fi
}
pause() { sleep "$(awk -v a="$KILL_MIN" -v b="$KILL_MAX" -v r="$RANDOM" 'BEGIN { printf "%.2f", a + (b - a) * r / 32767 }')"; }

LOG_FROM=$(stat -c %s "$SERVER_LOG" 2>/dev/null || echo 0)
T0=$SECONDS
"$CHAOS" drive >"$LOGS/drive.out" 2>"$LOGS/drive.log" &
DPID=$!
echo "chaos: $CHAOS_WORKFLOWS workflows over $CHAOS_SECONDS s, $WORKERS worker processes, database $DB on port $PORT (logs: $LOGS)"
ROTATION=(worker backend turn engine worker backend server worker turn backend crash)
if [ -n "$BRIDGE" ]; then
  echo "chaos: bridge mode: workers on $CHAOS_STREAM_URL, chaos.work relayed by $([ "$BRIDGE_IN" = database ] && echo "the bridge worker (hotmesh.transports)" || echo "hotmesh-chaos bridge")"
  ROTATION=(worker bridge backend turn transport engine server worker bridge crash turn transport)
fi
i=0
while [ $((SECONDS - T0)) -lt "$CHAOS_SECONDS" ] && kill -0 "$DPID" 2>/dev/null; do
  pause
  case ${ROTATION[$((i % ${#ROTATION[@]}))]} in
    worker) kill_worker ;;
    backend) kill_backends ;;
    engine) kill_engine ;;
    crash) crash_engine ;;
    server) restart_server ;;
    bridge) kill_bridge ;;
    transport) kill_transport ;;
    turn) turn_ring ;;
  esac
  i=$((i + 1))
done
# the end of the chaos: the server up, every worker process alive, then the driver's verdict
ensure_up
if [ -n "$BRIDGE" ]; then
  kill -0 "$TPID" 2>/dev/null || start_transport
  kill -0 "$BPID" 2>/dev/null || start_bridge
fi
for j in $(seq 0 $((WORKERS - 1))); do
  kill -0 "${WPID[$j]}" 2>/dev/null || start_worker "$j"
done
echo "chaos: kills: worker processes ${KILLS[worker]}, client backends ${KILLS[backend]}, engine worker terminated ${KILLS[engine]}, engine worker kill -9 (crash restart) ${KILLS[crash]}, server stop -m immediate ${KILLS[server]}, ring turns ${KILLS[turn]}$([ -n "$BRIDGE" ] && echo ", bridge $([ "$BRIDGE_IN" = database ] && echo "worker terminated" || echo SIGKILL) ${KILLS[bridge]}, $BRIDGE kill -9 ${KILLS[transport]}") (skipped: ${KILLS[skipped]}, the target was down)"
rc=0
wait "$DPID" || rc=$?
DPID=
cat "$LOGS/drive.out"
echo "chaos: engine worker: $(q "SELECT format('state %s, starts %s, errors %s', state, starts, errors) FROM hotmesh.workers() WHERE database = current_database()")"
echo "chaos: took $((SECONDS - T0)) s"
if [ "$rc" != 0 ]; then
  echo "chaos: FAILED (driver log: $LOGS/drive.log)" >&2
  tail -40 "$LOGS/drive.log" >&2
fi
exit "$rc"
