//! The bridge background worker against a real cluster and real redis-server and
//! nats-server processes: a row in `hotmesh.transports` starts it (no process of ours
//! relays anything), client workers on the transport run the workflows, `hotmesh.bridges`
//! shows what it does; killed, disabled, or with PostgreSQL restarted under it, every
//! workflow still ends once with the right result. Bad configuration is refused or shown.

#[path = "../../transport/tests/common/mod.rs"]
mod common;
mod two_steps;

use common::Server;
use hotmesh_client::{Config, HotMesh, Outcome, PubOptions, Worker};
use hotmesh_tests::*;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use two_steps::Runs;

const DB: &str = "e2e_bridge_worker";

/// The runs: `bw.start`, two worker steps of + 1 on `bw.work`, each step counted.
const RUNS: Runs = Runs { db: DB, app: "bw" };

async fn setup() -> HotMesh {
    fresh_database(DB).await;
    exec(DB, "CREATE EXTENSION hotmesh").await;
    let hm = hotmesh(DB).await;
    let app = format!(
        "app:\n  id: bw\n  version: '1'\n  graphs:{}\n",
        RUNS.graph()
    );
    install(hm.pool(), &app, "bw", "1").await;
    hm
}

/// A client process whose worker of `bw.work` runs on the transport (n + 1); counts its
/// callbacks.
async fn workers_on(server: &Server, ran: Arc<AtomicU64>) -> HotMesh {
    let config = Config::new("bw", url_for(DB))
        .stream_url(server.url())
        .worker(Worker::new("bw.work", move |m| {
            let ran = ran.clone();
            async move {
                ran.fetch_add(1, Ordering::Relaxed);
                Outcome::success(json!({"n": m.data["n"].as_i64().unwrap_or(0) + 1}))
            }
        }));
    HotMesh::init(config)
        .await
        .expect("workers on the transport")
}

/// The transport's row: `bw.work` relayed, holds of 5 s (a killed bridge's messages come
/// back soon).
async fn configure(server: &Server, name: &str) {
    exec(
        DB,
        &format!(
            "INSERT INTO hotmesh.transports (name, url, topics, hold)
             VALUES ('{name}', '{}', '{{bw.work}}', '5 seconds')",
            server.url()
        ),
    )
    .await;
}

/// The bridge worker's pid, once it runs.
async fn bridge_pid() -> i32 {
    eventually(20, "a bridge worker runs", || async {
        pids("hotmesh bridge", Some(DB)).await.first().copied()
    })
    .await
}

/// The row of `hotmesh.bridges` for `name`: state, connected, relayed, answered, errors,
/// last error.
async fn bridges_row(name: &str) -> (String, bool, i64, i64, i64, Option<String>, i64) {
    let mut c = connect(DB).await;
    sqlx::query_as(
        "SELECT state, connected, relayed, answered, errors, last_error, lag
           FROM hotmesh.bridges WHERE name = $1",
    )
    .bind(name)
    .fetch_one(&mut c)
    .await
    .expect("hotmesh.bridges")
}

async fn a_row_runs_workflows_through_the_bridge_worker(server: Server) {
    let hm = setup().await;
    let ran = Arc::new(AtomicU64::new(0));
    let workers = workers_on(&server, ran.clone()).await;
    configure(&server, "main").await;
    let pid = bridge_pid().await;
    let took = RUNS.run_all(&hm, 0, 200, Duration::from_secs(60)).await;
    RUNS.check(0, 200).await;
    eprintln!(
        "200 workflows through the bridge worker ({}): {:.1} s",
        server.url().split(':').next().unwrap_or(""),
        took.as_secs_f64()
    );
    // the view shows what it did (the counters are copied out about once a second)
    let row = eventually(10, "hotmesh.bridges counts the run", || async {
        let r = bridges_row("main").await;
        (r.3 >= 400).then_some(r)
    })
    .await;
    assert_eq!(row.0, "running");
    assert!(row.1, "connected");
    assert!(row.2 >= 400, "relayed {}", row.2);
    assert_eq!(row.6, 0, "lag");
    let view_pid: i32 = scalar(DB, "SELECT pid FROM hotmesh.bridges WHERE name = 'main'").await;
    assert_eq!(view_pid, pid);
    assert!(ran.load(Ordering::Relaxed) >= 400);
    workers.stop().await;
    exec(DB, "DELETE FROM hotmesh.transports").await;
}

#[tokio::test]
async fn a_row_runs_workflows_through_the_bridge_worker_on_redis() {
    a_row_runs_workflows_through_the_bridge_worker(Server::redis()).await;
}

