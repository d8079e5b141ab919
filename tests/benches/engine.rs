//! Engine benchmarks against a running cluster (`HOTMESH_DATABASE_URL`, default the dev
//! cluster). Not a test: it prints figures for docs/benchmarks.md.
//!   cargo bench -p hotmesh-tests --bench engine
//! (a) throughput of concurrent 3-worker-step workflows with no-op Rust workers;
//! (b) p50/p99 latency of one 3-step pubsub at low load;
//! (c) timer lateness (server-side: when the hook finished minus when it was due);
//! (e) the same 3-step pubsub through the client crate: `HotMesh::pubsub` with a client
//!     `Worker` (LISTEN wake-up, dequeue, callback, answers batched);
//! (f) (a)'s throughput through the client crate's `Worker`;
//! (g) (a)'s workers draining a backlog started before them (only when BENCH_ONLY names it);
//! (m) MeshFlow: a workflow function calling 3 no-op activities, one at a time (p50/p99) and
//!     BENCH_WORKFLOWS / 3 at once (activities/s, and transaction ids per activity).
//! Settings: BENCH_WORKFLOWS (3000), BENCH_WORKERS for (a) (2,4,8), BENCH_BATCH (10), BENCH_CONCURRENCY for
//! (f) (8), BENCH_EXPIRE (the 3-step graph's `expire`, 60), BENCH_ONLY (a comma list of parts: a,b,e,f,m,c,g), BENCH_CLIENT=0 (no (e), (f):
//! an extension older than the client crate), BENCH_PING=1 (sqlx's ping before each
//! use of a pooled connection).

use serde_json::{json, Value};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::Row;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const APP: &str = r#"
app:
  id: bench
  version: '1'
  graphs:
    - subscribes: bench.three
      publishes: bench.done
      expire: 60
      activities:
        t: { type: trigger }
        a: { type: worker, topic: bench.step, input: { maps: { n: '{t.output.data.n}' } } }
        b: { type: worker, topic: bench.step, input: { maps: { n: '{t.output.data.n}' } } }
        c: { type: worker, topic: bench.step, input: { maps: { n: '{t.output.data.n}' } }, job: { maps: { done: true } } }
      transitions:
        t: [ { to: a } ]
        a: [ { to: b } ]
        b: [ { to: c } ]
    - subscribes: bench.sleep
      expire: 60
      activities:
        s: { type: trigger }
        z: { type: hook, sleep: '{s.output.data.sleep}' }
      transitions:
        s: [ { to: z } ]
"#;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// A no-op worker: dequeue a batch, answer it in one call. Stops when `stop` is set.
/// Workers of one process share one LISTEN connection (`wake`), as a client does: a
/// NOTIFY then wakes one backend, not one per worker.
async fn worker(
    pool: PgPool,
    wake: Arc<Notify>,
    batch: i32,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) {
    while !stop.load(Ordering::Relaxed) {
        let rows = sqlx::query("SELECT id FROM hotmesh.dequeue('bench.step', $1, 30)")
            .bind(batch)
            .fetch_all(&pool)
            .await
            .unwrap();
        // the batch's answers go in one call and commit together
        if !rows.is_empty() {
            let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            sqlx::query("SELECT hotmesh.respond_batch($1)")
                .bind(&ids)
                .execute(&pool)
                .await
                .unwrap();
        }
        done.fetch_add(rows.len(), Ordering::Relaxed);
        if rows.is_empty() {
            let _ = tokio::time::timeout(Duration::from_millis(100), wake.notified()).await;
        }
    }
}

/// The process's one listener: each NOTIFY on the topic's channel wakes one idle worker
/// (a busy worker dequeues again anyway, so waking all would only add empty dequeues).
async fn listener(url: String, wake: Arc<Notify>) {
    let mut l = PgListener::connect(&url).await.unwrap();
    l.listen("hotmesh.work.bench.step").await.unwrap();
    while l.recv().await.is_ok() {
        wake.notify_one();
    }
}

/// `n` no-op workers sharing one listener, until `stop`.
struct Workers {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    handles: Vec<tokio::task::JoinHandle<()>>,
    listen: tokio::task::JoinHandle<()>,
}

impl Workers {
    fn start(pool: &PgPool, url: &str, n: usize) -> Workers {
        // BENCH_BATCH: how many messages a worker dequeues and answers at once (10)
        let batch: i32 = std::env::var("BENCH_BATCH")
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(10);
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let wake = Arc::new(Notify::new());
        let listen = tokio::spawn(listener(url.to_string(), wake.clone()));
        let handles = (0..n)
            .map(|_| {
                tokio::spawn(worker(
                    pool.clone(),
                    wake.clone(),
                    batch,
                    stop.clone(),
                    done.clone(),
                ))
            })
            .collect();
        Workers {
            stop,
            done,
            handles,
            listen,
        }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            h.await.unwrap();
        }
        self.listen.abort();
    }
}

