#!/usr/bin/env bash
# Every benchmark of docs/benchmarks.md in one run, each beside the machine it ran on and
# the cluster's commit ceiling measured in the same run (absolute figures differ twofold
# between machines of the same size: compare ratios).
#   scripts/install.sh --release && scripts/pg-cluster.sh restart && scripts/bench-all.sh
# Settings: HOTMESH_PG_PORT (28815), BENCH_WORKERS (2,4), BENCH_CONCURRENCY for (f) (8),
# BENCH_ROUNDS for the scale part (2),
# BENCH_KEPT (1000000), BENCH_SCALE=0 to skip the scale part, BENCH_DRAIN_BATCH for (g) (50).
set -euo pipefail
# plain TCP, as the figures in docs/benchmarks.md and the peers' were measured: the test
# clusters offer TLS, and libpq and sqlx would take it (sslmode prefer) without this
export PGSSLMODE=${PGSSLMODE:-disable}
cd "$(dirname "$0")/.."
PORT=${HOTMESH_PG_PORT:-28815}
P=(psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "server: $("${P[@]}" -d postgres -c 'SELECT version()' | cut -d, -f1), hotmesh $("${P[@]}" -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'hotmesh'"), synchronous_commit $("${P[@]}" -d postgres -c 'SHOW synchronous_commit')"

"${P[@]}" -d postgres -c "DROP DATABASE IF EXISTS bench WITH (FORCE)" -c "CREATE DATABASE bench"
"${P[@]}" -d bench -c "CREATE EXTENSION hotmesh" -c "CREATE TABLE commit_probe (id bigserial PRIMARY KEY, v int)"
echo 'INSERT INTO commit_probe (v) VALUES (1);' > /tmp/hotmesh-commit-probe.sql
ceiling() {
  "$("${PG_CONFIG:-pg_config}" --bindir)/pgbench" -n -h 127.0.0.1 -p "$PORT" -U postgres -c 8 -j 2 -T 10 \
    -f /tmp/hotmesh-commit-probe.sql bench 2>/dev/null | sed -n 's/^tps = \([0-9]*\).*/\1/p'
}
before=$(ceiling)
echo "(d) pgbench, one INSERT per transaction, 8 clients, 10 s: $before tps"

echo "== the mapping language"
cargo bench -q -p hotmesh-manifest --bench map_eval 2>/dev/null | grep '^map_eval'

echo "== one session's cost per step (no concurrency)"
HOTMESH_PG_PORT=$PORT R=3 bash scripts/bench-costs.sh

echo "== the engine: raw SQL workers (a), latency (b), the client crate (e, f), timers (c)"
HOTMESH_DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/bench" BENCH_WORKERS=${BENCH_WORKERS:-2,4} \
  cargo bench -q -p hotmesh-tests --bench engine 2>/dev/null | grep '^('
# (g): the workers alone on a backlog, in batches of BENCH_DRAIN_BATCH (50), a fresh
# database (the runs above left theirs full of finished jobs)
"${P[@]}" -d postgres -c "DROP DATABASE IF EXISTS bench WITH (FORCE)" -c "CREATE DATABASE bench"
"${P[@]}" -d bench -c "CREATE EXTENSION hotmesh" -c "CREATE TABLE commit_probe (id bigserial PRIMARY KEY, v int)"
drain=$(HOTMESH_DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/bench" BENCH_ONLY=g BENCH_WORKFLOWS=6000 \
  BENCH_BATCH=${BENCH_DRAIN_BATCH:-50} BENCH_WORKERS=2,4 cargo bench -q -p hotmesh-tests --bench engine 2>/dev/null | grep '^(g')
echo "$drain"
after=$(ceiling)
echo "(d) pgbench again, after: $after tps"
best=$(echo "$drain" | sed -n 's/.* \([0-9]*\) worker steps\/s.*/\1/p' | sort -n | tail -1)
echo "ratio: (g) best ${best:-?} worker steps/s against pgbench's mean $(( (before + after) / 2 )) tps: $(awk -v b="${best:-0}" -v p="$(( (before + after) / 2 ))" 'BEGIN { printf "%.2f", b / p }')"

echo "== the floor of the tables: the same rows by hand, beside the engine (batches of 50)"
HOTMESH_PG_PORT=$PORT BATCH=50 bash scripts/bench-floor.sh | grep -v '^machine'

if [ "${BENCH_SCALE:-1}" != 0 ]; then
  echo "== scale: a fresh database against one keeping ${BENCH_KEPT:-1000000} finished jobs"
  HOTMESH_PG_PORT=$PORT BENCH_ROUNDS=${BENCH_ROUNDS:-2} bash scripts/bench-scale.sh | grep -v '^NOTICE'
fi

echo "== retention: 100,000 finished jobs past retention leave"
HOTMESH_PG_PORT=$PORT bash scripts/bench-retention.sh | grep -v '^NOTICE'
