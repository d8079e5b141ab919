//! The client crate against a real cluster: every engine call, workers (crash mid
//! message, two workers sharing a topic, graceful stop, a Postgres restart), throttles,
//! pattern subscriptions, the pubsub timeout and the roll call.

use hotmesh_client::{
    Config, Error, HotMesh, InterruptOptions, Outcome, PubOptions, Throttle, Worker,
};
use hotmesh_tests::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DB: &str = "e2e_client";

const APP: &str = r#"
app:
  id: e2ec
  version: '1'
  graphs:
    - $ref: ./graphs/work.yaml
    - subscribes: e2ec.flaky
      activities:
        f0: { type: trigger }
        f: { type: worker, topic: e2ec.flaky, retry: { maximumAttempts: 3, initialInterval: 0.1, backoffCoefficient: 2 }, job: { maps: { tries: '{$self.output.data.tries}' } } }
      transitions:
        f0: [ { to: f } ]
    - subscribes: e2ec.other
      publishes: other.beta
      activities:
        o: { type: trigger, job: { maps: { other: true } } }
    - subscribes: e2ec.ask
      publishes: e2ec.asked
      activities:
        q: { type: trigger }
        wait: { type: hook, job: { maps: { answer: '{$self.hook.data.answer}' } } }
      transitions:
        q: [ { to: wait } ]
      hooks:
        e2ec.reply:
          - to: wait
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] }
"#;

const WORK_GRAPH: &str = r#"
subscribes: e2ec.start
publishes: e2ec.alpha
expire: 300
activities:
  t: { type: trigger }
  w: { type: worker, topic: e2ec.work, input: { maps: { n: '{t.output.data.n}' } }, job: { maps: { by: '{$self.output.data.by}', n: '{$self.output.data.n}' } } }
transitions:
  t: [ { to: w } ]
"#;

fn echo(by: &'static str) -> Worker {
    Worker::new("e2ec.work", move |m| async move {
        // the original's message metadata comes with each message
        if m.metadata["jid"] != json!(m.job_id)
            || m.metadata["aid"] != json!(m.activity_id)
            || m.metadata["topic"] != json!("e2ec.work")
        {
            return Outcome::error(500, json!({ "message": "metadata", "got": m.metadata }));
        }
        Outcome::success(json!({ "by": by, "n": m.data["n"] }))
    })
}