#[tokio::test]
async fn a_row_runs_workflows_through_the_bridge_worker_on_nats() {
    a_row_runs_workflows_through_the_bridge_worker(Server::nats()).await;
}

#[tokio::test]
async fn the_bridge_worker_terminated_under_load_comes_back_and_nothing_is_lost_or_applied_twice() {
    let server = Server::redis();
    let hm = setup().await;
    let workers = workers_on(&server, Arc::default()).await;
    configure(&server, "main").await;
    let first_pid = bridge_pid().await;
    let n = 600;
    RUNS.publish_all(&hm, 0, n).await;
    eventually(60, "some workflows ended", || async {
        (RUNS.open_jobs(0, n).await < n - 50).then_some(())
    })
    .await;
    let killed = Instant::now();
    exec(
        "postgres",
        &format!("SELECT pg_terminate_backend({first_pid})"),
    )
    .await;
    // the engine worker starts another at once (the postmaster tells it the first exited)
    let second_pid = eventually(20, "another bridge worker", || async {
        pids("hotmesh bridge", Some(DB))
            .await
            .into_iter()
            .find(|p| *p != first_pid)
    })
    .await;
    let back = killed.elapsed();
    let done = RUNS.wait_all(0, n, Duration::from_secs(90)).await;
    RUNS.check(0, n).await;
    eprintln!(
        "drain after the bridge worker was terminated (redis): {:.1} s (another ran after {:.1} s)",
        (done - killed).as_secs_f64(),
        back.as_secs_f64()
    );
    assert_ne!(second_pid, first_pid);
    workers.stop().await;
    exec(DB, "DELETE FROM hotmesh.transports").await;
}

