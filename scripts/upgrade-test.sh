#!/usr/bin/env bash
# Upgrade test (see sql/README.md): for every earlier version archived as
# sql/archive/hotmesh--A.sql, install A, run ALTER EXTENSION hotmesh UPDATE along the
# sql/hotmesh--A--B.sql chain, and compare the result with a fresh install of the
# current version. Needs a running cluster (scripts/pg-cluster.sh) and the current
# build installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${HOTMESH_PG_PORT:-28815}
EXTDIR=$("${PG_CONFIG:-pg_config}" --sharedir)/extension
export PGOPTIONS="-c client_min_messages=warning"
P=(psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
current=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

shopt -s nullglob
archived=(sql/archive/hotmesh--*.sql)
if [ ${#archived[@]} -eq 0 ]; then
  echo "upgrade test: no earlier version archived yet (current $current): nothing to upgrade from"
  exit 0
fi

# What an installed extension consists of, in a comparable form.
shape() {
  "${P[@]}" -d "$1" <<'SQL'
SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'hotmesh') ORDER BY 1;
SELECT 'function ' || p.oid::regprocedure || ' -> ' || pg_get_function_result(p.oid)
       || ' definer=' || p.prosecdef || ' config=' || coalesce(array_to_string(p.proconfig, ','), '')
  FROM pg_proc p WHERE p.pronamespace = 'hotmesh'::regnamespace ORDER BY 1;
SELECT 'column ' || table_schema || '.' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
  FROM information_schema.columns WHERE table_schema IN ('hotmesh', 'hotmesh_records')
 ORDER BY table_schema, table_name, ordinal_position;
SELECT 'grant ' || p.proname || ' public=' || has_function_privilege('public', p.oid, 'EXECUTE')
  FROM pg_proc p WHERE p.pronamespace = 'hotmesh'::regnamespace ORDER BY 1;
SQL
}

fresh() { "${P[@]}" -d postgres -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" -c "CREATE DATABASE \"$1\""; }

# A MeshData entity, declared in each database (before the update where the old version
# has search indexes: the update must make its records view as a fresh install's call does).
declare_probe() {
  "${P[@]}" -d "$1" -c "SELECT hotmesh.create_search_index('probe', '{\"n\": {\"type\": \"NUMERIC\"}, \"t\": {\"type\": \"TAG\"}}')" >/dev/null
}
has_search() { "${P[@]}" -d "$1" -c "SELECT count(*) FROM pg_proc WHERE proname = 'create_search_index'"; }

fresh hm_upgrade_new
"${P[@]}" -d hm_upgrade_new -c "CREATE EXTENSION hotmesh"
declare_probe hm_upgrade_new
shape hm_upgrade_new > target/upgrade-new.txt

fail=0
for f in "${archived[@]}"; do
  from=${f#sql/archive/hotmesh--}; from=${from%.sql}
  cp "$f" "$EXTDIR/"
  fresh hm_upgrade_old
  "${P[@]}" -d hm_upgrade_old -c "CREATE EXTENSION hotmesh VERSION '$from'"
  probed=$(has_search hm_upgrade_old)
  if [ "$probed" = 1 ]; then declare_probe hm_upgrade_old; fi
  "${P[@]}" -d hm_upgrade_old -c "ALTER EXTENSION hotmesh UPDATE"
  if [ "$probed" = 0 ]; then declare_probe hm_upgrade_old; fi
  got=$("${P[@]}" -d hm_upgrade_old -c "SELECT extversion FROM pg_extension WHERE extname = 'hotmesh'")
  shape hm_upgrade_old > "target/upgrade-from-$from.txt"
  if [ "$got" != "$current" ] || ! diff -u target/upgrade-new.txt "target/upgrade-from-$from.txt"; then
    echo "upgrade test: $from -> $current FAILED (now at $got)"; fail=1
  else
    echo "upgrade test: $from -> $current ok"
  fi
done
"${P[@]}" -d postgres -c "DROP DATABASE hm_upgrade_new WITH (FORCE)" -c "DROP DATABASE IF EXISTS hm_upgrade_old WITH (FORCE)"
exit $fail