async fn setup() -> HotMesh {
    fresh_database(DB).await;
    exec(DB, "CREATE EXTENSION hotmesh").await;
    let dir = std::env::temp_dir().join(format!("e2ec-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("graphs")).unwrap();
    std::fs::write(dir.join("app.yaml"), APP).unwrap();
    std::fs::write(dir.join("graphs/work.yaml"), WORK_GRAPH).unwrap();
    let hm = HotMesh::connect(&url_for(DB)).await.unwrap();
    let d = hm.deploy_file(dir.join("app.yaml")).await.unwrap();
    assert_eq!(d["status"], "deployed", "{d}");
    assert!(hm.activate_app("e2ec", "1").await.unwrap());
    hm
}

fn config(workers: Vec<Worker>) -> Config {
    let mut c = Config::new("e2ec", url_for(DB));
    c.heartbeat = Duration::from_millis(300);
    c.grace = Duration::from_millis(300);
    c.workers = workers;
    c
}

#[tokio::test]
async fn the_engine_api_works_from_the_client() {
    let hm = &setup().await;
    let w = HotMesh::init(config(vec![echo("w1").concurrency(4)]))
        .await
        .unwrap();
    // pubsub: the job's output, through a worker
    let out = hm
        .pubsub("e2ec.start", json!({"n": 7}), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.data["n"], 7);
    assert_eq!(out.data["by"], "w1");
    assert_eq!(out.status(), 0);
    // typed: any Serialize in, the data read back as a type of yours
    #[derive(serde::Serialize)]
    struct Ask {
        n: i64,
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        n: i64,
        by: String,
    }
    let typed: Answer = hm
        .pubsub("e2ec.start", Ask { n: 8 }, Duration::from_secs(10))
        .await
        .unwrap()
        .data_as()
        .unwrap();
    assert_eq!((typed.n, typed.by.as_str()), (8, "w1"));
    let e = hm
        .publish("e2ec.start", vec![1, 2], Default::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid { name: "data", .. }), "{e}");
    // publish with options, then read it every way
    let o = PubOptions::new().id("c1").search("region", "eu");
    assert_eq!(
        hm.publish("e2ec.ask", json!({}), o.clone())
            .await
            .unwrap()
            .id()
            .to_string(),
        "c1"
    );
    let dup = hm.publish("e2ec.ask", json!({}), o).await.unwrap_err();
    assert_eq!(dup.code(), 409, "{dup}");
    assert!(dup.to_string().contains("Duplicate job: c1"), "{dup}");
    assert_eq!(hm.get_status("c1").await.unwrap(), 1);
    assert_eq!(hm.get_state("c1").await.unwrap().job_id(), "c1");
    assert_eq!(
        hm.get_query_state("c1", &["region"]).await.unwrap()["region"],
        "eu"
    );
    assert!(
        hm.get_raw("c1").await.unwrap().get("job").is_some()
            || hm.get_raw("c1").await.unwrap().is_object()
    );
    assert!(hm.export("c1").await.unwrap()["timeline"].is_array());
    assert_eq!(hm.get_status("nobody").await.unwrap_err().code(), 404);
    // signal one, signal all by search field
    assert_eq!(
        hm.signal("e2ec.reply", json!({"id": "c1", "answer": 42}))
            .await
            .unwrap()
            .as_deref(),
        Some("c1")
    );
    assert_eq!(hm.get_state("c1").await.unwrap().data["answer"], 42);
    for id in ["c2", "c3"] {
        let o = PubOptions::new().id(id).search("batch", "b");
        hm.publish("e2ec.ask", json!({}), o)
            .await
            .unwrap()
            .id()
            .to_string();
    }
    let mut ids = hm
        .signal_all("e2ec.reply", json!({"answer": "all"}), "batch", "b")
        .await
        .unwrap();
    ids.sort();
    assert_eq!(ids, ["c2", "c3"]);
    // interrupt: a clear error the second time, unless suppressed
    hm.publish("e2ec.ask", json!({}), PubOptions::new().id("c4"))
        .await
        .unwrap()
        .id()
        .to_string();
    // typed options, checked before anything is sent, with the extension's own rules
    let e = hm
        .interrupt("e2ec.ask", "c4", InterruptOptions::new().code(1000))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                name: "options.code",
                ..
            }
        ),
        "{e}"
    );
    let e = hm
        .publish("e2ec.ask", json!({}), {
            let mut o = PubOptions::new();
            o.pending = Some(-1.0);
            o
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                name: "options.pending",
                ..
            }
        ),
        "{e}"
    );
    assert!(hm
        .interrupt("e2ec.ask", "c4", InterruptOptions::new().reason("stop"))
        .await
        .unwrap());
    assert!(hm.get_status("c4").await.unwrap() < -100_000_000);
    let o = hm.get_state("c4").await.unwrap();
    assert_eq!(o.error().unwrap()["message"], "stop");
    assert!(hm.interrupt("e2ec.ask", "c4", json!({})).await.is_err());
    assert!(hm
        .interrupt("e2ec.ask", "c4", json!({"suppress": true}))
        .await
        .is_ok());
    assert!(hm.scrub("c4").await.unwrap());
    // bad input: named, no panic
    let e = hm
        .publish("e2ec.start", json!([1]), Default::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid { name: "data", .. }), "{e}");
    assert_eq!(
        hm.publish("no.such.topic", json!({}), Default::default())
            .await
            .unwrap_err()
            .sqlstate(),
        Some("42704")
    );
    let e = hm.deploy("app: [").await.unwrap_err();
    assert_eq!(e.sqlstate(), Some("42601"), "{e}");
    assert!(HotMesh::init(config(vec![echo("x").concurrency(0)]))
        .await
        .is_err());
    // roll call: this process's engine row and its worker row, with its count
    let live = eventually(5, "the worker's count", || async {
        let ps = w.roll_call(Duration::from_secs(30)).await.unwrap();
        ps.iter()
            .any(|p| {
                p.role == "worker" && p.topic.as_deref() == Some("e2ec.work") && p.processed >= 1
            })
            .then_some(ps)
    })
    .await;
    assert!(live
        .iter()
        .any(|p| p.role == "engine" && p.guid == w.process_guid()));
    w.stop().await;
    // a stopped client refuses calls: another handle of the app looks
    let mut c = config(vec![]);
    c.quorum = false;
    let observer = HotMesh::init(c).await.unwrap();
    assert!(
        observer
            .roll_call(Duration::from_secs(30))
            .await
            .unwrap()
            .iter()
            .all(|p| p.guid != w.process_guid()),
        "left the quorum"
    );
}

