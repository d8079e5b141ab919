//! The Redis/NATS bridge against a real cluster and real redis-server and nats-server
//! processes: workflows whose worker steps run on the transport, the bridge relaying their
//! messages and answers; the transport killed and restarted under load; the bridge stopped
//! and started again with messages on the transport; every workflow ends once, with the
//! right result.
//!
//! The chaos cases (each on Redis and on NATS): PostgreSQL restarted under load, a worker
//! process on the transport SIGKILLed mid-message (`hotmesh-bridge-worker`,
//! tests/chaos/bridge_worker.rs), the transport killed, the bridge stopped and started. Each
//! prints its time to drain (`-- --nocapture`); docs/benchmarks.md keeps the figures.

#[path = "../../transport/tests/common/mod.rs"]
mod common;
mod two_steps;

use common::Server;
use hotmesh_client::bridge::{Bridge, BridgeOptions};
use hotmesh_client::HotMesh;
use hotmesh_tests::*;
use hotmesh_transport::{connect, Answer, AnyTransport, Options, Status, Transport};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use two_steps::Runs;

const DB: &str = "e2e_bridge";

/// The runs: `br.start`, two worker steps of + 1 on `br.work`, each step counted.
const RUNS: Runs = Runs { db: DB, app: "br" };

/// The app: the runs' graph, and `br.settle` (one worker step on `br.odd`, retried up to 5
/// times) for the retry and fatal cases.
fn app() -> String {
    format!(
        r#"
app:
  id: br
  version: '1'
  graphs:{}
    - subscribes: br.settle
      activities:
        s0: {{ type: trigger }}
        s: {{ type: worker, topic: br.odd, retry: {{ maximumAttempts: 5, initialInterval: 0.05 }}, input: {{ maps: {{ kind: '{{s0.output.data.kind}}' }} }}, job: {{ maps: {{ tries: '{{$self.output.data.tries}}' }} }} }}
      transitions:
        s0: [ {{ to: s }} ]
"#,
        RUNS.graph()
    )
}

