//! The engine API from Rust: deploy and activate an app, start jobs, signal them, wait
//! for them through their handles, read them, find them by a search field, interrupt
//! one. The app is `apps/approval.yaml` (beside this file).
//! `HOTMESH_DATABASE_URL=postgres://postgres@127.0.0.1:28815/hotmesh cargo run -p hotmesh-client --example engine_api`

use hotmesh_client::{Config, HotMesh, InterruptOptions, PubOptions};
use serde_json::json;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), hotmesh_client::Error> {
    let url = std::env::var("HOTMESH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:28815/hotmesh".into());
    let hm = HotMesh::init(Config::new("approval", &url)).await?;
    hm.deploy(include_str!("apps/approval.yaml")).await?;
    hm.activate("1").await?;

    // start a job and approve it through its handle (the hook is keyed on the job id)
    let job = hm
        .publish(
            "approval.start",
            json!({"item": "laptop"}),
            PubOptions::new(),
        )
        .await?;
    println!("started {} (status {})", job.id(), job.status().await?);
    job.signal("approval.decide", json!({"ok": true, "by": "ada"}))
        .await?;
    let out = job.result(Duration::from_secs(10)).await?;
    println!("done: status {} data {}", out.status(), out.data);

    // two jobs found by their search field, decided together
    let region = format!("eu-{}", std::process::id());
    let mut eu = vec![];
    for item in ["desk", "chair"] {
        let options = PubOptions::new().search("region", region.as_str());
        eu.push(
            hm.publish("approval.start", json!({"item": item}), options)
                .await?,
        );
    }
    let reached = hm
        .signal_all(
            "approval.decide",
            json!({"ok": false, "by": "grace"}),
            "region",
            &region,
        )
        .await?;
    println!("signal_all reached {} jobs", reached.len());
    assert_eq!(reached.len(), 2, "both jobs of the region");
    for job in &eu {
        let out = job.result(Duration::from_secs(10)).await?;
        println!(
            "  {} approved={} region={}",
            job.id(),
            out.data["approved"],
            job.query_state(&["region"]).await?["region"]
        );
    }

    // a job interrupted: waiting on it ends with its error (code 410)
    let job = hm
        .publish(
            "approval.start",
            json!({"item": "yacht"}),
            PubOptions::new(),
        )
        .await?;
    job.interrupt(InterruptOptions::new().reason("too expensive"))
        .await?;
    match job.result(Duration::from_secs(10)).await {
        Err(e) => println!("interrupted: {e} (code {})", e.code()),
        Ok(out) => panic!("the interrupted job ended well: {}", out.data),
    }
    println!(
        "its timeline: {} entries",
        job.export().await?["timeline"]
            .as_array()
            .map_or(0, Vec::len)
    );
    hm.stop().await;
    Ok(())
}