#[tokio::test]
async fn pubsub_gives_up_with_504_while_the_job_runs_on() {
    let hm = &setup().await;
    // no worker runs: the job waits, and pubsub gives up with 504
    let e = hm
        .pubsub("e2ec.start", json!({"n": 1}), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert_eq!(e.code(), 504);
    // a forged completion NOTIFY (anyone may send one) is not taken for the result: the
    // client reads the job, which still runs
    let waiting = {
        let hm = hm.clone();
        tokio::spawn(async move {
            let options = hotmesh_client::PubOptions::new().id("forged-1");
            hm.pubsub_with(
                "e2ec.start",
                json!({"n": 1}),
                options,
                Duration::from_millis(1500),
            )
            .await
        })
    };
    eventually(5, "the job started", || async {
        hm.get_status("forged-1").await.ok().map(|_| ())
    })
    .await;
    let forged = r#"{"type":"job","topic":"e2ec.alpha","job":{"metadata":{"jid":"forged-1","js":0},"data":{"forged":true}}}"#;
    sqlx::query("SELECT pg_notify('e2ec.alpha.forged-1', $1)")
        .bind(forged)
        .execute(hm.pool())
        .await
        .unwrap();
    let e = waiting.await.unwrap().unwrap_err();
    assert!(
        matches!(e, Error::Timeout { .. }),
        "the forged completion was ignored: {e}"
    );
    // drain it for the next tests
    let w = HotMesh::init(config(vec![echo("drain")])).await.unwrap();
    eventually(10, "the stream drained", || async {
        (hm.roll_call_depth().await == 0).then_some(())
    })
    .await;
    w.stop().await;
}

trait Depth {
    async fn roll_call_depth(&self) -> i64;
}

impl Depth for HotMesh {
    async fn roll_call_depth(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM hotmesh.worker_stream WHERE topic = 'e2ec.work'")
            .fetch_one(self.pool())
            .await
            .unwrap()
    }
}

/// An error answer is retried by the activity's policy; a callback longer than its
/// reservation keeps it by heartbeats (it runs once); a new version is announced.
#[tokio::test]
async fn retries_heartbeats_and_activations_reach_the_workers() {
    let hm = &setup().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let flaky = Worker::new("e2ec.flaky", move |m| {
        let c = c.clone();
        async move {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            if m.attempt < 2 {
                Outcome::error(503, json!({"message": "not yet"}))
            } else {
                Outcome::success(json!({ "tries": n }))
            }
        }
    });
    let slow_calls = Arc::new(AtomicUsize::new(0));
    let sc = slow_calls.clone();
    let slow = Worker::new("e2ec.work", move |m| {
        let sc = sc.clone();
        async move {
            sc.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Outcome::success(json!({ "by": "slow", "n": m.data["n"] }))
        }
    })
    .reservation(Duration::from_millis(600));
    let w = HotMesh::init(config(vec![flaky, slow])).await.unwrap();
    let out = hm
        .pubsub("e2ec.flaky", json!({}), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.data["tries"], 3, "two retries, then success");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let out = hm
        .pubsub("e2ec.start", json!({"n": 3}), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.data["by"], "slow");
    assert_eq!(
        slow_calls.load(Ordering::SeqCst),
        1,
        "kept by heartbeats: never redelivered"
    );
    // activation announcements
    let mut acts = hm.activations().await.unwrap();
    let v2 = APP.replace("version: '1'", "version: '2'").replace(
        "$ref: ./graphs/work.yaml",
        "{ subscribes: e2ec.v2only, activities: { z: { type: trigger } } }",
    );
    hm.deploy(&v2).await.unwrap();
    hm.activate_app("e2ec", "2").await.unwrap();
    let a = tokio::time::timeout(Duration::from_secs(5), acts.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.app_id.as_str(), a.version.as_str()), ("e2ec", "2"));
    hm.activate_app("e2ec", "1").await.unwrap();
    w.stop().await;
}

