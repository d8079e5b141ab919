//! The client's typed surface against a real cluster: job handles (wait, read, signal,
//! interrupt a job, started here or elsewhere), typed worker callbacks whose errors map
//! to codes, and retry policies given to workers and to `init` (the YAML's wins).

use hotmesh_client::{
    Config, Error, HotMesh, InterruptOptions, PubOptions, RetryPolicy, Worker, WorkerError,
};
use hotmesh_tests::*;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DB: &str = "e2e_handles";

const APP: &str = r#"
app:
  id: e2eh
  version: '1'
  graphs:
    - subscribes: e2eh.wait
      publishes: e2eh.waited
      activities:
        t: { type: trigger }
        h: { type: hook, job: { maps: { ok: '{$self.hook.data.ok}' } } }
      transitions:
        t: [ { to: h } ]
      hooks:
        e2eh.go:
          - to: h
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] }
    - subscribes: e2eh.charge
      activities:
        ct: { type: trigger }
        cw: { type: worker, topic: e2eh.charge, input: { maps: { amount: '{ct.output.data.amount}' } }, job: { maps: { charged: '{$self.output.data.charged}' } } }
      transitions:
        ct: [ { to: cw } ]
    - subscribes: e2eh.own
      activities:
        ot: { type: trigger }
        ow: { type: worker, topic: e2eh.flaky, retry: { maximumAttempts: 2, initialInterval: 0.05, backoffCoefficient: 1 }, input: { maps: { key: '{ot.output.data.key}' } } }
      transitions:
        ot: [ { to: ow } ]
    - subscribes: e2eh.plain
      activities:
        pt: { type: trigger }
        pw: { type: worker, topic: e2eh.flaky, input: { maps: { key: '{pt.output.data.key}' } } }
      transitions:
        pt: [ { to: pw } ]
    - subscribes: e2eh.order
      activities:
        st:
          type: trigger
          stats:
            id: '{$self.input.data.id}'
            key: '{$self.input.data.shop}'
            granularity: 1h
            measures:
              - { measure: count, target: '{$self.input.data.region}' }
              - { measure: index, target: '{$self.input.data.customer}' }
"#;

async fn setup() -> HotMesh {
    fresh_database(DB).await;
    exec(DB, "CREATE EXTENSION hotmesh").await;
    let hm = HotMesh::connect(&url_for(DB)).await.unwrap();
    let d = hm.deploy(APP).await.unwrap();
    assert_eq!(d["status"], "deployed", "{d}");
    assert!(hm.activate_app("e2eh", "1").await.unwrap());
    hm
}

