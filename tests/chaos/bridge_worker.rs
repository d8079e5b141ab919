//! `hotmesh-bridge-worker`: a worker process on Redis or NATS, for the bridge's chaos
//! tests (tests/e2e/bridge.rs), which SIGKILL it while its callbacks run. It has to be a
//! process of its own: a killed task would let its process finish the answers it started,
//! a killed process leaves its deliveries unacknowledged on the transport, as a crash does.
//!
//! ```text
//! hotmesh-bridge-worker <app> <topic> <postgres url> <redis:// or nats:// url>
//! ```
//!
//! Runs the client's own worker of `topic` on the transport (`Config::stream_url`). Each
//! callback first records itself in the table `ledger` (job, activity, this process's pid,
//! the message's deliveries), so the test sees which callbacks ran where and which
//! deliveries were repeated; then it works `BRIDGE_WORK_MS` (default 200) and answers
//! `{n: n + 1}`. Settings: `BRIDGE_CONCURRENCY` (8), `BRIDGE_RESERVATION_MS` (2000: the
//! transport's claim_after, after which a dead process's messages come again).
//!
//! Prints `ready` once its worker runs. Stops (gracefully) when its stdin closes, so a test
//! that dies takes it along.

use hotmesh_client::{Config, HotMesh, Outcome, Worker};
use serde_json::json;
use std::time::Duration;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [app, topic, url, stream_url] = &args[..] else {
        eprintln!("usage: hotmesh-bridge-worker <app> <topic> <postgres url> <stream url>");
        std::process::exit(2);
    };
    let work = Duration::from_millis(env_or("BRIDGE_WORK_MS", 200));
    let concurrency = env_or("BRIDGE_CONCURRENCY", 8) as usize;
    let reservation = Duration::from_millis(env_or("BRIDGE_RESERVATION_MS", 2000));
    let ledger = sqlx::postgres::PgPoolOptions::new()
        .max_connections(concurrency as u32)
        .connect(url)
        .await
        .expect("the ledger's database");
    let pid = std::process::id() as i32;
    let worker = Worker::new(topic.clone(), move |m| {
        let ledger = ledger.clone();
        async move {
            // recorded before the work: a callback the kill cuts short is in the ledger
            if let Err(e) = sqlx::query(
                "INSERT INTO ledger (job_id, activity_id, pid, deliveries) VALUES ($1, $2, $3, $4)",
            )
            .bind(&m.job_id)
            .bind(&m.activity_id)
            .bind(pid)
            .bind(m.deliveries)
            .execute(&ledger)
            .await
            {
                return Outcome::retry_after(
                    Duration::from_millis(100),
                    json!({"ledger": e.to_string()}),
                );
            }
            tokio::time::sleep(work).await;
            let n = m.data["n"].as_i64().unwrap_or(0);
            Outcome::success(json!({"n": n + 1}))
        }
    })
    .concurrency(concurrency)
    .reservation(reservation);
    let workers = HotMesh::init(
        Config::new(app.clone(), url.clone())
            .stream_url(stream_url.clone())
            .worker(worker),
    )
    .await
    .expect("the worker on the transport");
    println!("ready");

    let (closed, on_close) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = closed.send(());
    });
    let _ = on_close.await;
    workers.stop().await;
}
