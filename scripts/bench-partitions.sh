#!/usr/bin/env bash
# What a lookup by job id costs when `jobs` is partitioned, against a plain table: the
# question a time-partitioned retention scheme has to answer first (docs/benchmarks.md,
# "Retention by time partitions"). Runs in a scratch database of the cluster that
# HOTMESH_PG_PORT names and drops it afterwards; needs no extension.
#
#   HOTMESH_PG_PORT=28817 scripts/bench-partitions.sh [rows]
#
# Prints microseconds per statement (server side, PL/pgSQL loops, so plans are cached
# as the engine's SPI plans are), for: a plain table; 2 and 4 list partitions reached
# through the parent (no partition key in the query: a lookup by id alone); 4 partitions
# through the parent with the partition key in the query (part4k: pruned at run time);
# one partition named directly.
set -euo pipefail
# plain TCP, as the figures in docs/benchmarks.md and the peers' were measured: the test
# clusters offer TLS, and libpq and sqlx would take it (sslmode prefer) without this
export PGSSLMODE=${PGSSLMODE:-disable}
PORT=${HOTMESH_PG_PORT:-28817}
ROWS=${1:-900000}
DB=hotmesh_partitions_bench
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
trap '"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null' EXIT
"${PSQL[@]}" -d "$DB" <<SQL
CREATE TABLE plain (id text NOT NULL, slot int NOT NULL, status int, data jsonb, key text,
                    expired_at timestamptz, PRIMARY KEY (id, slot));
CREATE TABLE part2 (LIKE plain) PARTITION BY LIST (slot);
CREATE TABLE part4 (LIKE plain) PARTITION BY LIST (slot);
DO \$\$ DECLARE t text; BEGIN
  FOREACH t IN ARRAY ARRAY['plain', 'part2', 'part4'] LOOP
    IF t <> 'plain' THEN EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (id, slot)', t); END IF;
    EXECUTE format('CREATE INDEX ON %I (status)', t);
    EXECUTE format('CREATE INDEX ON %I (key)', t);
    EXECUTE format('CREATE INDEX ON %I (expired_at)', t);
    EXECUTE format('CREATE INDEX ON %I USING gin (data jsonb_path_ops)', t);
  END LOOP;
  FOR i IN 0..1 LOOP EXECUTE format('CREATE TABLE part2_%s PARTITION OF part2 FOR VALUES IN (%s)', i, i); END LOOP;
  FOR i IN 0..3 LOOP EXECUTE format('CREATE TABLE part4_%s PARTITION OF part4 FOR VALUES IN (%s)', i, i); END LOOP;
END \$\$;
INSERT INTO plain SELECT 'j' || g, g % 4, 1, '{"a": 1}', NULL, NULL FROM generate_series(1, $ROWS) g;
INSERT INTO part2 SELECT id, slot % 2, status, data, key, expired_at FROM plain;
INSERT INTO part4 SELECT * FROM plain;
VACUUM ANALYZE plain; VACUUM ANALYZE part2; VACUUM ANALYZE part4;
-- n statements against table t, each by one id: microseconds per statement
CREATE FUNCTION lookups(t text, what text, n int) RETURNS numeric LANGUAGE plpgsql AS \$f\$
DECLARE started timestamptz := clock_timestamp(); s int;
BEGIN
  FOR i IN 1..n LOOP
    -- a fixed statement per table (EXECUTE would plan each time): dispatch by name
    CASE t || '/' || what
      WHEN 'plain/select' THEN SELECT status INTO s FROM plain WHERE id = 'j' || (i * 17 % $ROWS + 1);
      WHEN 'part2/select' THEN SELECT status INTO s FROM part2 WHERE id = 'j' || (i * 17 % $ROWS + 1);
      WHEN 'part4/select' THEN SELECT status INTO s FROM part4 WHERE id = 'j' || (i * 17 % $ROWS + 1);
      WHEN 'part4k/select' THEN SELECT status INTO s FROM part4 WHERE slot = ((i * 17 % $ROWS + 1) % 4) AND id = 'j' || (i * 17 % $ROWS + 1);
      WHEN 'part4_1/select' THEN SELECT status INTO s FROM part4_1 WHERE id = 'j' || (i * 17 % $ROWS + 1);
      WHEN 'plain/update' THEN UPDATE plain SET status = i WHERE id = 'j' || (i * 17 % $ROWS + 1);
      WHEN 'part2/update' THEN UPDATE part2 SET status = i WHERE id = 'j' || (i * 17 % $ROWS + 1);
      WHEN 'part4/update' THEN UPDATE part4 SET status = i WHERE id = 'j' || (i * 17 % $ROWS + 1);
      WHEN 'part4k/update' THEN UPDATE part4 SET status = i WHERE slot = ((i * 17 % $ROWS + 1) % 4) AND id = 'j' || (i * 17 % $ROWS + 1);
      WHEN 'part4_1/update' THEN UPDATE part4_1 SET status = i WHERE id = 'j' || (i * 17 % $ROWS + 1);
    END CASE;
  END LOOP;
  RETURN round(extract(epoch FROM clock_timestamp() - started) * 1e6 / n, 1);
END \$f\$;
SQL
echo "µs per statement (3 rounds): table, select by id, update by id"
for round in 1 2 3; do
  for t in plain part2 part4 part4k part4_1; do
    sel=$("${PSQL[@]}" -d "$DB" -Atc "SELECT lookups('$t', 'select', 100000)")
    upd=$("${PSQL[@]}" -d "$DB" -Atc "SELECT lookups('$t', 'update', 50000)")
    echo "round $round  $t  $sel  $upd"
  done
done