#[tokio::test]
async fn subscriptions_and_patterns_hear_completions() {
    let hm = &setup().await;
    let w = HotMesh::init(config(vec![echo("s").concurrency(2)]))
        .await
        .unwrap();
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    hm.psub("e2ec.*", move |m| {
        s1.lock().unwrap().push(("psub".into(), m.topic))
    })
    .await
    .unwrap();
    hm.sub("other.beta", move |m| {
        s2.lock().unwrap().push(("sub".into(), m.topic))
    })
    .await
    .unwrap();
    let id = hotmesh_client::guid();
    let pattern = format!("e2ec.alpha.{id}");
    hm.psub(&pattern, move |m| {
        s3.lock()
            .unwrap()
            .push(("job".into(), m.job.job_id().to_string()))
    })
    .await
    .unwrap();
    hm.publish(
        "e2ec.start",
        json!({"n": 1}),
        PubOptions::new().id(id.clone()),
    )
    .await
    .unwrap()
    .id()
    .to_string();
    hm.publish("e2ec.start", json!({"n": 2}), Default::default())
        .await
        .unwrap()
        .id()
        .to_string();
    hm.publish("e2ec.other", json!({}), Default::default())
        .await
        .unwrap()
        .id()
        .to_string();
    let got = eventually(10, "the completions", || async {
        let s = seen.lock().unwrap().clone();
        (s.len() >= 4).then_some(s)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_now = seen.lock().unwrap().clone();
    assert_eq!(got_now.len(), 4, "{got_now:?}");
    assert_eq!(
        got.iter()
            .filter(|(k, t)| k == "psub" && t == "e2ec.alpha")
            .count(),
        2,
        "{got:?}"
    );
    assert!(got.iter().any(|(k, t)| k == "sub" && t == "other.beta"));
    assert!(
        got.iter().any(|(k, j)| k == "job" && *j == id),
        "the job-channel pattern: {got:?}"
    );
    assert!(
        !got.iter().any(|(k, t)| k == "psub" && t == "other.beta"),
        "other.beta does not match e2ec.*"
    );
    hm.punsub("e2ec.*");
    hm.punsub(&pattern);
    hm.unsub("other.beta");
    hm.publish("e2ec.other", json!({}), Default::default())
        .await
        .unwrap()
        .id()
        .to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.lock().unwrap().len(), 4, "nothing after unsub");
    w.stop().await;
}

#[tokio::test]
async fn two_workers_share_a_topic() {
    let hm = &setup().await;
    let slow = |by: &'static str| {
        Worker::new("e2ec.work", move |m| async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            Outcome::success(json!({ "by": by, "n": m.data["n"] }))
        })
    };
    let a = HotMesh::init(config(vec![slow("a")])).await.unwrap();
    let b = HotMesh::init(config(vec![slow("b")])).await.unwrap();
    let mut ids = vec![];
    for n in 0..20 {
        ids.push(
            hm.publish("e2ec.start", json!({"n": n}), Default::default())
                .await
                .unwrap()
                .id()
                .to_string(),
        );
    }
    let mut by = std::collections::HashMap::new();
    for id in &ids {
        let s = eventually(20, "each job done", || async {
            let s = hm.get_state(id).await.unwrap();
            (s.status() == 0).then_some(s)
        })
        .await;
        *by.entry(s.data["by"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert!(
        by.get("a").copied().unwrap_or(0) > 0 && by.get("b").copied().unwrap_or(0) > 0,
        "{by:?}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn throttle_pauses_and_resumes() {
    let hm = &setup().await;
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let counting = move || {
        let d = d.clone();
        Worker::new("e2ec.work", move |m| {
            let d = d.clone();
            async move {
                d.fetch_add(1, Ordering::SeqCst);
                Outcome::success(json!({ "by": "t", "n": m.data["n"] }))
            }
        })
    };
    let w = HotMesh::init(config(vec![counting().concurrency(2)]))
        .await
        .unwrap();
    w.throttle(Throttle::pause().topic("e2ec.work"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for n in 0..5 {
        hm.publish("e2ec.start", json!({"n": n}), Default::default())
            .await
            .unwrap()
            .id()
            .to_string();
    }
    // a worker that starts now obeys the persisted throttle too
    let late = HotMesh::init(config(vec![counting()])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(done.load(Ordering::SeqCst), 0, "paused");
    assert_eq!(hm.roll_call_depth().await, 5);
    let paused = w.roll_call(Duration::from_secs(30)).await.unwrap();
    assert!(
        paused
            .iter()
            .filter(|p| p.role == "worker")
            .all(|p| p.throttle == -1),
        "{paused:?}"
    );
    w.throttle(Throttle::resume()).await.unwrap();
    eventually(10, "resumed", || async {
        (done.load(Ordering::SeqCst) >= 5).then_some(())
    })
    .await;
    // a slowing throttle: 150 ms between messages
    w.throttle(Throttle::delay(Duration::from_millis(150)).topic("e2ec.work"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = std::time::Instant::now();
    for n in 0..4 {
        hm.publish("e2ec.start", json!({"n": n}), Default::default())
            .await
            .unwrap()
            .id()
            .to_string();
    }
    eventually(10, "slowed", || async {
        (done.load(Ordering::SeqCst) >= 9).then_some(())
    })
    .await;
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t0.elapsed()
    );
    w.throttle(Throttle::resume()).await.unwrap();
    late.stop().await;
    w.stop().await;
}

#[tokio::test]
async fn a_crash_mid_message_is_redelivered_and_applied_once() {
    let hm = &setup().await;
    // the crashing process: its own runtime, dropped (not stopped) while its callback
    // runs: no answer, no release, no more heartbeats; its connections just close
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let url = url_for(DB);
    let (crash, crashed) = std::sync::mpsc::channel::<()>();
    let crashing = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut c = Config::new("e2ec", url);
        c.workers = vec![Worker::new("e2ec.work", move |_m| {
            let s = s.clone();
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<Outcome>().await
            }
        })
        .reservation(Duration::from_secs(1))];
        let hm = rt.block_on(HotMesh::init(c)).unwrap();
        crashed.recv().unwrap();
        std::mem::forget(hm);
        rt.shutdown_background();
    });
    let id = hm
        .publish("e2ec.start", json!({"n": 99}), Default::default())
        .await
        .unwrap()
        .id()
        .to_string();
    eventually(10, "the callback started", || async {
        (started.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    crash.send(()).unwrap();
    crashing.join().unwrap();
    let answers = Arc::new(AtomicUsize::new(0));
    let a = answers.clone();
    let rescuer = HotMesh::init(config(vec![Worker::new("e2ec.work", move |m| {
        let a = a.clone();
        async move {
            a.fetch_add(1, Ordering::SeqCst);
            assert!(m.deliveries >= 2, "a redelivery");
            Outcome::success(json!({ "by": "rescuer", "n": m.data["n"] }))
        }
    })]))
    .await
    .unwrap();
    let s = eventually(15, "completed by the rescuer", || async {
        let s = hm.get_state(&id).await.unwrap();
        (s.status() == 0).then_some(s)
    })
    .await;
    assert_eq!(s.data["by"], "rescuer");
    assert_eq!(answers.load(Ordering::SeqCst), 1);
    let acts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM hotmesh.activities WHERE job_id = $1 AND activity_id = 'w'",
    )
    .bind(&id)
    .fetch_one(hm.pool())
    .await
    .unwrap();
    assert_eq!(acts, 1, "applied once");
    rescuer.stop().await;
}

/// A worker of concurrency 1 runs its next callback while the previous answer still
/// waits (here on a job row another transaction holds): the answer's round trip and
/// commit hold no callback slot. The answers all apply once the row is free.
#[tokio::test]
async fn a_callback_slot_is_free_while_its_answer_waits() {
    let hm = &setup().await;
    let first = hm
        .publish("e2ec.start", json!({"n": 1}), Default::default())
        .await
        .unwrap()
        .id()
        .to_string();
    let mut holder = hm.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM hotmesh.jobs WHERE id = $1 FOR UPDATE")
        .bind(&first)
        .execute(&mut *holder)
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let w = HotMesh::init(config(vec![Worker::new("e2ec.work", move |m| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(m.job_id.clone());
            Outcome::success(json!({ "by": "slot", "n": m.data["n"] }))
        }
    })]))
    .await
    .unwrap();
    eventually(10, "the first callback ran", || async {
        seen.lock().unwrap().contains(&first).then_some(())
    })
    .await;
    let second = hm
        .publish("e2ec.start", json!({"n": 2}), Default::default())
        .await
        .unwrap()
        .id()
        .to_string();
    eventually(
        10,
        "the second callback ran while the first answer waits",
        || async { seen.lock().unwrap().contains(&second).then_some(()) },
    )
    .await;
    assert_ne!(
        hm.get_state(&first).await.unwrap().status(),
        0,
        "the first answer waited"
    );
    holder.commit().await.unwrap();
    for id in [&first, &second] {
        let s = eventually(10, "both applied", || async {
            let s = hm.get_state(id).await.unwrap();
            (s.status() == 0).then_some(s)
        })
        .await;
        assert_eq!(s.data["by"], "slot");
    }
    w.stop().await;
}

#[tokio::test]
async fn graceful_stop_releases_running_messages() {
    let hm = &setup().await;
    let w = HotMesh::init(config(vec![Worker::new("e2ec.work", |_m| async {
        std::future::pending::<Outcome>().await
    })])) // reservation 30 s: without a release, another worker would wait that long
    .await
    .unwrap();
    let id = hm
        .publish("e2ec.start", json!({"n": 5}), Default::default())
        .await
        .unwrap()
        .id()
        .to_string();
    eventually(10, "reserved", || async {
        let r: Option<bool> = sqlx::query_scalar(
            "SELECT reserved_until IS NOT NULL FROM hotmesh.worker_stream WHERE job_id = $1",
        )
        .bind(&id)
        .fetch_optional(hm.pool())
        .await
        .unwrap();
        (r == Some(true)).then_some(())
    })
    .await;
    w.stop().await;
    let other = HotMesh::init(config(vec![echo("after-stop")]))
        .await
        .unwrap();
    let s = eventually(5, "taken by another worker at once", || async {
        let s = hm.get_state(&id).await.unwrap();
        (s.status() == 0).then_some(s)
    })
    .await;
    assert_eq!(s.data["by"], "after-stop");
    other.stop().await;
}

#[tokio::test]
async fn calls_after_stop_are_refused() {
    let hm = setup().await;
    let w = HotMesh::init(config(vec![echo("s")])).await.unwrap();
    w.stop().await;
    for e in [
        w.get_status("nope").await.unwrap_err(),
        w.publish("e2ec.start", json!({"n": 1}), Default::default())
            .await
            .unwrap_err(),
        w.sub("e2ec.done", |_| {}).await.unwrap_err(),
        w.version().await.map(|_| ()).unwrap_err(),
    ] {
        assert!(matches!(e, Error::Stopped), "{e:?}");
    }
    // the pool itself stays open for the caller's own queries, and other handles work on
    assert_eq!(
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(w.pool())
            .await
            .unwrap(),
        1
    );
    assert!(hm.version().await.is_ok());
}

#[tokio::test]
async fn a_postgres_restart_loses_nothing() {
    setup().await;
    let hm = HotMesh::connect(&url_for(DB)).await.unwrap();
    let w = HotMesh::init(config(vec![echo("r").concurrency(4)]))
        .await
        .unwrap();
    let mut ids = vec![];
    for n in 0..30 {
        ids.push(
            hm.publish("e2ec.start", json!({"n": n}), Default::default())
                .await
                .unwrap()
                .id()
                .to_string(),
        );
    }
    cluster("restart", &[]);
    // more work after the restart: the workers must have reconnected to hear of it
    let hm = HotMesh::connect(&url_for(DB)).await.unwrap();
    for n in 30..40 {
        ids.push(
            hm.publish("e2ec.start", json!({"n": n}), Default::default())
                .await
                .unwrap()
                .id()
                .to_string(),
        );
    }
    for (n, id) in ids.iter().enumerate() {
        let s = eventually(60, "every job done", || async {
            match hm.get_state(id).await {
                Ok(s) if s.status() == 0 => Some(s),
                _ => None,
            }
        })
        .await;
        assert_eq!(s.data["n"], n as i64, "{id}");
        let v: Value = s.data.clone();
        assert_eq!(v["by"], "r");
    }
    w.stop().await;
}
