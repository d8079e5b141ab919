//! Workers on PostgreSQL, on Redis and on NATS, side by side (docs/benchmarks.md,
//! "Workers on Redis and NATS"): the 3-step graph (three worker steps) with the client's
//! `Worker` (concurrency 8) on each, the Redis and NATS ones through the bridge.
//!   HOTMESH_DATABASE_URL=postgres://…/db cargo bench -p hotmesh-tests --bench transports
//! BENCH_WORKFLOWS (2000): workflows for the throughput part, started by 4 publishers;
//! BENCH_RUNS (200): sequential `pubsub` runs for the latency part; BENCH_BRIDGE=database
//! runs the bridge in the extension's bridge worker (a row in `hotmesh.transports`) instead
//! of in this process. redis-server (append-only, `appendfsync always`) and nats-server
//! (JetStream) are started on free ports (scripts/setup-machine.sh installs them), unless
//! BENCH_REDIS_URL / BENCH_NATS_URL name servers of your own.

#[path = "../../transport/tests/common/mod.rs"]
mod common;

use hotmesh_client::bridge::{Bridge, BridgeOptions};
use hotmesh_client::{Config, HotMesh, Outcome, PubOptions, Worker};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const APP: &str = r#"
app:
  id: tb
  version: '1'
  graphs:
    - subscribes: tb.start
      publishes: tb.done
      expire: 60
      activities:
        t: { type: trigger }
        a: { type: worker, topic: tb.work, input: { maps: { n: '{t.output.data.n}' } } }
        b: { type: worker, topic: tb.work, input: { maps: { n: '{a.output.data.n}' } } }
        c: { type: worker, topic: tb.work, input: { maps: { n: '{b.output.data.n}' } }, job: { maps: { n: '{$self.output.data.n}' } } }
      transitions:
        t: [ { to: a } ]
        a: [ { to: b } ]
        b: [ { to: c } ]
"#;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(label: &str, url: &str, stream: Option<&str>) {
    let hm = HotMesh::connect(url).await.expect("database");
    let in_database = std::env::var("BENCH_BRIDGE").as_deref() == Ok("database");
    // a bridge for the transports
    let bridge = match stream {
        Some(s) if in_database => {
            sqlx::query(
                "INSERT INTO hotmesh.transports (name, url, topics) VALUES ('bench', $1, '{tb.work}')
                 ON CONFLICT (name) DO UPDATE SET url = excluded.url",
            )
            .bind(s)
            .execute(hm.pool())
            .await
            .expect("hotmesh.transports");
            let deadline = Instant::now() + Duration::from_secs(30);
            while !sqlx::query_scalar::<_, bool>(
                "SELECT coalesce(bool_and(state = 'running' AND connected), false) FROM hotmesh.bridges WHERE name = 'bench'",
            )
            .fetch_one(hm.pool())
            .await
            .unwrap()
            {
                assert!(Instant::now() < deadline, "the bridge worker did not connect");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None
        }
        Some(s) => {
            let t = hotmesh_transport::connect(s, hotmesh_transport::Options::default())
                .await
                .expect("transport");
            Some(
                Bridge::start(&hm, Arc::new(t), BridgeOptions::new(["tb.work"]))
                    .await
                    .expect("bridge"),
            )
        }
        None => None,
    };
    let mut config = Config::new("tb", url).worker(
        Worker::new("tb.work", |m| async move {
            let n = m.data["n"].as_i64().unwrap_or(0);
            Outcome::success(json!({"n": n + 1}))
        })
        .concurrency(8),
    );
    if let Some(s) = stream {
        config = config.stream_url(s);
    }
    let workers = HotMesh::init(config).await.expect("workers");

    // throughput: 4 publishers, then wait for every job to end
    let n = env("BENCH_WORKFLOWS", 2000);
    let run = hotmesh_client::guid();
    let started = Instant::now();
    let mut pubs = vec![];
    for p in 0..4 {
        let (hm, run) = (hm.clone(), run.clone());
        pubs.push(tokio::spawn(async move {
            for i in (p..n).step_by(4) {
                hm.publish(
                    "tb.start",
                    json!({"n": 0}),
                    PubOptions::new().id(format!("{run}-{i}")),
                )
                .await
                .expect("pub");
            }
        }));
    }
    for p in pubs {
        p.await.unwrap();
    }
    let pattern = format!("{run}-%");
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM hotmesh.jobs WHERE id LIKE $1 AND completed_at IS NOT NULL",
        )
        .bind(&pattern)
        .fetch_one(hm.pool())
        .await
        .unwrap();
        if done as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();

    // latency: one workflow at a time
    let runs = env("BENCH_RUNS", 200);
    let mut ms = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        let out = hm
            .pubsub("tb.start", json!({"n": 0}), Duration::from_secs(30))
            .await
            .expect("pubsub");
        assert_eq!(out.data["n"], 3);
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{label}: {n} workflows x 3 worker steps in {secs:.2} s, {:.0} worker steps/s ({:.0} workflows/s); one at a time ({runs}): p50 {:.2} ms, p99 {:.2} ms",
        3.0 * n as f64 / secs,
        n as f64 / secs,
        pct(&ms, 0.5),
        pct(&ms, 0.99)
    );
    workers.stop().await;
    if let Some(b) = bridge {
        b.stop().await;
    }
    if in_database {
        sqlx::query("DELETE FROM hotmesh.transports WHERE name = 'bench'")
            .execute(hm.pool())
            .await
            .expect("hotmesh.transports");
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::var("HOTMESH_DATABASE_URL").expect("HOTMESH_DATABASE_URL");
    let hm = HotMesh::connect(&url).await.expect("database");
    hm.deploy(APP).await.expect("deploy");
    hm.activate_app("tb", "1").await.expect("activate");
    // servers of the caller's, or our own (kept until the end of the run)
    let own = |var: &str| std::env::var(var).ok().filter(|u| !u.is_empty());
    let (redis_url, nats_url) = (own("BENCH_REDIS_URL"), own("BENCH_NATS_URL"));
    let redis = redis_url.is_none().then(common::Server::redis);
    let nats = nats_url.is_none().then(common::Server::nats);
    let redis_url =
        redis_url.unwrap_or_else(|| redis.as_ref().map(|s| s.url()).unwrap_or_default());
    let nats_url = nats_url.unwrap_or_else(|| nats.as_ref().map(|s| s.url()).unwrap_or_default());
    if std::env::var("BENCH_BRIDGE").as_deref() == Ok("database") {
        println!("the bridge: the extension's bridge worker (hotmesh.transports)");
    }
    let only = std::env::var("BENCH_ONLY").unwrap_or_else(|_| "postgres,redis,nats".into());
    for part in only.split(',') {
        match part {
            "postgres" => measure("postgres", &url, None).await,
            "redis" => measure("redis (bridge)", &url, Some(&redis_url)).await,
            "nats" => measure("nats (bridge)", &url, Some(&nats_url)).await,
            other => panic!("BENCH_ONLY: postgres, redis or nats, not {other}"),
        }
    }
}
