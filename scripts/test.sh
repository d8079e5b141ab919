#!/usr/bin/env bash
# Runs every test: plain #[test]s, #[pg_test]s, pg_regress and the end-to-end tests,
# from a fresh Debian 12 machine (it sets up the toolchain first).
#   scripts/test.sh
set -euo pipefail
# output that goes to a file or a CI log gets no colour codes
source "$(dirname "$0")/plain.sh"
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/setup-machine.sh

RUN=${HOTMESH_RUN_DIR:-/tmp/hotmesh-run}
export HOTMESH_RUN_DIR=$RUN
export HOTMESH_PG_DIR=$RUN/test-cluster
export HOTMESH_PG_PORT=${HOTMESH_TEST_PORT:-28816}
export HOTMESH_PG_DB=hotmesh_test
# A long poll: every wake-up the tests see must come from a latch.
export HOTMESH_PG_CONF="hotmesh.poll_interval = 60000"
# auto_explain loaded, off unless a database turns it on (tests/e2e/scale.rs reads the
# plans the engine really runs)
export HOTMESH_PG_PRELOAD_MORE=auto_explain
mkdir -p "$RUN" && chmod 755 "$RUN"
# Every step below builds, installs and runs against a private copy of the system
# PostgreSQL (PG_CONFIG and PGRX_HOME point at it): a server running from the system
# directories (the quickstart's cluster, your own) keeps its hotmesh library untouched.
eval "$(bash scripts/pg-private.sh "$RUN/pg")"
# keep a copy of the output to total the results at the end
LOG=$RUN/test-output.log
exec > >(tee "$LOG") 2>&1

echo "== 0/5 gates: formatting and lints (every crate, every target)"
cargo fmt --all -- --check
# the extension's crate too: clippy builds it against the private PostgreSQL's headers
cargo clippy --workspace --all-targets -- -D warnings
# the engine's in-memory store as users build it (the `testing` feature)
cargo clippy -p hotmesh-engine --features testing -- -D warnings
# the public crates' docs: every item documented, no broken links
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps -p hotmesh-client -p hotmesh-cli -p hotmesh-engine -p hotmesh-manifest -p hotmesh-transport

echo "== 1/5 plain tests (no PostgreSQL; the transport crate's start redis-server and nats-server on free ports)"
cargo test --workspace --exclude hotmesh --exclude hotmesh-tests
# the client as a dependency of a fresh project (README, "Use it from your project")
bash scripts/client-dependency-test.sh

echo "== 2/5 #[pg_test]s (pgrx starts its own server)"
RUNAS=()
if [ "$(id -u)" = 0 ]; then
  # Postgres refuses root: pgrx runs initdb and the server as `postgres`.
  install -d -o postgres -g postgres "$RUN/pgrx-data"
  RUNAS=(--runas postgres --pgdata "$RUN/pgrx-data")
fi
# it installs its build into the private copy's directories (in place: nothing runs there)
plain cargo pgrx test pg15 -p hotmesh "${RUNAS[@]}"

echo "== 3/5 install the extension and start a cluster"
# the pg_test build (with its tests schema) was installed by step 2: replace it (built
# first, then each file renamed into place)
bash scripts/install.sh --pg-config "$PG_CONFIG" >/dev/null
# the install and upgrade scripts, checked for what an attacker could exploit
bash scripts/pgspot.sh
scripts/pg-cluster.sh destroy
trap 'scripts/pg-cluster.sh destroy' EXIT
scripts/pg-cluster.sh start

echo "== 4/5 pg_regress"
rm -rf target/pg_regress && mkdir -p target/pg_regress
TESTS=$(cd pg_regress/sql && ls *.sql | sed 's/\.sql$//' | sort)
# a stuck statement (a lock that is never released, say) fails instead of hanging
if ! PGOPTIONS="-c statement_timeout=60s" "$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" \
    --host=127.0.0.1 --port="$HOTMESH_PG_PORT" --user=postgres \
    --inputdir=pg_regress --outputdir=target/pg_regress \
    --dbname=hotmesh_regress $TESTS; then
  cat target/pg_regress/regression.diffs
  exit 1
fi

echo "== 5/5 upgrade path, end-to-end and chaos tests against the cluster, the failover test"
bash scripts/upgrade-test.sh
export HOTMESH_TEST_URL=$(scripts/pg-cluster.sh url)
export HOTMESH_CLUSTER_SCRIPT=$ROOT/scripts/pg-cluster.sh
# one at a time: some tests restart the server or crash a worker
cargo test -p hotmesh-tests -- --test-threads=1
# the client's example programs (client/examples, one per area, each with its app's YAML
# beside it) run against the cluster: each must run to its end
for example in engine_api workers quorum meshflow meshcall meshdata; do
  HOTMESH_DATABASE_URL=$HOTMESH_TEST_URL timeout 120 cargo run -q -p hotmesh-client --example "$example"
done
# a short chaos run (about 50 s): 300 workflows while workers, the engine worker, client
# backends and the server are killed; every job must end exactly once (scripts/chaos.sh)
CHAOS_WORKFLOWS=${CHAOS_WORKFLOWS:-300} CHAOS_SECONDS=${CHAOS_SECONDS:-40} bash scripts/chaos.sh
# the same through Redis (about 35 s): the workers on Redis, the bridge worker of
# hotmesh.transports relaying their topic; the bridge worker and Redis are killed too
CHAOS_BRIDGE=redis CHAOS_BRIDGE_IN=database CHAOS_WORKFLOWS=150 CHAOS_SECONDS=25 bash scripts/chaos.sh
# high availability (about 40 s): a synchronous hot standby promoted under load, clusters of
# its own on ports 28910-28911 (scripts/failover-test.sh, docs/high-availability.md)
CHAOS_SKIP_INSTALL=1 CHAOS_PG_PRIVATE=$RUN/pg FAILOVER_RUN_DIR=$RUN/failover bash scripts/failover-test.sh
# one closing line for all layers: cargo's "test result" lines and pg_regress's count
total=$(sed -n 's/.*test result: ok\. \([0-9]*\) passed.*/\1/p' "$LOG" | awk '{s += $1} END {print s + 0}')
regress=$(sed -n 's/.*All \([0-9]*\) tests passed.*/\1/p' "$LOG" | head -1)
echo "all test layers passed"
echo "total: $((total + ${regress:-0})) passed, 0 failed"
