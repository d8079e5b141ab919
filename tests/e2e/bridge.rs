//! The Redis/NATS bridge against a real cluster and real redis-server and nats-server
//! processes: workflows whose worker steps run on the transport, the bridge relaying their
//! messages and answers; the transport killed and restarted under load; the bridge stopped
//! and started again with messages on the transport; every workflow ends once, with the
//! right result.

#[path = "../../transport/tests/common/mod.rs"]
mod common;

use common::Server;
use hotmesh_client::bridge::{Bridge, BridgeOptions};
use hotmesh_client::HotMesh;
use hotmesh_tests::*;
use hotmesh_transport::{connect, Answer, AnyTransport, Options, Status, Transport};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DB: &str = "e2e_bridge";

const APP: &str = r#"
app:
  id: br
  version: '1'
  graphs:
    - subscribes: br.start
      publishes: br.done
      expire: 300
      activities:
        t: { type: trigger }
        a: { type: worker, topic: br.work, input: { maps: { n: '{t.output.data.n}' } } }
        b: { type: worker, topic: br.work, input: { maps: { n: '{a.output.data.n}' } }, job: { maps: { n: '{$self.output.data.n}' } } }
      transitions:
        t: [ { to: a } ]
        a: [ { to: b } ]
    - subscribes: br.settle
      activities:
        s0: { type: trigger }
        s: { type: worker, topic: br.odd, retry: { maximumAttempts: 5, initialInterval: 0.05 }, input: { maps: { kind: '{s0.output.data.kind}' } }, job: { maps: { tries: '{$self.output.data.tries}' } } }
      transitions:
        s0: [ { to: s } ]
"#;

async fn setup() -> HotMesh {
    fresh_database(DB).await;
    exec(DB, "CREATE EXTENSION hotmesh").await;
    let hm = hotmesh(DB).await;
    install(hm.pool(), APP, "br", "1").await;
    hm
}

/// A worker process on the transport, without the client's Worker: takes `br.work`,
/// answers n + 1, acknowledges. Counts the callbacks it ran.
fn remote_worker(
    t: Arc<AnyTransport>,
    name: &'static str,
    ran: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let taken = t
                .take_work("br.work", name, 20, Duration::from_millis(200))
                .await;
            let Ok(deliveries) = taken else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            for d in deliveries {
                ran.fetch_add(1, Ordering::Relaxed);
                let w = &d.message;
                let n = w.data["n"].as_i64().unwrap_or(0);
                let a = Answer {
                    id: w.id,
                    reservation: w.reservation,
                    status: Status::Success,
                    code: None,
                    data: json!({"n": n + 1}),
                    fatal: false,
                    retry_after: None,
                };
                if t.send_answer(&a).await.is_ok() {
                    let _ = t.ack_work(&d).await;
                }
            }
        }
    })
}

async fn transport(url: &str) -> Arc<AnyTransport> {
    let options = Options {
        claim_after: Duration::from_secs(2),
        ..Options::default()
    };
    Arc::new(connect(url, options).await.expect("transport"))
}

