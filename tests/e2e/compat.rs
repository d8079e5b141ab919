//! Compatibility with the original HotMesh's test suite: for every app of its functional
//! tests that hotmesh can ship, our own copy of the scenario (`tests/compat/*.yaml`: our
//! words, ids and topics; each file's header says which of the original's behaviours it
//! covers) and the outcomes the original's tests assert. Workers are plain SQL
//! (`dequeue` / `respond`) loops, one task per topic.
//!
//! One test per behaviour, each with its own app and topics; they share one fresh
//! database (`e2e_compat`), created once. Spec: shared/spec/hotmesh-semantics.md §10.

use hotmesh_tests::*;
use serde_json::{json, Value};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

const DB: &str = "e2e_compat";

const LADDER_V1: &str = include_str!("../compat/ladder_v1.yaml");
const LADDER_V2: &str = include_str!("../compat/ladder_v2.yaml");
const LADDER_V3: &str = include_str!("../compat/ladder_v3.yaml");
const LADDER_V4: &str = include_str!("../compat/ladder_v4.yaml");
const LADDER_V5: &str = include_str!("../compat/ladder_v5.yaml");
const GROVE_V1: &str = include_str!("../compat/grove_v1.yaml");
const GROVE_V2: &str = include_str!("../compat/grove_v2.yaml");
const GROVE_V3: &str = include_str!("../compat/grove_v3.yaml");
const GROVE_V4: &str = include_str!("../compat/grove_v4.yaml");
const GROVE_V5: &str = include_str!("../compat/grove_v5.yaml");
const GROVE_V6: &str = include_str!("../compat/grove_v6.yaml");
const GROVE_V7: &str = include_str!("../compat/grove_v7.yaml");
const SUMMON: &str = include_str!("../compat/summon.yaml");
const ABACUS: &str = include_str!("../compat/abacus.yaml");
const ORBIT: &str = include_str!("../compat/orbit.yaml");
const RIPPLE: &str = include_str!("../compat/ripple.yaml");
const HERALD: &str = include_str!("../compat/herald.yaml");
const TICK: &str = include_str!("../compat/tick.yaml");
const EARLY: &str = include_str!("../compat/early.yaml");
const LIMBO: &str = include_str!("../compat/limbo.yaml");
const HALT: &str = include_str!("../compat/halt.yaml");
const BEACON: &str = include_str!("../compat/beacon.yaml");
const DUPE: &str = include_str!("../compat/dupe.yaml");
const REPLAY: &str = include_str!("../compat/replay.yaml");
const GATHER: &str = include_str!("../compat/gather.yaml");

// ---------------------------------------------------------------------------------------
// harness

/// The database, created once for the file (tests run one at a time, each in its own
/// runtime: the setup keeps nothing that belongs to a runtime), and a pool for this test.
async fn db() -> PgPool {
    static SETUP: OnceCell<()> = OnceCell::const_new();
    SETUP
        .get_or_init(|| async {
            fresh_database(DB).await;
            exec(DB, "CREATE EXTENSION hotmesh").await;
            exec(DB, "SELECT hotmesh.wait_for_engine(20)").await;
        })
        .await;
    PgPoolOptions::new()
        .max_connections(8)
        .connect(&url_for(DB))
        .await
        .expect("pool")
}

/// The message of a failed statement.
fn message(e: sqlx::Error) -> String {
    match e.as_database_error() {
        Some(d) => d.message().to_string(),
        None => e.to_string(),
    }
}

async fn publish(p: &PgPool, topic: &str, data: Value) -> String {
    try_publish(p, topic, data, json!({}))
        .await
        .unwrap_or_else(|e| panic!("pub {topic}: {e}"))
}

async fn try_publish(p: &PgPool, topic: &str, data: Value, opts: Value) -> Result<String, String> {
    sqlx::query_scalar("SELECT hotmesh.pub($1, $2, $3)")
        .bind(topic)
        .bind(data)
        .bind(opts)
        .fetch_one(p)
        .await
        .map_err(message)
}

/// `{metadata, data}` of the job once it has ended (15 s at most).
async fn finished(p: &PgPool, id: &str) -> Value {
    finished_within(p, id, 15_000).await
}

async fn finished_within(p: &PgPool, id: &str, ms: i32) -> Value {
    sqlx::query_scalar("SELECT hotmesh.wait_for_job($1, $2)")
        .bind(id)
        .bind(ms)
        .fetch_one(p)
        .await
        .unwrap_or_else(|e| panic!("job {id} did not end: {}", message(e)))
}

/// pub, then the job's end.
async fn run(p: &PgPool, topic: &str, data: Value) -> Value {
    let id = publish(p, topic, data).await;
    finished(p, &id).await
}

async fn status(p: &PgPool, id: &str) -> i64 {
    sqlx::query_scalar("SELECT hotmesh.get_status($1)")
        .bind(id)
        .fetch_one(p)
        .await
        .unwrap()
}

async fn state(p: &PgPool, topic: &str, id: &str) -> Value {
    sqlx::query_scalar("SELECT hotmesh.get_state($1, $2)")
        .bind(topic)
        .bind(id)
        .fetch_one(p)
        .await
        .unwrap()
}

/// The job's `metadata.err` (a JSON string, as the original's), parsed; Null if none.
fn job_error(s: &Value) -> Value {
    match &s["metadata"]["err"] {
        Value::String(t) => serde_json::from_str(t).unwrap_or_else(|_| json!(t)),
        other => other.clone(),
    }
}

fn interrupted(s: &Value) -> bool {
    s["metadata"]["js"].as_i64().unwrap() < -100_000_000
}

/// A job's marks (the `-name-` keys its job maps wrote).
async fn marks(p: &PgPool, id: &str) -> Value {
    sqlx::query_scalar("SELECT marks FROM hotmesh.jobs WHERE id = $1")
        .bind(id)
        .fetch_one(p)
        .await
        .unwrap()
}

async fn count(p: &PgPool, sql: &str, id: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(p)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Rows of activity `aid` of job `id` (one per dimension it ran in).
async fn activity_rows(p: &PgPool, id: &str, aid: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM hotmesh.activities WHERE job_id = $1 AND activity_id = $2",
    )
    .bind(id)
    .bind(aid)
    .fetch_one(p)
    .await
    .unwrap()
}

/// Waits until job `id` has a hook registered for signals (its Leg 1 committed).
async fn hook_registered(p: &PgPool, id: &str, aid: &str) {
    eventually(10, &format!("{id}: hook {aid} registered"), || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM hotmesh.signal_hooks WHERE job_id = $1 AND activity_id = $2",
        )
        .bind(id)
        .bind(aid)
        .fetch_one(p)
        .await
        .unwrap();
        (n > 0).then_some(())
    })
    .await;
}

async fn signal(p: &PgPool, topic: &str, data: Value) -> Option<String> {
    sqlx::query_scalar("SELECT hotmesh.signal($1, $2)")
        .bind(topic)
        .bind(data)
        .fetch_one(p)
        .await
        .unwrap_or_else(|e| panic!("signal {topic}: {}", message(e)))
}

/// A listener on the channel that hotmesh announces `name` on.
async fn listen(p: &PgPool, name: &str) -> PgListener {
    let channel: String = sqlx::query_scalar("SELECT hotmesh.channel($1)")
        .bind(name)
        .fetch_one(p)
        .await
        .unwrap();
    let mut l = PgListener::connect(&url_for(DB)).await.unwrap();
    l.listen(&channel).await.unwrap();
    l
}