/// (a): `workflows` workflows started by 4 publishers, drained by `workers` workers.
/// Starts `workflows` 3-step workflows from 4 publishers; returns the worker steps they
/// make.
async fn publish(pool: &PgPool, workflows: usize) -> usize {
    let mut pubs = vec![];
    for chunk in 0..4 {
        let p = pool.clone();
        pubs.push(tokio::spawn(async move {
            for n in 0..workflows / 4 {
                sqlx::query("SELECT hotmesh.pub('bench.three', $1)")
                    .bind(json!({"n": chunk * 1_000_000 + n}))
                    .execute(&p)
                    .await
                    .unwrap();
            }
        }));
    }
    for p in pubs {
        p.await.unwrap();
    }
    (workflows / 4) * 4 * 3
}

/// Commits of this database, and calls of `dequeue` and `respond_batch` (as far as the
/// sessions have reported them: statistics reach the views within a second).
async fn counters(pool: &PgPool) -> (i64, i64, i64) {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sqlx::query_as(
        "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
                coalesce((SELECT calls FROM pg_stat_user_functions WHERE schemaname = 'hotmesh' AND funcname = 'dequeue'), 0),
                coalesce((SELECT calls FROM pg_stat_user_functions WHERE schemaname = 'hotmesh' AND funcname = 'respond_batch'), 0)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn throughput(pool: &PgPool, url: &str, workflows: usize, workers: usize) {
    let before = counters(pool).await;
    let ws = Workers::start(pool, url, workers);
    let t0 = Instant::now();
    let total = publish(pool, workflows).await;
    while ws.done.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    ws.stop().await;
    let after = counters(pool).await;
    let steps = total as f64;
    println!("(a) {} workflows x 3 worker steps, {workers} workers: {:.2} s, {:.0} worker steps/s ({:.0} workflows/s); per step: {:.2} commits, {:.2} dequeue calls, {:.2} answer calls ({:.1} answers each)",
        total / 3, secs, steps / secs, steps / 3.0 / secs,
        (after.0 - before.0) as f64 / steps,
        (after.1 - before.1) as f64 / steps,
        (after.2 - before.2) as f64 / steps,
        steps / ((after.2 - before.2).max(1) as f64));
}

/// (g): the workers alone: `workflows` are started first (their rate printed too), then
/// `workers` workers drain the backlog; no publisher competes with them for the cores.
async fn drain(pool: &PgPool, url: &str, workflows: usize, workers: usize) {
    let t0 = Instant::now();
    let total = publish(pool, workflows).await;
    let publishing = t0.elapsed().as_secs_f64();
    let before = counters(pool).await;
    let ws = Workers::start(pool, url, workers);
    let t1 = Instant::now();
    while ws.done.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = t1.elapsed().as_secs_f64();
    ws.stop().await;
    // every answer counted was applied: each job ended
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM hotmesh.jobs WHERE topic = 'bench.three' AND status <> 0",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(open, 0, "jobs of the backlog not finished");
    let after = counters(pool).await;
    let steps = total as f64;
    println!("(g) a backlog of {} workflows (started first: {:.0} workflows/s by 4 publishers) drained by {workers} workers: {:.2} s, {:.0} worker steps/s; per step: {:.2} commits, {:.1} answers per call",
        total / 3, (total / 3) as f64 / publishing, secs, steps / secs,
        (after.0 - before.0) as f64 / steps,
        steps / ((after.2 - before.2).max(1) as f64));
}

#[tokio::main]
async fn main() {
    let url = std::env::var("HOTMESH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:28815/hotmesh".into());
    let workflows: usize = std::env::var("BENCH_WORKFLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let workers: Vec<usize> = std::env::var("BENCH_WORKERS")
        .unwrap_or_else(|_| "2,4,8".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("BENCH_WORKERS: a comma list of numbers")
        })
        .collect();
    // every session of the bench counts its calls of the engine's functions (what (a)
    // reports per step); a pool made after this setting has it
    {
        let mut c: sqlx::PgConnection = sqlx::Connection::connect(&url).await.expect("connect");
        sqlx::query("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET track_functions = ''all''', current_database()); END $$")
            .execute(&mut c)
            .await
            .expect("track_functions");
    }
    // BENCH_PING=1: sqlx's default, a ping (a round trip) before each use of a pooled
    // connection
    let pool = PgPoolOptions::new()
        .test_before_acquire(std::env::var("BENCH_PING").as_deref() == Ok("1"))
        .max_connections(workers.iter().max().copied().unwrap_or(4).max(4) as u32 + 6)
        .connect(&url)
        .await
        .expect("connect");
    // BENCH_EXPIRE: the 3-step graph's `expire` (seconds a finished job stays readable;
    // default 60): with `hotmesh.retention` 0, 1 makes the engine worker delete jobs as
    // fast as they finish, during the run
    let app = match std::env::var("BENCH_EXPIRE") {
        Ok(e) => APP.replacen("expire: 60", &format!("expire: {e}"), 1),
        Err(_) => APP.to_string(),
    };
    sqlx::query("SELECT hotmesh.deploy($1)")
        .bind(&app)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("SELECT hotmesh.activate('bench', '1')")
        .execute(&pool)
        .await
        .unwrap();
    let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&pool)
        .await
        .unwrap();
    println!("synchronous_commit = {sync}");

    // BENCH_ONLY: the parts to run, a comma list (`a,f`; default: all), for profiling and
    // A/B runs
    let only = std::env::var("BENCH_ONLY").ok();
    let wants = |part: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p.trim() == part))
    };

    // (a) throughput: start every workflow, then let the workers drain them; once per
    // worker count (BENCH_WORKERS, a comma list)
    if wants("a") {
        for &n in &workers {
            throughput(&pool, &url, workflows, n).await;
        }
    }
    // (g) the same workers on a backlog (BENCH_ONLY=g, or with the others: not by default)
    if only
        .as_deref()
        .is_some_and(|o| o.split(',').any(|p| p.trim() == "g"))
    {
        for &n in &workers {
            drain(&pool, &url, workflows, n).await;
        }
    }

    if wants("b") {
        // workers for (b)
        let ws = Workers::start(&pool, &url, 4);

        // (b) pubsub latency at low load: one workflow at a time, completion heard by LISTEN
        let mut lat = vec![];
        let mut l = PgListener::connect(&url).await.unwrap();
        for i in 0..300 {
            let id = format!("lat-{}-{i}", std::process::id());
            l.listen(&format!("bench.done.{id}")).await.unwrap();
            let t = Instant::now();
            sqlx::query("SELECT hotmesh.pub('bench.three', '{\"n\": 1}', $1)")
                .bind(json!({"id": id}))
                .execute(&pool)
                .await
                .unwrap();
            let n = tokio::time::timeout(Duration::from_secs(10), l.recv())
                .await
                .expect("completion")
                .unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            let _: Value = serde_json::from_str(n.payload()).unwrap();
            l.unlisten(&format!("bench.done.{id}")).await.unwrap();
        }
        println!(
            "(b) 3-step pubsub, 300 runs: p50 {:.2} ms, p99 {:.2} ms",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99)
        );

        ws.stop().await;
    }

    // (e) the client: pubsub with a client Worker (BENCH_CLIENT=0 skips it: to compare
    // with an extension older than the client crate)
    if std::env::var("BENCH_CLIENT").as_deref() != Ok("0") {
        use hotmesh_client::{Config, HotMesh, Outcome, Worker};
        if wants("e") {
            let w = HotMesh::init(
                Config::new("bench", &url).worker(
                    Worker::new("bench.step", |_m| async { Outcome::success(json!({})) })
                        .concurrency(4),
                ),
            )
            .await
            .unwrap();
            let hm = HotMesh::connect(&url).await.unwrap();
            let mut lat = vec![];
            for _ in 0..300 {
                let t = Instant::now();
                hm.pubsub("bench.three", json!({"n": 1}), Duration::from_secs(10))
                    .await
                    .unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            println!(
            "(e) client pubsub (HotMesh::pubsub + client Worker), 300 runs: p50 {:.2} ms, p99 {:.2} ms",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99)
        );
            w.stop().await;
        }

        // (f) throughput through the client crate's Worker (a callback per message,
        // answers batched by the client), as (a) does it with raw SQL; once per
        // concurrency (BENCH_CONCURRENCY, a comma list, default 8)
        let concurrencies: Vec<usize> = std::env::var("BENCH_CONCURRENCY")
            .unwrap_or_else(|_| "8".into())
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("BENCH_CONCURRENCY: a comma list of numbers")
            })
            .collect();
        for &c in concurrencies.iter().filter(|_| wants("f")) {
            let before = counters(&pool).await;
            let done = Arc::new(AtomicUsize::new(0));
            let counted = done.clone();
            let w = HotMesh::init(
                Config::new("bench", &url).worker(
                    Worker::new("bench.step", move |_m| {
                        let counted = counted.clone();
                        async move {
                            counted.fetch_add(1, Ordering::Relaxed);
                            Outcome::success(json!({}))
                        }
                    })
                    .concurrency(c),
                ),
            )
            .await
            .unwrap();
            let t0 = Instant::now();
            let total = publish(&pool, workflows).await;
            while done.load(Ordering::Relaxed) < total {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let secs = t0.elapsed().as_secs_f64();
            w.stop().await;
            let after = counters(&pool).await;
            let steps = total as f64;
            println!(
                "(f) client Worker (concurrency {c}), {} workflows x 3 worker steps: {:.2} s, {:.0} worker steps/s ({:.0} workflows/s); per step: {:.2} dequeue calls, {:.2} answer calls ({:.1} answers each)",
                total / 3,
                secs,
                steps / secs,
                steps / 3.0 / secs,
                (after.1 - before.1) as f64 / steps,
                (after.2 - before.2) as f64 / steps,
                steps / ((after.2 - before.2).max(1) as f64)
            );
        }
    }

    if wants("m") && std::env::var("BENCH_CLIENT").as_deref() != Ok("0") {
        meshflow(&pool, &url, workflows / 3).await;
    }

    if !wants("c") {
        return;
    }
    // (c) timer lateness: 200 hooks sleeping 0.2 to 2 s, started over a second
    let mut ids = vec![];
    for i in 0..200 {
        let sleep = 0.2 + (i % 10) as f64 * 0.2;
        let id: String = sqlx::query_scalar("SELECT hotmesh.pub('bench.sleep', $1)")
            .bind(json!({"sleep": sleep}))
            .fetch_one(&pool)
            .await
            .unwrap();
        ids.push((id, sleep));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut late = vec![];
    for (id, sleep) in &ids {
        let _: Value = sqlx::query_scalar("SELECT hotmesh.wait_for_job($1, 10000)")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        let ms: f64 = sqlx::query_scalar(
            "SELECT (extract(epoch FROM finished_at - created_at) * 1000 - $2 * 1000)::float8 FROM hotmesh.activities WHERE job_id = $1 AND activity_id = 'z'",
        )
        .bind(id)
        .bind(sleep)
        .fetch_one(&pool)
        .await
        .unwrap();
        late.push(ms);
    }
    println!(
        "(c) timer lateness, 200 timers: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(&mut late, 0.5),
        pct(&mut late, 0.99),
        pct(&mut late, 1.0)
    );
}

