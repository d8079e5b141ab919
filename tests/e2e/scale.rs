//! The engine at scale: with many finished jobs kept (their activity rows too), a backlog
//! of messages nobody takes and early signals waiting, every statement the step path and
//! the engine worker run is an index scan on the large tables. The plans are the ones the
//! server really runs: `auto_explain` (preloaded in the test cluster, scripts/test.sh)
//! logs each statement's plan in this database, the engine worker's included, and the
//! test reads them from the server log. Without a known log or auto_explain it says so
//! and checks nothing.

use hotmesh_tests::*;
use serde_json::json;
use std::time::{Duration, Instant};

const DB: &str = "e2e_scale";

const APP: &str = r#"
app:
  id: scale
  version: '1'
  graphs:
    - subscribes: scale.start
      publishes: scale.done
      expire: 60
      activities:
        t: { type: trigger }
        a: { type: worker, topic: scale.step, input: { maps: { n: '{t.output.data.n}' } } }
        nap: { type: hook, sleep: 0.05 }
        b: { type: worker, topic: scale.step }
        h: { type: hook, job: { maps: { said: '{$self.hook.data.said}' } } }
      transitions:
        t: [ { to: a } ]
        a: [ { to: nap } ]
        nap: [ { to: b } ]
        b: [ { to: h } ]
      hooks:
        scale.say: [ { to: h, conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] } } ]
"#;