/// The next announcement's payload (None after `ms`), with the job it names read as
/// the original's listeners got it (payloads carry references only: `{metadata: {jid,
/// js}}`; the data is read from the job, as the client does).
async fn heard(l: &mut PgListener, ms: u64) -> Option<Value> {
    let mut v: Value = match tokio::time::timeout(Duration::from_millis(ms), l.recv()).await {
        Ok(Ok(n)) => serde_json::from_str(n.payload()).unwrap(),
        _ => return None,
    };
    assert_eq!(v["_ref"], true, "a reference, no job data: {v}");
    if let Some(jid) = v["job"]["metadata"]["jid"].as_str() {
        let mut c = connect(DB).await;
        let state: Value = sqlx::query_scalar("SELECT hotmesh.get_state(NULL, $1)")
            .bind(jid)
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert!(state["data"].is_object(), "{state}");
        v["job"]["data"] = state["data"].clone();
    }
    Some(v)
}

/// Every announcement heard until `ms` pass without one.
async fn heard_all(l: &mut PgListener, ms: u64) -> Vec<Value> {
    let mut got = vec![];
    while let Some(v) = heard(l, ms).await {
        got.push(v);
    }
    got
}

/// A message a worker got.
#[derive(Debug, Clone)]
struct Msg {
    job_id: String,
    data: Value,
    /// the job's marks when the message was taken (for replaying workers)
    marks: Value,
}

/// A worker's answer.
enum Reply {
    /// success (200)
    Ok(Value),
    /// success with a code (the Durable codes: 588, 590, …)
    Code(i64, Value),
    /// an error with a code
    Fail(i64, Value),
    /// several answers to the one message, in order: (status, code, data)
    Stream(Vec<(&'static str, i64, Value)>),
}

/// A worker loop on a topic; stops when dropped.
struct Worker(tokio::task::JoinHandle<()>);

impl Drop for Worker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn serve<F>(p: &PgPool, topic: &str, mut answer: F) -> Worker
where
    F: FnMut(&Msg) -> Reply + Send + 'static,
{
    let (p, topic) = (p.clone(), topic.to_string());
    Worker(tokio::spawn(async move {
        loop {
            let rows = sqlx::query("SELECT id, job_id, data FROM hotmesh.dequeue($1, 10, 30)")
                .bind(&topic)
                .fetch_all(&p)
                .await;
            let rows = match rows {
                Ok(r) => r,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if rows.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            for r in rows {
                let id: i64 = r.get(0);
                let job_id: String = r.get(1);
                // read after the dequeue, in a statement of its own: joined to it, the
                // job row would be read with the statement's snapshot, older than the
                // message's (a marker written with the message would be missed)
                let marks: Value = sqlx::query_scalar(
                    "SELECT coalesce(marks, '{}') FROM hotmesh.jobs WHERE id = $1",
                )
                .bind(&job_id)
                .fetch_optional(&p)
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| json!({}));
                let m = Msg {
                    job_id,
                    data: r.get(2),
                    marks,
                };
                let answers = match answer(&m) {
                    Reply::Ok(d) => vec![("success", 200, d)],
                    Reply::Code(c, d) => vec![("success", c, d)],
                    Reply::Fail(c, d) => vec![("error", c, d)],
                    Reply::Stream(s) => s,
                };
                for (i, (st, code, d)) in answers.into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    let r = sqlx::query("SELECT hotmesh.respond($1, $2, $3, $4)")
                        .bind(id)
                        .bind(d)
                        .bind(st)
                        .bind(code as i32)
                        .execute(&p)
                        .await;
                    if let Err(e) = r {
                        eprintln!("worker {topic}: respond {id}: {}", message(e));
                    }
                }
            }
        }
    }))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "undefined".into(),
        other => other.to_string(),
    }
}

/// `"<text> world"`, as the quickstart's workers answer.
fn world(m: &Msg) -> Reply {
    Reply::Ok(json!({ "echoed": format!("{} world", text(&m.data["text"])) }))
}

