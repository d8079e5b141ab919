#!/usr/bin/env bash
# What removing N finished jobs past retention costs: time, WAL, and dead tuples left for
# autovacuum. Loads N jobs expired 8 days ago (4 activity rows each), checkpoints, then
# lets them leave: with the ring (0.10.0 and later) they are loaded into the next part and
# `hotmesh.turn_ring(true)` empties it; an older build's engine worker deletes them in
# batches (the script waits until none is left). Run it with each build installed to
# compare them (docs/benchmarks.md, "Retention by a ring of partitions").
#   scripts/bench-retention.sh                      # against scripts/pg-cluster.sh's cluster
# Settings: N (100000), HOTMESH_PG_PORT (28815), EXTV (the extension version to create:
# an older build's library needs its own install script, e.g. EXTV=0.9.0).
set -euo pipefail
export PGSSLMODE=${PGSSLMODE:-disable}
PORT=${HOTMESH_PG_PORT:-28815}
N=${N:-100000}
P=(psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
"${P[@]}" -d postgres -c "DROP DATABASE IF EXISTS bench_retention WITH (FORCE)" -c "CREATE DATABASE bench_retention"
"${P[@]}" -d bench_retention -c "CREATE EXTENSION hotmesh ${EXTV:+VERSION '$EXTV'}"
ring=$("${P[@]}" -d bench_retention -c "SELECT count(*) FROM pg_proc WHERE proname = 'turn_ring'")
if [ "$ring" = 1 ]; then part=", part"; in_next=", (hotmesh.current_part() + 1) % 8"; else part=""; in_next=""; fi
"${P[@]}" -d bench_retention <<SQL
SET synchronous_commit = off;
INSERT INTO hotmesh.jobs (id, gid, app_id, version, topic, status, data, created_at, updated_at, completed_at, expired_at, expire_seconds $part)
SELECT 'old-' || i, 'g' || i, 'bench', '1', 'bench.three', 0, '{"done": true, "n": 12345}',
       now() - interval '9 days', now() - interval '9 days', now() - interval '9 days', now() - interval '8 days', 60 $in_next
  FROM generate_series(1, $N) i;
INSERT INTO hotmesh.activities (job_id, activity_id, dad, type, status, input, output, created_at, updated_at, finished_at $part)
SELECT 'old-' || i, a, ',0', CASE a WHEN 't' THEN 'trigger' ELSE 'worker' END, 'done', jsonb_build_object('n', i), '{"ok": true}',
       now() - interval '9 days', now() - interval '9 days', now() - interval '9 days' $in_next
  FROM generate_series(1, $N) i, unnest(ARRAY['t', 'a', 'b', 'c']) a;
VACUUM ANALYZE hotmesh.jobs;
VACUUM ANALYZE hotmesh.activities;
CHECKPOINT;
SQL
w0=$("${P[@]}" -d bench_retention -c "SELECT pg_current_wal_lsn()")
t0=$(date +%s.%N)
if [ "$ring" = 1 ]; then
  "${P[@]}" -d bench_retention -c "SELECT hotmesh.turn_ring(true)" >/dev/null
  how="one turn of the ring"
else
  "${P[@]}" -d bench_retention -c "SELECT hotmesh.wake_engine()" >/dev/null
  while [ "$("${P[@]}" -d bench_retention -c "SELECT count(*) FROM hotmesh.jobs")" != 0 ]; do sleep 0.2; done
  how="the engine worker's deletes"
fi
t1=$(date +%s.%N)
wal=$("${P[@]}" -d bench_retention -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$w0')")
dead=$("${P[@]}" -d bench_retention -c "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE schemaname = 'hotmesh'")
version=$("${P[@]}" -d bench_retention -c "SELECT extversion FROM pg_extension WHERE extname = 'hotmesh'")
awk -v v="$version" -v n="$N" -v how="$how" -v t="$(echo "$t1 - $t0" | bc)" -v w="$wal" -v d="$dead" 'BEGIN {
  printf "hotmesh %s: %d jobs (%d activity rows) past retention removed by %s in %.2f s; WAL %.2f MB (%.1f bytes a job); dead tuples left for autovacuum: %d\n",
         v, n, 4 * n, how, t, w / 1048576, w / n, d }'
"${P[@]}" -d postgres -c "DROP DATABASE bench_retention WITH (FORCE)"