#[tokio::test]
async fn a_disabled_transport_lets_work_wait_in_postgres_until_enabled_again() {
    let server = Server::nats();
    let hm = setup().await;
    let workers = workers_on(&server, Arc::default()).await;
    configure(&server, "main").await;
    bridge_pid().await;
    exec(
        DB,
        "UPDATE hotmesh.transports SET enabled = false WHERE name = 'main'",
    )
    .await;
    // the bridge worker has nothing left to run: it leaves
    eventually(20, "the bridge worker left", || async {
        pids("hotmesh bridge", Some(DB))
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    RUNS.publish_all(&hm, 0, 50).await;
    let row = eventually(10, "the lag shows the waiting work", || async {
        let r = bridges_row("main").await;
        (r.6 == 50).then_some(r)
    })
    .await;
    assert!(!row.1, "not connected while disabled");
    assert_eq!(RUNS.open_jobs(0, 50).await, 50);
    exec(
        DB,
        "UPDATE hotmesh.transports SET enabled = true WHERE name = 'main'",
    )
    .await;
    RUNS.wait_all(0, 50, Duration::from_secs(60)).await;
    RUNS.check(0, 50).await;
    workers.stop().await;
    exec(DB, "DELETE FROM hotmesh.transports").await;
}

#[tokio::test]
async fn a_restart_of_postgres_brings_the_bridge_worker_back_and_the_work_through() {
    let server = Server::redis();
    let hm = setup().await;
    let workers = workers_on(&server, Arc::default()).await;
    configure(&server, "main").await;
    bridge_pid().await;
    RUNS.publish_all(&hm, 0, 300).await;
    let restarted = Instant::now();
    cluster("restart", &[]);
    bridge_pid().await;
    // the jobs started before the restart, and more after it
    let hm = hotmesh(DB).await;
    RUNS.publish_all(&hm, 300, 100).await;
    let done = RUNS.wait_all(0, 400, Duration::from_secs(90)).await;
    RUNS.check(0, 400).await;
    eprintln!(
        "drain after a PostgreSQL restart under the bridge worker (redis): {:.1} s",
        (done - restarted).as_secs_f64()
    );
    workers.stop().await;
    exec(DB, "DELETE FROM hotmesh.transports").await;
}

#[tokio::test]
async fn bad_transports_are_refused_and_an_unreachable_one_is_shown_with_its_error() {
    setup().await;
    let mut c = connect(DB).await;
    for (sql, needle) in [
        (
            "INSERT INTO hotmesh.transports (name, url, topics) VALUES ('x', 'http://h/', '{a}')",
            "transports_url",
        ),
        (
            "INSERT INTO hotmesh.transports (name, url) VALUES ('x', 'redis://h/')",
            "transports_something",
        ),
        (
            "INSERT INTO hotmesh.transports (name, url, topics) VALUES ('x y', 'redis://h/', '{a}')",
            "transports_name",
        ),
        (
            "INSERT INTO hotmesh.transports (name, url, topics, hold) VALUES ('x', 'redis://h/', '{a}', '1 second')",
            "transports_hold",
        ),
        (
            "INSERT INTO hotmesh.transports (name, url, topics) VALUES ('x', 'redis://h/', '{\"a b\"}')",
            "without whitespace",
        ),
    ] {
        let e = sqlx::query(sql).execute(&mut c).await.unwrap_err().to_string();
        assert!(e.contains(needle), "{sql}: {e}");
    }
    // a role may not name another role it is not a member of
    exec(DB, "DROP ROLE IF EXISTS bw_admin; CREATE ROLE bw_admin").await;
    exec(
        DB,
        "GRANT USAGE ON SCHEMA hotmesh TO bw_admin; GRANT INSERT ON hotmesh.transports TO bw_admin",
    )
    .await;
    let e = sqlx::raw_sql(
        "SET ROLE bw_admin; INSERT INTO hotmesh.transports (name, url, topics, role) VALUES ('x', 'redis://h/', '{a}', 'postgres')",
    )
    .execute(&mut c)
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("may not run a bridge as role postgres"), "{e}");
    sqlx::raw_sql("RESET ROLE").execute(&mut c).await.unwrap();

    // nothing listens on the port: the bridge retries, and says why; the password is hidden
    let port = common::free_port();
    exec(
        DB,
        &format!(
            "INSERT INTO hotmesh.transports (name, url, topics) VALUES ('down', 'redis://:s3cret@127.0.0.1:{port}/', '{{bw.work}}')"
        ),
    )
    .await;
    let row = eventually(20, "the bridge reports its error", || async {
        let r = bridges_row("down").await;
        (r.0 == "retrying").then_some(r)
    })
    .await;
    assert!(!row.1);
    assert!(row.4 >= 1, "errors {}", row.4);
    let err = row.5.unwrap_or_default();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    let shown: String = scalar(
        DB,
        "SELECT transport FROM hotmesh.bridges WHERE name = 'down'",
    )
    .await;
    assert_eq!(shown, format!("redis://***@127.0.0.1:{port}/"));
    // deleting the row stops it: the bridge worker leaves
    exec(DB, "DELETE FROM hotmesh.transports").await;
    eventually(20, "the bridge worker left", || async {
        pids("hotmesh bridge", Some(DB))
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    exec(DB, "DROP OWNED BY bw_admin; DROP ROLE bw_admin").await;
}

/// Every activity type in jobs whose workers run on the transport: a worker, an await of a
/// child graph (whose worker runs there too), a pass-through hook cycled three times around
/// a worker, a hook woken by a signal activity of another job, and an interrupt of a job
/// whose worker hangs on the transport.
const EVERY_TYPE: &str = r#"
app:
  id: ev
  version: '1'
  graphs:
    - subscribes: ev.start
      publishes: ev.done
      expire: 300
      activities:
        t: { type: trigger }
        w: { type: worker, topic: ev.work, input: { maps: { n: '{t.output.data.n}' } }, job: { maps: { w: '{$self.output.data.n}' } } }
        call: { type: await, topic: ev.child, input: { maps: { n: '{w.output.data.n}' } }, job: { maps: { child: '{$self.output.data.n}' } } }
        round: { type: hook, cycle: true, output: { maps: { i: 0 } } }
        cw: { type: worker, topic: ev.work, input: { maps: { n: '{round.output.data.i}' } }, job: { maps: { rounds: '{$self.output.data.n}' } } }
        again: { type: cycle, ancestor: round, input: { maps: { i: '{cw.output.data.n}' } } }
        reply: { type: hook, job: { maps: { replied: '{$self.hook.data.answer}' } } }
      transitions:
        t: [ { to: w } ]
        w: [ { to: call } ]
        call: [ { to: round } ]
        round: [ { to: cw } ]
        cw:
          - to: again
            conditions: { match: [ { expected: true, actual: { '@pipe': [['{cw.output.data.n}', 3], ['{@number.lt}']] } } ] }
          - to: reply
            conditions: { match: [ { expected: false, actual: { '@pipe': [['{cw.output.data.n}', 3], ['{@number.lt}']] } } ] }
      hooks:
        ev.reply:
          - to: reply
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] }
    - subscribes: ev.child
      activities:
        c0: { type: trigger }
        c1: { type: worker, topic: ev.work, input: { maps: { n: '{c0.output.data.n}' } }, job: { maps: { n: '{$self.output.data.n}' } } }
      transitions:
        c0: [ { to: c1 } ]
    - subscribes: ev.notify
      activities:
        n0: { type: trigger }
        tell: { type: signal, topic: ev.reply, signal: { maps: { id: '{n0.output.data.target}', answer: 'from a signal activity' } } }
      transitions:
        n0: [ { to: tell } ]
    - subscribes: ev.slow
      activities:
        s0: { type: trigger }
        s1: { type: worker, topic: ev.hang }
      transitions:
        s0: [ { to: s1 } ]
    - subscribes: ev.stop
      activities:
        o0: { type: trigger }
        kill: { type: interrupt, target: '{o0.output.data.target}', topic: ev.slow }
      transitions:
        o0: [ { to: kill } ]
"#;

async fn every_activity_type_runs_with_its_workers_on(server: Server) {
    let hm = setup().await;
    install(hm.pool(), EVERY_TYPE, "ev", "1").await;
    let hung = Arc::new(AtomicU64::new(0));
    let h = hung.clone();
    let config = Config::new("ev", url_for(DB))
        .stream_url(server.url())
        .grace(Duration::from_millis(100))
        .worker(Worker::new("ev.work", |m| async move {
            Outcome::success(json!({"n": m.data["n"].as_i64().unwrap_or(0) + 1}))
        }))
        .worker(Worker::new("ev.hang", move |_| {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(30)).await;
                Outcome::success(json!({}))
            }
        }));
    let workers = HotMesh::init(config)
        .await
        .expect("workers on the transport");
    exec(
        DB,
        &format!(
            "INSERT INTO hotmesh.transports (name, url, topics) VALUES ('every', '{}', '{{ev.work,ev.hang}}')",
            server.url()
        ),
    )
    .await;

    // worker, await (a child with a worker), hook and cycle; then the hook waits for its signal
    hm.publish("ev.start", json!({"n": 0}), PubOptions::new().id("e-1"))
        .await
        .unwrap();
    eventually(30, "e-1 waits for its reply", || async {
        let hooks: i64 = scalar(
            DB,
            "SELECT count(*) FROM hotmesh.signal_hooks WHERE job_id = 'e-1'",
        )
        .await;
        (hooks > 0).then_some(())
    })
    .await;
    // a signal activity of another job wakes it
    hm.publish("ev.notify", json!({"target": "e-1"}), PubOptions::new())
        .await
        .unwrap();
    let data: serde_json::Value = eventually(30, "e-1 ends", || async {
        let done: Option<serde_json::Value> = scalar(
            DB,
            "SELECT (SELECT data FROM hotmesh.jobs WHERE id = 'e-1' AND status = 0 AND completed_at IS NOT NULL)",
        )
        .await;
        done
    })
    .await;
    assert_eq!(data["w"], 1, "the worker");
    assert_eq!(data["child"], 2, "the awaited child's worker");
    assert_eq!(
        data["rounds"], 3,
        "three rounds of the cycle, a worker step each"
    );
    assert_eq!(data["replied"], "from a signal activity");

    // an interrupt ends a job whose worker hangs on the transport
    hm.publish("ev.slow", json!({}), PubOptions::new().id("s-1"))
        .await
        .unwrap();
    eventually(30, "the hanging callback runs", || async {
        (hung.load(Ordering::Relaxed) > 0).then_some(())
    })
    .await;
    hm.publish("ev.stop", json!({"target": "s-1"}), PubOptions::new())
        .await
        .unwrap();
    let status: i64 = eventually(30, "s-1 is interrupted", || async {
        let s: Option<i32> = scalar(
            DB,
            "SELECT (SELECT status FROM hotmesh.jobs WHERE id = 's-1' AND completed_at IS NOT NULL)",
        )
        .await;
        s.map(i64::from)
    })
    .await;
    assert!(status < -100_000_000, "interrupted: {status}");
    workers.stop().await;
    exec(DB, "DELETE FROM hotmesh.transports").await;
}

#[tokio::test]
async fn every_activity_type_runs_with_its_workers_on_redis() {
    every_activity_type_runs_with_its_workers_on(Server::redis()).await;
}

#[tokio::test]
async fn every_activity_type_runs_with_its_workers_on_nats() {
    every_activity_type_runs_with_its_workers_on(Server::nats()).await;
}

#[tokio::test]
async fn a_database_with_a_bridge_worker_can_be_dropped_without_force() {
    let server = Server::redis();
    fresh_database(DB).await;
    exec(DB, "CREATE EXTENSION hotmesh").await;
    configure(&server, "main").await;
    bridge_pid().await;
    // the bridge worker and its connections leave when DROP DATABASE needs them to
    let mut c = connect("postgres").await;
    sqlx::raw_sql(&format!("DROP DATABASE \"{DB}\""))
        .execute(&mut c)
        .await
        .expect("DROP DATABASE with a bridge worker running");
    assert!(pids("hotmesh bridge", Some(DB)).await.is_empty());
}