/// "No data": the original gives `data: undefined`; an empty object is the same here.
fn no_data(s: &Value) -> bool {
    match &s["data"] {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// quickstart ladder and redeploys (the original's `abc` app, functional/redeploy)

#[tokio::test]
async fn quickstart_ladder_each_redeploy_changes_what_new_jobs_do() {
    let p = db().await;
    let _a = serve(&p, "ladder.echo", world);
    let _b = serve(&p, "ladder.echo.again", world);

    install(&p, LADDER_V1, "ladder", "1").await;
    let id = publish(&p, "ladder.go", json!({})).await;
    assert!(!id.is_empty(), "a job id");
    assert_eq!(status(&p, &id).await, 0, "a trigger alone ends with pub");

    install(&p, LADDER_V2, "ladder", "2").await;
    let s = run(&p, "ladder.go", json!({"word": "hello"})).await;
    assert_eq!(s["data"]["first"], "hello world", "{s}");
    assert_eq!(s["metadata"]["vrs"], "2");

    install(&p, LADDER_V3, "ladder", "3").await;
    let s = run(&p, "ladder.go", json!({"word": "hello"})).await;
    assert_eq!(s["data"]["first"], "hello world", "{s}");
    assert_eq!(s["data"]["second"], "hello world world", "{s}");

    install(&p, LADDER_V4, "ladder", "4").await;
    let s = run(&p, "ladder.go", json!({"word": "hello"})).await;
    assert_eq!(s["data"]["first"], "hello world", "{s}");
    assert_eq!(s["data"]["second"], "hello world", "{s}");

    install(&p, LADDER_V5, "ladder", "5").await;
    let s = run(&p, "ladder.go", json!({"word": "hello"})).await;
    assert_eq!(s["data"]["first"], "hello world", "{s}");
    assert_eq!(s["data"]["second"], "hello world world", "{s}");
    let s = run(&p, "ladder.go", json!({"word": "goodbye"})).await;
    assert!(
        no_data(&s),
        "the gate keeps 'goodbye' out: no data at all: {s}"
    );
    assert_eq!(s["metadata"]["js"], 0);
    let s = run(&p, "ladder.go", json!({"word": "help"})).await;
    assert_eq!(s["data"]["first"], "help world", "{s}");
    assert!(s["data"].get("second").is_none(), "{s}");
}

#[tokio::test]
async fn quickstart_ladder_a_running_job_finishes_on_its_version() {
    let p = db().await;
    install(&p, LADDER_V2, "ladder", "2").await;
    let old = publish(&p, "ladder.go", json!({"word": "old"})).await;
    install(&p, LADDER_V3, "ladder", "3").await;
    let new = publish(&p, "ladder.go", json!({"word": "new"})).await;
    let _a = serve(&p, "ladder.echo", world);
    let _b = serve(&p, "ladder.echo.again", world);
    let s = finished(&p, &old).await;
    assert_eq!(s["metadata"]["vrs"], "2");
    assert_eq!(s["data"], json!({"first": "old world"}), "one step on v2");
    let s = finished(&p, &new).await;
    assert_eq!(s["metadata"]["vrs"], "3");
    assert_eq!(
        s["data"],
        json!({"first": "new world", "second": "new world world"})
    );
}

// ---------------------------------------------------------------------------------------
// fan-out and sequences (the original's `tree` app, functional/parallel, sequence, redeploy)

fn assert_grown(s: &Value, seed: i64, speed: i64) {
    assert_eq!(s["data"]["seed"], seed, "{s}");
    assert_eq!(s["data"]["speed"], speed, "{s}");
    assert_eq!(s["data"]["height"], seed * speed, "{s}");
    for b in ["root", "stem", "leaf", "bud", "bark"] {
        assert!(s["data"][b].is_string(), "branch {b} ran: {s}");
    }
}

#[tokio::test]
async fn parallel_fan_out_maps_every_branch_and_exports_status_0() {
    let p = db().await;
    install(&p, GROVE_V1, "grove", "1").await;
    let s = run(&p, "grove.plant", json!({"seed": 2, "speed": 3})).await;
    assert_grown(&s, 2, 3);
    let id = s["metadata"]["jid"].as_str().unwrap();
    let export: Value = sqlx::query_scalar("SELECT hotmesh.export($1)")
        .bind(id)
        .fetch_one(&p)
        .await
        .unwrap();
    assert_eq!(export["status"], 0, "{export}");
}

#[tokio::test]
async fn a_sequence_of_activities_runs_to_the_end() {
    let p = db().await;
    install(&p, GROVE_V2, "grove", "2").await;
    let s = run(&p, "grove.plant", json!({"seed": 5, "speed": 7})).await;
    assert_grown(&s, 5, 7);
}

#[tokio::test]
async fn parallel_branches_of_sequences_all_run() {
    let p = db().await;
    install(&p, GROVE_V3, "grove", "3").await;
    let s = run(&p, "grove.plant", json!({"seed": 4, "speed": 9})).await;
    assert_grown(&s, 4, 9);
}

#[tokio::test]
async fn parallel_workers_each_get_the_computed_height() {
    let p = db().await;
    install(&p, GROVE_V4, "grove", "4").await;
    let _w = serve(&p, "grove.tend", |m| {
        Reply::Ok(json!({"result": format!("{}:{}", text(&m.data["branch"]), m.data["height"])}))
    });
    let s = run(&p, "grove.plant", json!({"seed": 55, "speed": 20})).await;
    assert_grown(&s, 55, 20);
    assert_eq!(s["data"]["root"], "root:1100");
    assert_eq!(s["data"]["bark"], "bark:1100");
}

#[tokio::test]
async fn bare_graphs_report_status_topic_and_version() {
    let p = db().await;
    for (yaml, v) in [(GROVE_V5, "5"), (GROVE_V6, "6"), (GROVE_V7, "7")] {
        install(&p, yaml, "grove", v).await;
        let s = run(&p, "grove.plant", json!({})).await;
        assert_eq!(s["metadata"]["js"], 0, "v{v}: {s}");
        assert_eq!(s["metadata"]["tpc"], "grove.plant", "v{v}: {s}");
        assert_eq!(s["metadata"]["vrs"], v, "v{v}: {s}");
    }
}

// ---------------------------------------------------------------------------------------
// await (the original's `awaiter` app)

#[tokio::test]
async fn await_returns_the_child_data_by_default() {
    let p = db().await;
    install(&p, SUMMON, "summon", "1").await;
    for data in [json!({}), json!({"wait": true})] {
        let s = run(&p, "summon.go", data.clone()).await;
        assert!(s["data"].get("kid_id").is_none(), "{data}: {s}");
        assert_eq!(s["data"]["kid_data"], true, "{data}: {s}");
    }
}

#[tokio::test]
async fn await_false_returns_the_child_job_id() {
    let p = db().await;
    install(&p, SUMMON, "summon", "1").await;
    let s = run(&p, "summon.go", json!({"wait": false})).await;
    let kid = s["data"]["kid_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{s}"));
    assert!(s["data"].get("kid_data").is_none(), "{s}");
    let k = finished(&p, kid).await;
    assert_eq!(k["data"]["answered"], true, "the child ran: {k}");
}

// ---------------------------------------------------------------------------------------
// retries by code (the original's `calc` app, functional/retry)

/// The calculator's worker: the operation over the values, as JavaScript's reduce.
fn calculate(m: &Msg) -> f64 {
    let v: Vec<f64> = m.data["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let op = m.data["op"].as_str().unwrap();
    v[1..].iter().fold(v[0], |a, b| match op {
        "add" => a + b,
        "subtract" => a - b,
        "multiply" => a * b,
        _ => a / b,
    })
}

#[tokio::test]
async fn a_worker_error_with_a_retry_policy_is_retried_until_it_succeeds() {
    let p = db().await;
    install(&p, ABACUS, "abacus", "1").await;
    let calls: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let seen = calls.clone();
    let _w = serve(&p, "abacus.work", move |m| {
        let mut c = seen.lock().unwrap();
        let n = c.entry(m.job_id.clone()).or_default();
        *n += 1;
        if *n <= 2 {
            Reply::Fail(500, json!({"error": "recoverable error"}))
        } else {
            Reply::Ok(json!({"result": calculate(m)}))
        }
    });
    for (op, values, want) in [
        ("add", json!([1, 2, 3, 4, 5]), 15.0),
        ("subtract", json!([5, 4, 3, 2, 1]), -5.0),
        ("multiply", json!([5, 4, 3, 2, 1]), 120.0),
        ("divide", json!([100, 4, 5]), 5.0),
    ] {
        let s = run(&p, "abacus.calc", json!({"op": op, "values": values})).await;
        assert_eq!(s["data"]["result"].as_f64(), Some(want), "{op}: {s}");
        assert!(s["metadata"].get("err").is_none(), "{op}: {s}");
    }
    let c = calls.lock().unwrap();
    assert_eq!(c.len(), 4, "one child job per calculation");
    assert!(
        c.values().all(|n| *n == 3),
        "two 500s, then the success: {c:?}"
    );
}

#[tokio::test]
async fn an_error_code_without_a_retry_policy_fails_the_job_and_its_parent() {
    let p = db().await;
    install(&p, ABACUS, "abacus", "1").await;
    let calls = Arc::new(Mutex::new(0));
    let seen = calls.clone();
    let _w = serve(&p, "abacus.work", move |_| {
        *seen.lock().unwrap() += 1;
        Reply::Fail(403, json!({"code": 403, "message": "unrecoverable error"}))
    });
    let s = run(
        &p,
        "abacus.calc",
        json!({"op": "divide", "values": [100, 4, 5]}),
    )
    .await;
    let err = job_error(&s);
    assert_eq!(err["code"], 403, "{s}");
    assert_eq!(err["message"], "unrecoverable error", "{s}");
    assert_eq!(err["is_stream_error"], true, "{s}");
    assert!(s["data"].get("result").is_none(), "{s}");
    assert_eq!(*calls.lock().unwrap(), 1, "called once: 403 has no retry");
}

#[tokio::test]
async fn a_scrubbed_job_is_not_found() {
    let p = db().await;
    install(&p, ABACUS, "abacus", "1").await;
    let _w = serve(&p, "abacus.work", |m| {
        Reply::Ok(json!({"result": calculate(m)}))
    });
    let s = run(
        &p,
        "abacus.calc",
        json!({"op": "divide", "values": [100, 4, 5]}),
    )
    .await;
    assert_eq!(s["data"]["result"].as_f64(), Some(5.0));
    let id = s["metadata"]["jid"].as_str().unwrap();
    let gone: bool = sqlx::query_scalar("SELECT hotmesh.scrub($1)")
        .bind(id)
        .fetch_one(&p)
        .await
        .unwrap();
    assert!(gone);
    let e = sqlx::query("SELECT hotmesh.get_state('abacus.calc', $1)")
        .bind(id)
        .execute(&p)
        .await
        .unwrap_err();
    assert_eq!(message(e), format!("{id} Not Found"));
}

#[tokio::test]
async fn a_wait_that_times_out_leaves_the_job_running_to_its_end() {
    let p = db().await;
    install(&p, ABACUS, "abacus", "1").await;
    let _w = serve(&p, "abacus.work", |m| {
        Reply::Ok(json!({"result": calculate(m)}))
    });
    let id = publish(
        &p,
        "abacus.calc",
        json!({"op": "divide", "values": [100, 4, 5]}),
    )
    .await;
    let e = sqlx::query("SELECT hotmesh.wait_for_job($1, 0)")
        .bind(&id)
        .execute(&p)
        .await
        .unwrap_err();
    assert!(message(e).contains("timeout"), "a timeout error");
    let s = finished(&p, &id).await;
    assert_eq!(s["data"]["result"].as_f64(), Some(5.0));
    assert_eq!(status(&p, &id).await, 0);
}

#[tokio::test]
async fn calculations_run_in_parallel() {
    let p = db().await;
    install(&p, ABACUS, "abacus", "1").await;
    let _w = serve(&p, "abacus.work", |m| {
        Reply::Ok(json!({"result": calculate(m)}))
    });
    let a = publish(
        &p,
        "abacus.calc",
        json!({"op": "divide", "values": [200, 4, 5]}),
    )
    .await;
    let b = publish(
        &p,
        "abacus.calc",
        json!({"op": "multiply", "values": [10, 10, 10]}),
    )
    .await;
    let (a, b) = tokio::join!(finished(&p, &a), finished(&p, &b));
    assert_eq!(a["data"]["result"].as_f64(), Some(10.0));
    assert_eq!(b["data"]["result"].as_f64(), Some(1000.0));
}

// ---------------------------------------------------------------------------------------
// cycles (the original's `cycle` app)

#[tokio::test]
async fn a_cycle_loops_while_its_condition_holds() {
    let p = db().await;
    install(&p, ORBIT, "orbit", "1").await;
    let mut laps: HashMap<String, i64> = HashMap::new();
    let _w = serve(&p, "orbit.lap", move |m| {
        let n = laps.entry(m.job_id.clone()).or_default();
        *n += 1;
        Reply::Ok(json!({ "counter": *n }))
    });
    let s = run(&p, "orbit.count", json!({})).await;
    assert_eq!(s["data"]["counter"], 5, "{s}");
    assert_eq!(
        s["data"]["total"], 15,
        "job data accumulates over the laps: {s}"
    );
    let id = s["metadata"]["jid"].as_str().unwrap();
    assert_eq!(
        activity_rows(&p, id, "lap").await,
        5,
        "one row per iteration"
    );
    assert_eq!(activity_rows(&p, id, "apex").await, 5);
}

#[tokio::test]
async fn a_cycle_on_an_error_code_loops_until_success() {
    let p = db().await;
    install(&p, ORBIT, "orbit", "1").await;
    let mut tries: HashMap<String, i64> = HashMap::new();
    let _w = serve(&p, "orbit.wobble", move |m| {
        let n = tries.entry(m.job_id.clone()).or_default();
        *n += 1;
        if *n == 5 {
            Reply::Ok(json!({ "counter": *n }))
        } else {
            Reply::Fail(500, json!({ "counter": *n }))
        }
    });
    let s = run(&p, "orbit.err", json!({})).await;
    assert_eq!(s["data"]["counter"], 5, "{s}");
    assert!(s["metadata"].get("err").is_none(), "{s}");
    let id = s["metadata"]["jid"].as_str().unwrap();
    let export: Value = sqlx::query_scalar("SELECT hotmesh.export($1)")
        .bind(id)
        .fetch_one(&p)
        .await
        .unwrap();
    assert_eq!(export["status"], 0, "{export}");
}

// ---------------------------------------------------------------------------------------
// status codes and 202 streams (the original's `def` app, functional/status)

fn ripple_worker(m: &Msg) -> Reply {
    match m.data["code"].as_i64() {
        Some(202) => Reply::Stream(vec![
            ("pending", 202, json!({"code": 202, "percentage": 49})),
            ("success", 200, json!({"code": 200, "percentage": 99})),
        ]),
        Some(422) => Reply::Fail(
            422,
            json!({"code": 422, "message": "invalid input", "reason": "the account_id field is missing"}),
        ),
        _ => Reply::Ok(json!({"code": 200})),
    }
}

#[tokio::test]
async fn a_worker_200_routes_to_its_branch() {
    let p = db().await;
    install(&p, RIPPLE, "ripple", "1").await;
    let _w = serve(&p, "ripple.work", ripple_worker);
    let s = run(&p, "ripple.go", json!({"code": 200})).await;
    assert_eq!(s["data"]["code"], 200, "{s}");
    assert_eq!(s["data"]["message"], "success", "{s}");
    assert_eq!(s["data"]["landed"], true, "{s}");
}

#[tokio::test]
async fn a_202_stream_ends_with_the_final_answer() {
    let p = db().await;
    install(&p, RIPPLE, "ripple", "1").await;
    let _w = serve(&p, "ripple.work", ripple_worker);
    let s = run(&p, "ripple.go", json!({"code": 202})).await;
    assert_eq!(s["data"]["code"], 200, "{s}");
    assert_eq!(s["data"]["percentage"], 99, "{s}");
    assert_eq!(s["data"]["message"], "success", "{s}");
    assert_eq!(s["data"]["crested"], true, "the 202 branch ran: {s}");
    assert_eq!(s["data"]["landed"], true, "the 200 branch ran: {s}");
}

#[tokio::test]
async fn an_uncaught_error_code_ends_the_job_with_it() {
    let p = db().await;
    install(&p, RIPPLE, "ripple", "1").await;
    let _w = serve(&p, "ripple.work", ripple_worker);
    let s = run(&p, "ripple.go", json!({"code": 422})).await;
    let err = job_error(&s);
    assert_eq!(err["code"], 422, "{s}");
    assert_eq!(err["message"], "invalid input", "{s}");
    assert_eq!(s["metadata"]["js"], 0, "{s}");
}

// ---------------------------------------------------------------------------------------
// emit (the original's `emit` app)

#[tokio::test]
async fn emit_announces_the_interim_state_then_the_end() {
    let p = db().await;
    install(&p, HERALD, "herald", "1").await;
    let id = "herald-1";
    let mut l = listen(&p, &format!("herald.said.{id}")).await;
    let _w = serve(&p, "herald.work", |_| {
        Reply::Ok(json!({"status": "success"}))
    });
    try_publish(&p, "herald.go", json!({}), json!({"id": id}))
        .await
        .unwrap();
    let first = heard(&mut l, 5_000)
        .await
        .expect("the interim announcement");
    assert_eq!(first["type"], "job", "{first}");
    assert_eq!(first["topic"], "herald.said", "{first}");
    assert_eq!(first["job"]["metadata"]["jid"], id, "{first}");
    assert_eq!(first["job"]["data"]["status"], "success", "{first}");
    assert_eq!(first["job"]["data"]["done"], false, "{first}");
    let end = heard(&mut l, 5_000).await.expect("the final announcement");
    assert_eq!(end["job"]["data"]["status"], "success", "{end}");
    assert_eq!(end["job"]["data"]["done"], true, "{end}");
    assert!(heard(&mut l, 500).await.is_none(), "two announcements");
}

// ---------------------------------------------------------------------------------------
// hooks with timeouts (the original's `hook-timeout` app)

async fn timer_rows(p: &PgPool, id: &str) -> i64 {
    count(
        p,
        "SELECT count(*) FROM hotmesh.engine_stream WHERE job_id = $1 AND type = 'timehook'",
        id,
    )
    .await
}

#[tokio::test]
async fn a_signal_before_the_timeout_wins_exactly_once() {
    let p = db().await;
    install(&p, TICK, "tick", "1").await;
    let id = "race-1";
    let mut l = listen(&p, &format!("tick.race.done.{id}")).await;
    publish(&p, "tick.race", json!({"job_id": id})).await;
    hook_registered(&p, id, "race_wait").await;
    let to = signal(
        &p,
        "tick.race.resume",
        json!({"id": id, "done": true, "payload": "signal-arrived"}),
    )
    .await;
    assert_eq!(to.as_deref(), Some(id), "the signal found its hook");
    let s = finished(&p, id).await;
    assert_eq!(s["data"]["signaled"], true, "{s}");
    assert_eq!(s["data"]["signal_data"], "signal-arrived", "{s}");
    let done = heard_all(&mut l, 700).await;
    assert_eq!(done.len(), 1, "one completion: {done:?}");
    assert_eq!(timer_rows(&p, id).await, 0, "the timer is gone");
}

#[tokio::test]
async fn without_a_signal_the_timer_wins() {
    let p = db().await;
    install(&p, TICK, "tick", "1").await;
    let id = "lapse-1";
    let t0 = Instant::now();
    publish(&p, "tick.lapse", json!({"job_id": id})).await;
    let s = finished(&p, id).await;
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "after the 1 s sleep"
    );
    assert_eq!(s["data"]["signaled"], false, "{s}");
    assert_eq!(s["data"]["signal_data"], "timeout", "{s}");
    let hooks = count(
        &p,
        "SELECT count(*) FROM hotmesh.signal_hooks WHERE job_id = $1",
        id,
    )
    .await;
    assert_eq!(hooks, 0, "the hook no longer takes signals");
}

#[tokio::test]
async fn a_sleep_that_resolves_to_null_is_a_pure_signal_wait() {
    let p = db().await;
    install(&p, TICK, "tick", "1").await;
    let id = "dyn-null-1";
    publish(&p, "tick.dyn", json!({"job_id": id})).await;
    hook_registered(&p, id, "dyn_wait").await;
    assert_eq!(timer_rows(&p, id).await, 0, "no timer");
    assert!(status(&p, id).await > 0, "waiting");
    signal(
        &p,
        "tick.dyn.resume",
        json!({"id": id, "done": true, "payload": "no-timeout-signal"}),
    )
    .await;
    let s = finished(&p, id).await;
    assert_eq!(s["data"]["signaled"], true, "{s}");
    assert_eq!(s["data"]["signal_data"], "no-timeout-signal", "{s}");
}

#[tokio::test]
async fn a_sleep_that_resolves_to_a_number_is_a_timeout() {
    let p = db().await;
    install(&p, TICK, "tick", "1").await;
    publish(&p, "tick.dyn", json!({"job_id": "dyn-1s", "timeout": 1})).await;
    publish(&p, "tick.dyn", json!({"job_id": "dyn-10s", "timeout": 10})).await;
    hook_registered(&p, "dyn-10s", "dyn_wait").await;
    signal(
        &p,
        "tick.dyn.resume",
        json!({"id": "dyn-10s", "done": true, "payload": "beat-the-clock"}),
    )
    .await;
    let s = finished(&p, "dyn-10s").await;
    assert_eq!(s["data"]["signaled"], true, "{s}");
    assert_eq!(s["data"]["signal_data"], "beat-the-clock", "{s}");
    let s = finished(&p, "dyn-1s").await;
    assert_eq!(s["data"]["signaled"], false, "the timer won: {s}");
    assert_eq!(s["data"]["signal_data"], "timeout", "{s}");
}

// ---------------------------------------------------------------------------------------
// a signal before its hook (the original's `hook` app, functional/signal-race)

#[tokio::test]
async fn a_signal_before_its_hook_registers_is_delivered_once() {
    let p = db().await;
    install(&p, EARLY, "early", "1").await;
    let id = "early-1";
    let mut l = listen(&p, &format!("early.went.{id}")).await;
    publish(&p, "early.go", json!({"job_id": id})).await;
    let to = signal(&p, "early.resume", json!({"id": id, "done": true})).await;
    assert_eq!(to, None, "no hook waits yet: the signal is kept");
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM hotmesh.pending_signals WHERE topic = 'early.resume' AND key = $1",
    )
    .bind(id)
    .fetch_one(&p)
    .await
    .unwrap();
    assert_eq!(kept, 1);
    let s = finished(&p, id).await;
    assert_eq!(s["data"]["done"], true, "{s}");
    assert_eq!(s["data"]["heard"], 1, "applied once: {s}");
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM hotmesh.pending_signals WHERE topic = 'early.resume' AND key = $1",
    )
    .bind(id)
    .fetch_one(&p)
    .await
    .unwrap();
    assert_eq!(kept, 0, "consumed");
    let done = heard_all(&mut l, 700).await;
    assert_eq!(done.len(), 1, "one completion: {done:?}");
}

