//! The quorum: the live processes of an app (roll call), throttles that are in force when
//! they return, and messages to and from every process of the app. The app is
//! `apps/payments.yaml` (beside this file).
//! `HOTMESH_DATABASE_URL=postgres://postgres@127.0.0.1:28815/hotmesh cargo run -p hotmesh-client --example quorum`

use hotmesh_client::{Config, Error, HotMesh, Outcome, PubOptions, Throttle, Worker};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("HOTMESH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:28815/hotmesh".into());
    let worker = Worker::new("payments.charge", |m| async move {
        Outcome::success(json!({"receipt": "r", "charged": m.data["amount"]}))
    });
    let workers = HotMesh::init(Config::new("payments", &url).worker(worker)).await?;
    let admin = HotMesh::init(Config::new("payments", &url)).await?;
    admin.deploy(include_str!("apps/payments.yaml")).await?;
    admin.activate("1").await?;

    // messages to every process of the app
    admin
        .sub_quorum(|m| {
            if m["type"] == "user" {
                println!("heard on the quorum: {m}");
            }
        })
        .await?;
    workers
        .pub_quorum(json!({"type": "user", "note": "cache flushed"}))
        .await?;

    // a throttle: 300 ms between messages, in force when the call returns
    let confirmed = admin
        .throttle(Throttle::delay(Duration::from_millis(300)).topic("payments.charge"))
        .await?;
    println!("throttled; {confirmed} worker(s) confirmed");
    assert_eq!(confirmed, 1, "the one worker of payments.charge");
    let t0 = Instant::now();
    let mut jobs = vec![];
    for n in 0..3 {
        jobs.push(
            admin
                .publish(
                    "payments.start",
                    json!({"amount": n, "card": "4242"}),
                    PubOptions::new(),
                )
                .await?,
        );
    }
    for j in &jobs {
        j.result(Duration::from_secs(10)).await?;
    }
    println!(
        "3 payments under the throttle took {} ms",
        t0.elapsed().as_millis()
    );
    admin.throttle(Throttle::resume()).await?;

    // the roll call: live counts (every process beats when asked)
    for p in admin.roll_call(Duration::from_secs(30)).await? {
        println!(
            "  {:<6} {:<16} processed {} throttle {}",
            p.role,
            p.topic.unwrap_or_default(),
            p.processed,
            p.throttle
        );
    }
    workers.stop().await;
    admin.stop().await;
    Ok(())
}
