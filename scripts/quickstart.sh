#!/usr/bin/env bash
# The main job: set up the machine, build and install hotmesh, start a local cluster
# with the extension preloaded, and run the demo against it.
#   scripts/quickstart.sh
set -euo pipefail
# output that goes to a file or a CI log gets no colour codes
source "$(dirname "$0")/plain.sh"
cd "$(dirname "$0")/.."
bash scripts/setup-machine.sh
export PG_CONFIG=${PG_CONFIG:-$(command -v pg_config)}

echo "== building and installing the extension (release)"
# built first, then each file renamed into place: a running server is never without
# its library, nor sees one half-written
bash scripts/install.sh --release --pg-config "$PG_CONFIG"

echo "== starting the local cluster"
# a restart loads the library just installed
scripts/pg-cluster.sh restart

echo "== running the demo"
HOTMESH_DATABASE_URL=$(scripts/pg-cluster.sh url) cargo run -q --release -p hotmesh-client --example quickstart

cat <<MSG

The cluster keeps running. Try:
  scripts/pg-cluster.sh psql -c 'SELECT hotmesh.version()'
  scripts/pg-cluster.sh psql -c 'SELECT * FROM hotmesh.workers()'
  scripts/pg-cluster.sh psql -c "SELECT pid, backend_type, datname FROM pg_stat_activity WHERE backend_type LIKE 'hotmesh%'"
Stop it with scripts/pg-cluster.sh stop (or destroy, to delete its data).
MSG
