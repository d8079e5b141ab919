#!/usr/bin/env bash
# The floor of the data model: the rows a workflow of the engine benchmark's 3-step graph
# writes and reads (a start: its job, two activity rows and a message; each worker step:
# the message reserved, then removed, its job row updated, its activity rows read, one
# finished and the next written, the next message queued), written by hand in one
# statement per transaction, with no engine at all (scripts/floor/*.sql). What these
# reach against the one-INSERT pgbench rate is what any engine on these tables could
# reach at best. Beside each, the engine on the same cluster: its start (hotmesh.pub),
# and tests/benches/engine.rs's (a) and (g) in the same shapes (4 starting sessions, 4
# workers, batches of BATCH).
#   scripts/install.sh --release && scripts/pg-cluster.sh restart && scripts/bench-floor.sh
# Settings: HOTMESH_PG_PORT (28815), T (seconds per part, 15), WORKFLOWS for the
# backlog (9000), BATCH (messages a worker takes at once, 10).
set -euo pipefail
# plain TCP, as the figures in docs/benchmarks.md and the peers' were measured: the test
# clusters offer TLS, and libpq and sqlx would take it (sslmode prefer) without this
export PGSSLMODE=${PGSSLMODE:-disable}
cd "$(dirname "$0")/.."
PORT=${HOTMESH_PG_PORT:-28815}
T=${T:-15}
WORKFLOWS=${WORKFLOWS:-9000}
BATCH=${BATCH:-10}
DB=bench_floor
F=scripts/floor
P=(env PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
PGBENCH=("$("${PG_CONFIG:-pg_config}" --bindir)/pgbench" -n -h 127.0.0.1 -p "$PORT" -U postgres -M prepared)
# the batch statement's plan as the engine's are: probes by key, nested loops
NESTED="-c enable_hashjoin=off -c enable_mergejoin=off -c enable_seqscan=off"
tps() { sed -n 's/^tps = \([0-9]*\).*/\1/p'; }
fresh() {
  "${P[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
  "${P[@]}" -d $DB -c "CREATE EXTENSION hotmesh" -c "CREATE TABLE commit_probe (id bigserial PRIMARY KEY, v int)" >/dev/null
  # the app of tests/benches/engine.rs, for hotmesh.pub
  local app
  app=$(sed -n '/^const APP: &str = r#"/,/^"#;/p' tests/benches/engine.rs | sed '1d;$d')
  "${P[@]}" -d $DB -v app="$app" >/dev/null <<'SQL'
SELECT hotmesh.deploy(:'app');
SELECT hotmesh.activate('bench', '1');
SQL
}
# pgbench with a script of scripts/floor; its errors shown when it fails
by_hand() {
  local out
  out=$(mktemp)
  if ! "${PGBENCH[@]}" "$@" $DB >"$out" 2>&1; then
    echo "bench-floor: pgbench $* failed:" >&2
    grep -m3 -E 'error|ERROR' "$out" >&2 || true
    rm -f "$out"
    return 1
  fi
  cat "$out"
  rm -f "$out"
}
finished() { "${P[@]}" -d $DB -c "SELECT count(*) FROM hotmesh.activities_p0 WHERE type = 'worker' AND status = 'done'"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
fresh
ceiling=$("${PGBENCH[@]}" -c 8 -j 2 -T 10 -f $F/insert.sql $DB 2>/dev/null | tps)
echo "(d) pgbench, one INSERT per transaction, 8 clients, 10 s: $ceiling tps"

# starts alone, 4 clients each
fresh
by_hand=$(by_hand -c 4 -j 2 -T 10 -f $F/start.sql | tps)
fresh
engine=$("${PGBENCH[@]}" -c 4 -j 2 -T 10 -f $F/pub.sql $DB 2>/dev/null | tps)
echo "(h) starts, 4 clients, 10 s: by hand $by_hand/s, hotmesh.pub $engine/s ($(ratio "$engine" "$by_hand") of by hand)"

# the mixed load by hand: (a)'s shape, 4 sessions starting, 4 workers in batches of BATCH
fresh
before=$(finished)
by_hand -c 4 -j 1 -T "$T" -f $F/start.sql >/dev/null &
starting=$!
PGOPTIONS="$NESTED" by_hand -c 4 -j 1 -T "$T" -D batch="$BATCH" -f $F/work.sql >/dev/null
wait $starting
steps=$(( ($(finished) - before) / T ))
left=$("${P[@]}" -d $DB -c "SELECT count(*) FROM hotmesh.worker_stream")
echo "(h) the mixed load by hand, 4 starting, 4 workers, batches of $BATCH, $T s: $steps worker steps/s ($(( steps / 3 )) workflows/s, $left messages left): $(ratio "$steps" "$ceiling") of pgbench"
engine() {
  fresh
  HOTMESH_DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/$DB" BENCH_ONLY=$1 BENCH_WORKFLOWS=$WORKFLOWS BENCH_BATCH=$BATCH \
    BENCH_WORKERS=4 cargo bench -q -p hotmesh-tests --bench engine 2>/dev/null | grep '^('
}
a=$(engine a)
steps=$(echo "$a" | sed -n 's/.* \([0-9]*\) worker steps\/s.*/\1/p')
echo "    the engine's (a): $steps worker steps/s: $(ratio "${steps:-0}" "$ceiling") of pgbench"

# a backlog by hand: (g)'s shape
fresh
by_hand -c 4 -j 1 -t $(( WORKFLOWS / 4 )) -f $F/start.sql >/dev/null
t0=$(date +%s.%N)
log=$(mktemp)
PGOPTIONS="$NESTED" "${PGBENCH[@]}" -c 4 -j 1 -T 600 -D batch="$BATCH" -f $F/work.sql $DB >"$log" 2>&1 &
draining=$!
# until the queue is empty; pgbench gone first (its workers failed, or 600 s passed) is an error
while [ "$("${P[@]}" -d $DB -c 'SELECT count(*) FROM hotmesh.worker_stream')" != 0 ]; do
  if ! kill -0 $draining 2>/dev/null; then
    echo "bench-floor: the workers by hand stopped with messages left:" >&2
    grep -m3 -E 'error|ERROR' "$log" >&2 || true
    exit 1
  fi
  sleep 0.05
done
t1=$(date +%s.%N)
kill $draining 2>/dev/null || true
wait $draining 2>/dev/null || true
rm -f "$log"
steps=$(awk -v a="$t0" -v b="$t1" -v s="$(finished)" 'BEGIN { printf "%.0f", s / (b - a) }')
echo "(h) a backlog of $WORKFLOWS workflows by hand, 4 workers, batches of $BATCH: $steps worker steps/s: $(ratio "$steps" "$ceiling") of pgbench"
g=$(engine g)
steps=$(echo "$g" | sed -n 's/.* \([0-9]*\) worker steps\/s.*/\1/p')
echo "    the engine's (g): $steps worker steps/s: $(ratio "${steps:-0}" "$ceiling") of pgbench"
after=$("${PGBENCH[@]}" -c 8 -j 2 -T 10 -f $F/insert.sql $DB 2>/dev/null | tps)
echo "(d) pgbench again, after: $after tps (the ratios above are against the first)"
"${P[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
