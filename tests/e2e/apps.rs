//! Apps end to end: a multi-graph manifest with every activity type deploys and
//! activates; activation is one transaction, visible to others at commit and announced
//! there; concurrent deploys of one version serialize; errors carry their SQLSTATE.

use hotmesh_tests::*;
use sqlx::{Connection, Row};
use std::time::Duration;

const EVERYTHING: &str = include_str!("../../manifest/tests/apps/everything.yaml");
const DB: &str = "e2e_apps";

async fn setup() {
    fresh_database(DB).await;
    exec(DB, "CREATE EXTENSION hotmesh").await;
}

fn v(n: u32) -> String {
    format!("app:\n  id: flip\n  version: '{n}'\n  graphs:\n    - subscribes: flip.go\n      activities:\n        t: {{ type: trigger }}\n")
}

/// A fresh database with versions 1 and 2 of `flip` deployed (none active), and two
/// sessions.
async fn two_sessions_two_versions() -> (sqlx::PgConnection, sqlx::PgConnection) {
    setup().await;
    let mut a = connect(DB).await;
    let b = connect(DB).await;
    for n in [1, 2] {
        sqlx::query("SELECT hotmesh.deploy($1)")
            .bind(v(n))
            .execute(&mut a)
            .await
            .unwrap();
    }
    (a, b)
}