// ---------------------------------------------------------------------------------------
// pending jobs (the original's `pending` app)

#[tokio::test]
async fn a_pending_job_has_status_minus_1_and_does_not_run() {
    let p = db().await;
    install(&p, LIMBO, "limbo", "1").await;
    let id = "limbo-1";
    let mut l = listen(&p, &format!("limbo.went.{id}")).await;
    try_publish(&p, "limbo.go", json!({}), json!({"id": id, "pending": 2}))
        .await
        .unwrap();
    assert_eq!(status(&p, id).await, -1);
    let msgs = count(
        &p,
        "SELECT count(*) FROM hotmesh.worker_stream WHERE job_id = $1",
        id,
    )
    .await;
    assert_eq!(msgs, 0, "nothing runs");
    let s = state(&p, "limbo.go", id).await;
    assert_eq!(s["data"], json!({"done": false}), "the trigger's maps: {s}");
    let e = sqlx::query("SELECT hotmesh.wait_for_job($1, 300)")
        .bind(id)
        .execute(&p)
        .await;
    assert!(e.is_err(), "it does not end");
    assert!(heard(&mut l, 300).await.is_none(), "no completion");
    let expires: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM expired_at - created_at)::float8 FROM hotmesh.jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&p)
    .await
    .unwrap();
    assert!(
        (1.5..2.5).contains(&expires),
        "expires after 2 s: {expires}"
    );
}

