#!/usr/bin/env bash
# High availability on PostgreSQL's own streaming replication, tested: a primary and a
# synchronous hot standby, both with hotmesh preloaded; workflows run with the Rust client;
# under load the primary dies (pg_ctl stop -m immediate) and the standby is promoted; the
# clients find the new primary; then every workflow whose publish committed must complete
# exactly once, and the new primary's engine worker must have fired timers, handed out
# again the messages workers held when the primary died, and applied signals.
#
#   scripts/failover-test.sh
#
# It builds and installs the extension into a private PostgreSQL copy (CHAOS_PG_PRIVATE,
# /tmp/chaos-run/pg; CHAOS_SKIP_INSTALL=1 uses what is there) and runs its clusters under
# FAILOVER_RUN_DIR (/tmp/chaos-run/failover) on ports FAILOVER_PORT and FAILOVER_PORT+1
# (28910, 28911), all removed at the end (FAILOVER_KEEP=1 keeps them).
# Settings: FAILOVER_WORKFLOWS (600), FAILOVER_SECONDS (20: workflows start evenly over
# this time), FAILOVER_AT (10: seconds into the run when the primary dies),
# FAILOVER_SYNC=0 (asynchronous replication: committed steps may be lost; see
# docs/high-availability.md), and the driver's CHAOS_* settings (tests/chaos/main.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN=${FAILOVER_RUN_DIR:-/tmp/chaos-run/failover}
P_PORT=${FAILOVER_PORT:-28910}
S_PORT=$((P_PORT + 1))
DB=failover
N=${FAILOVER_WORKFLOWS:-600}
SECS=${FAILOVER_SECONDS:-20}
AT=${FAILOVER_AT:-10}
SYNC=${FAILOVER_SYNC:-1}
export PGCONNECT_TIMEOUT=3

mkdir -p "$(dirname "$RUN")" && chmod 755 "$(dirname "$RUN")"
eval "$(bash scripts/pg-private.sh "${CHAOS_PG_PRIVATE:-/tmp/chaos-run/pg}")"
if [ "${CHAOS_SKIP_INSTALL:-0}" != 1 ]; then
  bash scripts/install.sh --pg-config "$PG_CONFIG" >/dev/null
fi
BIN=$("$PG_CONFIG" --bindir)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build -q -p hotmesh-tests --bin hotmesh-chaos
CHAOS=$TARGET/debug/hotmesh-chaos

as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
q() { "$BIN/psql" -X -h 127.0.0.1 -p "$1" -U postgres -d "${3:-$DB}" -Atq -c "$2"; }
PRIMARY=$RUN/primary
STANDBY=$RUN/standby
P_URL="postgres://postgres@127.0.0.1:$P_PORT/$DB"
S_URL="postgres://postgres@127.0.0.1:$S_PORT/$DB"
LOGS=$RUN/logs
fail() {
  echo "failover: FAILED: $*" >&2
  exit 1
}
check() { # check "what" "actual" "expected"
  if [ "$2" = "$3" ]; then echo "failover: ok: $1 ($2)"; else fail "$1: got '$2', expected '$3'"; fi
}

declare -a PIDS=()
stop_all() {
  for d in "$PRIMARY" "$STANDBY"; do
    if [ -s "$d/data/postmaster.pid" ]; then as_pg "$BIN/pg_ctl" -D "$d/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
  done
}
cleanup() {
  set +e
  { for p in "${PIDS[@]}"; do kill -9 "$p"; wait "$p"; done; } 2>/dev/null
  stop_all
  if [ "${FAILOVER_KEEP:-0}" != 1 ]; then
    # the logs outlive the clusters
    for d in primary standby; do cp "$RUN/$d/server.log" "$LOGS/$d-server.log" 2>/dev/null; done
    rm -rf "$PRIMARY" "$STANDBY"
  fi
}
trap cleanup EXIT
stop_all
rm -rf "$RUN" && mkdir -p "$LOGS"
T0=$SECONDS

# 1. the primary (scripts/pg-cluster.sh: hotmesh preloaded, the database and the extension)
HOTMESH_PG_DIR=$PRIMARY HOTMESH_PG_PORT=$P_PORT HOTMESH_PG_DB=$DB \
  HOTMESH_PG_CONF="max_connections = 200
wal_level = replica
max_wal_senders = 10
wal_keep_size = '256MB'
hot_standby = on" \
  bash scripts/pg-cluster.sh start >/dev/null