#[tokio::test]
async fn everything_deploys_and_activates() {
    setup().await;
    let mut c = connect(DB).await;
    let summary: serde_json::Value = sqlx::query_scalar("SELECT hotmesh.deploy($1)")
        .bind(EVERYTHING)
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(summary["status"], "deployed");
    assert_eq!(summary["activities"], 13);
    let types: std::collections::BTreeSet<String> = summary["graphs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| {
            g["types"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(types.len(), 7, "every activity type: {types:?}");
    let ok: bool = sqlx::query_scalar("SELECT hotmesh.activate('everything', '1')")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert!(ok);
    let graphs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM hotmesh.graphs WHERE app_id = 'everything'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(graphs, 2);
    let worker: String = sqlx::query_scalar(
        "SELECT activity_id FROM hotmesh.topics WHERE topic = 'pricing.quote' AND kind = 'worker'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(worker, "price");
    // the stored compiled form is what the engine will load: parents, cycle targets, hook topics
    let compiled: serde_json::Value =
        sqlx::query_scalar("SELECT compiled FROM hotmesh.app_versions WHERE app_id = 'everything'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(compiled["activities"]["ship"]["parent"], "approve");
    assert_eq!(compiled["activities"]["approve"]["cycle_target"], true);
    assert_eq!(
        compiled["activities"]["approve"]["hook_topic"],
        "order.approve"
    );
}

#[tokio::test]
async fn activation_is_one_transaction_announced_at_commit() {
    let (mut a, mut b) = two_sessions_two_versions().await;
    sqlx::query("SELECT hotmesh.activate('flip', '1')")
        .execute(&mut a)
        .await
        .unwrap();
    let mut listener = sqlx::postgres::PgListener::connect(&url_for(DB))
        .await
        .unwrap();
    listener.listen("hotmesh_activated").await.unwrap();

    let mut tx = a.begin().await.unwrap();
    sqlx::query("SELECT hotmesh.activate('flip', '2')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let seen: String =
        sqlx::query_scalar("SELECT active_version FROM hotmesh.apps WHERE app_id = 'flip'")
            .fetch_one(&mut b)
            .await
            .unwrap();
    assert_eq!(
        seen, "1",
        "another session sees the old version until commit"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), listener.recv())
            .await
            .is_err(),
        "no announcement before commit"
    );
    tx.commit().await.unwrap();
    let seen: String =
        sqlx::query_scalar("SELECT active_version FROM hotmesh.apps WHERE app_id = 'flip'")
            .fetch_one(&mut b)
            .await
            .unwrap();
    assert_eq!(seen, "2");
    let note = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("announced")
        .unwrap();
    let payload: serde_json::Value = serde_json::from_str(note.payload()).unwrap();
    assert_eq!(
        payload,
        serde_json::json!({"app_id": "flip", "version": "2"})
    );
}

/// The version a start runs: the job row's.
async fn started(c: &mut sqlx::PgConnection) -> String {
    let id: String = sqlx::query_scalar("SELECT hotmesh.pub('flip.go', '{}')")
        .fetch_one(&mut *c)
        .await
        .unwrap();
    sqlx::query_scalar("SELECT version FROM hotmesh.jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *c)
        .await
        .unwrap()
}

async fn activate(c: &mut sqlx::PgConnection, version: &str) {
    sqlx::query("SELECT hotmesh.activate('flip', $1)")
        .bind(version)
        .execute(&mut *c)
        .await
        .unwrap();
}

/// A session keeps the topic's active version between starts (docs/engine.md): an
/// activation by another session reaches its next start, its own activation its next
/// statement, a rolled-back one is forgotten, and a repeatable-read transaction starts
/// on its snapshot's version without leaving it behind for later transactions.
#[tokio::test]
async fn each_start_runs_the_version_active_when_it_runs() {
    let (mut a, mut b) = two_sessions_two_versions().await;
    activate(&mut a, "1").await;
    assert_eq!(started(&mut b).await, "1");
    assert_eq!(started(&mut b).await, "1");
    // another session's activation, committed
    activate(&mut a, "2").await;
    assert_eq!(started(&mut b).await, "2", "another session's activation");
    // this session's own, in its transaction, then rolled back
    sqlx::query("BEGIN").execute(&mut b).await.unwrap();
    activate(&mut b, "1").await;
    assert_eq!(
        started(&mut b).await,
        "1",
        "its own activation, uncommitted"
    );
    sqlx::query("ROLLBACK").execute(&mut b).await.unwrap();
    assert_eq!(started(&mut b).await, "2", "the rolled-back activation");
    // a repeatable-read transaction starts on its snapshot's version
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut b)
        .await
        .unwrap();
    assert_eq!(started(&mut b).await, "2");
    activate(&mut a, "1").await;
    assert_eq!(started(&mut b).await, "2", "the snapshot's version");
    sqlx::query("COMMIT").execute(&mut b).await.unwrap();
    assert_eq!(
        started(&mut b).await,
        "1",
        "the next transaction: the version active now"
    );
}

#[tokio::test]
async fn concurrent_deploys_of_one_version_serialize() {
    setup().await;
    let mut a = connect(DB).await;
    let mut b = connect(DB).await;
    let mut tx = a.begin().await.unwrap();
    let first: serde_json::Value = sqlx::query_scalar("SELECT hotmesh.deploy($1)")
        .bind(v(7))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(first["status"], "deployed");
    // b waits for a's catalog lock, then sees a's committed row
    let second = tokio::spawn(async move {
        let s: serde_json::Value = sqlx::query_scalar("SELECT hotmesh.deploy($1)")
            .bind(v(7))
            .fetch_one(&mut b)
            .await
            .unwrap();
        let other = sqlx::query("SELECT hotmesh.deploy($1)")
            .bind(v(7).replace("type: trigger", "type: trigger, title: other"))
            .execute(&mut b)
            .await;
        (s, other)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !second.is_finished(),
        "the second deploy waits for the first transaction"
    );
    tx.commit().await.unwrap();
    let (s, other) = second.await.unwrap();
    assert_eq!(s["status"], "unchanged");
    let e = other.unwrap_err();
    let db = e.as_database_error().unwrap();
    assert_eq!(db.code().as_deref(), Some("42710"), "{db}");
    let rows: i64 = scalar(
        DB,
        "SELECT count(*) FROM hotmesh.app_versions WHERE app_id = 'flip'",
    )
    .await;
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn bad_manifests_fail_with_sqlstate_path_and_line() {
    setup().await;
    let mut c = connect(DB).await;
    let bad = EVERYTHING.replace("type: await", "type: awiat");
    let e = sqlx::query("SELECT hotmesh.deploy($1)")
        .bind(&bad)
        .execute(&mut c)
        .await
        .unwrap_err();
    let db = e.as_database_error().unwrap();
    assert_eq!(db.code().as_deref(), Some("22023"));
    let line = EVERYTHING
        .lines()
        .position(|l| l.contains("type: await"))
        .unwrap()
        + 1;
    assert!(
        db.message()
            .contains(&format!("app.graphs[0].activities.ship.type (line {line})")),
        "{}",
        db.message()
    );
    let e = sqlx::query("SELECT hotmesh.deploy($1)")
        .bind("app: [")
        .execute(&mut c)
        .await
        .unwrap_err();
    assert_eq!(
        e.as_database_error().unwrap().code().as_deref(),
        Some("42601")
    );
    // the connection is fine afterwards and nothing was stored
    let n: i64 = sqlx::query("SELECT count(*) FROM hotmesh.app_versions")
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}