// ---------------------------------------------------------------------------------------
// interrupts (the original's `tree` app v9/v10, functional/interrupt)

#[tokio::test]
async fn an_interrupt_activity_stops_its_own_job_with_its_state() {
    let p = db().await;
    install(&p, HALT, "halt", "1").await;
    let s = run(
        &p,
        "halt.self",
        json!({"seed": 2, "speed": 3, "throw": false}),
    )
    .await;
    assert_eq!(s["data"]["seed"], 2, "{s}");
    assert_eq!(s["data"]["speed"], 3, "{s}");
    assert_eq!(s["data"]["throw"], false, "{s}");
    assert_eq!(s["data"]["height"], 6, "{s}");
    assert!(
        s["data"].get("late").is_none(),
        "stopped before the sleep ended: {s}"
    );
    assert!(job_error(&s).is_null(), "throw false: no error: {s}");
    assert!(interrupted(&s), "{s}");
}

#[tokio::test]
async fn an_interrupt_activity_that_throws_fails_its_own_job_with_410() {
    let p = db().await;
    install(&p, HALT, "halt", "1").await;
    let s = run(
        &p,
        "halt.self",
        json!({"seed": 2, "speed": 3, "throw": true}),
    )
    .await;
    assert_eq!(job_error(&s)["code"], 410, "{s}");
    assert!(interrupted(&s), "{s}");
}

