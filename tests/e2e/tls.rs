//! The client over TLS (sqlx with rustls): the cluster of scripts/pg-cluster.sh offers TLS
//! with a server certificate for `localhost` and `127.0.0.1`, signed by a CA of its own
//! (`pg-cluster.sh tls-root` names its file). `sslmode=require` encrypts, `verify-full`
//! with `sslrootcert` also checks the certificate and the name, and a certificate from
//! another CA is refused at once.

use hotmesh_client::{Config, Error, HotMesh, Outcome, Worker};
use hotmesh_tests::*;
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const DB: &str = "e2e_tls";

const APP: &str = r#"
app:
  id: e2etls
  version: '1'
  graphs:
    - subscribes: e2etls.start
      publishes: e2etls.done
      activities:
        t: { type: trigger }
        w: { type: worker, topic: e2etls.double, input: { maps: { n: '{t.output.data.n}' } }, job: { maps: { doubled: '{$self.output.data.doubled}' } } }
      transitions:
        t: [ { to: w } ]
"#;

/// The CA file of the test cluster, as the cluster script names it.
fn cluster_ca() -> String {
    let out = cluster("tls-root", &[]);
    let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        std::path::Path::new(&path).is_file(),
        "{path}: no CA file (has scripts/pg-cluster.sh start run since TLS was added?)"
    );
    path
}

/// The URL of database `db` with `host` in place of the test URL's host, and `params`.
fn url_at(db: &str, host: &str, params: &str) -> String {
    let base = url_for(db);
    let (scheme, rest) = base.split_once("://").expect("a URL");
    let (authority, path) = rest.split_once('/').expect("a database in the URL");
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((u, hp)) => (format!("{u}@"), hp),
        None => (String::new(), authority),
    };
    let port = host_port.rsplit_once(':').map(|(_, p)| p).expect("a port");
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{scheme}://{user}{host}:{port}/{path}{sep}{params}")
}

fn verify_full(ca: &str) -> String {
    format!("sslmode=verify-full&sslrootcert={ca}")
}

/// Whether the pool's connection is encrypted, as the server sees it.
async fn over_tls(hm: &HotMesh) -> bool {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(hm.pool())
        .await
        .unwrap()
}

async fn connect_ok(url: &str) -> HotMesh {
    HotMesh::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// A CA that signed nothing the server has, made with openssl in a fresh directory.
fn another_ca() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("e2e-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("openssl")
        .args(["req", "-x509", "-new", "-nodes", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-days", "1"])
        .args(["-subj", "/CN=some other CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .arg("-keyout")
        .arg(dir.join("other.key"))
        .arg("-out")
        .arg(dir.join("other.crt"))
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("other.crt")
}

#[tokio::test]
async fn sslmode_require_encrypts_the_connection() {
    let hm = connect_ok(&url_at(&db_of_test_url(), "127.0.0.1", "sslmode=require")).await;
    assert!(over_tls(&hm).await);
}

#[tokio::test]
async fn a_plain_connection_still_works_where_tls_is_offered() {
    let hm = connect_ok(&url_at(&db_of_test_url(), "127.0.0.1", "sslmode=disable")).await;
    assert!(!over_tls(&hm).await);
}

#[tokio::test]
async fn verify_full_accepts_the_cluster_certificate_by_name_and_by_address() {
    let ca = cluster_ca();
    let db = db_of_test_url();
    // the certificate names both: DNS:localhost and IP:127.0.0.1
    for host in ["localhost", "127.0.0.1"] {
        let hm = connect_ok(&url_at(&db, host, &verify_full(&ca))).await;
        assert!(over_tls(&hm).await, "{host}");
    }
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_from_another_ca_at_once() {
    let other = another_ca();
    let db = db_of_test_url();
    let without_root = "sslmode=verify-full".to_string();
    // a wrong root, and no root at all (the built-in public roots do not know the cluster's CA)
    for params in [verify_full(other.to_str().unwrap()), without_root] {
        let url = url_at(&db, "localhost", &params);
        let t = Instant::now();
        match HotMesh::connect(&url).await {
            Err(Error::Connect(e)) => {
                let msg = e.to_string();
                assert!(msg.contains("certificate"), "{url}: {msg}");
            }
            Err(e) => panic!("{url}: not a connect error: {e:?}"),
            Ok(_) => panic!("{url}: connected to a server its root does not vouch for"),
        }
        // the handshake's verdict, not a pool giving up after its timeout
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{url}: {:?}",
            t.elapsed()
        );
    }
    std::fs::remove_dir_all(other.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_worker_and_pubsub_round_trip_over_verified_tls() {
    fresh_database(DB).await;
    exec(DB, "CREATE EXTENSION hotmesh").await;
    let url = url_at(DB, "localhost", &verify_full(&cluster_ca()));

    let hm = connect_ok(&url).await;
    let d = hm.deploy(APP).await.unwrap();
    assert_eq!(d["status"], "deployed", "{d}");
    assert!(hm.activate_app("e2etls", "1").await.unwrap());
    assert!(hm.wait_for_engine(Duration::from_secs(20)).await.unwrap());

    // the worker's pools and its LISTEN connection all take the same URL
    let mut c = Config::new("e2etls", url.clone())
        .worker(Worker::new("e2etls.double", |m| async move {
            Outcome::success(json!({ "doubled": m.data["n"].as_i64().unwrap_or(0) * 2 }))
        }));
    c.heartbeat = Duration::from_millis(300);
    c.grace = Duration::from_millis(300);
    let w = HotMesh::init(c).await.unwrap();
    assert!(over_tls(&w).await);

    let out = hm
        .pubsub("e2etls.start", json!({ "n": 21 }), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.data["doubled"], 42, "{}", out.data);

    w.stop().await;
    hm.stop().await;
}

/// The database of HOTMESH_TEST_URL (it has the extension).
fn db_of_test_url() -> String {
    let base = url();
    let db = base.rsplit_once('/').expect("a database").1;
    db.split('?').next().unwrap().to_string()
}
