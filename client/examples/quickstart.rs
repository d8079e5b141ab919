//! The README's demo: deploy a sample app (a worker inside a cycle, then a hook that
//! waits for an approval signal with a timeout), run a Rust worker, start workflows,
//! approve them, and print the results with the SQL to inspect them.
//! `HOTMESH_DATABASE_URL=postgres://postgres@127.0.0.1:28815/hotmesh cargo run --example quickstart`
//!
//! The worker is the client's `Worker`: it sleeps until a commit announces work on its
//! topic (LISTEN), reserves messages with SKIP LOCKED, and answers each.

use hotmesh_client::{Config, HotMesh, Outcome, PubOptions, Worker};
use serde_json::{json, Value};
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
    hm.activate("quickstart", "1").await?;
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
    let mut ids = vec![];
    for (i, name) in names.iter().enumerate() {
        let data = json!({ "id": format!("greet-{run}-{i}"), "name": name });
        let id = hm
            .publish("greet.start", data, PubOptions::default())
            .await?;
        if i + 1 < names.len() {
            hm.signal("greet.approve", json!({ "id": id, "ok": true }))
                .await?;
        }
        ids.push(id);
    }
    println!(
        "\nstarted {} workflows; waiting for them (the last one waits for its 5 s timeout)\n",
        ids.len()
    );
    for id in &ids {
        let state: Value = sqlx::query_scalar("SELECT hotmesh.wait_for_job($1, 30000)")
            .bind(id)
            .fetch_one(&pool)
            .await?;
        println!(
            "  {id}  status {}  after {:>5} ms  data {}",
            state["metadata"]["js"],
            started.elapsed().as_millis(),
            state["data"]
        );
    }

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
    println!("\nlive processes (hotmesh.roll_call):");
    for p in workers.roll_call(Duration::from_secs(30)).await? {
        println!(
            "  {:<6} {:<10} processed {}",
            p.role,
            p.topic.unwrap_or_default(),
            p.processed
        );
    }
    workers.stop().await;
    hm.stop().await;
    Ok(())
}