#[tokio::test]
async fn an_interrupt_activity_stops_another_job() {
    let p = db().await;
    install(&p, HALT, "halt", "1").await;
    let s = run(
        &p,
        "halt.boss",
        json!({"seed": 4, "speed": 6, "throw": false, "kid": "kid-ok"}),
    )
    .await;
    assert!(job_error(&s).is_null(), "{s}");
    assert_eq!(s["data"]["seed"], 4, "{s}");
    assert_eq!(s["data"]["speed"], 6, "{s}");
    assert_eq!(s["data"]["throw"], false, "{s}");
    assert_eq!(s["data"]["height"], 24, "{s}");
    assert_eq!(s["data"]["quick"], "done", "ran before the interrupt: {s}");
    assert!(s["data"].get("slow").is_none(), "after the interrupt: {s}");
    let kid = state(&p, "halt.kid", "kid-ok").await;
    assert!(interrupted(&kid), "{kid}");
}

#[tokio::test]
async fn interrupting_another_job_with_throw_fails_its_awaiting_parent_with_410() {
    let p = db().await;
    install(&p, HALT, "halt", "1").await;
    let s = run(
        &p,
        "halt.boss",
        json!({"seed": 6, "speed": 9, "throw": true, "kid": "kid-fail"}),
    )
    .await;
    assert_eq!(job_error(&s)["code"], 410, "the child's 410, rethrown: {s}");
}

#[tokio::test]
async fn interrupt_from_sql_fails_the_job_with_410() {
    let p = db().await;
    install(&p, HALT, "halt", "1").await;
    let id = "kid-sql";
    publish(&p, "halt.kid", json!({"seed": 1, "speed": 2, "kid": id})).await;
    assert!(status(&p, id).await > 0);
    let ok: bool = sqlx::query_scalar("SELECT hotmesh.interrupt('halt.kid', $1, '{}')")
        .bind(id)
        .fetch_one(&p)
        .await
        .unwrap();
    assert!(ok);
    let s = finished(&p, id).await;
    let err = job_error(&s);
    assert_eq!(err["code"], 410, "{s}");
    assert!(interrupted(&s), "{s}");
    assert_eq!(s["data"]["height"], 2, "{s}");
}

// ---------------------------------------------------------------------------------------
// signals (the original's `signal` app)

#[tokio::test]
async fn signal_all_resumes_every_child_indexed_under_the_parent() {
    let p = db().await;
    install(&p, BEACON, "beacon", "1").await;
    let (id, kid) = ("all-1", "all-kid-1");
    let mut l = listen(&p, &format!("beacon.kid.done.{kid}")).await;
    publish(&p, "beacon.all", json!({"job_id": id, "kid": kid})).await;
    let s = finished_within(&p, id, 6_000).await;
    assert_eq!(s["metadata"]["js"], 0, "{s}");
    assert_eq!(s["data"]["heard_202"], true, "the child's emit: {s}");
    assert_eq!(s["data"]["heard_200"], true, "the child's end: {s}");
    let k = state(&p, "beacon.kid", kid).await;
    assert_eq!(k["data"]["done"], true, "resumed by the signal: {k}");
    assert_eq!(k["data"]["parent_job_id"], id, "{k}");
    let all = heard_all(&mut l, 500).await;
    assert!(
        all.iter().any(|m| m["job"]["data"]["parent_job_id"] == id),
        "announced with its parent's id: {all:?}"
    );
}

#[tokio::test]
async fn signal_one_sends_a_202_then_a_200() {
    let p = db().await;
    install(&p, BEACON, "beacon", "1").await;
    let (id, kid) = ("one-1", "one-kid-1");
    publish(&p, "beacon.one", json!({"job_id": id, "kid": kid})).await;
    let s = finished(&p, id).await;
    assert_eq!(s["metadata"]["js"], 0, "{s}");
    assert_eq!(s["data"]["heard_202"], true, "{s}");
    assert_eq!(s["data"]["heard_200"], true, "{s}");
    let k = finished(&p, kid).await;
    assert_eq!(k["data"]["parent_job_id"], id, "{k}");
    assert_eq!(k["data"]["pinged"], true, "the 202 branch: {k}");
    assert_eq!(k["data"]["ponged"], true, "the 200 branch: {k}");
    assert_eq!(k["data"]["done"], true, "the 200's data last: {k}");
}

#[tokio::test]
async fn status_threshold_ends_the_job_on_entry() {
    let p = db().await;
    install(&p, BEACON, "beacon", "1").await;
    let id = "toggle-1";
    let mut l = listen(&p, &format!("beacon.toggled.{id}")).await;
    publish(&p, "beacon.toggle", json!({"job_id": id, "threshold": 1})).await;
    let s = finished(&p, id).await;
    assert_eq!(s["metadata"]["js"], 0, "{s}");
    assert_eq!(s["data"]["done"], false, "no signal needed: {s}");
    let m = heard(&mut l, 2_000).await.expect("the completion");
    assert_eq!(m["job"]["data"]["done"], false, "{m}");
    assert_eq!(m["job"]["metadata"]["jid"], id, "{m}");
}

#[tokio::test]
async fn without_status_threshold_the_hook_waits_for_its_signal() {
    let p = db().await;
    install(&p, BEACON, "beacon", "1").await;
    let id = "toggle-2";
    publish(&p, "beacon.toggle", json!({"job_id": id})).await;
    hook_registered(&p, id, "toggle_wait").await;
    assert!(status(&p, id).await > 0, "waiting");
    signal(
        &p,
        "beacon.toggle.resume",
        json!({"id": id, "done": true, "howdy": "pardner"}),
    )
    .await;
    let s = finished(&p, id).await;
    assert_eq!(s["data"]["done"], true, "{s}");
    assert_eq!(s["data"]["howdy"], "pardner", "{s}");
}

// ---------------------------------------------------------------------------------------
// job ids and topics (the original's seed app, functional/postgres; spec errata 5, 9, 10)

#[tokio::test]
async fn a_duplicate_job_id_is_an_error() {
    let p = db().await;
    install(&p, DUPE, "dupe", "1").await;
    publish(&p, "dupe.go", json!({"id": "dup-1"})).await;
    let e = try_publish(&p, "dupe.go", json!({"id": "dup-1"}), json!({}))
        .await
        .unwrap_err();
    assert_eq!(e, "Duplicate job: dup-1");
}