async fn setup() -> HotMesh {
    fresh_database(DB).await;
    exec(DB, "CREATE EXTENSION hotmesh").await;
    let hm = hotmesh(DB).await;
    install(hm.pool(), &app(), "br", "1").await;
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

/// Seconds, for the drain reports.
fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// "redis" or "nats", for the reports.
fn kind(server: &Server) -> &'static str {
    if server.url().starts_with("redis") {
        "redis"
    } else {
        "nats"
    }
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
    let kind = kind(server);
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
    let took = RUNS.run_all(&hm, 0, 200, Duration::from_secs(60)).await;
    RUNS.check(0, 200).await;
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

    // the transport killed and restarted under load; the drain is timed from its return
    let load = {
        let hm = hm.clone();
        tokio::spawn(async move {
            RUNS.publish_all(&hm, 1000, 300).await;
            RUNS.wait_all(1000, 300, Duration::from_secs(120)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.restart();
    let back = Instant::now();
    let ended = load.await.unwrap();
    RUNS.check(1000, 300).await;
    eprintln!(
        "drain after a {kind} kill: {} from its restart ({} down; 300 workflows)",
        secs(ended.saturating_duration_since(back)),
        secs(back - killed)
    );

    // the bridge stopped with messages on the transport, started again: their answers apply
    let load = {
        let hm = hm.clone();
        tokio::spawn(async move {
            RUNS.publish_all(&hm, 2000, 200).await;
            RUNS.wait_all(2000, 200, Duration::from_secs(120)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    bridge.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bridge = start_bridge(&hm, &t).await;
    let restarted = Instant::now();
    let ended = load.await.unwrap();
    RUNS.check(2000, 200).await;
    eprintln!(
        "drain after a bridge stop and start ({kind}): {} from its start (200 workflows)",
        secs(ended.saturating_duration_since(restarted))
    );

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
    let took = RUNS.run_all(&hm, 5000, 300, Duration::from_secs(60)).await;
    RUNS.check(5000, 300).await;
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

/// PostgreSQL restarts (a fast stop, then a start) while workflows run through the bridge.
/// Nobody restarts the bridge or the client workers on the transport: their connections
/// and the bridge's LISTEN must come back by themselves. Answers whose apply the restart
/// cut off are not acknowledged and come again after the transport's claim_after; the
/// messages the bridge holds stay reserved to it (its heartbeat resumes within the hold).
/// Every job ends once, with the right result.
async fn a_postgres_restart_under_load_on(server: &Server) {
    use hotmesh_client::{Config, Outcome, Worker};
    let kind = kind(server);
    let hm = setup().await;
    let t = transport(&server.url()).await;
    let bridge = start_bridge(&hm, &t).await;
    // callbacks slow enough that the restart finds messages everywhere: on PostgreSQL's
    // stream, on the transport, in callbacks and as answers on their way back
    let workers = HotMesh::init(
        Config::new("br", url_for(DB))
            .stream_url(server.url())
            .worker(
                Worker::new("br.work", |m| async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let n = m.data["n"].as_i64().unwrap_or(0);
                    Outcome::success(json!({"n": n + 1}))
                })
                .concurrency(8)
                .reservation(Duration::from_secs(2)),
            ),
    )
    .await
    .expect("a worker process on the transport");

    RUNS.publish_all(&hm, 0, 300).await;
    let open = RUNS.open_jobs(0, 300).await;
    let restart = Instant::now();
    tokio::task::spawn_blocking(|| cluster("restart", &[]))
        .await
        .unwrap();
    let back = Instant::now();
    // more work after the restart, from a new client: the bridge must take it too
    let late = hotmesh(DB).await;
    RUNS.publish_all(&late, 300, 100).await;
    let ended = RUNS.wait_all(0, 400, Duration::from_secs(60)).await;
    RUNS.check(0, 400).await;
    // it came back: connected, nothing in flight (the last acknowledgements follow the
    // commits that ended the jobs)
    let s = eventually(10, "the bridge's counters", || {
        let s = bridge.state();
        async move { (s.connected && s.in_flight == 0).then_some(s) }
    })
    .await;
    eprintln!(
        "drain after postgres restart ({kind}): {} from the server's return (the restart took {}; {open} of 300 workflows open at it, 100 more started after; the bridge retried {} failed calls)",
        secs(ended.saturating_duration_since(back)),
        secs(back - restart),
        s.errors
    );
    workers.stop().await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_restart_under_load_loses_nothing_through_the_bridge_on_redis() {
    a_postgres_restart_under_load_on(&Server::redis()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_restart_under_load_loses_nothing_through_the_bridge_on_nats() {
    a_postgres_restart_under_load_on(&Server::nats()).await;
}

/// A worker process on the transport (`hotmesh-bridge-worker`, tests/chaos/bridge_worker.rs):
/// the client's worker of `br.work`, each callback recorded in the table `ledger` as it
/// starts, 100 ms of work, claim_after 2 s. Killed when dropped.
struct WorkerProcess {
    child: std::process::Child,
}

impl WorkerProcess {
    /// Starts one and waits until its worker runs.
    async fn start(server: &Server) -> WorkerProcess {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let args = ["br".into(), "br.work".into(), url_for(DB), server.url()];
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new(env!("CARGO_BIN_EXE_hotmesh-bridge-worker"))
                .args(&args)
                .env("BRIDGE_WORK_MS", "100")
                .env("BRIDGE_CONCURRENCY", "8")
                .env("BRIDGE_RESERVATION_MS", "2000")
                // its stdin open as long as this handle lives: it stops when it closes
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start hotmesh-bridge-worker");
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line.trim(), "ready", "hotmesh-bridge-worker did not start");
            WorkerProcess { child }
        })
        .await
        .unwrap()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no grace, no answer or acknowledgement of what its callbacks were doing.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A graceful stop: its stdin closed, it stops its worker and exits.
    async fn stop(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "hotmesh-bridge-worker: {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "hotmesh-bridge-worker did not stop"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A worker process on the transport is killed (SIGKILL) while its callbacks run, and
/// another takes over: what the dead one had taken and not acknowledged is delivered
/// again after the transport's claim_after (Redis: the new consumer claims the dead one's
/// pending entries; NATS: the shared consumer's ack_wait), its callbacks run again, and
/// the engine applies each step once (the bridge still holds the messages' reservations,
/// so the repeated answers carry the current one; a second answer to a step is stale).
async fn a_killed_worker_process_on(server: &Server) {
    let kind = kind(server);
    let hm = setup().await;
    exec(
        DB,
        "CREATE TABLE ledger (job_id text, activity_id text, pid int, deliveries int)",
    )
    .await;
    let t = transport(&server.url()).await;
    let bridge = start_bridge(&hm, &t).await;
    let mut first = WorkerProcess::start(server).await;
    RUNS.publish_all(&hm, 0, 200).await;
    // killed half-way through the 400 steps, with callbacks running (a row as each starts)
    let dead = first.pid();
    eventually(
        30,
        "half the callbacks started in the first process",
        || async move {
            let ran: i64 = scalar(
                DB,
                &format!("SELECT count(*) FROM ledger WHERE pid = {dead}"),
            )
            .await;
            (ran >= 200).then_some(())
        },
    )
    .await;
    first.kill();
    let killed = Instant::now();
    let open = RUNS.open_jobs(0, 200).await;
    let second = WorkerProcess::start(server).await;
    let ended = RUNS.wait_all(0, 200, Duration::from_secs(60)).await;
    RUNS.check(0, 200).await;

    // the steps the dead process started and never answered ran again in the second,
    // on a repeated delivery of the same message
    let again: i64 = scalar(
        DB,
        &format!(
            "SELECT count(*) FROM ledger WHERE pid = {} AND deliveries > 1",
            second.pid()
        ),
    )
    .await;
    let cut: i64 = scalar(
        DB,
        &format!(
            "SELECT count(*) FROM ledger d WHERE d.pid = {dead} AND EXISTS (
               SELECT FROM ledger s WHERE s.pid <> {dead} AND (s.job_id, s.activity_id) = (d.job_id, d.activity_id))"
        ),
    )
    .await;
    assert!(
        again >= 1 && cut >= 1,
        "no delivery came again: {again}, {cut}"
    );
    let callbacks: i64 = scalar(DB, "SELECT count(*) FROM ledger").await;
    eprintln!(
        "drain after a killed worker process ({kind}): {} from the kill ({open} of 200 workflows open at it; {cut} callbacks cut off ran again, {again} deliveries repeated; {callbacks} callbacks for 400 steps, claim_after 2 s)",
        secs(ended - killed)
    );
    second.stop().await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_process_killed_mid_message_on_redis_loses_nothing_and_applies_once() {
    a_killed_worker_process_on(&Server::redis()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_process_killed_mid_message_on_nats_loses_nothing_and_applies_once() {
    a_killed_worker_process_on(&Server::nats()).await;
}