# 2. the standby: a base backup of the primary, with -R (standby.signal and primary_conninfo,
#    under the application_name the primary's synchronous_standby_names will name)
install -d -o postgres -g postgres "$STANDBY"
as_pg "$BIN/pg_basebackup" -D "$STANDBY/data" -X stream -R -c fast \
  -d "host=127.0.0.1 port=$P_PORT user=postgres application_name=standby1"
as_pg tee -a "$STANDBY/data/postgresql.conf" >/dev/null <<CONF
# --- the standby (scripts/failover-test.sh) ---
port = $S_PORT
unix_socket_directories = '$STANDBY'
CONF
# (without RUST_BACKTRACE: see docs/configuration.md)
RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0 \
  as_pg "$BIN/pg_ctl" -D "$STANDBY/data" -l "$STANDBY/server.log" -w -t 60 start >/dev/null
check "the standby is in recovery" "$(q "$S_PORT" 'SELECT pg_is_in_recovery()')" t
check "the standby preloads hotmesh" "$(q "$S_PORT" 'SHOW shared_preload_libraries' | tr ',' '\n' | grep -x hotmesh)" hotmesh

# 3. synchronous replication: a commit returns once the standby has flushed it
if [ "$SYNC" = 1 ]; then
  q "$P_PORT" "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" >/dev/null
  q "$P_PORT" "SELECT pg_reload_conf()" >/dev/null
  for _ in $(seq 1 100); do
    [ "$(q "$P_PORT" "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'")" = sync ] && break
    sleep 0.1
  done
  check "the standby replicates synchronously" "$(q "$P_PORT" "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'")" sync
else
  echo "failover: asynchronous replication (FAILOVER_SYNC=0): committed work may be lost"
fi

# 4. the app, deployed on the primary (replicated like any other rows)
CHAOS_URLS=$P_URL "$CHAOS" setup 2>>"$LOGS/setup.log"

# 5. on the standby, the engine does nothing: no launcher, no engine worker (they start
#    when recovery finishes), and writes are refused
check "hotmesh processes on the standby" "$(q "$S_PORT" "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'hotmesh%'")" 0
check "hotmesh.workers() on the standby" "$(q "$S_PORT" "SELECT count(*) FROM hotmesh.workers()")" 0
check "the app replicated to the standby" "$(q "$S_PORT" "SELECT count(*) FROM hotmesh.apps WHERE app_id = 'chaos'")" 1
check "wait_for_engine on the standby" "$(q "$S_PORT" "SELECT hotmesh.wait_for_engine(0.2)")" f
# Reads work there; a write is refused with SQLSTATE 25006 (read_only_sql_transaction), as
# Postgres refuses any write on a standby
check "a read on the standby" "$(q "$S_PORT" "SELECT count(*) FROM hotmesh.versions WHERE app_id = 'chaos'")" 1
rd=$(q "$S_PORT" "SELECT hotmesh.get_status('no-such-job')" 2>&1 || true)
case "$rd" in
  *"Job no-such-job not found"*) echo "failover: ok: hotmesh.get_status runs on the standby ($(echo "$rd" | head -1))" ;;
  *) fail "hotmesh.get_status on the standby: $rd" ;;
esac
ro=$(q "$S_PORT" "SELECT hotmesh.pub('chaos.start', '{\"sleep\": 1}')" 2>&1 || true)
case "$ro" in
  *"read-only transaction"*) echo "failover: ok: hotmesh.pub on the standby is refused ($(echo "$ro" | head -1))" ;;
  *) fail "hotmesh.pub on the standby: $ro" ;;
esac

# 6. the load: worker processes and the driver, all given both servers (they use the one
#    that is read-write, and look again when it goes away)
export CHAOS_URLS="$P_URL,$S_URL"
export CHAOS_RUN_ID="fo-$(date +%s)-"
export CHAOS_WORKFLOWS=$N CHAOS_SECONDS=$SECS
export CHAOS_DRAIN_SECONDS=${CHAOS_DRAIN_SECONDS:-60}
# timers of 2-6 s and signals up to 6 s after the start: many wait across the failover;
# callbacks of up to 300 ms with 5 s reservations: many messages are reserved when it comes
export CHAOS_TIMER_MIN=${CHAOS_TIMER_MIN:-2} CHAOS_TIMER_MAX=${CHAOS_TIMER_MAX:-6}
export CHAOS_SIGNAL_DELAY_MS=${CHAOS_SIGNAL_DELAY_MS:-6000}
export CHAOS_WORK_MS=${CHAOS_WORK_MS:-300} CHAOS_RESERVATION=${CHAOS_RESERVATION:-5}
export CHAOS_RESULT_FILE=$LOGS/result.json
for i in 0 1; do
  "$CHAOS" worker >"$LOGS/worker-$i.log" 2>&1 &
  PIDS+=($!)