fn config(workers: Vec<Worker>) -> Config {
    let mut c = Config::new("e2eh", url_for(DB));
    c.heartbeat = Duration::from_millis(300);
    c.grace = Duration::from_millis(300);
    c.workers = workers;
    c
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_handle_waits_for_reads_signals_and_interrupts_its_job() {
    let hm = setup().await;
    let job = hm
        .publish("e2eh.wait", json!({}), PubOptions::default())
        .await
        .unwrap();
    assert!(job.status().await.unwrap() > 0, "waits on its hook");
    assert_eq!(job.state().await.unwrap().job_id(), job.id());
    let e = job.result(Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert_eq!(e.code(), 504);

    // a second handle on the same job, by id, waits while the first signals it
    let by_id = hm.job(job.id());
    let waiting = tokio::spawn(async move { by_id.result(WAIT).await });
    // a third waiter gives up first: the others still hear the job (no 5 s poll)
    let brief = hm.job(job.id());
    let brief = tokio::spawn(async move { brief.result(Duration::from_millis(300)).await });
    assert_eq!(brief.await.unwrap().unwrap_err().code(), 504);
    let reached = job.signal("e2eh.go", json!({"ok": "yes"})).await.unwrap();
    assert_eq!(
        reached.as_deref(),
        Some(job.id()),
        "the data got the job's id"
    );
    let out = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("heard at once")
        .unwrap()
        .unwrap();
    assert_eq!(out.data["ok"], "yes");
    // an ended job answers at once
    let again = tokio::time::timeout(Duration::from_secs(2), job.result(WAIT))
        .await
        .expect("at once")
        .unwrap();
    assert_eq!(again, out);
    #[derive(serde::Deserialize)]
    struct Ok_ {
        ok: String,
    }
    assert_eq!(job.result_as::<Ok_>(WAIT).await.unwrap().ok, "yes");
    assert!(job.export().await.unwrap().is_object());

    // interrupted through a handle that knows only the id: the wait ends with 410
    let other = hm
        .publish("e2eh.wait", json!({}), PubOptions::default())
        .await
        .unwrap();
    let waiting = {
        let h = hm.job(other.id());
        tokio::spawn(async move { h.result(WAIT).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let why = InterruptOptions::new().reason("cancelled by the test");
    assert!(hm.job(other.id()).interrupt(why).await.unwrap());
    match waiting.await.unwrap().unwrap_err() {
        Error::Job { code, message, .. } => {
            assert_eq!(code, 410);
            assert!(message.contains("cancelled by the test"), "{message}");
        }
        e => panic!("expected the job's error, got {e:?}"),
    }

    // a job started elsewhere (SQL, in another session) is waited for by id
    let sql_id: String = scalar(DB, "SELECT hotmesh.pub('e2eh.wait', '{}')").await;
    let h = hm.job(&sql_id);
    let waiting = tokio::spawn(async move { h.result(WAIT).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    hm.hook("e2eh.go", json!({"id": sql_id, "ok": "sql"}))
        .await
        .unwrap();
    assert_eq!(waiting.await.unwrap().unwrap().data["ok"], "sql");

    // no such job: 404, at once
    let e = hm.job("no-such-job").result(WAIT).await.unwrap_err();
    assert_eq!(e.code(), 404, "{e}");
    assert!(hm.job(job.id()).scrub().await.unwrap());
}

#[derive(serde::Deserialize)]
struct Charge {
    amount: i64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Receipt {
    charged: i64,
}

type Calls = Arc<Mutex<HashMap<String, usize>>>;

#[tokio::test]
async fn a_typed_callback_takes_and_returns_types_and_its_errors_become_codes() {
    let hm = setup().await;
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let charge = Worker::typed("e2eh.charge", move |c: Charge| {
        let seen = seen.clone();
        async move {
            *seen
                .lock()
                .unwrap()
                .entry(c.amount.to_string())
                .or_default() += 1;
            if c.amount == 0 {
                return Err(WorkerError::fatal(422, "nothing to charge").with("amount", 0));
            }
            Ok(Receipt { charged: c.amount })
        }
    })
    // fatal errors are not retried whatever the policy
    .retry(RetryPolicy::new(5).initial_interval(Duration::from_millis(50)));
    let w = HotMesh::init(config(vec![charge])).await.unwrap();

    let job = hm
        .publish("e2eh.charge", json!({"amount": 5}), PubOptions::default())
        .await
        .unwrap();
    let r: Receipt = job.result_as(WAIT).await.unwrap();
    assert_eq!(r.charged, 5);

    let job = hm
        .publish("e2eh.charge", json!({"amount": 0}), PubOptions::default())
        .await
        .unwrap();
    match job.result(WAIT).await.unwrap_err() {
        Error::Job { code, error, .. } => {
            assert_eq!(code, 422);
            assert_eq!(error["message"], "nothing to charge", "{error}");
        }
        e => panic!("expected the job's error, got {e:?}"),
    }
    assert_eq!(
        calls.lock().unwrap()["0"],
        1,
        "a fatal error is not retried"
    );

    // input that does not read as the type: 422, the callback never runs
    let job = hm
        .publish(
            "e2eh.charge",
            json!({"amount": "lots"}),
            PubOptions::default(),
        )
        .await
        .unwrap();
    let e = job.result(WAIT).await.unwrap_err();
    assert_eq!(e.code(), 422, "{e}");
    assert!(e.to_string().contains("Charge"), "names the type: {e}");
    w.stop().await;
}

/// A flaky worker that fails every time (retryable, through `?`), counting its calls.
fn flaky(calls: Calls) -> Worker {
    #[derive(serde::Deserialize)]
    struct Key {
        key: String,
    }
    Worker::typed("e2eh.flaky", move |k: Key| {
        let calls = calls.clone();
        async move {
            *calls.lock().unwrap().entry(k.key).or_default() += 1;
            let n: i64 = "not a number".parse()?;
            Ok::<_, WorkerError>(json!({ "n": n }))
        }
    })
}

#[tokio::test]
async fn retry_policies_apply_where_the_yaml_has_none_and_the_yamls_wins() {
    let hm = setup().await;
    let calls: Calls = Arc::default();
    let fast = |n| {
        RetryPolicy::new(n)
            .initial_interval(Duration::from_millis(50))
            .backoff_coefficient(1.0)
    };
    let w = HotMesh::init(config(vec![flaky(calls.clone()).retry(fast(3))]))
        .await
        .unwrap();
    // no policy in the YAML: the worker's, 3 attempts, then the job hears the error
    let e = hm
        .publish("e2eh.plain", json!({"key": "plain"}), PubOptions::default())
        .await
        .unwrap()
        .result(WAIT)
        .await
        .unwrap_err();
    assert_eq!(e.code(), 500, "{e}");
    assert!(e.to_string().contains("invalid digit"), "{e}");
    assert_eq!(calls.lock().unwrap()["plain"], 3);
    // the YAML says 2 attempts: it wins over the worker's 3
    hm.publish("e2eh.own", json!({"key": "own"}), PubOptions::default())
        .await
        .unwrap()
        .result(WAIT)
        .await
        .unwrap_err();
    assert_eq!(calls.lock().unwrap()["own"], 2);
    w.stop().await;

    // the policy given to init serves a worker without its own
    let w = HotMesh::init(config(vec![flaky(calls.clone())]).retry(fast(4)))
        .await
        .unwrap();
    hm.publish("e2eh.plain", json!({"key": "init"}), PubOptions::default())
        .await
        .unwrap()
        .result(WAIT)
        .await
        .unwrap_err();
    assert_eq!(calls.lock().unwrap()["init"], 4);
    w.stop().await;

    // and without any policy, one attempt (as the original)
    let w = HotMesh::init(config(vec![flaky(calls.clone())]))
        .await
        .unwrap();
    hm.publish("e2eh.plain", json!({"key": "none"}), PubOptions::default())
        .await
        .unwrap()
        .result(WAIT)
        .await
        .unwrap_err();
    assert_eq!(calls.lock().unwrap()["none"], 1);
    w.stop().await;

    // a bad policy is refused before anything starts
    let e = HotMesh::init(config(vec![]).retry(RetryPolicy::new(0)))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid { name: "retry", .. }), "{e:?}");
}

#[tokio::test]
async fn a_throttle_is_in_force_when_it_returns_and_the_roll_call_counts_are_live() {
    let hm = setup().await;
    let started: Arc<Mutex<Vec<std::time::Instant>>> = Arc::default();
    let seen = started.clone();
    let charge = Worker::typed("e2eh.charge", move |c: Charge| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(std::time::Instant::now());
            Ok::<_, WorkerError>(Receipt { charged: c.amount })
        }
    })
    .concurrency(8);
    // a long heartbeat: only the throttle's own announcement can make the worker obey
    let mut c = config(vec![charge]);
    c.heartbeat = Duration::from_secs(60);
    let w = HotMesh::init(c).await.unwrap();
    // the worker runs at full speed first
    hm.publish("e2eh.charge", json!({"amount": 1}), PubOptions::default())
        .await
        .unwrap()
        .result(WAIT)
        .await
        .unwrap();

    let confirmed = w
        .throttle(hotmesh_client::Throttle::delay(Duration::from_millis(200)))
        .await
        .unwrap();
    assert_eq!(confirmed, 1, "the one worker confirmed");
    started.lock().unwrap().clear();
    let mut jobs = vec![];
    for n in 0..5 {
        jobs.push(
            hm.publish("e2eh.charge", json!({"amount": n}), PubOptions::default())
                .await
                .unwrap(),
        );
    }
    for j in &jobs {
        j.result(WAIT).await.unwrap();
    }
    let times = started.lock().unwrap().clone();
    assert_eq!(times.len(), 5);
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(180),
            "messages 200 ms apart from the first: {gap:?}"
        );
    }
    w.throttle(hotmesh_client::Throttle::resume())
        .await
        .unwrap();

    // counts as of now, though the worker's own heartbeat is a minute away
    let rows = hm.roll_call(Duration::from_secs(30)).await.unwrap();
    assert!(rows.is_empty(), "a plain client has no app: {rows:?}");
    let rows = w.roll_call(Duration::from_secs(30)).await.unwrap();
    let worker = rows
        .iter()
        .find(|p| p.role == "worker")
        .expect("the worker's row");
    assert_eq!(worker.processed, 6, "{worker:?}");
    w.stop().await;
}

#[tokio::test]
async fn the_originals_names_quorum_messages_hook_and_activate_by_version() {
    let hm = setup().await;
    let a = HotMesh::init(config(vec![])).await.unwrap();
    let b = HotMesh::init(config(vec![])).await.unwrap();
    let heard: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let h = heard.clone();
    b.sub_quorum(move |m| h.lock().unwrap().push(m))
        .await
        .unwrap();
    a.pub_quorum(json!({"type": "user", "topic": "cache.flush", "n": 1}))
        .await
        .unwrap();
    eventually(5, "b hears a's message", || async {
        heard
            .lock()
            .unwrap()
            .iter()
            .any(|m| m["topic"] == "cache.flush")
            .then_some(())
    })
    .await;
    // the engine's own messages come too
    a.throttle(hotmesh_client::Throttle::resume())
        .await
        .unwrap();
    eventually(5, "b hears the throttle", || async {
        heard
            .lock()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "throttle")
            .then_some(())
    })
    .await;
    b.unsub_quorum();
    heard.lock().unwrap().clear();
    a.pub_quorum(json!({"type": "user", "n": 2})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(heard.lock().unwrap().is_empty(), "unsubscribed");

    let big = "x".repeat(8_000);
    let e = a
        .pub_quorum(json!({"type": "user", "big": big}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                name: "message",
                ..
            }
        ),
        "{e:?}"
    );
    let e = hm.pub_quorum(json!({"type": "user"})).await.unwrap_err();
    assert!(matches!(e, Error::Invalid { name: "app_id", .. }), "{e:?}");

    // activate(version) on a client that has its app; a plain one is told what to use
    assert!(a.activate("1").await.unwrap());
    let e = hm.activate("1").await.unwrap_err();
    assert!(e.to_string().contains("activate_app"), "{e}");

    // hook: the original's name of signal
    let job = hm
        .publish("e2eh.wait", json!({}), PubOptions::default())
        .await
        .unwrap();
    hm.hook("e2eh.go", json!({"id": job.id(), "ok": "hooked"}))
        .await
        .unwrap();
    assert_eq!(job.result(WAIT).await.unwrap().data["ok"], "hooked");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn stats_and_indexed_ids_are_read_through_the_client() {
    let hm = setup().await;
    for (id, region, customer) in [
        ("o1", "eu", "ann"),
        ("o2", "eu", "bob"),
        ("o3", "us", "ann"),
    ] {
        let order = json!({"id": id, "shop": "north", "region": region, "customer": customer});
        hm.publish("e2eh.order", order, PubOptions::new())
            .await
            .unwrap();
    }
    let query = json!({"data": {"shop": "north"}, "range": "1h", "end": "NOW"});
    let stats = hm.get_stats("e2eh.order", query.clone()).await.unwrap();
    assert_eq!(stats["count"], 3, "{stats}");
    let eu = stats["measures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["target"] == "region:eu")
        .cloned();
    assert_eq!(eu.unwrap()["value"], 2, "{stats}");
    let ids = hm
        .get_ids("e2eh.order", query, &["customer:ann"])
        .await
        .unwrap();
    assert_eq!(ids["counts"][0]["count"], 2, "{ids}");
    let mut found: Vec<String> = ids["segments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["measures"].as_array().cloned().unwrap_or_default())
        .flat_map(|m| m["ids"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    found.sort();
    assert_eq!(found, ["o1", "o3"]);
    // a window the original's rule refuses: a clear 422
    let e = hm
        .get_stats(
            "e2eh.order",
            json!({"data": {"shop": "north"}, "range": "1w", "end": "NOW"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), 422, "{e}");
}
