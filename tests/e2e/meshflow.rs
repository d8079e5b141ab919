//! MeshFlow against a real cluster: durable workflow functions with activities, sleeps,
//! signals, children, joins, search fields and continue-as-new; retries and their typed
//! errors; the determinism check; workers killed mid-run.

use hotmesh_client::meshflow::{
    join_all, ActivityOptions, ChildOptions, Client, Connection, Context, StartOptions, Worker,
    WorkflowError,
};
use hotmesh_client::{Error, RetryPolicy, WorkerError};
use hotmesh_tests::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const DB: &str = "e2e_meshflow";

async fn setup(db: &str) -> Connection {
    fresh_database(db).await;
    exec(db, "CREATE EXTENSION hotmesh").await;
    Connection::new(url_for(db))
}

async fn greet(name: String) -> Result<String, WorkerError> {
    Ok(format!("Hello, {name}!"))
}

async fn hello(ctx: Context, name: String) -> Result<Value, WorkflowError> {
    let a: String = ctx.activity("greet", &name).await?;
    ctx.sleep_for("1 second").await?;
    let b: String = ctx.activity("greet", "again").await?;
    Ok(json!([a, b]))
}

#[tokio::test]
async fn a_workflow_runs_its_activities_and_sleeps_then_returns() {
    let c = setup(DB).await;
    let w = Worker::create(c.clone(), "hello")
        .workflow("hello", hello)
        .activity("greet", greet)
        .run()
        .await
        .unwrap();
    let client = Client::new(c).await.unwrap();
    let started = std::time::Instant::now();
    let h = client
        .workflow()
        .start(
            StartOptions::new("hello", "hello")
                .args("ColdMush")
                .workflow_id("hello-1"),
        )
        .await
        .unwrap();
    let out: Value = h.result(WAIT).await.unwrap();
    assert_eq!(out, json!(["Hello, ColdMush!", "Hello, again!"]));
    assert!(started.elapsed() >= Duration::from_secs(1), "slept");
    let journal = h.marks().await.unwrap();
    assert_eq!(journal["-proxy-1-"]["d"], "Hello, ColdMush!", "{journal}");
    assert_eq!(journal["-sleep-2-"]["k"], "sleep", "{journal}");
    assert_eq!(journal["-proxy-3-"]["n"], "greet", "{journal}");
    // the same as rows of hotmesh.journal, in order
    let rows = h.journal().await.unwrap();
    let seen: Vec<_> = rows.iter().map(|e| (e.index, e.kind.as_str())).collect();
    assert_eq!(seen, [(1, "proxy"), (2, "sleep"), (3, "proxy")]);
    assert_eq!(rows[2].name.as_deref(), Some("greet"));
    // a sleep's name is its length in seconds
    assert_eq!(
        rows[1].name.as_deref().map(|n| n.parse::<f64>().unwrap()),
        Some(1.0)
    );
    assert_eq!(rows[0].result, json!("Hello, ColdMush!"));
    assert!(rows
        .iter()
        .all(|e| e.recorded_at.is_some() && e.error.is_none()));
    w.stop().await;
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Approval {
    by: String,
}

async fn approve(ctx: Context, order: u32) -> Result<Value, WorkflowError> {
    let id = ctx.workflow_id();
    let first: Approval = ctx.wait_for(&format!("{id}-approve")).await?;
    // a wait that times out, then one that does not
    let none: Option<Approval> = ctx
        .wait_for_timeout(&format!("{id}-never"), Duration::from_millis(300))
        .await?;
    let late: Option<Approval> = ctx
        .wait_for_timeout(&format!("{id}-late"), "1 minute")
        .await?;
    Ok(
        json!({"order": order, "first": first.by, "none": none.is_none(), "late": late.map(|a| a.by)}),
    )
}

#[tokio::test]
async fn signals_wake_waits_and_a_timeout_wins_when_none_comes() {
    let c = setup(DB).await;
    let w = Worker::create(c.clone(), "signals")
        .workflow("approve", approve)
        .run()
        .await
        .unwrap();
    let client = Client::new(c).await.unwrap();
    let h = client
        .workflow()
        .start(
            StartOptions::new("signals", "approve")
                .args(7)
                .workflow_id("order-7"),
        )
        .await
        .unwrap();
    // the late signal comes before its wait began: it is kept and delivered
    client
        .signal("order-7-late", Approval { by: "bo".into() })
        .await
        .unwrap();
    eventually(10, "the first wait", || async {
        let j = h.state().await.unwrap();
        (j.status() > 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    client
        .signal("order-7-approve", Approval { by: "ann".into() })
        .await
        .unwrap();
    let out: Value = h.result(WAIT).await.unwrap();
    assert_eq!(
        out,
        json!({"order": 7, "first": "ann", "none": true, "late": "bo"})
    );
    w.stop().await;
}

async fn ship(_ctx: Context, n: u32) -> Result<String, WorkflowError> {
    Ok(format!("shipped {n}"))
}

async fn parent(ctx: Context, n: u32) -> Result<Value, WorkflowError> {
    let r: String = ctx.execute_child(ChildOptions::new("ship").args(n)).await?;
    let id = ctx
        .start_child(
            ChildOptions::new("ship")
                .args(n + 1)
                .workflow_id(format!("{}-bg", ctx.workflow_id())),
        )
        .await?;
    Ok(json!({"child": r, "started": id}))
}

#[tokio::test]
async fn children_run_awaited_or_started_and_the_started_one_finishes_too() {
    let c = setup(DB).await;
    let w = Worker::create(c.clone(), "kids")
        .workflow("parent", parent)
        .workflow("ship", ship)
        .run()
        .await
        .unwrap();
    let client = Client::new(c).await.unwrap();
    let out: Value = client
        .workflow()
        .execute(
            StartOptions::new("kids", "parent")
                .args(1)
                .workflow_id("p1"),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(out, json!({"child": "shipped 1", "started": "p1-bg"}));
    let bg: String = client
        .workflow()
        .get_handle("kids", "ship", "p1-bg")
        .result(WAIT)
        .await
        .unwrap();
    assert_eq!(bg, "shipped 2");
    // the awaited child's id is the parent's, its name and its index: stable on replay
    let child = client.workflow().get_handle("kids", "ship", "p1-ship-1");
    assert_eq!(child.result::<String>(WAIT).await.unwrap(), "shipped 1");
    w.stop().await;
}

async fn square(n: i64) -> Result<i64, WorkerError> {
    Ok(n * n)
}

async fn fan(ctx: Context, n: i64) -> Result<Value, WorkflowError> {
    // activities at once: each result in call order
    let calls: Vec<_> = (1..=n).map(|i| ctx.activity::<i64>("square", i)).collect();
    let squares: Vec<i64> = join_all(calls)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    // signals at once, in any arrival order
    let id = ctx.workflow_id();
    let waits: Vec<_> = (0..25)
        .map(|i| ctx.wait_for::<u32>(&format!("{id}-s{i}")))
        .collect();
    let got: Vec<u32> = join_all(waits)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(json!({"squares": squares, "signals": got}))
}

#[tokio::test]
async fn activities_and_25_signals_joined_run_at_once_and_return_in_call_order() {
    let c = setup(DB).await;
    let w = Worker::create(c.clone(), "fan")
        .workflow("fan", fan)
        .activity("square", square)
        .run()
        .await
        .unwrap();
    let client = Client::new(c).await.unwrap();
    let h = client
        .workflow()
        .start(StartOptions::new("fan", "fan").args(5).workflow_id("fan-1"))
        .await
        .unwrap();
    // the signals go out in reverse order, some before their waits began
    for i in (0..25).rev() {
        client.signal(&format!("fan-1-s{i}"), i).await.unwrap();
    }
    let out: Value = h.result(WAIT).await.unwrap();
    assert_eq!(out["squares"], json!([1, 4, 9, 16, 25]));
    assert_eq!(out["signals"], json!((0..25).collect::<Vec<u32>>()));
    // the five activities were one collation: one mark with five entries
    let j = h.marks().await.unwrap();
    assert_eq!(j["-collate-1-"]["d"]["r4"]["d"], 25, "{j}");
    // hotmesh.journal gives each item of the join its own row
    let rows: Vec<(i32, String, Value)> = sqlx::query_as(
        "SELECT index, kind, result FROM hotmesh.journal WHERE job_id = 'fan-1' AND kind = 'proxy' ORDER BY index",
    )
    .fetch_all(client.hotmesh().pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        (1..=5)
            .map(|i| (i, "proxy".to_string(), json!(i * i)))
            .collect::<Vec<_>>()
    );
    let waits: i64 = scalar(
        DB,
        "SELECT count(*) FROM hotmesh.journal WHERE job_id = 'fan-1' AND kind = 'wait'",
    )
    .await;
    assert_eq!(waits, 25);
    w.stop().await;
}

async fn counter(ctx: Context, rounds: u32) -> Result<Value, WorkflowError> {
    let s = ctx.search();
    if ctx.generation() == 0 {
        s.set("customer", "ann");
    }
    let total = s.incr("visits", 1.0);
    let r = ctx.random();
    let u = ctx.uuid();
    // written once (the first run); a replay's random() must be the same number
    s.set(&format!("r{}", ctx.generation()), r);
    // a sleep in between: the next run replays the three calls above
    ctx.sleep_for(Duration::from_millis(50)).await?;
    assert_eq!(
        s.get("visits").as_f64(),
        Some(total),
        "a replay reads what the run read"
    );
    if ctx.generation() + 1 < rounds {
        return ctx.continue_as_new(rounds).await;
    }
    Ok(
        json!({"visits": total, "generation": ctx.generation(), "random": r, "uuid": u,
              "now": ctx.now().timestamp_millis()}),
    )
}

#[tokio::test]
async fn search_fields_count_once_per_run_and_continue_as_new_starts_a_fresh_journal() {
    let db = DB;
    let c = setup(db).await;
    let w = Worker::create(c.clone(), "count")
        .workflow("counter", counter)
        .run()
        .await
        .unwrap();
    let client = Client::new(c).await.unwrap();
    let run = |id: &'static str| {
        let client = client.clone();
        async move {
            client
                .workflow()
                .execute::<Value>(
                    StartOptions::new("count", "counter")
                        .args(3)
                        .workflow_id(id),
                    WAIT,
                )
                .await
                .unwrap()
        }
    };
    let a = run("count-a").await;
    let b = run("count-b").await;
    // incremented once per generation, though each generation's function ran twice
    assert_eq!(a["visits"], 3.0, "{a}");
    assert_eq!(a["generation"], 2);
    // different per workflow, in [0, 1), a v4 uuid
    assert_ne!(a["random"], b["random"]);
    assert_ne!(a["uuid"], b["uuid"]);
    let r = a["random"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&r));
    assert_eq!(a["uuid"].as_str().unwrap().len(), 36);
    assert_eq!(&a["uuid"].as_str().unwrap()[14..15], "4");
    // the search fields are the job's, readable in SQL
    let fields: Value = scalar(db, "SELECT search FROM hotmesh.jobs WHERE id = 'count-a'").await;
    assert_eq!(fields["customer"], "ann");
    assert_eq!(fields["visits"], 3);
    // random() is the same on replay: the first run's (written) and the last run's (returned)
    assert_eq!(fields["r2"], a["random"], "{fields}");
    // now() is a recorded time, not later than the workflow's end
    let ended: i64 = scalar(
        db,
        "SELECT (extract(epoch FROM updated_at) * 1000)::int8 FROM hotmesh.jobs WHERE id = 'count-a'",
    )
    .await;
    assert!(a["now"].as_i64().unwrap() <= ended + 1, "{a}");
    w.stop().await;
}

async fn flaky(n: u32) -> Result<u32, WorkerError> {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    if n == 0 {
        return Err(WorkerError::fatal(451, "refused for good"));
    }
    let c = CALLS.fetch_add(1, Ordering::SeqCst);
    if n == 99 {
        return Err(WorkerError::retryable("always down"));
    }
    if c % 3 != 2 {
        return Err(WorkerError::retryable(format!("down on call {c}")));
    }
    Ok(n)
}

async fn slow(ms: u64) -> Result<u64, WorkerError> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(ms)
}

async fn retries(ctx: Context, _: Value) -> Result<Value, WorkflowError> {
    let quick = RetryPolicy::new(3)
        .backoff_coefficient(1.0)
        .initial_interval(Duration::from_millis(50))
        .maximum_interval(Duration::from_millis(50));
    let acts = ctx.proxy_activities(ActivityOptions::new().retry(quick.clone()));
    // fails twice, then answers
    let ok: u32 = acts.call("flaky", 7).await?;
    // never answers: three attempts, then a 597 the workflow catches
    let maxed = acts.call::<u32>("flaky", 99).await.unwrap_err();
    // a fatal error is not retried
    let fatal = acts.call::<u32>("flaky", 0).await.unwrap_err();
    // past its start-to-close timeout on every attempt: 596
    let late = ctx
        .activity::<u64>("slow", 2_000)
        .retry(
            RetryPolicy::new(2)
                .initial_interval(Duration::from_millis(50))
                .maximum_interval(Duration::from_millis(50)),
        )
        .start_to_close(Duration::from_millis(100))
        .await
        .unwrap_err();
    Ok(
        json!({"ok": ok, "maxed": [maxed.code, maxed.is_maxed()], "fatal": [fatal.code, fatal.message],
              "late": [late.code, late.is_timeout()]}),
    )
}

#[tokio::test]
async fn activities_retry_by_their_policy_and_failures_reach_the_workflow_typed() {
    let c = setup(DB).await;
    let w = Worker::create(c.clone(), "retry")
        .workflow("retries", retries)
        .activity("flaky", flaky)
        .activity("slow", slow)
        .run()
        .await
        .unwrap();
    let client = Client::new(c).await.unwrap();
    let out: Value = client
        .workflow()
        .execute(
            StartOptions::new("retry", "retries").workflow_id("r1"),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(out["ok"], 7);
    assert_eq!(out["maxed"], json!([597, true]));
    assert_eq!(out["fatal"], json!([451, "refused for good"]));
    assert_eq!(out["late"], json!([596, true]));
    w.stop().await;
}

async fn fails(ctx: Context, how: String) -> Result<u32, WorkflowError> {
    if how == "unknown" {
        let _: u32 = ctx.activity("nobody", 0).await?;
    }
    if how == "activity" {
        // an activity error not caught ends the workflow with its code
        let _: u32 = ctx.activity("flaky", 0).retry(RetryPolicy::new(1)).await?;
    }
    Err(WorkflowError::fatal(format!("gave up: {how}")))
}

#[tokio::test]
async fn a_failed_workflow_is_a_typed_error_with_its_code_and_message() {
    let c = setup(DB).await;
    let w = Worker::create(c.clone(), "fail")
        .workflow("fails", fails)
        .activity("flaky", flaky)
        .workflow_retry(RetryPolicy::new(1))
        .run()
        .await
        .unwrap();
    let client = Client::new(c).await.unwrap();
    let e = client
        .workflow()
        .execute::<u32>(StartOptions::new("fail", "fails").args("plain"), WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Job { code: 598, message, .. } if message == "gave up: plain"),
        "{e:?}"
    );
    let e = client
        .workflow()
        .execute::<u32>(StartOptions::new("fail", "fails").args("activity"), WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Job { code: 451, message, .. } if message == "refused for good"),
        "{e:?}"
    );
    // an activity no worker of the queue knows: the worker's policy (one attempt here),
    // then the workflow fails with it
    let e = client
        .workflow()
        .execute::<u32>(StartOptions::new("fail", "fails").args("unknown"), WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Job { code: 599, message, .. } if message.contains("no activity named 'nobody'")),
        "{e:?}"
    );
    w.stop().await;
}