/// Starts `n` workflows (n = i), waits until all ended; returns how long it took.
async fn run_all(hm: &HotMesh, first: i64, n: i64, within: Duration) -> Duration {
    let started = Instant::now();
    for i in first..first + n {
        hm.publish(
            "br.start",
            json!({"n": i}),
            hotmesh_client::PubOptions::new().id(format!("job-{i}")),
        )
        .await
        .unwrap();
    }
    let deadline = Instant::now() + within;
    loop {
        let done: i64 = scalar(
            DB,
            &format!(
                "SELECT count(*) FROM hotmesh.jobs WHERE app_id = 'br' AND completed_at IS NOT NULL AND substr(id, 5)::int8 BETWEEN {first} AND {}",
                first + n - 1
            ),
        )
        .await;
        if done == n {
            return started.elapsed();
        }
        assert!(Instant::now() < deadline, "{done} of {n} ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every job of the run ended once, with n + 2 (two steps of + 1), and no error.
async fn check(first: i64, n: i64) {
    let wrong: i64 = scalar(
        DB,
        &format!(
            "SELECT count(*) FROM hotmesh.jobs WHERE app_id = 'br' AND substr(id, 5)::int8 BETWEEN {first} AND {}
               AND (error IS NOT NULL OR (data ->> 'n')::int8 <> substr(id, 5)::int8 + 2)",
            first + n - 1
        ),
    )
    .await;
    assert_eq!(wrong, 0, "jobs with a wrong result or an error");
    // nothing left on PostgreSQL's stream
    let left: i64 = scalar(
        DB,
        "SELECT count(*) FROM hotmesh.worker_stream WHERE topic = 'br.work'",
    )
    .await;
    assert_eq!(left, 0);
}

/// The bridge of `br.work`, holding a message 6 s without a heartbeat.
async fn start_bridge(hm: &HotMesh, t: &Arc<AnyTransport>) -> Bridge {
    Bridge::start(
        hm,
        t.clone(),
        BridgeOptions::new(["br.work"]).hold(Duration::from_secs(6)),
    )
    .await
    .unwrap()
}

async fn workflows_run_with_their_workers_on(server: &mut Server) {
    let hm = setup().await;
    let t = transport(&server.url()).await;
    let bridge = start_bridge(&hm, &t).await;
    let ran = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let w1 = remote_worker(
        transport(&server.url()).await,
        "w1",
        ran.clone(),
        stop.clone(),
    );
    let w2 = remote_worker(
        transport(&server.url()).await,
        "w2",
        ran.clone(),
        stop.clone(),
    );

    // a plain run
    let took = run_all(&hm, 0, 200, Duration::from_secs(60)).await;
    check(0, 200).await;
    println!("200 workflows x 2 steps through the bridge: {took:?}");
    // a job ends when its answer commits; the bridge counts it once it acknowledged it
    let s = eventually(10, "the bridge's counters", || {
        let s = bridge.state();
        async move { (s.answered >= 400 && s.in_flight == 0).then_some(s) }
    })
    .await;
    assert!(s.relayed >= 400 && s.connected && s.errors == 0, "{s:?}");
    assert!(
        s.relayed >= 400 && s.answered >= 400 && s.connected,
        "{s:?}"
    );

    // the transport killed and restarted under load
    let load = {
        let hm = hm.clone();
        tokio::spawn(async move { run_all(&hm, 1000, 300, Duration::from_secs(120)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.restart();
    let took = load.await.unwrap();
    check(1000, 300).await;
    println!("300 workflows with a transport restart: all ended after {took:?}");

    // the bridge stopped with messages on the transport, started again: their answers apply
    let load = {
        let hm = hm.clone();
        tokio::spawn(async move { run_all(&hm, 2000, 200, Duration::from_secs(120)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    bridge.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bridge = start_bridge(&hm, &t).await;
    load.await.unwrap();
    check(2000, 200).await;

    stop.store(true, Ordering::Relaxed);
    let _ = w1.await;
    let _ = w2.await;
    bridge.stop().await;
    // each step ran once, unless a delivery was repeated by a restart (at least once)
    let steps = 2 * (200 + 300 + 200);
    assert!(ran.load(Ordering::Relaxed) >= steps as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn workflows_run_with_their_workers_on_redis_through_the_bridge() {
    let mut server = Server::redis();
    workflows_run_with_their_workers_on(&mut server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn workflows_run_with_their_workers_on_nats_through_the_bridge() {
    let mut server = Server::nats();
    workflows_run_with_their_workers_on(&mut server).await;
}

/// The client's own workers on the transport (`Config::stream_url`), the same callback
/// code as on PostgreSQL.
async fn client_workers_on(server: &Server) {
    use hotmesh_client::{Config, Outcome, Worker};
    let hm = setup().await;
    let t = transport(&server.url()).await;
    // the completions go out as events too: a subscriber of another service sees them
    let mut events = t.subscribe("br.>").await.unwrap();
    let bridge = Bridge::start(
        &hm,
        t.clone(),
        BridgeOptions::new(["br.work"])
            .hold(Duration::from_secs(6))
            .events(["br.done"]),
    )
    .await
    .unwrap();
    let add_one = || {
        Worker::new("br.work", |m| async move {
            let n = m.data["n"].as_i64().unwrap_or(0);
            Outcome::success(json!({"n": n + 1}))
        })
        .concurrency(8)
    };
    let workers = HotMesh::init(
        Config::new("br", url_for(DB))
            .stream_url(server.url())
            .worker(add_one()),
    )
    .await
    .expect("a worker process on the transport");
    let took = run_all(&hm, 5000, 300, Duration::from_secs(60)).await;
    check(5000, 300).await;
    println!("300 workflows x 2 steps, client workers on the transport: {took:?}");
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 300 {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = tokio::time::timeout(left, events.next())
            .await
            .unwrap_or_else(|_| panic!("{} of 300 completions seen as events", seen.len()))
            .expect("the subscription");
        assert_eq!(e.subject, "br.done");
        let m: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
        let id = m["job"]["metadata"]["jid"].as_str().unwrap().to_string();
        let n: i64 = id[4..].parse().unwrap();
        assert_eq!(m["job"]["data"]["n"], json!(n + 2), "{m}");
        seen.insert(id);
    }
    workers.stop().await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn client_workers_on_redis_answer_through_the_bridge() {
    client_workers_on(&Server::redis()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn client_workers_on_nats_answer_through_the_bridge() {
    client_workers_on(&Server::nats()).await;
}

/// A retry the worker asks for and a fatal error travel with the answer: the bridge asks
/// the engine for the retry (the message comes back after its delay) or fails the activity
/// at once (the YAML's 5 attempts notwithstanding).
async fn settled_answers_on(server: &Server) {
    use hotmesh_client::{Config, Outcome, Worker};
    let hm = setup().await;
    let t = transport(&server.url()).await;
    let bridge = Bridge::start(
        &hm,
        t.clone(),
        BridgeOptions::new(["br.odd"]).hold(Duration::from_secs(6)),
    )
    .await
    .unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let c2 = calls.clone();
    let workers = HotMesh::init(
        Config::new("br", url_for(DB))
            .stream_url(server.url())
            .worker(Worker::new("br.odd", move |m| {
                let c2 = c2.clone();
                async move {
                    c2.fetch_add(1, Ordering::Relaxed);
                    match (m.data["kind"].as_str(), m.attempt) {
                        (Some("retry"), 0) => {
                            Outcome::retry_after(Duration::from_millis(50), json!({"again": true}))
                        }
                        (Some("retry"), n) => Outcome::success(json!({"tries": n + 1})),
                        _ => Outcome::fatal(404, json!({"message": "no such thing"})),
                    }
                }
            })),
    )
    .await
    .unwrap();
    let out = hm
        .pubsub(
            "br.settle",
            json!({"kind": "retry"}),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(out.data["tries"], 2, "retried once, after its delay");
    let before = calls.load(Ordering::Relaxed);
    let e = hm
        .pubsub(
            "br.settle",
            json!({"kind": "fatal"}),
            Duration::from_secs(20),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), 404, "{e}");
    assert_eq!(
        calls.load(Ordering::Relaxed) - before,
        1,
        "a fatal error is not retried"
    );
    workers.stop().await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_and_a_fatal_error_travel_through_the_bridge_on_redis() {
    settled_answers_on(&Server::redis()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_and_a_fatal_error_travel_through_the_bridge_on_nats() {
    settled_answers_on(&Server::nats()).await;
}
