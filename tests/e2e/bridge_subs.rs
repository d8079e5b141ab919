//! Subscriptions and the quorum on Redis and NATS, through the bridge, against a real
//! cluster and real redis-server and nats-server processes: `sub` and `psub` of a client
//! whose `sub_url` is the transport (another process than the bridge's) take the
//! completions and emits the bridge publishes, with NATS wildcards; a throttle and a roll
//! call sent through PostgreSQL reach a worker that listens on the transport; quorum
//! messages cross both ways once; activation notices reach transport listeners.

#[path = "../../transport/tests/common/mod.rs"]
mod common;

use common::Server;
use hotmesh_client::bridge::{Bridge, BridgeOptions};
use hotmesh_client::{
    roll_call_app, throttle_app, Config, HotMesh, JobMessage, Outcome, PubOptions, Throttle, Worker,
};
use hotmesh_tests::*;
use hotmesh_transport::{connect, AnyTransport, Options, Transport};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DB: &str = "e2e_bridge_subs";

/// Two graphs whose worker step runs on the transport, publishing on a topic of two
/// tokens and one of three; one that emits an interim result, then waits on a worker
/// nobody runs.
const APP: &str = r#"
app:
  id: bs
  version: '1'
  graphs:
    - subscribes: bs.a
      publishes: bs.done
      expire: 300
      activities:
        a0: { type: trigger }
        a1: { type: worker, topic: bs.work, input: { maps: { n: '{a0.output.data.n}' } }, job: { maps: { n: '{$self.output.data.n}' } } }
      transitions:
        a0: [ { to: a1 } ]
    - subscribes: bs.b
      publishes: bs.eu.done
      expire: 300
      activities:
        b0: { type: trigger }
        b1: { type: worker, topic: bs.work, input: { maps: { n: '{b0.output.data.n}' } }, job: { maps: { n: '{$self.output.data.n}' } } }
      transitions:
        b0: [ { to: b1 } ]
    - subscribes: bs.emit
      publishes: bs.emitted
      expire: 300
      activities:
        e0: { type: trigger }
        early: { type: hook, emit: true, job: { maps: { phase: early } } }
        late: { type: worker, topic: bs.later, job: { maps: { phase: late } } }
      transitions:
        e0: [ { to: early } ]
        early: [ { to: late } ]
"#;

async fn setup() -> HotMesh {
    fresh_database(DB).await;
    exec(DB, "CREATE EXTENSION hotmesh").await;
    let hm = hotmesh(DB).await;
    install(hm.pool(), APP, "bs", "1").await;
    hm
}

async fn transport(url: &str) -> Arc<AnyTransport> {
    let options = Options {
        claim_after: Duration::from_secs(2),
        ..Options::default()
    };
    Arc::new(connect(url, options).await.expect("transport"))
}

/// A worker process on the transport: `bs.work` answers n + 1.
fn add_one() -> Worker {
    Worker::new("bs.work", |m| async move {
        let n = m.data["n"].as_i64().unwrap_or(0);
        Outcome::success(json!({"n": n + 1}))
    })
}

async fn start(hm: &HotMesh, topic: &str, id: &str, n: i64) {
    hm.publish(topic, json!({"n": n}), PubOptions::new().id(id))
        .await
        .unwrap_or_else(|e| panic!("{topic} {id}: {e}"));
}

/// What a subscription heard: (topic, job id, the job's data).
type Heard = Arc<Mutex<Vec<(String, String, Value)>>>;

fn recorder(heard: &Heard) -> impl Fn(JobMessage) + Send + Sync + 'static {
    let heard = heard.clone();
    move |m: JobMessage| {
        heard.lock().unwrap().push((
            m.topic.clone(),
            m.job.job_id().to_string(),
            m.job.data.clone(),
        ))
    }
}

fn ids(heard: &Heard) -> Vec<String> {
    let mut v: Vec<String> = heard.lock().unwrap().iter().map(|h| h.1.clone()).collect();
    v.sort();
    v
}