async fn waits(ctx: Context, _: Value) -> Result<String, WorkflowError> {
    let id = ctx.workflow_id();
    ctx.wait_for::<Value>(&format!("{id}-go")).await?;
    Ok("done".into())
}

#[tokio::test]
async fn a_live_id_is_a_duplicate_or_attaches_and_a_workflow_can_be_interrupted() {
    let c = setup(DB).await;
    let w = Worker::create(c.clone(), "dup")
        .workflow("waits", waits)
        .run()
        .await
        .unwrap();
    let client = Client::new(c).await.unwrap();
    let start = || StartOptions::new("dup", "waits").workflow_id("d1");
    let h = client.workflow().start(start()).await.unwrap();
    let e = client.workflow().start(start()).await.unwrap_err();
    assert!(
        matches!(&e, Error::Duplicate { job_id } if job_id == "d1"),
        "{e:?}"
    );
    assert_eq!(e.code(), 409);
    let same = client
        .workflow()
        .start(start().attach_if_running())
        .await
        .unwrap();
    assert_eq!(same.workflow_id(), "d1");
    client.signal("d1-go", json!({})).await.unwrap();
    assert_eq!(same.result::<String>(WAIT).await.unwrap(), "done");
    assert_eq!(h.status().await.unwrap(), 0);
    // interrupt a waiting one
    let h2 = client
        .workflow()
        .start(StartOptions::new("dup", "waits").workflow_id("d2"))
        .await
        .unwrap();
    eventually(10, "d2 waiting", || async {
        (h2.marks().await.is_ok() && h2.status().await.unwrap() > 0).then_some(())
    })
    .await;
    assert!(h2.interrupt(json!({"reason": "not needed"})).await.unwrap());
    let e = h2.result::<String>(WAIT).await.unwrap_err();
    assert_eq!(e.code(), 410, "{e:?}");
    w.stop().await;
}

