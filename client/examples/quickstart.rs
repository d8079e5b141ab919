//! The README's demo: deploy a sample app (a worker inside a cycle, then a hook that
//! waits for an approval signal with a timeout), run a Rust worker, start workflows,
//! approve them, and print the results with the SQL to inspect them.
//! `HOTMESH_DATABASE_URL=postgres://postgres@127.0.0.1:28815/hotmesh cargo run --example quickstart`
//!
//! The worker is a thin loop over the SQL protocol (LISTEN for work, `hotmesh.dequeue`,
//! `hotmesh.respond`); the client's worker API arrives with issue 5.

use hotmesh_client::HotMesh;
use serde_json::{json, Value};
use sqlx::postgres::{PgListener, PgPool};
use sqlx::Row;
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

/// The worker: wakes on the topic's channel, takes messages in batches, answers each.
async fn worker(pool: PgPool, url: String) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(&url).await?;
    listener.listen("hotmesh.work.greet.work").await?;
    loop {
        let rows = sqlx::query("SELECT id, data FROM hotmesh.dequeue('greet.work', 10, 30)")
            .fetch_all(&pool)
            .await?;
        for r in &rows {
            let (id, data): (i64, Value) = (r.get(0), r.get(1));
            let greeting = format!(
                "Hello, {} (round {})",
                data["name"].as_str().unwrap_or("?"),
                data["round"]
            );
            sqlx::query("SELECT hotmesh.respond($1, $2)")
                .bind(id)
                .bind(json!({ "greeting": greeting }))
                .execute(&pool)
                .await?;
        }
        if rows.is_empty() {
            // idle: sleep until a commit announces work (or a second passes)
            let _ = tokio::time::timeout(Duration::from_secs(1), listener.recv()).await;
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("HOTMESH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:28815/hotmesh".into());
    let hm = HotMesh::connect(&url).await?;
    println!("hotmesh {} at {url}", hm.version().await?);
    if !hm.wait_for_engine(Duration::from_secs(10)).await? {
        return Err("the engine worker did not start within 10 s".into());
    }
    let pool = hm.pool().clone();

    let deployed: Value = sqlx::query_scalar("SELECT hotmesh.deploy($1)")
        .bind(APP)
        .fetch_one(&pool)
        .await?;
    sqlx::query("SELECT hotmesh.activate('quickstart', '1')")
        .execute(&pool)
        .await?;
    println!(
        "app quickstart v1: {} ({} activities)",
        deployed["status"], deployed["activities"]
    );

    tokio::spawn(worker(pool.clone(), url.clone()));

    // five workflows: three worker rounds each (a cycle), then an approval hook that
    // times out after 5 s; approve all but the last (the signals may arrive before the
    // hooks exist: the engine keeps them until the hooks register)
    let names = ["Ada", "Grace", "Edsger", "Barbara", "Ken"];
    let run = std::process::id();
    let started = Instant::now();
    let mut ids = vec![];
    for (i, name) in names.iter().enumerate() {
        let id: String = sqlx::query_scalar("SELECT hotmesh.pub('greet.start', $1)")
            .bind(json!({ "id": format!("greet-{run}-{i}"), "name": name }))
            .fetch_one(&pool)
            .await?;
        if i + 1 < names.len() {
            sqlx::query("SELECT hotmesh.signal('greet.approve', $1)")
                .bind(json!({ "id": id, "ok": true }))
                .execute(&pool)
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
    Ok(())
}