/// An expired job's id may start a job again: the old job goes with its activity rows,
/// and the new one's rows (inserted without a look for rows in the way, as a new job's
/// are) are its own, once each.
#[tokio::test]
async fn an_expired_jobs_id_starts_a_new_job_with_its_own_rows() {
    let p = db().await;
    install(&p, DUPE, "dupe", "1").await;
    publish(&p, "dupe.go", json!({"id": "dup-again", "round": 1})).await;
    let old_gid: String = sqlx::query_scalar("SELECT gid FROM hotmesh.jobs WHERE id = 'dup-again'")
        .fetch_one(&p)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE hotmesh.jobs SET expired_at = now() - interval '1 second' WHERE id = 'dup-again'",
    )
    .execute(&p)
    .await
    .unwrap();
    publish(&p, "dupe.go", json!({"id": "dup-again", "round": 2})).await;
    let (gid, live): (String, bool) =
        sqlx::query_as("SELECT gid, expired_at IS NULL FROM hotmesh.jobs WHERE id = 'dup-again'")
            .fetch_one(&p)
            .await
            .unwrap();
    assert_ne!(gid, old_gid, "a new job, not the old one");
    assert!(live);
    let rows: Vec<(String, i64, Value)> = sqlx::query_as(
        "SELECT activity_id, count(*), jsonb_agg(input) FROM hotmesh.activities
          WHERE job_id = 'dup-again' GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&p)
    .await
    .unwrap();
    let counts: Vec<(&str, i64)> = rows.iter().map(|(a, n, _)| (a.as_str(), *n)).collect();
    assert_eq!(counts, [("hold", 1), ("once", 1)]);
    assert_eq!(
        rows[1].2[0]["round"], 2,
        "the trigger's row is the new job's"
    );
}

#[tokio::test]
async fn an_unknown_topic_is_an_error() {
    let p = db().await;
    let e = try_publish(&p, "dupe.nowhere", json!({}), json!({}))
        .await
        .unwrap_err();
    assert!(
        e.starts_with("no subscription found for topic dupe.nowhere"),
        "{e}"
    );
}

#[tokio::test]
async fn an_unknown_job_is_not_found() {
    let p = db().await;
    let e = sqlx::query("SELECT hotmesh.get_status('no-such-job')")
        .execute(&p)
        .await
        .unwrap_err();
    assert_eq!(message(e), "Job no-such-job not found");
    let e = sqlx::query("SELECT hotmesh.get_state('dupe.go', 'no-such-job')")
        .execute(&p)
        .await
        .unwrap_err();
    assert_eq!(message(e), "no-such-job Not Found");
}

// ---------------------------------------------------------------------------------------
// the Durable (MeshFlow) shape driven by a raw worker (the original's `durable` app v1,
// functional/reentrant), and its collator

/// The replaying workflow function: each step of the plan that has no stored result (its
/// marker `-<kind>-<index>-`) interrupts the run with its code; when every step has
/// one, the function returns them.
fn replay_fn(m: &Msg) -> Reply {
    let plan = m.data["plan"].as_array().cloned().unwrap_or_default();
    let mut results = vec![];
    for (i, step) in plan.iter().enumerate() {
        let kind = step["kind"].as_str().unwrap();
        match m.marks.get(format!("-{kind}-{i}-")) {
            Some(v) => results.push(v.clone()),
            None => {
                let code = match kind {
                    "sleep" => 588,
                    "collate" => 589,
                    "child" => 590,
                    "proxy" => 591,
                    "wait" => 595,
                    other => panic!("unknown step {other}"),
                };
                let mut d = step.clone();
                d["index"] = json!(i);
                return Reply::Code(code, d);
            }
        }
    }
    Reply::Ok(json!({ "response": results, "done": true }))
}

/// Runs a replay job with `plan` (its workers running); its end state and marks.
async fn replay(p: &PgPool, id: &str, plan: Value) -> (Value, Value) {
    try_publish(
        p,
        "replay.run",
        json!({ "plan": plan }),
        json!({ "id": id }),
    )
    .await
    .unwrap();
    let s = finished(p, id).await;
    (s, marks(p, id).await)
}

async fn replay_setup(p: &PgPool) -> Vec<Worker> {
    install(p, REPLAY, "replay", "1").await;
    vec![
        serve(p, "replay.fn", replay_fn),
        serve(p, "replay.act", |m| {
            Reply::Ok(json!({ "echo": m.data["args"] }))
        }),
    ]
}

/// The job ran the function once per stored result, plus the last run.
async fn assert_replayed(p: &PgPool, id: &str, s: &Value, steps: i64) {
    assert_eq!(s["data"]["done"], true, "{s}");
    assert!(job_error(s).is_null(), "{s}");
    assert_eq!(
        activity_rows(p, id, "step").await,
        steps + 1,
        "runs of the function"
    );
    assert_eq!(
        activity_rows(p, id, "pivot").await,
        steps + 1,
        "pivot entries"
    );
}

#[tokio::test]
async fn durable_graph_completes_without_interruptions() {
    let p = db().await;
    let _w = replay_setup(&p).await;
    let (s, _) = replay(&p, "replay-200", json!([])).await;
    assert_replayed(&p, "replay-200", &s, 0).await;
    assert_eq!(s["data"]["response"], json!([]), "{s}");
}

#[tokio::test]
async fn durable_graph_sleeps_then_reenters_and_completes() {
    let p = db().await;
    let _w = replay_setup(&p).await;
    let t0 = Instant::now();
    let (s, m) = replay(&p, "replay-588", json!([{"kind": "sleep", "duration": 1}])).await;
    assert!(t0.elapsed() >= Duration::from_millis(900), "slept");
    assert_replayed(&p, "replay-588", &s, 1).await;
    assert_eq!(m["-sleep-0-"], 1, "{m}");
    assert_eq!(s["data"]["response"], json!([1]), "{s}");
}

#[tokio::test]
async fn durable_graph_waits_for_a_signal_then_reenters_and_completes() {
    let p = db().await;
    let _w = replay_setup(&p).await;
    let id = "replay-595";
    try_publish(
        &p,
        "replay.run",
        json!({"plan": [{"kind": "wait", "signal": "sig-595"}]}),
        json!({ "id": id }),
    )
    .await
    .unwrap();
    hook_registered(&p, id, "wait").await;
    signal(
        &p,
        "replay.wait",
        json!({"id": "sig-595", "data": {"answer": 42}}),
    )
    .await;
    let s = finished(&p, id).await;
    assert_replayed(&p, id, &s, 1).await;
    assert_eq!(marks(&p, id).await["-wait-0-"], json!({"answer": 42}));
}

#[tokio::test]
async fn durable_graph_proxies_an_activity_then_reenters_and_completes() {
    let p = db().await;
    let _w = replay_setup(&p).await;
    let (s, m) = replay(
        &p,
        "replay-591",
        json!([{"kind": "proxy", "topic": "replay.act", "args": ["c", {"d": 4}]}]),
    )
    .await;
    assert_replayed(&p, "replay-591", &s, 1).await;
    assert_eq!(m["-proxy-0-"], json!({"echo": ["c", {"d": 4}]}), "{m}");
}

#[tokio::test]
async fn durable_graph_executes_a_child_then_reenters_and_completes() {
    let p = db().await;
    let _w = replay_setup(&p).await;
    let (s, m) = replay(&p, "replay-590", json!([{"kind": "child", "plan": []}])).await;
    assert_replayed(&p, "replay-590", &s, 1).await;
    assert_eq!(
        m["-child-0-"],
        json!({"done": true, "response": []}),
        "the child's result: {m}"
    );
}

#[tokio::test]
async fn durable_graph_starts_a_child_without_waiting_then_completes() {
    let p = db().await;
    let _w = replay_setup(&p).await;
    let (s, m) = replay(
        &p,
        "replay-590x",
        json!([{"kind": "child", "plan": [], "await": false}]),
    )
    .await;
    assert_replayed(&p, "replay-590x", &s, 1).await;
    let kid = m["-child-0-"]["job_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the child's id: {m}"));
    let k = finished(&p, kid).await;
    assert_eq!(k["data"]["done"], true, "{k}");
}

