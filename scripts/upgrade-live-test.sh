#!/usr/bin/env bash
# An upgrade with work in flight: an older build's library runs 50 workflows of
# tests/e2e/ring.rs's app to the middle (some answered once, all waiting on a worker or a
# hook), then the current library is put in place, the server restarted and
# ALTER EXTENSION hotmesh UPDATE run; the workflows must finish with their data, and eight
# turns of the ring must keep every job and activity row. Needs an older build's library
# (scripts/upgrade-test.sh needs none: it compares the schema only).
#   OLD_LIB=/path/to/old/hotmesh.so OLD_VERSION=0.9.0 scripts/upgrade-live-test.sh
# Settings: HOTMESH_PG_PORT (28815) and HOTMESH_PG_DIR of a scripts/pg-cluster.sh cluster
# (restarted twice), with the current build installed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PGSSLMODE=${PGSSLMODE:-disable}
: "${OLD_LIB:?the library (hotmesh.so) of an older build}" "${OLD_VERSION:?its version}"
PORT=${HOTMESH_PG_PORT:-28815}
LIB=$(pg_config --pkglibdir)/hotmesh.so
NEW_LIB=$(mktemp)
cp "$LIB" "$NEW_LIB"
# a library is replaced by rename: a file rewritten in place crashes the sessions using it
swap() { cp "$1" "$LIB.swap" && chmod 755 "$LIB.swap" && mv -f "$LIB.swap" "$LIB"; }
trap 'swap "$NEW_LIB"; rm -f "$NEW_LIB"' EXIT
P=(psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
q() { "${P[@]}" -d upgrade_live -c "$1"; }
use_lib() { swap "$1"; bash scripts/pg-cluster.sh restart >/dev/null; }
answer() { q "SELECT count(hotmesh.respond(id, jsonb_build_object('n', (data->>'n')::int * 2), 'success', NULL, reservation))
                FROM hotmesh.dequeue('ring.step', $1, 30)" >/dev/null; }
fail() { echo "upgrade live test: FAILED: $*" >&2; exit 1; }

use_lib "$OLD_LIB"
"${P[@]}" -d postgres -c "DROP DATABASE IF EXISTS upgrade_live WITH (FORCE)" -c "CREATE DATABASE upgrade_live" 2>/dev/null
q "CREATE EXTENSION hotmesh VERSION '$OLD_VERSION'"
app=$(sed -n '/^const APP: &str = r#"/,/^"#;/p' tests/e2e/ring.rs | sed '1d;$d')
"${P[@]}" -d upgrade_live -v app="$app" <<< "SELECT hotmesh.deploy(:'app'); SELECT hotmesh.activate('ring', '1');" >/dev/null
q "SELECT hotmesh.wait_for_engine(20)" >/dev/null
q "SELECT count(hotmesh.pub('ring.start', jsonb_build_object('n', g), jsonb_build_object('id', 'u-' || g))) FROM generate_series(0, 49) g" >/dev/null
answer 25; sleep 1; answer 10; sleep 1
echo "upgrade live test: $OLD_VERSION: 50 workflows, $(q "SELECT count(*) FROM hotmesh.worker_stream") worker messages waiting"

use_lib "$NEW_LIB"
q "ALTER EXTENSION hotmesh UPDATE"
q "SELECT hotmesh.wait_for_engine(20)" >/dev/null
version=$(q "SELECT extversion FROM pg_extension WHERE extname = 'hotmesh'")
for _ in 1 2 3 4 5 6; do answer 100; sleep 0.3; done
q "SELECT count(hotmesh.signal('ring.say', jsonb_build_object('id', job_id, 'said', 'hi ' || job_id)))
     FROM hotmesh.signal_hooks WHERE topic = 'ring.say'" >/dev/null
ended=0
for _ in $(seq 1 50); do
  ended=$(q "SELECT count(*) FROM hotmesh.jobs
              WHERE status = 0 AND (data->>'a')::int = 2 * substr(id, 3)::int
                AND (data->>'b')::int = 4 * substr(id, 3)::int AND data->>'said' = 'hi ' || id")
  [ "$ended" = 50 ] && break
  sleep 0.2
done
[ "$ended" = 50 ] || fail "$ended of 50 workflows finished with their data after the update to $version"
for _ in 1 2 3 4 5 6 7 8; do q "SELECT hotmesh.turn_ring(true)" >/dev/null; done
kept=$(q "SELECT count(*) FROM hotmesh.jobs")
rows=$(q "SELECT count(*) FROM hotmesh.activities a JOIN hotmesh.jobs j ON j.id = a.job_id AND j.part = a.part")
[ "$kept" = 50 ] && [ "$rows" = 200 ] || fail "after eight turns: $kept jobs, $rows activity rows in their job's part (50, 200)"
echo "upgrade live test: $OLD_VERSION -> $version: 50 of 50 finished with their data; after eight turns 50 jobs and 200 activity rows, each in its job's part"
"${P[@]}" -d postgres -c "DROP DATABASE upgrade_live WITH (FORCE)"