async fn completions_reach_sub_and_psub_on(server: &Server) {
    let hm = setup().await;
    let t = transport(&server.url()).await;
    let bridge = Bridge::start(
        &hm,
        t.clone(),
        BridgeOptions::new(["bs.work"])
            .hold(Duration::from_secs(6))
            .events(["bs.*"]),
    )
    .await
    .unwrap();
    let workers = HotMesh::init(
        Config::new("bs", url_for(DB))
            .stream_url(server.url())
            .quorum(false)
            .worker(add_one()),
    )
    .await
    .expect("a worker process on the transport");
    // another process, listening on the transport only
    let listener = HotMesh::init(
        Config::new("bs", url_for(DB))
            .sub_url(server.url())
            .quorum(false),
    )
    .await
    .expect("a listener on the transport");
    let (sub, star, rest): (Heard, Heard, Heard) = Default::default();
    listener.sub("bs.done", recorder(&sub)).await.unwrap();
    listener.psub("bs.*", recorder(&star)).await.unwrap();
    listener.psub("bs.>", recorder(&rest)).await.unwrap();

    start(&hm, "bs.a", "a-1", 1).await;
    start(&hm, "bs.b", "b-1", 10).await;
    start(&hm, "bs.emit", "e-1", 0).await;
    eventually(20, "three completions on bs.>", || {
        let n = rest.lock().unwrap().len();
        async move { (n >= 3).then_some(()) }
    })
    .await;
    // anything more would have come by now
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        ids(&rest),
        ["a-1", "b-1", "e-1"],
        "'>' takes every token after"
    );
    assert_eq!(ids(&star), ["a-1", "e-1"], "'*' takes one token");
    assert_eq!(ids(&sub), ["a-1"], "sub takes its topic");
    for (topic, id, data) in rest.lock().unwrap().iter() {
        match id.as_str() {
            "a-1" => assert_eq!((topic.as_str(), &data["n"]), ("bs.done", &json!(2))),
            "b-1" => assert_eq!((topic.as_str(), &data["n"]), ("bs.eu.done", &json!(11))),
            // the emit: the job's interim state, the job still running
            _ => assert_eq!(
                (topic.as_str(), &data["phase"]),
                ("bs.emitted", &json!("early"))
            ),
        }
    }
    let emitted = hm.get_state("e-1").await.unwrap();
    assert!(!emitted.ended(), "the emitting job goes on");

    // unsubscribed: nothing more, while a subscriber of the transport still sees it
    listener.unsub("bs.done");
    listener.punsub("bs.*");
    listener.punsub("bs.>");
    let mut control = t.subscribe("bs.done").await.unwrap();
    start(&hm, "bs.a", "a-2", 2).await;
    let e = tokio::time::timeout(Duration::from_secs(20), control.next())
        .await
        .expect("the completion of a-2")
        .expect("the subscription");
    assert_eq!(e.subject, "bs.done");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ids(&sub), ["a-1"]);
    assert_eq!(ids(&star), ["a-1", "e-1"]);
    assert_eq!(ids(&rest), ["a-1", "b-1", "e-1"]);
    assert!(bridge.state().events >= 4, "{:?}", bridge.state());

    listener.stop().await;
    workers.stop().await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sub_and_psub_on_redis_take_the_completions_and_emits_the_bridge_publishes() {
    completions_reach_sub_and_psub_on(&Server::redis()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sub_and_psub_on_nats_take_the_completions_and_emits_the_bridge_publishes() {
    completions_reach_sub_and_psub_on(&Server::nats()).await;
}

/// Whether job `id` has ended.
async fn ended(hm: &HotMesh, id: &str) -> bool {
    hm.get_state(id).await.map(|s| s.ended()).unwrap_or(false)
}

async fn throttles_and_roll_calls_reach_a_worker_on(server: &Server) {
    let hm = setup().await;
    let t = transport(&server.url()).await;
    let work_only = Bridge::start(
        &hm,
        t.clone(),
        BridgeOptions::new(["bs.work"]).hold(Duration::from_secs(6)),
    )
    .await
    .unwrap();
    // a worker whose heartbeat is too slow to matter here: only an announcement heard on
    // the transport makes it beat within the test
    let worker = HotMesh::init(
        Config::new("bs", url_for(DB))
            .stream_url(server.url())
            .sub_url(server.url())
            .heartbeat(Duration::from_secs(120))
            // a message its take had waited for when the pause came is not run: it comes
            // again after the reservation
            .worker(add_one().reservation(Duration::from_secs(4))),
    )
    .await
    .expect("a worker process on the transport");
    let row =
        |p: &hotmesh_client::Profile| p.role == "worker" && p.topic.as_deref() == Some("bs.work");
    let max_age = Duration::from_secs(300);

    // without the quorum through the bridge, a roll call goes unanswered (it waits out
    // CONFIRM_WITHIN and shows the last beat)
    let first = roll_call_app(hm.pool(), "bs", max_age).await.unwrap();
    let before = first
        .iter()
        .find(|p| row(p))
        .expect("the worker's row")
        .heartbeat_at;
    let began = Instant::now();
    let again = roll_call_app(hm.pool(), "bs", max_age).await.unwrap();
    assert!(began.elapsed() >= hotmesh_client::CONFIRM_WITHIN);
    assert_eq!(again.iter().find(|p| row(p)).unwrap().heartbeat_at, before);
    work_only.stop().await;

    let bridge = Bridge::start(
        &hm,
        t.clone(),
        BridgeOptions::new(["bs.work"])
            .hold(Duration::from_secs(6))
            .quorum(["bs"]),
    )
    .await
    .unwrap();
    // the roll call reaches it: it answers at once
    let began = Instant::now();
    let listed = roll_call_app(hm.pool(), "bs", max_age).await.unwrap();
    assert!(
        began.elapsed() < hotmesh_client::CONFIRM_WITHIN,
        "answered in {:?}",
        began.elapsed()
    );
    let p = listed.iter().find(|p| row(p)).expect("the worker listed");
    assert!(p.heartbeat_at > before, "{p:?}");
    assert!(
        listed
            .iter()
            .any(|p| p.role == "engine" && p.guid == worker.process_guid()),
        "{listed:?}"
    );

    // a pause reaches it: confirmed, and no message is taken while it lasts
    let confirmed = throttle_app(hm.pool(), "bs", &Throttle::pause().topic("bs.work"))
        .await
        .unwrap();
    assert_eq!(confirmed, 1, "the worker read the pause");
    start(&hm, "bs.a", "p-1", 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!ended(&hm, "p-1").await, "a paused worker took a message");
    let confirmed = throttle_app(hm.pool(), "bs", &Throttle::resume())
        .await
        .unwrap();
    assert_eq!(confirmed, 1, "the worker read the resume");
    eventually(20, "the job once resumed", || async {
        ended(&hm, "p-1").await.then_some(())
    })
    .await;
    assert_eq!(hm.get_state("p-1").await.unwrap().data["n"], 2);
    assert!(bridge.state().quorum >= 3, "{:?}", bridge.state());

    worker.stop().await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttle_and_a_roll_call_reach_a_worker_listening_on_redis() {
    throttles_and_roll_calls_reach_a_worker_on(&Server::redis()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttle_and_a_roll_call_reach_a_worker_listening_on_nats() {
    throttles_and_roll_calls_reach_a_worker_on(&Server::nats()).await;
}

/// Quorum messages heard by a `sub_quorum`.
type Said = Arc<Mutex<Vec<Value>>>;

fn users(said: &Said, from: &str) -> Vec<Value> {
    said.lock()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "user" && m["from"] == from)
        .cloned()
        .collect()
}

async fn quorum_crosses_both_ways_on(server: &Server) {
    let hm = setup().await;
    let t = transport(&server.url()).await;
    let bridge = Bridge::start(
        &hm,
        t.clone(),
        BridgeOptions::new(Vec::<String>::new())
            .name("bridge-q")
            .quorum(["bs"]),
    )
    .await
    .unwrap();
    let on_transport = HotMesh::init(
        Config::new("bs", url_for(DB))
            .sub_url(server.url())
            .quorum(false),
    )
    .await
    .unwrap();
    let on_postgres = HotMesh::init(Config::new("bs", url_for(DB)).quorum(false))
        .await
        .unwrap();
    let (heard_t, heard_p): (Said, Said) = Default::default();
    let h = heard_t.clone();
    on_transport
        .sub_quorum(move |m| h.lock().unwrap().push(m))
        .await
        .unwrap();
    let h = heard_p.clone();
    on_postgres
        .sub_quorum(move |m| h.lock().unwrap().push(m))
        .await
        .unwrap();
    let mut activations = on_transport.activations().await.unwrap();
    let mut raw = t.subscribe("_activated.bs").await.unwrap();

    // an activation in PostgreSQL reaches the transport's listeners
    install(
        hm.pool(),
        &APP.replace("version: '1'", "version: '2'"),
        "bs",
        "2",
    )
    .await;
    let a = tokio::time::timeout(Duration::from_secs(10), activations.recv())
        .await
        .expect("the activation, on the transport")
        .expect("the activations' channel");
    assert_eq!((a.app_id.as_str(), a.version.as_str()), ("bs", "2"));
    let e = tokio::time::timeout(Duration::from_secs(10), raw.next())
        .await
        .expect("the activation notice, on its subject")
        .expect("the subscription");
    let v: Value = serde_json::from_slice(&e.payload).unwrap();
    assert_eq!(v, json!({"app_id": "bs", "version": "2"}));

    // PostgreSQL to the transport, once
    on_postgres
        .pub_quorum(json!({"type": "user", "from": "postgres"}))
        .await
        .unwrap();
    eventually(10, "the message on the transport", || {
        let n = users(&heard_t, "postgres").len();
        async move { (n > 0).then_some(()) }
    })
    .await;
    // the transport to PostgreSQL, once
    t.publish("_quorum.bs", br#"{"type":"user","from":"transport"}"#)
        .await
        .unwrap();
    eventually(10, "the message in PostgreSQL", || {
        let n = users(&heard_p, "transport").len();
        async move { (n > 0).then_some(()) }
    })
    .await;
    // no echo: anything bouncing back would have come by now
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (tp, tt) = (users(&heard_t, "postgres"), users(&heard_t, "transport"));
    let (pp, pt) = (users(&heard_p, "postgres"), users(&heard_p, "transport"));
    assert_eq!((tp.len(), tt.len(), pp.len(), pt.len()), (1, 1, 1, 1));
    // what crossed the bridge says so; what did not, does not
    assert_eq!(tp[0]["_bridge"], "bridge-q");
    assert_eq!(pt[0]["_bridge"], "bridge-q");
    assert!(pp[0].get("_bridge").is_none() && tt[0].get("_bridge").is_none());
    // the relayed ones: the activation, one each way (the engine's own quorum messages
    // of the activation may add to it)
    assert!(bridge.state().quorum >= 3, "{:?}", bridge.state());

    on_transport.stop().await;
    on_postgres.stop().await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quorum_messages_and_activations_cross_the_bridge_once_on_redis() {
    quorum_crosses_both_ways_on(&Server::redis()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quorum_messages_and_activations_cross_the_bridge_once_on_nats() {
    quorum_crosses_both_ways_on(&Server::nats()).await;
}
