//! The extension as a user installs and removes it.

use hotmesh_client::Error;
use hotmesh_tests::*;
use std::time::Duration;

#[tokio::test]
async fn version_answers() {
    let hm = hotmesh(&db()).await;
    assert_eq!(hm.version().await.unwrap(), env!("CARGO_PKG_VERSION"));
}

fn db() -> String {
    url().rsplit('/').next().unwrap().to_string()
}

#[tokio::test]
async fn drop_extension_leaves_nothing_behind() {
    fresh_database("e2e_drop").await;
    // what exists before, so the comparison ignores the database's own objects
    let census = "SELECT (SELECT count(*) FROM pg_namespace) || '/' || (SELECT count(*) FROM pg_proc)
                  || '/' || (SELECT count(*) FROM pg_class) || '/' || (SELECT count(*) FROM pg_depend)";
    let before: String = scalar("e2e_drop", census).await;
    exec("e2e_drop", "CREATE EXTENSION hotmesh").await;
    let functions: i64 = scalar(
        "e2e_drop",
        "SELECT count(*) FROM pg_proc WHERE probin LIKE '%hotmesh%'",
    )
    .await;
    assert!(
        functions > 0,
        "the extension's functions exist before the drop"
    );
    exec("e2e_drop", "DROP EXTENSION hotmesh").await;
    let after: String = scalar("e2e_drop", census).await;
    assert_eq!(
        before, after,
        "namespaces/functions/relations/dependencies must be as before"
    );
    assert_eq!(
        scalar::<i64>(
            "e2e_drop",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'hotmesh'"
        )
        .await,
        0
    );
    exec("postgres", "DROP DATABASE e2e_drop WITH (FORCE)").await;
}

#[tokio::test]
async fn client_reports_a_missing_extension() {
    fresh_database("e2e_noext").await;
    let hm = hotmesh("e2e_noext").await;
    match hm.version().await {
        Err(Error::NotInstalled) => {}
        other => panic!("expected NotInstalled, got {other:?}"),
    }
    hm.pool().close().await;
    exec("postgres", "DROP DATABASE e2e_noext WITH (FORCE)").await;
}

#[tokio::test]
async fn a_client_process_on_a_database_without_the_extension_is_told_so_at_init() {
    fresh_database("e2e_noext_init").await;
    let r = hotmesh_client::HotMesh::init(hotmesh_client::Config::new(
        "orders",
        url_for("e2e_noext_init"),
    ))
    .await;
    assert!(matches!(r, Err(Error::NotInstalled)), "{:?}", r.err());
    exec("postgres", "DROP DATABASE e2e_noext_init WITH (FORCE)").await;
}

#[tokio::test]
async fn a_refused_connection_fails_at_once_and_says_so() {
    let started = std::time::Instant::now();
    // nothing listens on port 1
    let r = hotmesh_client::HotMesh::connect("postgres://postgres@127.0.0.1:1/hotmesh").await;
    let Err(e) = r else { panic!("no server there") };
    assert!(matches!(e, Error::Connect(_)), "{e:?}");
    assert!(e.to_string().to_lowercase().contains("refused"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn bad_arguments_get_a_named_error_with_sqlstate() {
    let hm = hotmesh(&db()).await;
    let err = hm
        .wait_for_engine(Duration::from_secs(4000))
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("22023"), "{err}");
    assert!(err.to_string().contains("timeout_seconds"), "{err}");
}

#[tokio::test]
async fn without_preloading_create_extension_works_and_workers_say_what_is_missing() {
    // a second, throw-away cluster without shared_preload_libraries
    let dir = format!(
        "{}/no-preload",
        std::env::var("HOTMESH_RUN_DIR").unwrap_or("/tmp/hotmesh-run".into())
    );
    let env = [
        ("HOTMESH_PG_DIR", dir.as_str()),
        ("HOTMESH_PG_PORT", "28830"),
        ("HOTMESH_PG_DB", "plain"),
        ("HOTMESH_PG_PRELOAD", "0"),
    ];
    cluster("destroy", &env);
    cluster("start", &env); // creates the database and the extension
    let result = async {
        let hm = hotmesh_client::HotMesh::connect("postgres://postgres@127.0.0.1:28830/plain").await.unwrap();
        assert_eq!(hm.version().await.unwrap(), env!("CARGO_PKG_VERSION"));
        let err = hm.workers().await.unwrap_err();
        match &err {
            Error::NotPreloaded { message } => {
                assert!(message.contains("shared_preload_libraries = 'hotmesh'"), "{message}")
            }
            other => panic!("expected NotPreloaded, got {other:?}"),
        }
        let mut c: sqlx::PgConnection = sqlx::Connection::connect("postgres://postgres@127.0.0.1:28830/plain").await.unwrap();
        let e = sqlx::query("SELECT hotmesh.wait_for_engine(1)").execute(&mut c).await.unwrap_err();
        let db = e.as_database_error().unwrap();
        assert_eq!(db.code().as_deref(), Some("55000"));
        // the hint names the exact postgresql.conf line
        let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().unwrap();
        assert_eq!(
            pg.hint(),
            Some("Add this line to postgresql.conf and restart the server: shared_preload_libraries = 'hotmesh'")
        );
        hm.pool().close().await;
    }
    .await;
    cluster("destroy", &env);
    result
}

#[tokio::test]
async fn a_rolled_back_create_extension_starts_no_worker() {
    fresh_database("e2e_rollback").await;
    exec("e2e_rollback", "BEGIN; CREATE EXTENSION hotmesh; ROLLBACK;").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(pids("hotmesh engine", Some("e2e_rollback"))
        .await
        .is_empty());
    assert_eq!(
        scalar::<i64>(
            "e2e_rollback",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'hotmesh'"
        )
        .await,
        0
    );
    exec("postgres", "DROP DATABASE e2e_rollback WITH (FORCE)").await;
}