#[tokio::test]
async fn durable_graph_runs_every_kind_of_step_in_turn() {
    let p = db().await;
    let _w = replay_setup(&p).await;
    let id = "replay-all";
    try_publish(
        &p,
        "replay.run",
        json!({"plan": [
            {"kind": "proxy", "topic": "replay.act", "args": [1]},
            {"kind": "sleep", "duration": 1},
            {"kind": "child", "plan": [{"kind": "proxy", "topic": "replay.act", "args": [2]}]},
            {"kind": "wait", "signal": "sig-all"},
        ]}),
        json!({ "id": id }),
    )
    .await
    .unwrap();
    hook_registered(&p, id, "wait").await;
    signal(&p, "replay.wait", json!({"id": "sig-all", "data": "go"})).await;
    let s = finished(&p, id).await;
    assert_replayed(&p, id, &s, 4).await;
    assert_eq!(
        s["data"]["response"],
        json!([
            {"echo": [1]},
            1,
            {"done": true, "response": [{"echo": [2]}]},
            "go"
        ]),
        "{s}"
    );
}

const COLLATE_ITEMS: &str = r#"[
    {"kind": "call", "n": 1},
    {"kind": "nap", "seconds": 1},
    {"kind": "call", "n": 2}
]"#;

#[tokio::test]
async fn collator_cycle_reached_from_the_pivot_and_from_a_worker() {
    let p = db().await;
    install(&p, GATHER, "gather", "1").await;
    let _w = serve(&p, "gather.call", |m| {
        Reply::Ok(json!({ "twice": m.data["item"]["n"].as_i64().unwrap() * 2 }))
    });
    let items: Value = serde_json::from_str(COLLATE_ITEMS).unwrap();
    let s = run(&p, "gather.run", json!({ "items": items })).await;
    assert!(job_error(&s).is_null(), "{s}");
    assert_eq!(s["data"]["r0"], json!({"twice": 2}), "{s}");
    assert_eq!(s["data"]["r1"], 1, "{s}");
    assert_eq!(s["data"]["r2"], json!({"twice": 4}), "{s}");
}

#[tokio::test]
async fn durable_graph_collates_several_steps_then_reenters_and_completes() {
    let p = db().await;
    install(&p, GATHER, "gather", "1").await;
    let _w = replay_setup(&p).await;
    let _g = serve(&p, "gather.call", |m| {
        Reply::Ok(json!({ "twice": m.data["item"]["n"].as_i64().unwrap() * 2 }))
    });
    let items: Value = serde_json::from_str(COLLATE_ITEMS).unwrap();
    let (s, m) = replay(
        &p,
        "replay-589",
        json!([{"kind": "collate", "items": items}]),
    )
    .await;
    assert_replayed(&p, "replay-589", &s, 1).await;
    let c = &m["-collate-0-"];
    assert_eq!(c["r0"], json!({"twice": 2}), "{m}");
    assert_eq!(c["r1"], 1, "{m}");
    assert_eq!(c["r2"], json!({"twice": 4}), "{m}");
}

// ---------------------------------------------------------------------------------------
// array functions the original's collator relies on (services/pipe/functions/array.ts)

async fn map(p: &PgPool, expr: Value, ctx: Value) -> Result<Option<Value>, String> {
    sqlx::query_scalar("SELECT hotmesh.map($1, $2)")
        .bind(expr)
        .bind(ctx)
        .fetch_one(p)
        .await
        .map_err(message)
}

#[tokio::test]
async fn array_get_of_undefined_or_null_is_undefined() {
    let p = db().await;
    let missing = json!({"@pipe": [["{$job.data.none}", 1], ["{@array.get}"]]});
    assert_eq!(map(&p, missing, json!({"data": {}})).await, Ok(None));
    let null = json!({"@pipe": [[null, 1], ["{@array.get}"]]});
    assert_eq!(map(&p, null, json!({})).await, Ok(None));
}

#[tokio::test]
async fn array_get_reads_index_0_by_default() {
    let p = db().await;
    let e = json!({"@pipe": [["{$job.data.list}"], ["{@array.get}"]]});
    let got = map(&p, e, json!({"data": {"list": ["a", "b"]}})).await;
    assert_eq!(got, Ok(Some(json!("a"))));
}

#[tokio::test]
async fn array_push_returns_the_array() {
    let p = db().await;
    let e = json!({"@pipe": [["{$job.data.list}", "c"], ["{@array.push}"]]});
    let got = map(&p, e, json!({"data": {"list": ["a", "b"]}})).await;
    assert_eq!(got, Ok(Some(json!(["a", "b", "c"]))));
}

#[tokio::test]
async fn array_sort_compares_strings_by_locale_with_null_first() {
    let p = db().await;
    let ctx = json!({"data": {"list": ["banana", null, "Cherry", "apple"]}});
    let asc = json!({"@pipe": [["{$job.data.list}"], ["{@array.sort}"]]});
    assert_eq!(
        map(&p, asc, ctx.clone()).await,
        Ok(Some(json!([null, "apple", "banana", "Cherry"])))
    );
    let desc = json!({"@pipe": [["{$job.data.list}", "DESCENDING"], ["{@array.sort}"]]});
    assert_eq!(
        map(&p, desc, ctx).await,
        Ok(Some(json!(["Cherry", "banana", "apple", null])))
    );
}

// ---------------------------------------------------------------------------------------
// the original's own `durable` app (its MeshFlow graph, version 12), unchanged

const DURABLE: &str = include_str!("../compat/durable_original.yaml");

#[tokio::test]
async fn the_originals_durable_app_deploys_activates_and_runs_a_collation_unchanged() {
    let p = db().await;
    install(&p, DURABLE, "durable", "12").await;
    // the workflow function asks for two activities at once (Promise.all: 589), then ends
    let _wf = serve(&p, "dq", |m| {
        if m.marks.get("-proxy-0-").is_some() {
            let r = json!([m.marks["-proxy-0-"]["data"], m.marks["-proxy-1-"]["data"]]);
            return Reply::Ok(json!({"response": r}));
        }
        let item = |i: u32| json!({"code": 591, "activityName": "act", "arguments": [i], "workflowDimension": "", "index": i, "originJobId": "dwf", "parentWorkflowId": "dwf", "workflowId": format!("dwf-a{i}"), "workflowTopic": "dq-activity"});
        Reply::Code(
            589,
            json!({"items": [item(0), item(1)], "size": 2, "workflowId": "-dwf-$-0", "originJobId": "dwf", "index": 0, "workflowDimension": ""}),
        )
    });
    let _acts = serve(&p, "dq-activity", |m| {
        Reply::Ok(json!({"response": format!("r{}", m.data["arguments"][0])}))
    });
    try_publish(
        &p,
        "durable.execute",
        json!({"workflowId": "dwf", "originJobId": "dwf", "taskQueue": "dq", "workflowName": "wf",
               "workflowTopic": "dq-wf", "arguments": [1], "signalIn": false}),
        json!({}),
    )
    .await
    .unwrap();
    let s = finished(&p, "dwf").await;
    assert_eq!(s["data"]["done"], true, "{s}");
    assert_eq!(s["data"]["response"], json!(["r0", "r1"]), "{s}");
}