done
L0=$SECONDS
"$CHAOS" drive >"$LOGS/drive.out" 2>"$LOGS/drive.log" &
DPID=$!
PIDS+=("$DPID")
echo "failover: $N workflows over $SECS s; the primary dies at $AT s"
sleep "$AT"

# 7. the failover: what the primary holds when it dies, then the standby takes over
snap=$(q "$P_PORT" "SELECT format('jobs running %s, worker messages reserved %s, timers waiting %s, hooks waiting for a signal %s',
         (SELECT count(*) FROM hotmesh.jobs WHERE status > 0),
         (SELECT count(*) FROM hotmesh.worker_stream WHERE reserved_until > now()),
         (SELECT count(*) FROM hotmesh.engine_stream WHERE type = 'timehook'),
         (SELECT count(*) FROM hotmesh.signal_hooks))")
echo "failover: at $((SECONDS - L0)) s the primary holds: $snap"
as_pg "$BIN/pg_ctl" -D "$PRIMARY/data" -m immediate -w stop >/dev/null
F0=$SECONDS
as_pg "$BIN/pg_ctl" -D "$STANDBY/data" -w -t 60 promote >/dev/null
PROMOTED_AT=$(q "$S_PORT" "SELECT now()")
check "the promoted standby accepts writes" "$(q "$S_PORT" 'SELECT pg_is_in_recovery()')" f
check "its engine worker starts" "$(q "$S_PORT" 'SELECT hotmesh.wait_for_engine(20)')" t
echo "failover: the standby was promoted $((SECONDS - F0)) s after the primary died; its engine worker runs"

# 8. the driver's verdict: every job whose publish committed ended, once
rc=0
wait "$DPID" || rc=$?
cat "$LOGS/drive.out"
[ "$rc" = 0 ] || { tail -30 "$LOGS/drive.log" >&2; fail "the driver found jobs lost, applied twice or stuck"; }

# 9. the new primary's engine worker did the failover's part
after() { q "$S_PORT" "$1"; }
W="j.id LIKE '$CHAOS_RUN_ID%' AND a.activity_id = 'w' AND a.finished_at > '$PROMOTED_AT'"
timers=$(after "SELECT count(*) FROM hotmesh.jobs j JOIN hotmesh.activities a ON a.job_id = j.id WHERE $W AND j.data->>'by' = 'timer'")
signals=$(after "SELECT count(*) FROM hotmesh.jobs j JOIN hotmesh.activities a ON a.job_id = j.id WHERE $W AND j.data->>'by' = 'signal'")
redelivered=$(after "SELECT count(*) FROM public.chaos_ledger WHERE job_id LIKE '$CHAOS_RUN_ID%' AND deliveries > 1 AND at > '$PROMOTED_AT'")
cycles=$(after "SELECT count(*) FROM hotmesh.activities WHERE job_id LIKE '$CHAOS_RUN_ID%' AND activity_id = 'again' AND finished_at > '$PROMOTED_AT'")
echo "failover: after the promotion: $timers timers fired, $signals signals applied, $redelivered messages handed out again (reserved on the old primary), $cycles cycles run by the new engine worker"
[ "$timers" -gt 0 ] || fail "no timer fired on the new primary"
[ "$signals" -gt 0 ] || fail "no signal was applied on the new primary"
[ "$redelivered" -gt 0 ] || fail "no reserved message was handed out again on the new primary"
# (the refusals step 5 asked for are expected)
standby_errors() {
  grep -iE 'hotmesh.*(error|warning)|(error|warning).*hotmesh' "$STANDBY/server.log" \
    | grep -v 'read-only transaction\|Job no-such-job not found' || true
}
if [ -n "$(standby_errors)" ]; then
  standby_errors | head -5
  fail "the standby's log has hotmesh errors"
fi
echo "failover: ok: nothing of hotmesh's in the standby's log but: $(grep -c 'hotmesh' "$STANDBY/server.log") lines ($(grep -o 'hotmesh [a-z]* started' "$STANDBY/server.log" | sort | uniq -c | tr -s ' ' | paste -sd, -))"
echo "failover: passed in $((SECONDS - T0)) s"
