//! The README's demo: connect, check the engine, and time a commit-to-worker wake-up.
//! `HOTMESH_DATABASE_URL=postgres://postgres@127.0.0.1:28815/hotmesh cargo run --example quickstart`

use hotmesh_client::HotMesh;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("HOTMESH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:28815/hotmesh".into());
    let hm = HotMesh::connect(&url).await?;
    println!("hotmesh {} at {url}", hm.version().await?);

    if !hm.wait_for_engine(Duration::from_secs(10)).await? {
        return Err("the engine worker did not start within 10 s".into());
    }
    println!("\nengine workers:");
    for w in hm.workers().await? {
        println!(
            "  {:<20} {:<8} pid {:<8} loops {:<6} errors {}",
            w.database,
            w.state,
            w.pid.unwrap_or(0),
            w.loops,
            w.errors
        );
    }

    // A commit wakes the worker through its latch; time ten round trips.
    let mut samples = Vec::new();
    for _ in 0..10 {
        let before = hm.wake_engine().await?;
        let t = Instant::now();
        loop {
            let now = hm.my_worker().await?.map(|w| w.loops).unwrap_or(before);
            if now > before {
                break;
            }
            if t.elapsed() > Duration::from_secs(5) {
                return Err("the engine worker did not wake up".into());
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "\ncommit -> engine wake-up: median {:?}, max {:?} (10 samples)",
        samples[5], samples[9]
    );
    Ok(())
}
