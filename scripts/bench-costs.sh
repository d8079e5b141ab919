#!/usr/bin/env bash
# What one step costs inside the server, without concurrency: one session starts N
# workflows of the engine benchmark's 3-step graph in one statement, then answers their
# three worker steps (dequeue, then respond_batch in batches of 10). Prints the time per
# workflow started, per message dequeued and per answer, the minimum of R rounds (noise
# only adds). Compare builds by running it after each (alternate them: this machine's
# speed drifts by ±20 % between minutes).
#   scripts/install.sh --release && scripts/pg-cluster.sh restart && scripts/bench-costs.sh
# Settings: HOTMESH_PG_PORT (28815), N (1000), R (5).
set -euo pipefail
# plain TCP, as the figures in docs/benchmarks.md and the peers' were measured: the test
# clusters offer TLS, and libpq and sqlx would take it (sslmode prefer) without this
export PGSSLMODE=${PGSSLMODE:-disable}
cd "$(dirname "$0")/.."
PORT=${HOTMESH_PG_PORT:-28815}
N=${N:-1000}
R=${R:-5}
P=(psql -X -q -h 127.0.0.1 -p "$PORT" -U postgres)
"${P[@]}" -d postgres -c "DROP DATABASE IF EXISTS bench_costs WITH (FORCE)" -c "CREATE DATABASE bench_costs" >/dev/null 2>&1
"${P[@]}" -d bench_costs -c "CREATE EXTENSION hotmesh" >/dev/null
# the app of tests/benches/engine.rs
app=$(sed -n '/^const APP: &str = r#"/,/^"#;/p' tests/benches/engine.rs | sed '1d;$d')
script=$(mktemp)
trap 'rm -f "$script"' EXIT
{
  cat <<SQL
SELECT hotmesh.deploy(:'app') \gset
SELECT hotmesh.activate('bench', '1') \gset
SELECT count(hotmesh.pub('bench.three', jsonb_build_object('n', g))) FROM generate_series(1, 50) g \gset
SELECT count(*) FROM (SELECT hotmesh.respond_batch(array_agg(id)) FROM hotmesh.dequeue('bench.step', 50, 30)) x \gset
\timing on
SQL
  for _ in $(seq 1 "$R"); do
    echo "\\echo PUB"
    echo "SELECT count(hotmesh.pub('bench.three', jsonb_build_object('n', g))) FROM generate_series(1, $N) g \\gset"
    for s in 1 2 3; do
      echo "\\echo DEQ$s"
      echo "CREATE TEMP TABLE d AS SELECT id FROM hotmesh.dequeue('bench.step', $N, 300);"
      echo "\\echo RESP$s"
      echo "SELECT count(hotmesh.respond_batch(ids)) AS x FROM (SELECT array_agg(id) ids FROM (SELECT id, (row_number() OVER (ORDER BY id)) / 10 g FROM d) x GROUP BY g) y \\gset"
      echo "DROP TABLE d;"
    done
  done
  # then starts with an id of the caller's (as MeshFlow's): the duplicate check reads every
  # part of the ring (these jobs are left waiting: after the rounds above, they change none)
  for r in $(seq 1 "$R"); do
    echo "\\echo CHOSEN"
    echo "SELECT count(hotmesh.pub('bench.three', jsonb_build_object('n', g), jsonb_build_object('id', 'chosen-$r-' || g))) FROM generate_series(1, $N) g \\gset"
  done
} > "$script"
"${P[@]}" -d bench_costs -v app="$app" -f "$script" 2>&1 | awk -v n="$N" '
  /^(PUB|CHOSEN|DEQ|RESP)/ { part = $1; next }
  /^Time:/ && part != "" { t = $2; if (!(part in m) || t < m[part]) m[part] = t; part = "" }
  END { printf "per item, minimum of rounds: pub %.0f us (with a chosen id %.0f us) | dequeue per message %.0f / %.0f / %.0f us | respond per answer %.0f / %.0f / %.0f us (steps 1, 2, 3)\n",
          m["PUB"] * 1000 / n, m["CHOSEN"] * 1000 / n, m["DEQ1"] * 1000 / n, m["DEQ2"] * 1000 / n, m["DEQ3"] * 1000 / n,
          m["RESP1"] * 1000 / n, m["RESP2"] * 1000 / n, m["RESP3"] * 1000 / n }'
"${P[@]}" -d postgres -c "DROP DATABASE bench_costs WITH (FORCE)" >/dev/null 2>&1
