//! Workers in Rust: a typed callback (its input and output are your types, `?` works),
//! a fatal error that is never retried, and a retry policy for activities whose YAML
//! has none. The app is `apps/payments.yaml` (beside this file).
//! `HOTMESH_DATABASE_URL=postgres://postgres@127.0.0.1:28815/hotmesh cargo run -p hotmesh-client --example workers`

use hotmesh_client::{Config, Error, HotMesh, PubOptions, RetryPolicy, Worker, WorkerError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[derive(Deserialize)]
struct Charge {
    amount: i64,
    card: String,
}

#[derive(Serialize, Deserialize)]
struct Receipt {
    receipt: String,
    charged: i64,
}

/// The bank declines card "0000" for good; card "flaky" fails twice, then works.
static FLAKY: AtomicU32 = AtomicU32::new(0);

async fn charge(c: Charge) -> Result<Receipt, WorkerError> {
    match c.card.as_str() {
        "0000" => return Err(WorkerError::fatal(402, "card declined").with("card", c.card)),
        "flaky" if FLAKY.fetch_add(1, Ordering::SeqCst) < 2 => {
            // any std error converts: retryable, code 500
            return Err(std::io::Error::other("the bank timed out").into());
        }
        _ => {}
    }
    Ok(Receipt {
        receipt: format!("r-{}", c.amount),
        charged: c.amount,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("HOTMESH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:28815/hotmesh".into());
    let worker = Worker::typed("payments.charge", charge)
        .concurrency(8)
        .retry(
            RetryPolicy::new(3)
                .initial_interval(Duration::from_millis(100))
                .backoff_coefficient(2.0),
        );
    let hm = HotMesh::init(Config::new("payments", &url).worker(worker)).await?;
    hm.deploy(include_str!("apps/payments.yaml")).await?;
    hm.activate("1").await?;

    for (amount, card) in [(25, "4242"), (40, "flaky"), (99, "0000")] {
        let job = hm
            .publish(
                "payments.start",
                json!({"amount": amount, "card": card}),
                PubOptions::new(),
            )
            .await?;
        match job.result_as::<Receipt>(Duration::from_secs(10)).await {
            Ok(r) => println!("card {card}: charged {} (receipt {})", r.charged, r.receipt),
            // the declined card is the one that must fail, and with its own code
            Err(e) if card == "0000" && e.code() == 402 => {
                println!("card {card}: failed with code {}: {e}", e.code())
            }
            Err(e) => return Err(e),
        }
    }
    println!(
        "the flaky card took {} attempts",
        FLAKY.load(Ordering::SeqCst)
    );
    hm.stop().await;
    Ok(())
}
