//! MeshData, the seeds' examples in Rust: a search index for the `user` entity, a user
//! workflow that sets a searchable field while it runs, new user records, a read of their
//! fields, and a search for active users (with the plan that serves it).
//! `HOTMESH_DATABASE_URL=postgres://postgres@127.0.0.1:28815/hotmesh cargo run -p hotmesh-client --example meshdata`

use hotmesh_client::meshdata::{
    records_view, Condition, ExecOptions, FindOptions, MeshData, SearchSchema,
};
use hotmesh_client::meshflow::{Connection, Context, WorkflowError};
use hotmesh_client::Error;

/// The schema: TAG, TEXT and NUMERIC fields (the seeds' `user` index).
fn schema() -> SearchSchema {
    SearchSchema::new()
        .tag("id")
        .text("first")
        .tag("active")
        .numeric("created", true)
}

/// The user workflow: adds searchable data (`active`) and returns.
async fn user(ctx: Context, name: String) -> Result<String, WorkflowError> {
    ctx.search().set("active", "yes");
    Ok(format!("Welcome, {name}."))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("HOTMESH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:28815/hotmesh".into());
    let md = MeshData::new(Connection::new(url)).await?;

    // the index (safe to call at every start-up)
    let fields = md.create_search_index("user", &schema()).await?;
    println!("index: {fields}");

    // the user worker
    md.connect("user", user).await?;

    // new user records, with their first search fields
    let tag = hotmesh_client::guid();
    for (i, name) in ["James", "Ann"].iter().enumerate() {
        let id = format!("{}-{tag}", name.to_lowercase());
        let welcome: String = md
            .exec(
                "user",
                name,
                ExecOptions::new()
                    .id(&id)
                    .ttl_infinity()
                    .search("id", id.as_str())
                    .search("first", *name)
                    .search("created", 1_700_000_000 + i as i64),
            )
            .await?;
        println!("{id}: {welcome}");
    }

    // read a record's fields
    let jim = format!("james-{tag}");
    let data = md
        .get("user", &jim, &["id", "first", "created", "active"])
        .await?;
    println!("get {jim}: {data}");
    assert_eq!(data["active"], "yes");

    // find the active users
    let active = md
        .find_where(
            "user",
            FindOptions::new()
                .when(Condition::eq("active", "yes"))
                .when(Condition::prefix("id", "james-"))
                .limit(0, 100)
                .fields(&["id", "first", "created", "active"]),
        )
        .await?;
    println!("active users named James: {}", active.len());
    assert!(active.iter().any(|(id, _)| id == &jim));

    // the plan of that search: the declared fields' indexes
    let plan: Vec<String> = sqlx::query_scalar(
        "SELECT hotmesh.find_where_plan('user', '[{\"field\": \"active\", \"is\": \"=\", \"value\": \"yes\"}]')",
    )
    .fetch_all(md.hotmesh().pool())
    .await
    .map_err(Error::Sql)?;
    println!("plan:\n  {}", plan.join("\n  "));

    // the same records in SQL of your own: the entity's view, values bound as parameters
    let sql = format!(
        "SELECT id, first, created FROM {} WHERE active = $1 AND id = $2",
        records_view("user")
    );
    let rows = md.query(&sql, &["yes".into(), jim.clone().into()]).await?;
    println!("in SQL: {rows:?}");
    assert_eq!(rows.len(), 1);
    md.stop().await;
    Ok(())
}