/// (m) MeshFlow: a workflow of 3 no-op activities, one at a time, then `n` at once.
async fn meshflow(pool: &PgPool, url: &str, n: usize) {
    use hotmesh_client::meshflow::{
        Client, Connection, Context, StartOptions, Worker, WorkflowError,
    };
    async fn noop(i: u32) -> Result<u32, hotmesh_client::WorkerError> {
        Ok(i)
    }
    async fn three(ctx: Context, _: Value) -> Result<u32, WorkflowError> {
        let mut sum = 0;
        for i in 0..3 {
            sum += ctx.activity::<u32>("noop", i).await?;
        }
        Ok(sum)
    }
    let conn = Connection::new(url).namespace("benchflow");
    let w = Worker::create(conn.clone(), "bench-flow")
        .workflow("three", three)
        .activity("noop", noop)
        .concurrency(16)
        .run()
        .await
        .unwrap();
    let client = Client::new(conn).await.unwrap();
    let tag = std::process::id();
    let mut lat = vec![];
    for i in 0..100 {
        let t = Instant::now();
        let o = StartOptions::new("bench-flow", "three").workflow_id(format!("mf-{tag}-l{i}"));
        let _: u32 = client
            .workflow()
            .execute(o, Duration::from_secs(10))
            .await
            .unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "(m) MeshFlow workflow of 3 activities, 100 runs one at a time: p50 {:.2} ms, p99 {:.2} ms",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    let xid = || async {
        sqlx::query_scalar::<_, i64>("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8")
            .fetch_one(pool)
            .await
            .unwrap()
    };
    let x0 = xid().await;
    let t0 = Instant::now();
    let mut handles = vec![];
    for i in 0..n {
        let o = StartOptions::new("bench-flow", "three").workflow_id(format!("mf-{tag}-t{i}"));
        handles.push(client.workflow().start(o).await.unwrap());
    }
    for h in handles {
        let _: u32 = h.result(Duration::from_secs(120)).await.unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    let ids = xid().await - x0;
    println!(
        "(m) MeshFlow, {n} workflows x 3 activities at once: {secs:.2} s, {:.0} activities/s ({:.0} workflows/s); {:.1} transaction ids per activity (each start and end included)",
        3.0 * n as f64 / secs,
        n as f64 / secs,
        ids as f64 / (3 * n) as f64
    );
    w.stop().await;
}
