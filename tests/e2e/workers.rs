//! The launcher and the engine workers, end to end: one worker per database with the
//! extension, following CREATE/DROP EXTENSION and DROP DATABASE, woken by latch at
//! commit, surviving errors, crashes and terminations, and stopping fast.
//! The cluster runs with `hotmesh.poll_interval = 60000`: anything faster than a minute
//! here was a latch.

use hotmesh_tests::*;
use std::time::{Duration, Instant};

const ENGINE: &str = "hotmesh engine";
const LAUNCHER: &str = "hotmesh launcher";

fn test_db() -> String {
    url().rsplit('/').next().unwrap().to_string()
}

async fn engine_pid(db: &str) -> i32 {
    eventually(10, "an engine worker", || async {
        let p = pids(ENGINE, Some(db)).await;
        (p.len() == 1).then(|| p[0])
    })
    .await
}

async fn loops(db: &str) -> i64 {
    scalar(
        db,
        "SELECT loops FROM hotmesh.workers() WHERE database = current_database()",
    )
    .await
}

#[tokio::test]
async fn launcher_plus_one_engine_per_database_with_the_extension() {
    assert_eq!(
        pids(LAUNCHER, None).await.len(),
        1,
        "one launcher per cluster"
    );
    engine_pid(&test_db()).await;
    // databases without the extension have no worker (only a short probe when created)
    eventually(10, "no worker in postgres", || async {
        pids(ENGINE, Some("postgres"))
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let hm = hotmesh(&test_db()).await;
    let me = hm
        .my_worker()
        .await
        .unwrap()
        .expect("a row for this database");
    assert_eq!(me.state, "running");
    assert!(me.pid.is_some() && me.started_at.is_some());
}

#[tokio::test]
async fn a_second_database_gets_its_own_worker_and_loses_it() {
    fresh_database("e2e_second").await;
    let t = Instant::now();
    exec("e2e_second", "CREATE EXTENSION hotmesh").await;
    let pid = engine_pid("e2e_second").await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "worker took {:?}",
        t.elapsed()
    );
    assert_ne!(
        pid,
        engine_pid(&test_db()).await,
        "each database has its own worker"
    );

    exec("e2e_second", "DROP EXTENSION hotmesh").await;
    eventually(5, "the worker to leave after DROP EXTENSION", || async {
        pids(ENGINE, Some("e2e_second"))
            .await
            .is_empty()
            .then_some(())
    })
    .await;

    // back again, then DROP DATABASE (no FORCE): the worker must step aside at once
    exec("e2e_second", "CREATE EXTENSION hotmesh").await;
    engine_pid("e2e_second").await;
    let t = Instant::now();
    exec("postgres", "DROP DATABASE e2e_second").await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "DROP DATABASE took {:?}",
        t.elapsed()
    );
    assert!(pids(ENGINE, Some("e2e_second")).await.is_empty());
    let rows: i64 = scalar(
        &test_db(),
        "SELECT count(*) FROM hotmesh.workers() WHERE database IS NULL OR database = 'e2e_second'",
    )
    .await;
    assert_eq!(rows, 0, "the dropped database's slot is freed");
}

#[tokio::test]
async fn a_failed_drop_database_gives_the_worker_back() {
    fresh_database("e2e_busy").await;
    exec("e2e_busy", "CREATE EXTENSION hotmesh").await;
    let before = engine_pid("e2e_busy").await;
    // a user session keeps the database busy, so DROP DATABASE fails
    let mut holder = connect("e2e_busy").await;
    sqlx::query("SELECT 1").execute(&mut holder).await.unwrap();
    let mut c = connect("postgres").await;
    let err = sqlx::raw_sql("DROP DATABASE e2e_busy")
        .execute(&mut c)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("being accessed by other users"),
        "{err}"
    );
    let after = engine_pid("e2e_busy").await;
    assert_ne!(
        before, after,
        "a new worker once the failed DROP DATABASE is over"
    );
    drop(holder);
    exec("postgres", "DROP DATABASE e2e_busy WITH (FORCE)").await;
}

#[tokio::test]
async fn the_worker_is_woken_by_a_latch_at_commit_not_before() {
    let db = test_db();
    let hm = hotmesh(&db).await;
    assert!(hm.wait_for_engine(Duration::from_secs(10)).await.unwrap());
    // the poll fallback and due work out of the window (quiet_worker)
    quiet_worker(&db).await;
    let mut c = connect(&db).await;
    sqlx::raw_sql("BEGIN").execute(&mut c).await.unwrap();
    let before: i64 = sqlx::query_scalar("SELECT hotmesh.wake_engine()")
        .fetch_one(&mut c)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(loops(&db).await, before, "no wake-up before the commit");
    let t = Instant::now();
    sqlx::raw_sql("COMMIT").execute(&mut c).await.unwrap();
    eventually(2, "a wake-up after commit", || async {
        (loops(&db).await > before).then_some(())
    })
    .await;
    // the poll is 60 s: this was the latch
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "woken after {:?}",
        t.elapsed()
    );
}

/// Wakes `db`'s engine worker, then waits until it has been quiet for 700 ms; returns
/// its loop count. A test that counts loops in a window needs this: the poll fallback
/// (60 s in the test cluster, counted from the last wake-up, which may be a server
/// restart in an earlier test binary) must not fall in the window, nor work that earlier
/// tests left due.
async fn quiet_worker(db: &str) -> i64 {
    exec(db, "SELECT hotmesh.wake_engine()").await;
    eventually(10, "a quiet engine worker", || async {
        let a = loops(db).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        (loops(db).await == a).then_some(a)
    })
    .await
}

