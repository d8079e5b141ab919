//! Helpers for the end-to-end tests: they run against the cluster that
//! `scripts/test.sh` starts (`HOTMESH_TEST_URL`), and drive it with
//! `scripts/pg-cluster.sh` (`HOTMESH_CLUSTER_SCRIPT`).

use hotmesh_client::HotMesh;
use sqlx::postgres::PgConnection;
use sqlx::Connection;
use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

/// URL of the test database (which has the extension).
pub fn url() -> String {
    std::env::var("HOTMESH_TEST_URL")
        .expect("HOTMESH_TEST_URL is not set: run the end-to-end tests through scripts/test.sh")
}

/// URL of another database of the same cluster.
pub fn url_for(db: &str) -> String {
    let base = url();
    let cut = base.rfind('/').expect("a database in HOTMESH_TEST_URL");
    format!("{}/{}", &base[..cut], db)
}

pub async fn connect(db: &str) -> PgConnection {
    let url = url_for(db);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match PgConnection::connect(&url).await {
            Ok(c) => return c,
            // the server may be restarting after a crash the test caused
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot connect to {url}: {e}"),
        }
    }
}

pub async fn hotmesh(db: &str) -> HotMesh {
    HotMesh::connect(&url_for(db)).await.expect("connect")
}

/// Runs one statement on a fresh connection.
pub async fn exec(db: &str, sql: &str) {
    let mut c = connect(db).await;
    sqlx::raw_sql(sql)
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// One value of the first row, on a fresh connection.
pub async fn scalar<T>(db: &str, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    let mut c = connect(db).await;
    sqlx::query_scalar::<_, T>(sql)
        .fetch_one(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Polls `check` until it returns `Some`, or panics after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pids of hotmesh processes of `backend_type`, in database `datname` (None: any).
/// Retried while the server restarts (a test may just have crashed a process, and the
/// postmaster resets every backend, the connection this opened included).
pub async fn pids(backend_type: &str, datname: Option<&str>) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = connect("postgres").await;
        let r = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = $1
                AND ($2::text IS NULL OR datname = $2) ORDER BY pid",
        )
        .bind(backend_type)
        .bind(datname)
        .fetch_all(&mut c)
        .await;
        match r {
            Ok(p) => return p,
            Err(e) if Instant::now() > deadline => panic!("pg_stat_activity: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A fresh database, dropped first if a failed run left it behind.
pub async fn fresh_database(name: &str) {
    exec(
        "postgres",
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )
    .await;
    exec("postgres", &format!("CREATE DATABASE \"{name}\"")).await;
}

/// Runs `scripts/pg-cluster.sh <cmd>` for the test cluster (or, with `env`, another).
pub fn cluster(cmd: &str, env: &[(&str, &str)]) -> std::process::Output {
    let script =
        std::env::var("HOTMESH_CLUSTER_SCRIPT").expect("HOTMESH_CLUSTER_SCRIPT is not set");
    let out = Command::new("bash")
        .arg(script)
        .arg(cmd)
        .envs(env.iter().copied())
        .output()
        .expect("run cluster script");
    assert!(
        out.status.success() || cmd == "status",
        "pg-cluster.sh {cmd} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A fresh database `db` with the extension, `yaml` deployed and version `version` of
/// `app` active, its engine worker running; a pool of `connections` to it.
pub async fn with_app(
    db: &str,
    yaml: &str,
    app: &str,
    version: &str,
    connections: u32,
) -> sqlx::PgPool {
    fresh_database(db).await;
    exec(db, "CREATE EXTENSION hotmesh").await;
    let p = sqlx::postgres::PgPoolOptions::new()
        .max_connections(connections)
        .connect(&url_for(db))
        .await
        .expect("pool");
    install(&p, yaml, app, version).await;
    sqlx::query("SELECT hotmesh.wait_for_engine(20)")
        .execute(&p)
        .await
        .unwrap();
    p
}

/// Deploys `yaml` and activates version `version` of `app`.
pub async fn install(p: &sqlx::PgPool, yaml: &str, app: &str, version: &str) {
    sqlx::query("SELECT hotmesh.deploy($1)")
        .bind(yaml)
        .execute(p)
        .await
        .unwrap_or_else(|e| panic!("deploy {app} {version}: {e}"));
    sqlx::query("SELECT hotmesh.activate($1, $2)")
        .bind(app)
        .bind(version)
        .execute(p)
        .await
        .unwrap_or_else(|e| panic!("activate {app} {version}: {e}"));
}

/// The server log of the test cluster (scripts/test.sh says where), if known.
pub fn server_log() -> Option<std::path::PathBuf> {
    let dir = std::env::var("HOTMESH_PG_DIR").ok()?;
    Some(std::path::Path::new(&dir).join("server.log"))
}

/// The server log written since `offset` (empty without a known log).
pub fn log_since(offset: u64) -> String {
    let Some(path) = server_log() else {
        return String::new();
    };
    let text = std::fs::read(&path).unwrap_or_default();
    let start = (offset as usize).min(text.len());
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// The server log's lines written since `offset` that contain `needle`.
pub fn log_lines_since(offset: u64, needle: &str) -> Vec<String> {
    log_since(offset)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// The server log's size now: an offset for [`log_since`].
pub fn log_size() -> u64 {
    server_log()
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.len())
}