/// Finished jobs kept (with 4 activity rows each), undelivered messages, early signals.
/// HOTMESH_SCALE_KEPT sets another number of kept jobs (the issue's check: 1,000,000).
fn kept_jobs() -> i64 {
    std::env::var("HOTMESH_SCALE_KEPT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}
const BACKLOG: i64 = 20_000;
const WORKFLOWS: usize = 100;
/// Jobs past retention, in the part the ring turns into next: the engine worker's turn
/// (due at once here) empties it while the plans are logged.
const PAST_RETENTION: i64 = 12_000;

/// The tables that are large here: the partitions of `jobs` and `activities` (the ring's
/// parts, `jobs_p0` …) that hold the kept jobs, `worker_stream` and `pending_signals`. A
/// sequential scan of any of them on the step path or in the engine worker's loop is
/// what this test exists to catch (the ring's empty parts are scanned when a statement
/// reads through the parent: nothing to catch there).
async fn large_tables(p: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
          WHERE c.relnamespace = 'hotmesh'::regnamespace AND c.relkind = 'r'
            AND (c.relname ~ '^(jobs|activities)_p[0-7]$' OR c.relname IN ('worker_stream', 'pending_signals'))
            AND c.reltuples >= 1000",
    )
    .fetch_all(p)
    .await
    .unwrap()
}

async fn load(p: &sqlx::PgPool) {
    let kept = kept_jobs();
    for sql in [
        format!(
            "INSERT INTO hotmesh.jobs (id, gid, app_id, version, topic, status, data, created_at, updated_at, completed_at, expired_at, expire_seconds)
             SELECT 'old-' || i, 'g' || i, 'scale', '1', 'scale.start', 0, '{{\"done\": true}}',
                    now() - interval '6 days', now() - interval '6 days', now() - interval '6 days',
                    now() - interval '6 days' + interval '60 s', 60
               FROM generate_series(1, {kept}) i"
        ),
        format!(
            "INSERT INTO hotmesh.activities (job_id, activity_id, dad, type, status, input, output, finished_at)
             SELECT 'old-' || i, a, ',0', 'worker', 'done', '{{}}', '{{}}', now() - interval '6 days'
               FROM generate_series(1, {kept}) i, unnest(ARRAY['t', 'a', 'b', 'h']) a"
        ),
        // a topic nobody serves, and signals for hooks that never come
        format!(
            "INSERT INTO hotmesh.worker_stream (topic, app_id, job_id, gid, activity_id, dad, data)
             SELECT 'scale.idle', 'scale', 'old-' || i, 'g' || i, 'a', ',0', '{{}}' FROM generate_series(1, {BACKLOG}) i"
        ),
        format!(
            "INSERT INTO hotmesh.pending_signals (app_id, topic, key, data, status, code, expires_at)
             SELECT 'scale', 'scale.say', 'nobody-' || i, '{{}}', 'success', 200, now() + interval '1 hour'
               FROM generate_series(1, {BACKLOG}) i"
        ),
        // past the 7-day retention, in the next part: the ring's turn (made due) empties it
        format!(
            "INSERT INTO hotmesh.jobs (id, gid, app_id, version, topic, status, created_at, completed_at, expired_at, part)
             SELECT 'gone-' || i, 'g' || i, 'scale', '1', 'scale.start', 0,
                    now() - interval '8 days', now() - interval '8 days', now() - interval '8 days',
                    (hotmesh.current_part() + 1) % 8
               FROM generate_series(1, {PAST_RETENTION}) i"
        ),
        "UPDATE hotmesh.ring SET opened_at = now() - interval '30 days'".into(),
        "ANALYZE hotmesh.jobs, hotmesh.activities, hotmesh.worker_stream, hotmesh.pending_signals".into(),
    ] {
        sqlx::query(&sql).execute(p).await.unwrap();
    }
}

/// The sequential scans of a large table in the plans logged by the processes `pids`
/// (the log is the cluster's: other databases' plans are in it too), each with the
/// statement it belongs to; and how many plans of theirs it read.
/// Statements that read a whole part of the ring on purpose: the turn's look for the jobs
/// of the part it empties that have not ended (once a span, before it locks anything; an
/// index for it would cost every start an entry: src/store/ring.rs).
const WHOLE_PART: [&str; 1] = ["SELECT id FROM hotmesh.jobs_p"];

/// The plans logged by the processes `pids` (the log is the cluster's: other databases'
/// plans are in it too), each as its statement and its plan's lines.
fn plans_of(log: &str, pids: &[i32]) -> Vec<(String, Vec<String>)> {
    let mut plans: Vec<(String, Vec<String>)> = vec![];
    let mut ours = false;
    for line in log.lines() {
        // a log line (not a plan's continuation) says which process wrote it
        if !line.starts_with(char::is_whitespace) {
            ours = pids.iter().any(|p| line.contains(&format!(" [{p}] ")));
        }
        if !ours {
            continue;
        }
        if let Some(q) = line.split("Query Text: ").nth(1) {
            plans.push((q.to_string(), vec![]));
        } else if let Some((_, lines)) = plans.last_mut() {
            lines.push(line.to_string());
        }
    }
    plans
}

fn seq_scans(log: &str, pids: &[i32], large: &[String]) -> (Vec<String>, usize) {
    let plans = plans_of(log, pids);
    let mut found = vec![];
    for (query, lines) in &plans {
        if WHOLE_PART.iter().any(|w| query.starts_with(w)) {
            continue;
        }
        for line in lines {
            for t in large {
                if line.contains(&format!("Seq Scan on {t} "))
                    || line.trim_end().ends_with(&format!("Seq Scan on {t}"))
                {
                    found.push(format!("{t}: {query}"));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    (found, plans.len())
}

/// Whether this cluster's plans can be read here: a known server log, and auto_explain
/// preloaded (without them the tests say so and check nothing).
async fn plans_can_be_read() -> bool {
    if server_log().is_none() {
        eprintln!("no server log known (HOTMESH_PG_DIR): nothing checked");
        return false;
    }
    let preloaded: String = scalar("postgres", "SHOW shared_preload_libraries").await;
    if !preloaded.contains("auto_explain") {
        eprintln!("auto_explain is not preloaded in this cluster: nothing checked");
        return false;
    }
    true
}

/// Whether auto_explain logs every statement's plan in `db`, nested ones (the engine's
/// SPI) included, for the sessions that connect from now on; the engine worker is
/// started again to read the settings.
async fn log_plans(db: &str, on: bool) {
    for (setting, value) in [("log_min_duration", "0"), ("log_nested_statements", "on")] {
        let sql = if on {
            format!("ALTER DATABASE {db} SET auto_explain.{setting} = {value}")
        } else {
            format!("ALTER DATABASE {db} RESET auto_explain.{setting}")
        };
        exec("postgres", &sql).await;
    }
    if on {
        restart_engine_worker(db).await;
    }
}

/// Every statement's plan logged in `db` (nested ones, the engine's SPI, included), the
/// engine worker started again to log its own; a pool of `connections` whose sessions
/// log theirs, and the log's offset from here.
async fn logged_pool(db: &str, connections: u32) -> (sqlx::PgPool, u64) {
    log_plans(db, true).await;
    let p = sqlx::postgres::PgPoolOptions::new()
        .max_connections(connections)
        .connect(&url_for(db))
        .await
        .unwrap();
    (p, log_size())
}

/// Wakes the engine worker for one more loop, then lists the processes of the pool's
/// database (the engine worker and the pool's connections): whose plans to read.
async fn wake_and_list_sessions(p: &sqlx::PgPool) -> Vec<i32> {
    sqlx::query("SELECT hotmesh.wake_engine()")
        .execute(p)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        .fetch_all(p)
        .await
        .unwrap()
}

/// Starts `db`'s engine worker again (it reads the database's settings when it connects).
async fn restart_engine_worker(db: &str) {
    let old: i32 = scalar(
        db,
        "SELECT pid FROM hotmesh.workers() WHERE database = current_database()",
    )
    .await;
    exec("postgres", &format!("SELECT pg_terminate_backend({old})")).await;
    eventually(20, "the engine worker back", || async {
        let pid: i32 = scalar(
            db,
            "SELECT coalesce((SELECT pid FROM hotmesh.workers()
                               WHERE database = current_database() AND state = 'running'), 0)",
        )
        .await;
        (pid != 0 && pid != old).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_step_path_and_the_engine_loop_use_indexes_with_many_finished_jobs() {
    if !plans_can_be_read().await {
        return;
    }
    let p = with_app(DB, APP, "scale", "1", 8).await;
    load(&p).await;
    let large = large_tables(&p).await;
    assert!(large.len() >= 4, "large tables: {large:?}");
    let (p, offset) = logged_pool(DB, 8).await;

    // the workload: start, two worker steps with a timer between, a signal at the end
    for i in 0..WORKFLOWS {
        sqlx::query("SELECT hotmesh.pub('scale.start', $1, $2)")
            .bind(json!({ "n": i }))
            .bind(json!({ "id": format!("new-{i}") }))
            .execute(&p)
            .await
            .unwrap();
    }
    let job_ids: Vec<String> = (0..WORKFLOWS).map(|i| format!("new-{i}")).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ids: Vec<(i64, i64)> =
            sqlx::query_as("SELECT id, reservation FROM hotmesh.dequeue('scale.step', 50, 30)")
                .fetch_all(&p)
                .await
                .unwrap();
        for (id, reservation) in &ids {
            sqlx::query("SELECT hotmesh.respond($1, '{}', 'success', NULL, $2)")
                .bind(id)
                .bind(reservation)
                .execute(&p)
                .await
                .unwrap();
        }
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM unnest($1::text[]) AS j(id)
               JOIN hotmesh.activities a ON a.job_id = j.id AND a.activity_id = 'h'",
        )
        .bind(&job_ids)
        .fetch_one(&p)
        .await
        .unwrap();
        if waiting as usize == WORKFLOWS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the workflows did not reach their hook"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 0..WORKFLOWS {
        sqlx::query("SELECT hotmesh.signal('scale.say', $1)")
            .bind(json!({ "id": format!("new-{i}"), "said": "hi" }))
            .execute(&p)
            .await
            .unwrap();
    }
    let out: serde_json::Value = sqlx::query_scalar("SELECT hotmesh.wait_for_job('new-0', 10000)")
        .fetch_one(&p)
        .await
        .unwrap();
    assert_eq!(out["data"]["said"], "hi");
    // the engine worker's housekeeping runs every 5 s: let it run once in the window
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let pids = wake_and_list_sessions(&p).await;
    let log = log_since(offset);
    log_plans(DB, false).await;
    let past: i64 = sqlx::query_scalar("SELECT count(*) FROM hotmesh.jobs WHERE id LIKE 'gone-%'")
        .fetch_one(&p)
        .await
        .unwrap();
    assert_eq!(past, 0, "the ring's turn removes every job past retention");
    let turns: i64 = sqlx::query_scalar("SELECT turns FROM hotmesh.ring")
        .fetch_one(&p)
        .await
        .unwrap();
    assert_eq!(turns, 1, "the engine worker turned the ring once");
    let (scans, plans) = seq_scans(&log, &pids, &large);
    assert!(
        plans > 500,
        "auto_explain logged {plans} plans of this database's processes"
    );
    assert!(
        log.contains("ORDER BY w.reserved_until LIMIT 1000"),
        "housekeeping ran in the window"
    );
    assert!(
        scans.is_empty(),
        "sequential scans of large tables ({} plans read):\n{}",
        plans,
        scans.join("\n")
    );
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM hotmesh.jobs WHERE id LIKE 'old-%'")
        .fetch_one(&p)
        .await
        .unwrap();
    assert_eq!(kept, kept_jobs());
    eprintln!("{kept} finished jobs kept: {plans} plans read, no sequential scan of a large table");
    p.close().await;
    exec("postgres", &format!("DROP DATABASE {DB} WITH (FORCE)")).await;
}

const QUEUE_DB: &str = "e2e_queue_plans";

const QUEUE_APP: &str = r#"
app:
  id: qp
  version: '1'
  graphs:
    - subscribes: qp.start
      expire: 60
      activities:
        t: { type: trigger }
        a: { type: worker, topic: qp.step }
        b: { type: worker, topic: qp.step }
      transitions:
        t: [ { to: a } ]
        a: [ { to: b } ]
"#;

/// Each index's first column: a scan of the index whose condition does not name it reads
/// the whole index. `engine_stream_ready` is read that way on purpose: in its order, up
/// to the router's batch.
const LEADING: [(&str, &str); 8] = [
    ("worker_stream_pkey", "id"),
    ("worker_stream_ready", "topic"),
    ("worker_stream_due", "visible_at"),
    ("worker_stream_job", "job_id"),
    ("worker_stream_reserved", "reserved_until"),
    ("engine_stream_pkey", "id"),
    ("engine_stream_due", "visible_at"),
    ("engine_stream_job", "job_id"),
];

/// What is wrong in plans of the queue tables: a sequential scan, an index read whole
/// for a condition on another column, or a sort of a queue read in order; and in any
/// plan, JIT compilation.
fn queue_plan_faults(plans: &[(String, Vec<String>)]) -> Vec<String> {
    let mut faults = vec![];
    for (query, lines) in plans {
        let short: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
        for (i, line) in lines.iter().enumerate() {
            // a statement that costs 10^10 for want of an index must not be compiled
            if line.trim_start().starts_with("JIT:") {
                faults.push(format!("JIT-compiled: {short}"));
            }
            for t in ["worker_stream", "engine_stream"] {
                if line.contains(&format!("Seq Scan on {t}")) {
                    faults.push(format!("sequential scan of {t}: {short}"));
                }
            }
            if line.contains("Sort")
                && (short.contains("FOR UPDATE SKIP LOCKED") && short.contains("ORDER BY priority"))
            {
                faults.push(format!("a queue read sorted: {short}"));
            }
            let Some(index) = line
                .split("Index Scan using ")
                .nth(1)
                .or_else(|| line.split("Bitmap Index Scan on ").nth(1))
                .and_then(|r| r.split_whitespace().next())
            else {
                continue;
            };
            let Some((_, first)) = LEADING.iter().find(|(name, _)| *name == index) else {
                continue;
            };
            // the node's own lines: up to the next node
            let cond = lines[i + 1..]
                .iter()
                .take_while(|l| !l.contains("->"))
                .find(|l| l.contains("Index Cond:"));
            let named = cond.is_some_and(|c| {
                c.split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                    .any(|w| w == *first)
            });
            if !named {
                faults.push(format!(
                    "{index} read whole ({}): {short}",
                    cond.map_or("no condition", |c| c.trim())
                ));
            }
        }
    }
    faults.sort();
    faults.dedup();
    faults
}

/// The batch statements (those that join arrays of keys, `unnest($1 …)`) whose plan was
/// made for this execution's values: a custom plan's conditions hold the arrays as
/// constants (`unnest('{…}')`) where the generic plan's say `unnest($1)`. Their plan is the same whatever the arrays hold, and
/// planning each batch anew cost a third of a take's time (docs/benchmarks.md).
fn custom_batch_plans(plans: &[(String, Vec<String>)]) -> Vec<String> {
    let mut custom: Vec<String> = plans
        .iter()
        .filter(|(_, lines)| {
            lines
                .iter()
                .any(|l| l.contains("Cond:") && l.contains("unnest('{"))
        })
        .map(|(query, _)| {
            query
                .split_whitespace()
                .take(12)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    custom.sort();
    custom.dedup();
    custom
}

/// Takes up to `n` messages of `qp.step`, heartbeats the first, and answers them all in
/// one batch: the worker protocol's statements. Returns how many answers applied.
async fn work(p: &sqlx::PgPool, n: i32) -> usize {
    let got: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, reservation FROM hotmesh.dequeue('qp.step', $1, 30)")
            .bind(n)
            .fetch_all(p)
            .await
            .unwrap();
    let (ids, rs): (Vec<i64>, Vec<i64>) = got.into_iter().unzip();
    if let (Some(id), Some(r)) = (ids.first(), rs.first()) {
        sqlx::query("SELECT hotmesh.heartbeat($1, 30, $2)")
            .bind(id)
            .bind(r)
            .execute(p)
            .await
            .unwrap();
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT hotmesh.respond_batch($1, NULL, NULL, NULL, $2)")
            .bind(&ids)
            .bind(&rs)
            .fetch_one(p)
            .await
            .unwrap();
    applied.len()
}

/// A queue is empty at every quiet moment, and a plan is made then: a session's first
/// statements, or a replan after autovacuum saw the queue empty. The engine's plans
/// must still read a backlog by its indexes: by id through the primary key, a queue in
/// the ready index's order, never a sequential scan nor a sort of it. (Seen before: a
/// hash join over the whole queue to find an answer batch's 10 messages, `dequeue`
/// sorting every due message, an answer reading the ready index whole for its id.)
#[tokio::test]
async fn plans_made_on_an_empty_queue_read_a_backlog_by_index() {
    if !plans_can_be_read().await {
        return;
    }
    let setup = with_app(QUEUE_DB, QUEUE_APP, "qp", "1", 1).await;
    // the queues as autovacuum leaves them at a quiet moment: empty, no pages, and no
    // autovacuum during the test to plan them again with a backlog in its statistics
    for sql in [
        "ALTER TABLE hotmesh.worker_stream SET (autovacuum_enabled = off)",
        "ALTER TABLE hotmesh.engine_stream SET (autovacuum_enabled = off)",
        "VACUUM hotmesh.worker_stream",
        "VACUUM hotmesh.engine_stream",
    ] {
        sqlx::query(sql).execute(&setup).await.unwrap();
    }
    setup.close().await;
    // one session: its plans are made while the queue is empty, and kept
    let (p, offset) = logged_pool(QUEUE_DB, 1).await;
    // quiet: one workflow at a time, each statement run more than five times so that
    // the plan cache settles on its generic plan
    for i in 0..8 {
        sqlx::query("SELECT hotmesh.pub('qp.start', $1)")
            .bind(json!({ "n": i }))
            .execute(&p)
            .await
            .unwrap();
        for _ in 0..2 {
            assert_eq!(work(&p, 1).await, 1, "the workflow's next step");
        }
    }
    // a backlog arrives: 3,000 workflows' first messages
    for i in 0..3000 {
        sqlx::query("SELECT hotmesh.pub('qp.start', $1, $2)")
            .bind(json!({ "n": i }))
            .bind(json!({ "id": format!("backlog-{i}") }))
            .execute(&p)
            .await
            .unwrap();
    }
    // (counted from another session: a count reads the whole queue, rightly)
    let queued: i64 = scalar(QUEUE_DB, "SELECT count(*) FROM hotmesh.worker_stream").await;
    assert!(queued >= 3000, "a backlog of {queued}");
    // the same statements on the backlog, with the plans made on the empty queue
    let offset_backlog = log_size();
    for _ in 0..6 {
        assert_eq!(work(&p, 10).await, 10);
    }
    // a session that asks for custom plans (or a plan cache that keeps choosing them)
    // still runs the batch statements on their generic plans
    sqlx::query("SET plan_cache_mode = force_custom_plan")
        .execute(&p)
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(work(&p, 10).await, 10);
    }
    sqlx::query("RESET plan_cache_mode")
        .execute(&p)
        .await
        .unwrap();
    // an interrupted job takes its messages out of the queue by job
    sqlx::query("SELECT hotmesh.interrupt('qp.start', 'backlog-2999')")
        .execute(&p)
        .await
        .unwrap();
    // the engine worker's router reads its queue once more
    let pids = wake_and_list_sessions(&p).await;
    log_plans(QUEUE_DB, false).await;
    let all = plans_of(&log_since(offset), &pids);
    let on_backlog = plans_of(&log_since(offset_backlog), &pids);
    let faults = queue_plan_faults(&all);
    assert!(
        on_backlog.len() > 50
            && on_backlog
                .iter()
                .any(|(q, _)| q.starts_with("WITH m AS MATERIALIZED")),
        "auto_explain logged {} plans with the backlog",
        on_backlog.len()
    );
    assert!(
        faults.is_empty(),
        "plans that read the queues whole ({} plans read):\n{}",
        all.len(),
        faults.join("\n")
    );
    let custom = custom_batch_plans(&on_backlog);
    assert!(
        custom.is_empty(),
        "batch statements planned for their values at each run:\n{}",
        custom.join("\n")
    );
    eprintln!(
        "{} plans read, the backlog read by index in each",
        all.len()
    );
    p.close().await;
    exec(
        "postgres",
        &format!("DROP DATABASE {QUEUE_DB} WITH (FORCE)"),
    )
    .await;
}
