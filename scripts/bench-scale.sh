#!/usr/bin/env bash
# The engine benchmark on a fresh database and on one that keeps 1,000,000 finished jobs
# (4,000,000 activity rows), alternated, in one run on one cluster: throughput, latency,
# server CPU and WAL per workflow, and the engine worker's CPU per loop.
#   scripts/bench-scale.sh            # against the cluster of scripts/pg-cluster.sh
# Settings: BENCH_KEPT (1000000), BENCH_ROUNDS (2), BENCH_WORKERS (2), HOTMESH_PG_PORT.
# Install the build to measure first (scripts/install.sh --release) and restart the cluster.
set -euo pipefail
# plain TCP, as the figures in docs/benchmarks.md and the peers' were measured: the test
# clusters offer TLS, and libpq and sqlx would take it (sslmode prefer) without this
export PGSSLMODE=${PGSSLMODE:-disable}
cd "$(dirname "$0")/.."
PORT=${HOTMESH_PG_PORT:-28815}
KEPT=${BENCH_KEPT:-1000000}
ROUNDS=${BENCH_ROUNDS:-2}
P=(psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
APP=$(sed -n '/^const APP: &str = r#"/,/^"#;/p' tests/benches/engine.rs | sed '1d;$d')
cargo bench -p hotmesh-tests --bench engine --no-run >/dev/null 2>&1

setup() {  # db, jobs to keep
  "${P[@]}" -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
  "${P[@]}" -d "$1" -c "CREATE EXTENSION hotmesh"
  "${P[@]}" -d "$1" -c "SELECT hotmesh.deploy(\$y\$$APP\$y\$)" -c "SELECT hotmesh.activate('bench', '1')" >/dev/null
  if [ "$2" -gt 0 ]; then
    # finished jobs of the last six days, as a 7-day retention keeps them
    "${P[@]}" -d "$1" <<SQL
SET synchronous_commit = off;
INSERT INTO hotmesh.jobs (id, gid, app_id, version, topic, status, data, created_at, updated_at, completed_at, expired_at, expire_seconds)
SELECT 'old-' || i, 'g' || i, 'bench', '1', 'bench.three', 0, '{"done": true}',
       now() - interval '6 days' + i * interval '0.4 s', now() - interval '6 days' + i * interval '0.4 s',
       now() - interval '6 days' + i * interval '0.4 s', now() - interval '6 days' + i * interval '0.4 s' + interval '60 s', 60
  FROM generate_series(1, $2) i;
INSERT INTO hotmesh.activities (job_id, activity_id, dad, type, status, input, output, created_at, updated_at, finished_at)
SELECT 'old-' || i, a, ',0', CASE a WHEN 't' THEN 'trigger' ELSE 'worker' END, 'done', jsonb_build_object('n', i), '{}',
       now() - interval '6 days', now() - interval '6 days', now() - interval '6 days'
  FROM generate_series(1, $2) i, unnest(ARRAY['t', 'a', 'b', 'c']) a;
VACUUM ANALYZE hotmesh.jobs;
VACUUM ANALYZE hotmesh.activities;
SQL
  fi
}

# CPU seconds (user + system) of the whole cluster: the postmaster, its live children,
# and the children it has reaped (cutime/cstime)
cluster_cpu() {
  local pm; pm=$("${P[@]}" -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'hotmesh launcher'" | head -1)
  pm=$(awk '{print $4}' "/proc/$pm/stat")   # the launcher's parent: the postmaster
  local hz; hz=$(getconf CLK_TCK)
  { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"
    for c in $(pgrep -P "$pm"); do awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || true; done
  } | awk -v hz="$hz" '{s += $1} END {printf "%.2f", s / hz}'
}

engine_cpu_loops() {  # db -> "cpu_seconds loops"
  local line; line=$("${P[@]}" -d "$1" -c "SELECT pid, loops FROM hotmesh.workers() WHERE database = current_database()")
  local pid=${line%%|*} loops=${line##*|}
  awk -v hz="$(getconf CLK_TCK)" -v l="$loops" '{printf "%.3f %d", ($14 + $15) / hz, l}' "/proc/$pid/stat"
}

run() {  # db label
  local db=$1
  "${P[@]}" -d "$db" -c "CHECKPOINT" >/dev/null
  local wal0 cpu0 eng0
  wal0=$("${P[@]}" -d "$db" -c "SELECT pg_current_wal_lsn()")
  cpu0=$(cluster_cpu); eng0=$(engine_cpu_loops "$db")
  local out
  out=$(HOTMESH_DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/$db" BENCH_WORKERS=${BENCH_WORKERS:-2} BENCH_CLIENT=0 \
        cargo bench -q -p hotmesh-tests --bench engine 2>/dev/null | grep '^(')
  local wal cpu eng1
  wal=$("${P[@]}" -d "$db" -c "SELECT pg_current_wal_lsn() - '$wal0'::pg_lsn")
  cpu=$(cluster_cpu); eng1=$(engine_cpu_loops "$db")
  # the bench starts 3,000 + 300 + 200 workflows
  local n=3500
  echo "== $2"
  echo "$out"
  awk -v c0="$cpu0" -v c1="$cpu" -v w="$wal" -v n="$n" -v e0="$eng0" -v e1="$eng1" 'BEGIN {
    split(e0, a, " "); split(e1, b, " ");
    loops = b[2] - a[2]; if (loops < 1) loops = 1;
    printf "server CPU per workflow %.2f ms, WAL per workflow %.1f kB, engine worker %.3f ms CPU per loop (%d loops)\n",
      (c1 - c0) * 1000 / n, w / 1024 / n, (b[1] - a[1]) * 1000 / loops, loops }'
}

# the cluster's commit ceiling, measured in the same run: one INSERT per transaction
pgbench_rate() {
  "${P[@]}" -d bench_fresh -c "CREATE TABLE IF NOT EXISTS commit_probe (id bigserial PRIMARY KEY, v int)"
  echo 'INSERT INTO commit_probe (v) VALUES (1);' > /tmp/hotmesh-commit-probe.sql
  local pgbench; pgbench=$("${PG_CONFIG:-pg_config}" --bindir)/pgbench
  "$pgbench" -n -h 127.0.0.1 -p "$PORT" -U postgres -c 8 -j 2 -T 10 -f /tmp/hotmesh-commit-probe.sql bench_fresh 2>/dev/null \
    | sed -n 's/^tps = \([0-9.]*\).*/pgbench (one INSERT per transaction, 8 clients, 10 s): \1 tps/p'
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
setup bench_fresh 0
setup bench_kept "$KEPT"
pgbench_rate
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    run bench_fresh "fresh, round $r"; run bench_kept "$KEPT finished jobs kept, round $r"
  else
    run bench_kept "$KEPT finished jobs kept, round $r"; run bench_fresh "fresh, round $r"
  fi
done
pgbench_rate
