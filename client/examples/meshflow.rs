//! MeshFlow: a durable workflow function with activities (one retried until it works,
//! three joined), a signal with a timeout, a sleep and a child workflow. It measures what
//! one activity costs in write transactions.
//! `HOTMESH_DATABASE_URL=postgres://postgres@127.0.0.1:28815/hotmesh cargo run -p hotmesh-client --example meshflow`

use hotmesh_client::meshflow::{
    join_all, ActivityOptions, ChildOptions, Client, Connection, Context, StartOptions, Worker,
    WorkflowError,
};
use hotmesh_client::{Error, RetryPolicy, WorkerError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static BANK_CALLS: AtomicU32 = AtomicU32::new(0);

/// The bank fails twice, then answers.
async fn charge(amount: i64) -> Result<String, WorkerError> {
    if BANK_CALLS.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(std::io::Error::other("the bank timed out").into());
    }
    Ok(format!("receipt-{amount}"))
}

async fn label(box_no: u32) -> Result<String, WorkerError> {
    Ok(format!("label-{box_no}"))
}

async fn ship(ctx: Context, labels: Vec<String>) -> Result<String, WorkflowError> {
    ctx.sleep_for("200ms").await?;
    Ok(format!("shipped {} boxes", labels.len()))
}

async fn order(ctx: Context, amount: i64) -> Result<String, WorkflowError> {
    let pay = ctx.proxy_activities(
        ActivityOptions::new().retry(
            RetryPolicy::new(5)
                .backoff_coefficient(1.0)
                .initial_interval(Duration::from_millis(100))
                .maximum_interval(Duration::from_millis(100)),
        ),
    );
    let receipt: String = pay.call("charge", amount).await?;
    let approved: Option<bool> = ctx
        .wait_for_timeout(&format!("{}-approve", ctx.workflow_id()), "10 seconds")
        .await?;
    if approved != Some(true) {
        return Ok(format!("{receipt}, not approved"));
    }
    let labels: Vec<_> = (1..=3)
        .map(|i| ctx.activity::<String>("label", i))
        .collect();
    let labels: Vec<String> = join_all(labels)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let shipped: String = ctx
        .execute_child(ChildOptions::new("ship").args(&labels))
        .await?;
    ctx.search().set("state", "shipped");
    Ok(format!("{receipt}, {}, {shipped}", labels.join(" ")))
}

async fn noop(n: u32) -> Result<u32, WorkerError> {
    Ok(n)
}

/// Ten activities in a row: the cost of one, measured.
async fn chain(ctx: Context, n: u32) -> Result<u32, WorkflowError> {
    let mut sum = 0;
    for i in 0..n {
        sum += ctx.activity::<u32>("noop", i).await?;
    }
    Ok(sum)
}

/// Write transactions so far, cluster-wide: each one that writes takes a transaction id,
/// and the snapshot's xmax is the next to be given (reading it takes none).
async fn write_transactions(client: &Client) -> Result<i64, Error> {
    sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8")
        .fetch_one(client.hotmesh().pool())
        .await
        .map_err(Error::Sql)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("HOTMESH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:28815/hotmesh".into());
    let conn = Connection::new(url).namespace("shop");
    let worker = Worker::create(conn.clone(), "orders")
        .workflow("order", order)
        .workflow("ship", ship)
        .workflow("chain", chain)
        .activity("charge", charge)
        .activity("label", label)
        .activity("noop", noop)
        .run()
        .await?;
    let client = Client::new(conn).await?;

    let id = format!("order-{}", hotmesh_client::guid());
    let handle = client
        .workflow()
        .start(
            StartOptions::new("orders", "order")
                .args(25)
                .workflow_id(&id),
        )
        .await?;
    client.signal(&format!("{id}-approve"), true).await?;
    let out: String = handle.result(Duration::from_secs(30)).await?;
    println!("{id}: {out}");
    assert_eq!(out, "receipt-25, label-1 label-2 label-3, shipped 3 boxes");
    assert_eq!(
        BANK_CALLS.load(Ordering::SeqCst),
        3,
        "two failures, then a receipt"
    );
    let journal = handle.marks().await?;
    println!(
        "journal: {} marks, e.g. -proxy-1- = {}",
        journal.as_object().map_or(0, |m| m.len()),
        journal["-proxy-1-"]
    );

    // the cost of an activity in write transactions (commits that flush WAL): chains of
    // 10 and of 20 activities, one workflow at a time; the difference is 10 activities
    let mut cost = vec![];
    for n in [10u32, 20] {
        let before = write_transactions(&client).await?;
        let sum: u32 = client
            .workflow()
            .execute(
                StartOptions::new("orders", "chain")
                    .args(n)
                    .workflow_id(format!("{id}-chain-{n}")),
                Duration::from_secs(30),
            )
            .await?;
        assert_eq!(sum, (0..n).sum::<u32>());
        cost.push(write_transactions(&client).await? - before);
    }
    println!(
        "write transactions: {} for a workflow of 10 activities, {} for 20: {:.1} per activity",
        cost[0],
        cost[1],
        (cost[1] - cost[0]) as f64 / 10.0
    );
    worker.stop().await;
    Ok(())
}
