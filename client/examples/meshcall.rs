//! MeshCall, the seeds' examples in Rust: connect a function, call it, call it cached,
//! flush the cache, start an idempotent cron and cancel it. Then it measures a call's
//! round trip, cached and not.
//! `HOTMESH_DATABASE_URL=postgres://postgres@127.0.0.1:28815/hotmesh cargo run -p hotmesh-client --example meshcall`

use hotmesh_client::meshcall::{CallOptions, CronOptions, MeshCall};
use hotmesh_client::meshflow::Connection;
use hotmesh_client::{Error, WorkerError};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static CRON_RUNS: AtomicU32 = AtomicU32::new(0);

/// The linked function: any JSON in, any JSON out.
async fn my_function(input: String) -> Result<Value, WorkerError> {
    Ok(json!({ "hello": input }))
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("HOTMESH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:28815/hotmesh".into());
    let mc = MeshCall::new(Connection::new(url)).await?;

    // connect: link the function to a topic (at server start-up)
    mc.connect("my.demo.function", my_function).await?;

    // exec: call it from anywhere (here, the same process)
    let r: Value = mc
        .exec("my.demo.function", "something", CallOptions::new())
        .await?;
    println!("exec: {r}");
    assert_eq!(r, json!({"hello": "something"}));

    // exec with an id and a ttl: cached until the ttl runs out
    let id = format!("myid-{}", hotmesh_client::guid());
    let cached = CallOptions::new().id(&id).ttl("15 minutes");
    let r: Value = mc
        .exec("my.demo.function", "anything", cached.clone())
        .await?;
    let again: Value = mc
        .exec("my.demo.function", "ignored", cached.clone())
        .await?;
    println!("cached exec: {r}, then {again} (from the cache)");
    assert_eq!(again, json!({"hello": "anything"}));

    // flush: forget it
    mc.flush("my.demo.function", &id).await?;
    let fresh: Value = mc.exec("my.demo.function", "fresh", cached).await?;
    assert_eq!(fresh, json!({"hello": "fresh"}));

    // cron: idempotent; a second start with the same id is false
    mc.connect("my.cron.function", |_: Value| async {
        CRON_RUNS.fetch_add(1, Ordering::SeqCst);
        Ok::<_, WorkerError>(json!({}))
    })
    .await?;
    let cron_id = format!("myNightlyCron-{}", hotmesh_client::guid());
    let nightly = CronOptions::every("0 0 * * *").max_cycles(24);
    assert!(
        mc.cron("my.cron.function", &cron_id, json!({}), nightly.clone())
            .await?
    );
    assert!(
        !mc.cron("my.cron.function", &cron_id, json!({}), nightly)
            .await?
    );
    // a quick one: every 200 ms, 3 runs
    let quick = format!("quick-{}", hotmesh_client::guid());
    mc.cron(
        "my.cron.function",
        &quick,
        json!({}),
        CronOptions::every("200ms").max_cycles(3),
    )
    .await?;
    // interrupt: cancel the nightly one
    assert!(mc.interrupt("my.cron.function", &cron_id).await?);
    let t = Instant::now();
    while CRON_RUNS.load(Ordering::SeqCst) < 3 && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "cron: {} runs of the quick one; the nightly one cancelled",
        CRON_RUNS.load(Ordering::SeqCst)
    );
    assert_eq!(CRON_RUNS.load(Ordering::SeqCst), 3);

    // round trips: 200 calls, then 200 cached reads
    let mut plain = vec![];
    for i in 0..200 {
        let t = Instant::now();
        let _: Value = mc
            .exec("my.demo.function", i.to_string(), CallOptions::new())
            .await?;
        plain.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let hot = CallOptions::new()
        .id(format!("hot-{}", hotmesh_client::guid()))
        .ttl("1 hour");
    let _: Value = mc.exec("my.demo.function", "x", hot.clone()).await?;
    let mut cached = vec![];
    for _ in 0..200 {
        let t = Instant::now();
        let _: Value = mc.exec("my.demo.function", "x", hot.clone()).await?;
        cached.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "exec round trip, 200 calls: p50 {:.2} ms, p99 {:.2} ms; cached: p50 {:.2} ms, p99 {:.2} ms",
        pct(&mut plain, 0.5),
        pct(&mut plain, 0.99),
        pct(&mut cached, 0.5),
        pct(&mut cached, 0.99)
    );

    // cron lateness: a cron every 250 ms, 40 runs; each run's start against the previous
    // one's plus the interval (the next wait starts when a run has been counted)
    let times = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
    let seen = times.clone();
    mc.connect("my.timed.function", move |_: Value| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(Instant::now());
            Ok::<_, WorkerError>(json!({}))
        }
    })
    .await?;
    let timed = format!("timed-{}", hotmesh_client::guid());
    mc.cron(
        "my.timed.function",
        &timed,
        json!({}),
        CronOptions::every("250ms").max_cycles(40),
    )
    .await?;
    let t = Instant::now();
    while times.lock().unwrap().len() < 40 && t.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let runs = times.lock().unwrap().clone();
    let mut late: Vec<f64> = runs
        .windows(2)
        .map(|w| ((w[1] - w[0]).as_secs_f64() - 0.25) * 1000.0)
        .collect();
    println!(
        "cron every 250 ms, {} runs: start after the previous one's plus 250 ms, p50 {:.1} ms, p99 {:.1} ms later",
        runs.len(),
        pct(&mut late, 0.5),
        pct(&mut late, 0.99)
    );
    mc.stop().await;
    Ok(())
}
