//! The README's demo: deploy a sample app (a worker inside a cycle, then a hook that
//! waits for an approval signal with a timeout), run a Rust worker, start workflows,
//! approve them, and print the results with the SQL to inspect them.
//! `HOTMESH_DATABASE_URL=postgres://postgres@127.0.0.1:28815/hotmesh cargo run --example quickstart`
//!
//! The worker is the client's `Worker`: it sleeps until a commit announces work on its
//! topic (LISTEN), reserves messages with SKIP LOCKED, and answers each.

use hotmesh_client::{Config, HotMesh, Outcome, PubOptions, Worker};
use serde_json::json;
use std::time::{Duration, Instant};

const APP: &str = r#"
app:
  id: quickstart
  version: '1'
  graphs:
    - subscribes: greet.start
      publishes: greet.done
      expire: 3600
      activities:
        t:
          type: trigger
          stats: { id: '{$self.input.data.id}' }
        round:
          type: hook
          cycle: true
          output: { maps: { n: 0 } }
        work:
          type: worker
          topic: greet.work
          input: { maps: { name: '{t.output.data.name}', round: '{round.output.data.n}' } }
          job: { maps: { greeting: '{$self.output.data.greeting}', rounds: { '@pipe': [['{round.output.data.n}', 1], ['{@math.add}']] } } }
        again:
          type: cycle
          ancestor: round
          input: { maps: { n: { '@pipe': [['{round.output.data.n}', 1], ['{@math.add}']] } } }
        approve:
          type: hook
          sleep: 5
          job: { maps: { approved: { '@pipe': [['{$self.hook.data.ok}', false], ['{@conditional.nullish}']] } } }
      transitions:
        t: [ { to: round } ]
        round: [ { to: work } ]
        work:
          - to: again
            conditions: { match: [ { expected: true, actual: { '@pipe': [['{round.output.data.n}', 2], ['{@number.lt}']] } } ] }
          - to: approve
            conditions: { match: [ { expected: true, actual: { '@pipe': [['{round.output.data.n}', 2], ['{@number.gte}']] } } ] }
      hooks:
        greet.approve:
          - to: approve
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] }
"#;

/// The worker's callback: a greeting per round.
async fn greet(m: hotmesh_client::Message) -> Outcome {
    let greeting = format!(
        "Hello, {} (round {})",
        m.data["name"].as_str().unwrap_or("?"),
        m.data["round"]
    );
    Outcome::success(json!({ "greeting": greeting }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("HOTMESH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:28815/hotmesh".into());
    let hm = HotMesh::init(Config::new("quickstart", &url)).await?;
    println!("hotmesh {} at {url}", hm.version().await?);
    if !hm.wait_for_engine(Duration::from_secs(10)).await? {
        return Err("the engine worker did not start within 10 s".into());
    }
    let pool = hm.pool().clone();

    let deployed = hm.deploy(APP).await?;
    hm.activate("1").await?;
    println!(
        "app quickstart v1: {} ({} activities)",
        deployed["status"], deployed["activities"]
    );

    // the worker process: its own client with one worker of topic greet.work
    let workers = HotMesh::init(
        Config::new("quickstart", &url).worker(Worker::new("greet.work", greet).concurrency(4)),
    )
    .await?;

    // five workflows: three worker rounds each (a cycle), then an approval hook that
    // times out after 5 s; approve all but the last (the signals may arrive before the
    // hooks exist: the engine keeps them until the hooks register)
    let names = ["Ada", "Grace", "Edsger", "Barbara", "Ken"];
    let run = std::process::id();
    let started = Instant::now();
    let mut jobs = vec![];
    for (i, name) in names.iter().enumerate() {
        let data = json!({ "id": format!("greet-{run}-{i}"), "name": name });
        let job = hm.publish("greet.start", data, PubOptions::new()).await?;
        if i + 1 < names.len() {
            // the hook is keyed on the job id: the handle's signal adds it
            job.signal("greet.approve", json!({ "ok": true })).await?;
        }
        jobs.push(job);
    }
    println!(
        "\nstarted {} workflows; waiting for each (the last is not approved: it waits for its 5 s timeout)",
        jobs.len()
    );
    println!("status 0 means done; data is what the job's maps wrote\n");
    for job in &jobs {
        let out = job.result(Duration::from_secs(30)).await?;
        println!(
            "  {}  status {}  after {:>5} ms  data {}",
            job.id(),
            out.status(),
            started.elapsed().as_millis(),
            out.data
        );
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.id().to_string()).collect();

    let steps: i64 =
        sqlx::query_scalar("SELECT count(*) FROM hotmesh.activities WHERE job_id = ANY($1)")
            .bind(&ids)
            .fetch_one(&pool)
            .await?;
    println!("\n{steps} activity steps recorded. Inspect them with plain SQL:");
    let first = &ids[0];
    for sql in [
        "SELECT id, status, data FROM hotmesh.jobs WHERE app_id = 'quickstart' ORDER BY created_at DESC LIMIT 5".to_string(),
        format!("SELECT activity_id, dad, status, output FROM hotmesh.activities WHERE job_id = '{first}' ORDER BY created_at"),
        format!("SELECT hotmesh.export('{first}')"),
    ] {
        println!("  scripts/pg-cluster.sh psql -c \"{sql}\"");
    }
    println!(
        "\nlive processes of app quickstart (hotmesh.roll_call): the `engine` rows are client"
    );
    println!("processes (this demo runs two: the caller and the worker process), a `worker` row");
    println!("is one worker, with its topic and how many messages it answered:");
    for p in workers.roll_call(Duration::from_secs(30)).await? {
        println!(
            "  {:<6} {:<10} processed {:>2}  pid {}",
            p.role,
            p.topic.unwrap_or_default(),
            p.processed,
            p.pid.unwrap_or_default()
        );
    }
    workers.stop().await;
    hm.stop().await;
    Ok(())
}