#[tokio::test]
async fn a_rolled_back_transaction_wakes_nobody() {
    let db = test_db();
    hotmesh(&db)
        .await
        .wait_for_engine(Duration::from_secs(10))
        .await
        .unwrap();
    let before = quiet_worker(&db).await;
    exec(
        &db,
        "BEGIN; SELECT hotmesh.wake_engine(); SELECT hotmesh.wake_engine(); ROLLBACK;",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(loops(&db).await, before);
}

#[tokio::test]
async fn the_worker_survives_an_error_and_reports_it() {
    let db = test_db();
    let pid = engine_pid(&db).await;
    let hm = hotmesh(&db).await;
    let errors_before = hm.my_worker().await.unwrap().unwrap().errors;
    exec(
        &db,
        "SELECT hotmesh.debug_fail_worker('e2e: simulated failure')",
    )
    .await;
    let w = eventually(5, "the error to be counted", || async {
        let w = hm.my_worker().await.unwrap().unwrap();
        (w.errors > errors_before).then_some(w)
    })
    .await;
    assert_eq!(w.last_error.as_deref(), Some("e2e: simulated failure"));
    assert!(w.last_error_at.is_some());
    assert_eq!(w.pid, Some(pid), "same process: the error was caught");
    // and it still works
    let before = loops(&db).await;
    exec(&db, "SELECT hotmesh.wake_engine()").await;
    eventually(2, "a wake-up after the error", || async {
        (loops(&db).await > before).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_terminated_worker_is_restarted() {
    let db = test_db();
    let pid = engine_pid(&db).await;
    exec("postgres", &format!("SELECT pg_terminate_backend({pid})")).await;
    let new = eventually(10, "a new worker", || async {
        let p = pids(ENGINE, Some(&db)).await;
        (p.len() == 1 && p[0] != pid).then(|| p[0])
    })
    .await;
    assert_ne!(new, pid);
    hotmesh(&db)
        .await
        .wait_for_engine(Duration::from_secs(5))
        .await
        .unwrap();
}

/// A worker that keeps dying young waits longer each time (1 s, 2 s, 4 s …), so a
/// crash loop does not spin; in a database of its own (the back-off is per database).
#[tokio::test]
async fn a_worker_that_keeps_dying_young_backs_off_longer_each_time() {
    fresh_database("e2e_backoff").await;
    exec("e2e_backoff", "CREATE EXTENSION hotmesh").await;
    let mut pid = engine_pid("e2e_backoff").await;
    let mut gaps = vec![];
    for _ in 0..3 {
        let t = Instant::now();
        exec("postgres", &format!("SELECT pg_terminate_backend({pid})")).await;
        pid = eventually(20, "the worker back", || async {
            let p = pids(ENGINE, Some("e2e_backoff")).await;
            (p.len() == 1 && p[0] != pid).then(|| p[0])
        })
        .await;
        gaps.push(t.elapsed());
    }
    assert!(
        gaps[1] > gaps[0] + Duration::from_millis(700)
            && gaps[2] > gaps[1] + Duration::from_millis(1500),
        "each restart waits about twice as long: {gaps:?}"
    );
    exec("postgres", "DROP DATABASE e2e_backoff").await;
}

#[tokio::test]
async fn a_terminated_launcher_comes_back_and_keeps_the_workers() {
    let db = test_db();
    let engine = engine_pid(&db).await;
    let launcher = pids(LAUNCHER, None).await[0];
    exec(
        "postgres",
        &format!("SELECT pg_terminate_backend({launcher})"),
    )
    .await;
    eventually(10, "a new launcher", || async {
        let p = pids(LAUNCHER, None).await;
        (p.len() == 1 && p[0] != launcher).then_some(())
    })
    .await;
    assert_eq!(
        pids(ENGINE, Some(&db)).await,
        vec![engine],
        "the engine worker was not disturbed"
    );
    // the new launcher still manages databases
    fresh_database("e2e_after_launcher").await;
    exec("e2e_after_launcher", "CREATE EXTENSION hotmesh").await;
    engine_pid("e2e_after_launcher").await;
    exec("postgres", "DROP DATABASE e2e_after_launcher").await;
}

#[tokio::test]
async fn kill_9_of_a_worker_brings_it_back() {
    let db = test_db();
    let pid = engine_pid(&db).await;
    // SIGKILL of any backend makes the postmaster reset the whole cluster; the launcher
    // then starts the worker again
    let ok = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -9 {pid}");
    let new = eventually(30, "a worker after the crash", || async {
        let p = pids(ENGINE, Some(&db)).await;
        (p.len() == 1 && p[0] != pid).then(|| p[0])
    })
    .await;
    assert_ne!(new, pid);
    assert_eq!(pids(LAUNCHER, None).await.len(), 1);
}

#[tokio::test]
async fn fast_shutdown_takes_under_5_seconds() {
    let db = test_db();
    engine_pid(&db).await;
    let t = Instant::now();
    cluster("stop", &[]);
    let took = t.elapsed();
    cluster("start", &[]);
    assert!(
        took < Duration::from_secs(5),
        "pg_ctl stop -m fast took {took:?}"
    );
    engine_pid(&db).await;
}

#[tokio::test]
async fn workers_come_back_after_a_restart() {
    let db = test_db();
    engine_pid(&db).await;
    cluster("restart", &[]);
    engine_pid(&db).await;
    assert!(hotmesh(&db)
        .await
        .wait_for_engine(Duration::from_secs(10))
        .await
        .unwrap());
}