async fn step(n: u32) -> Result<u32, WorkerError> {
    Ok(n)
}

/// Version 1: an activity, then a wait.
async fn drift_v1(ctx: Context, _: Value) -> Result<u32, WorkflowError> {
    let n: u32 = ctx.activity("step", 1).await?;
    ctx.wait_for::<Value>(&format!("{}-go", ctx.workflow_id()))
        .await?;
    Ok(n)
}

/// Version 2 changed the code under the running workflow: a sleep first.
async fn drift_v2(ctx: Context, _: Value) -> Result<u32, WorkflowError> {
    ctx.sleep_for("1 second").await?;
    let n: u32 = ctx.activity("step", 1).await?;
    ctx.wait_for::<Value>(&format!("{}-go", ctx.workflow_id()))
        .await?;
    Ok(n)
}

/// Version 3 is compatible: the same operations, more code after them.
async fn drift_v3(ctx: Context, _: Value) -> Result<u32, WorkflowError> {
    let n: u32 = ctx.activity("step", 1).await?;
    ctx.wait_for::<Value>(&format!("{}-go", ctx.workflow_id()))
        .await?;
    let m: u32 = ctx.activity("step", 2).await?;
    Ok(n + m)
}

#[tokio::test]
async fn replayed_code_that_asks_for_another_operation_stops_with_a_typed_error() {
    let c = setup(DB).await;
    let client = Client::new(c.clone()).await.unwrap();
    let w1 = Worker::create(c.clone(), "drift")
        .workflow("drift", drift_v1)
        .activity("step", step)
        .run()
        .await
        .unwrap();
    for id in ["drift-a", "drift-b"] {
        client
            .workflow()
            .start(StartOptions::new("drift", "drift").workflow_id(id))
            .await
            .unwrap();
    }
    // both recorded the activity and wait for their signal (the run after the activity
    // registered the wait): nothing of theirs is left for a worker to run
    for id in ["drift-a", "drift-b"] {
        eventually(
            10,
            "the activity recorded and the wait registered",
            || async {
                let n: i64 = scalar(
                    DB,
                    &format!("SELECT count(*) FROM hotmesh.signal_hooks WHERE job_id = '{id}'"),
                )
                .await;
                (n > 0).then_some(())
            },
        )
        .await;
    }
    w1.stop().await;
    // a new build of the worker with changed code: drift-a replays into it
    let w2 = Worker::create(c.clone(), "drift")
        .workflow("drift", drift_v2)
        .activity("step", step)
        .run()
        .await
        .unwrap();
    client.signal("drift-a-go", json!({})).await.unwrap();
    let e = client
        .workflow()
        .get_handle("drift", "drift", "drift-a")
        .result::<u32>(WAIT)
        .await
        .unwrap_err();
    match &e {
        Error::NonDeterminism {
            index,
            recorded,
            current,
            ..
        } => {
            assert_eq!(
                (*index, recorded.as_str(), current.as_str()),
                (1, "proxy 'step'", "sleep")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.code(), 593);
    // visible in one query
    let (code, message): (i32, String) = {
        let v: Value = scalar(DB, "SELECT error FROM hotmesh.jobs WHERE id = 'drift-a'").await;
        (
            v["code"].as_i64().unwrap() as i32,
            v["message"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(code, 593);
    assert!(
        message.contains("recorded proxy 'step'") && message.contains("asks for sleep"),
        "{message}"
    );
    w2.stop().await;
    // a compatible build goes on where drift-b stopped
    let w3 = Worker::create(c.clone(), "drift")
        .workflow("drift", drift_v3)
        .activity("step", step)
        .run()
        .await
        .unwrap();
    client.signal("drift-b-go", json!({})).await.unwrap();
    let n: u32 = client
        .workflow()
        .get_handle("drift", "drift", "drift-b")
        .result(WAIT)
        .await
        .unwrap();
    assert_eq!(n, 3);
    w3.stop().await;
}

static RECORDED: AtomicUsize = AtomicUsize::new(0);
static HUNG: AtomicUsize = AtomicUsize::new(0);

async fn record(n: u32) -> Result<u32, WorkerError> {
    RECORDED.fetch_add(1, Ordering::SeqCst);
    Ok(n)
}

async fn hang(n: u32) -> Result<u32, WorkerError> {
    if HUNG.fetch_add(1, Ordering::SeqCst) == 0 {
        // the first attempt never ends: its worker is killed meanwhile
        std::future::pending::<()>().await;
    }
    Ok(n)
}

async fn durable(ctx: Context, _: Value) -> Result<u32, WorkflowError> {
    let a: u32 = ctx.activity("record", 1).await?;
    ctx.sleep_for("2 seconds").await?;
    let b: u32 = ctx.activity("hang", 2).await?;
    ctx.sleep_for("1 second").await?;
    Ok(a + b)
}

/// A worker in a runtime of its own, on its own thread; killing it drops every task
/// and connection at once, as a killed process would (nothing released, no answer).
struct Doomed {
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Doomed {
    fn start(c: Connection) -> Doomed {
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let (up, is_up) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let _w = Worker::create(c, "durable")
                    .workflow("durable", durable)
                    .activity("record", record)
                    .activity("hang", hang)
                    .reservation(Duration::from_secs(2))
                    .run()
                    .await
                    .unwrap();
                up.send(()).unwrap();
                let _ = killed.await;
            });
            rt.shutdown_background();
        });
        is_up.recv().unwrap();
        Doomed {
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    fn kill(mut self) {
        let _ = self.kill.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap();
    }
}

#[tokio::test]
async fn a_workflow_survives_a_killed_worker_and_a_server_restart_and_runs_each_activity_once() {
    let c = setup(DB).await;
    let client = Client::new(c.clone()).await.unwrap();
    let doomed = Doomed::start(c.clone());
    let h = client
        .workflow()
        .start(StartOptions::new("durable", "durable").workflow_id("dur-1"))
        .await
        .unwrap();
    // killed during the first sleep
    eventually(10, "the first activity recorded", || async {
        h.marks().await.unwrap().get("-proxy-1-").map(|_| ())
    })
    .await;
    doomed.kill();
    // the server restarts while the workflow sleeps, with no worker anywhere
    cluster("restart", &[]);
    let doomed = Doomed::start(c.clone());
    // killed while the second activity runs (its first attempt hangs)
    eventually(20, "the hanging attempt", || async {
        (HUNG.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    doomed.kill();
    // a new worker takes over once the killed one's reservation lapses
    let w = Worker::create(c.clone(), "durable")
        .workflow("durable", durable)
        .activity("record", record)
        .activity("hang", hang)
        .reservation(Duration::from_secs(2))
        .run()
        .await
        .unwrap();
    let client = Client::new(c).await.unwrap();
    let n: u32 = client
        .workflow()
        .get_handle("durable", "durable", "dur-1")
        .result(WAIT)
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        RECORDED.load(Ordering::SeqCst),
        1,
        "recorded once, never run again"
    );
    assert_eq!(HUNG.load(Ordering::SeqCst), 2, "the lost attempt ran again");
    w.stop().await;
}

async fn slow_step(ms: u64) -> Result<u64, WorkerError> {
    SLOW_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(ms)
}

static SLOW_RUNS: AtomicUsize = AtomicUsize::new(0);

async fn elsewhere(ctx: Context, _: Value) -> Result<Value, WorkflowError> {
    // an activity of another task queue's workers, then a slow one of its own
    let a: String = ctx
        .proxy_activities(ActivityOptions::new().task_queue("greeters"))
        .call("greet", "there")
        .await?;
    let b: u64 = ctx.activity("slow_step", 800).await?;
    Ok(json!([a, b]))
}

#[tokio::test]
async fn a_workflow_is_a_job_throttled_stopped_exported_and_scrubbed_like_any() {
    let c = setup(DB).await;
    let greeters = Worker::create(c.clone(), "greeters")
        .activity("greet", greet)
        .run()
        .await
        .unwrap();
    let w = Worker::create(c.clone(), "main")
        .workflow("elsewhere", elsewhere)
        .activity("slow_step", slow_step)
        .run()
        .await
        .unwrap();
    let client = Client::new(c.clone()).await.unwrap();
    // a paused queue: the workflow does not start its run until resumed
    let confirmed = w
        .hotmesh()
        .throttle(hotmesh_client::Throttle::pause().topic("main"))
        .await
        .unwrap();
    assert!(confirmed >= 1, "the worker confirmed the pause");
    let h = client
        .workflow()
        .start(StartOptions::new("main", "elsewhere").workflow_id("else-1"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        h.marks().await.unwrap().as_object().unwrap().is_empty(),
        "paused"
    );
    w.hotmesh()
        .throttle(hotmesh_client::Throttle::resume().topic("main"))
        .await
        .unwrap();
    // stopped while its slow activity runs: the activity finishes in the grace period and
    // its answer is applied; a new worker finishes the workflow; the activity ran once
    eventually(10, "the slow activity running", || async {
        (SLOW_RUNS.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    w.stop().await;
    assert!(
        h.marks().await.unwrap().get("-proxy-2-").is_some(),
        "answered before the stop ended"
    );
    let w2 = Worker::create(c.clone(), "main")
        .workflow("elsewhere", elsewhere)
        .activity("slow_step", slow_step)
        .run()
        .await
        .unwrap();
    let out: Value = h.result(WAIT).await.unwrap();
    assert_eq!(out, json!(["Hello, there!", 800]));
    assert_eq!(SLOW_RUNS.load(Ordering::SeqCst), 1);
    // the job's own calls: export shows the journal; scrub removes it
    let export = h.export().await.unwrap();
    assert_eq!(
        export["marks"]["-proxy-1-"]["d"], "Hello, there!",
        "{export}"
    );
    assert_eq!(export["status"], 0);
    assert!(h.job().scrub().await.unwrap());
    assert_eq!(h.status().await.unwrap_err().code(), 404);
    w2.stop().await;
    greeters.stop().await;
}

async fn twins(ctx: Context, _: Value) -> Result<Value, WorkflowError> {
    let a = ctx
        .start_child(ChildOptions::new("waits").workflow_id("twin"))
        .await?;
    let b = ctx
        .start_child(ChildOptions::new("waits").workflow_id("twin"))
        .await?;
    Ok(json!([a, b]))
}

#[tokio::test]
async fn a_child_whose_id_a_live_workflow_has_fails_its_parent_and_nothing_loops() {
    let c = setup(DB).await;
    let w = Worker::create(c.clone(), "dup")
        .workflow("twins", twins)
        .workflow("waits", waits)
        .run()
        .await
        .unwrap();
    let client = Client::new(c).await.unwrap();
    let e = client
        .workflow()
        .execute::<Value>(StartOptions::new("dup", "twins").workflow_id("tw"), WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Job { message, .. } if message.contains("Duplicate job: twin")),
        "{e:?}"
    );
    // the first child runs on
    assert!(
        client
            .workflow()
            .get_handle("dup", "waits", "twin")
            .status()
            .await
            .unwrap()
            > 0
    );
    w.stop().await;
}
