#!/usr/bin/env bash
# MeshData's find_where on many records (docs/benchmarks.md, "MeshData"): a scratch
# database with ROWS records of entity `item` (job rows written directly, as the engine
# writes finished ones), a search index on three fields, then find_where with an indexed
# TAG equality, an indexed NUMERIC range, a full-text match, and the same equality on a
# field with no index, for contrast. Prints server-side milliseconds per call (p50, p99).
#
#   HOTMESH_PG_PORT=28817 scripts/bench-meshdata.sh [rows]
set -euo pipefail
export PGSSLMODE=${PGSSLMODE:-disable}
PORT=${HOTMESH_PG_PORT:-28817}
ROWS=${1:-1000000}
DB=hotmesh_meshdata_bench
PSQL=(psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
trap '"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null' EXIT
"${PSQL[@]}" -d "$DB" <<SQL
CREATE EXTENSION hotmesh;
SELECT setseed(0.42);
INSERT INTO hotmesh.jobs (id, gid, app_id, version, topic, entity, status, search, completed_at)
SELECT 'r' || g, 'g', 'meshdata', '1', 'meshdata.execute', 'item', 0,
       jsonb_build_object('color', (ARRAY['red','green','blue','amber','azure','black','white','gray'])[1 + (random() * 7)::int],
                          'sku', 'sku-' || g,
                          'price', (random() * 100000)::int,
                          'title', (ARRAY['quick','brown','fox','lazy','dog','jumps'])[1 + (random() * 5)::int] || ' ' ||
                                   (ARRAY['over','under','the','a','red','blue'])[1 + (random() * 5)::int] || ' ' || g),
       now()
  FROM generate_series(1, $ROWS) g;
SELECT hotmesh.create_search_index('item', '{"sku": {"type": "TAG"}, "price": {"type": "NUMERIC", "sortable": true}, "title": {"type": "TEXT"}}') IS NOT NULL;
VACUUM ANALYZE hotmesh.jobs;
-- n calls of find_where with query q(i): milliseconds per call, p50 and p99
CREATE FUNCTION bench(what text, n int) RETURNS text LANGUAGE plpgsql AS \$f\$
DECLARE t timestamptz; ms float8[] := '{}'; q jsonb; c int;
BEGIN
  FOR i IN 1..n LOOP
    q := CASE what
      WHEN 'tag' THEN jsonb_build_array(jsonb_build_object('field', 'sku', 'is', '=', 'value', 'sku-' || (1 + (random() * ($ROWS - 1))::int)))
      WHEN 'range' THEN (SELECT jsonb_build_array(jsonb_build_object('field', 'price', 'is', '[]', 'value', jsonb_build_array(p, p + 10))) FROM (SELECT (random() * 99990)::int AS p) x)
      WHEN 'match' THEN jsonb_build_array(jsonb_build_object('field', 'title', 'is', 'match', 'value', (1 + (random() * ($ROWS - 1))::int)::text))
      WHEN 'unindexed' THEN jsonb_build_array(jsonb_build_object('field', 'nosuch', 'is', '=', 'value', 'x' || i))
    END;
    t := clock_timestamp();
    SELECT count(*) INTO c FROM hotmesh.find_where('item', q, '{"limit": {"start": 0, "size": 100}}');
    ms := ms || extract(epoch FROM clock_timestamp() - t) * 1000;
  END LOOP;
  RETURN format('%s: p50 %s ms, p99 %s ms', what,
    round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(ms) x)::numeric, 2),
    round((SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY x) FROM unnest(ms) x)::numeric, 2));
END \$f\$;
SQL
echo "find_where on $ROWS records (100 rows at most per call):"
for w in tag range match; do "${PSQL[@]}" -d "$DB" -c "SELECT bench('$w', 200)"; done
"${PSQL[@]}" -d "$DB" -c "SELECT bench('unindexed', 5)"
echo "plan of the range query:"
"${PSQL[@]}" -d "$DB" -c "SELECT hotmesh.find_where_plan('item', '[{\"field\": \"price\", \"is\": \"[]\", \"value\": [100, 110]}]')"
