//! MeshCall against a real cluster: calls across processes, the cache (one execution for
//! concurrent callers, ttl, flush), crons (idempotent starts, schedules, max cycles,
//! interrupt, a server restart).

use hotmesh_client::meshcall::{CallOptions, CronOptions, MeshCall};
use hotmesh_client::meshflow::Connection;
use hotmesh_client::{Error, WorkerError};
use hotmesh_tests::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DB: &str = "e2e_meshcall";

async fn setup() -> Connection {
    fresh_database(DB).await;
    exec(DB, "CREATE EXTENSION hotmesh").await;
    Connection::new(url_for(DB))
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

async fn square(n: i64) -> Result<i64, WorkerError> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    if n < 0 {
        return Err(WorkerError::fatal(422, "no negative numbers"));
    }
    Ok(n * n)
}

#[tokio::test]
async fn a_call_runs_the_function_linked_in_another_process_and_caches_by_id() {
    let c = setup().await;
    // the function's service and the caller's are two clients
    let service = MeshCall::new(c.clone()).await.unwrap();
    service.connect("square", square).await.unwrap();
    let caller = MeshCall::new(c).await.unwrap();
    let n: i64 = caller.exec("square", 7, CallOptions::new()).await.unwrap();
    assert_eq!(n, 49);
    // an error is the caller's, with its code
    let e = caller
        .exec::<i64>("square", -1, CallOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Job { code: 422, message, .. } if message == "no negative numbers"),
        "{e:?}"
    );

    // ten callers at once with one id: one execution, every caller gets its result
    let before = CALLS.load(Ordering::SeqCst);
    let mut all = vec![];
    for _ in 0..10 {
        let caller = caller.clone();
        all.push(tokio::spawn(async move {
            caller
                .exec::<i64>("square", 5, CallOptions::new().id("five").ttl("1 minute"))
                .await
                .unwrap()
        }));
    }
    for t in all {
        assert_eq!(t.await.unwrap(), 25);
    }
    assert_eq!(CALLS.load(Ordering::SeqCst) - before, 1, "one execution");
    // from the cache, fast
    let t = Instant::now();
    let again: i64 = caller
        .exec("square", 5, CallOptions::new().id("five").ttl("1 minute"))
        .await
        .unwrap();
    assert_eq!(again, 25);
    assert!(t.elapsed() < Duration::from_millis(100), "read, not run");
    assert_eq!(CALLS.load(Ordering::SeqCst) - before, 1);
    // flushed: the next call runs it
    assert!(caller.flush("square", "five").await.unwrap());
    let _: i64 = caller
        .exec("square", 5, CallOptions::new().id("five").ttl("1 minute"))
        .await
        .unwrap();
    assert_eq!(CALLS.load(Ordering::SeqCst) - before, 2);
    // a ttl that ran out: runs again
    let _: i64 = caller
        .exec("square", 6, CallOptions::new().id("six").ttl("1 second"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _: i64 = caller
        .exec("square", 6, CallOptions::new().id("six").ttl("1 second"))
        .await
        .unwrap();
    assert_eq!(CALLS.load(Ordering::SeqCst) - before, 4);
    // a failed cached call is not cached: the next caller runs it again
    let before_fail = CALLS.load(Ordering::SeqCst);
    for _ in 0..2 {
        let e = caller
            .exec::<i64>("square", -2, CallOptions::new().id("neg").ttl("1 minute"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), 422);
    }
    assert_eq!(CALLS.load(Ordering::SeqCst) - before_fail, 2);
    // a bad ttl is refused before anything runs
    let e = caller
        .exec::<i64>("square", 1, CallOptions::new().id("x").ttl("a while"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), 422);
    service.stop().await;
}

#[tokio::test]
async fn a_cron_starts_once_however_often_it_is_started_and_runs_its_cycles() {
    let c = setup().await;
    let runs: Arc<Mutex<Vec<(Instant, Value)>>> = Arc::default();
    let seen = runs.clone();
    let mc = MeshCall::new(c).await.unwrap();
    mc.connect("tick", move |args: Value| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push((Instant::now(), args));
            Ok::<_, WorkerError>(json!({}))
        }
    })
    .await
    .unwrap();
    // ten starts at once: one cron
    let mut starts = vec![];
    for _ in 0..10 {
        let mc = mc.clone();
        starts.push(tokio::spawn(async move {
            mc.cron(
                "tick",
                "every-300ms",
                json!({"n": 1}),
                CronOptions::every("300ms").max_cycles(4),
            )
            .await
            .unwrap()
        }));
    }
    let mut started = 0;
    for s in starts {
        started += s.await.unwrap() as usize;
    }
    assert_eq!(started, 1, "one start won");
    let t0 = Instant::now();
    eventually(10, "four runs", || async {
        (runs.lock().unwrap().len() >= 4).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let r = runs.lock().unwrap().clone();
    assert_eq!(r.len(), 4, "max_cycles");
    assert_eq!(r[0].1, json!({"n": 1}));
    for w in r.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(gap >= Duration::from_millis(250), "{gap:?} apart");
    }
    assert!(t0.elapsed() >= Duration::from_millis(900));
    // ended: the same id starts again
    assert!(mc
        .cron(
            "tick",
            "every-300ms",
            json!({}),
            CronOptions::every("300ms").max_cycles(1)
        )
        .await
        .unwrap());
    mc.stop().await;
}

#[tokio::test]
async fn an_interrupted_cron_stops_and_a_restart_neither_misses_nor_doubles_runs() {
    let c = setup().await;
    let runs: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = runs.clone();
    let mc = MeshCall::new(c.clone()).await.unwrap();
    mc.connect("beat", move |_: Value| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(Instant::now());
            Ok::<_, WorkerError>(json!({}))
        }
    })
    .await
    .unwrap();
    assert!(mc
        .cron(
            "beat",
            "heart",
            json!({}),
            CronOptions::every("1 second").delay(Duration::ZERO)
        )
        .await
        .unwrap());
    eventually(10, "two beats", || async {
        (runs.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    // listed in hotmesh.crons, with its schedule and its next run
    let (topic, every, running, next_due): (String, f64, bool, bool) = sqlx::query_as(
        "SELECT topic, interval_seconds, running, next_run IS NOT NULL OR cycles IS NOT NULL
           FROM hotmesh.crons WHERE id = 'heart'",
    )
    .fetch_one(mc.hotmesh().pool())
    .await
    .unwrap();
    assert_eq!(
        (topic.as_str(), every, running, next_due),
        ("beat", 1.0, true, true)
    );
    // the server goes away for a while and comes back
    cluster("restart", &[]);
    let after = runs.lock().unwrap().len();
    eventually(20, "beats after the restart", || async {
        (runs.lock().unwrap().len() >= after + 3).then_some(())
    })
    .await;
    let r = runs.lock().unwrap().clone();
    for w in r.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(800),
            "no doubled run: {gap:?} apart in {r:?}"
        );
    }
    // stopped: no more beats
    let mc2 = MeshCall::new(c).await.unwrap();
    assert!(mc2.interrupt("beat", "heart").await.unwrap());
    let n = runs.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        runs.lock().unwrap().len() <= n + 1,
        "at most the run in flight"
    );
    assert!(
        !mc2.interrupt("beat", "heart").await.unwrap(),
        "not running"
    );
    let (running, cycles): (bool, f64) =
        sqlx::query_as("SELECT running, cycles::float8 FROM hotmesh.crons WHERE id = 'heart'")
            .fetch_one(mc2.hotmesh().pool())
            .await
            .unwrap();
    assert!(!running);
    assert!(cycles >= 5.0, "{cycles} runs counted");
    mc.stop().await;
}

#[tokio::test]
async fn sql_calls_the_linked_function_caches_and_schedules_crons() {
    let c = setup().await;
    let mc = MeshCall::new(c.clone()).await.unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    mc.connect("sql.square", move |n: i64| {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok::<_, WorkerError>(n * n)
        }
    })
    .await
    .unwrap();
    let p = mc.hotmesh().pool();
    // CALL hotmesh.exec: the result; cached by id and ttl (an interval)
    let call = |args: &'static str, options: &'static str| async move {
        let r: (Value,) =
            sqlx::query_as("CALL hotmesh.exec('sql.square', $1::jsonb, $2::jsonb, NULL)")
                .bind(args)
                .bind(options)
                .fetch_one(p)
                .await
                .unwrap();
        r.0
    };
    assert_eq!(call("7", "{}").await, json!(49));
    assert_eq!(
        call("8", r#"{"id": "eight", "ttl": "1 hour"}"#).await,
        json!(64)
    );
    assert_eq!(
        call("9", r#"{"id": "eight", "ttl": "1 hour"}"#).await,
        json!(64),
        "cached"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // a cron from SQL: idempotent, listed, stopped
    let started: bool = sqlx::query_scalar(
        "SELECT hotmesh.cron('sql.square', 'sq-cron', '200 milliseconds', '3', '{\"maxCycles\": 2}')",
    )
    .fetch_one(p)
    .await
    .unwrap();
    assert!(started);
    let again: bool =
        sqlx::query_scalar("SELECT hotmesh.cron('sql.square', 'sq-cron', '200 milliseconds', '3')")
            .fetch_one(p)
            .await
            .unwrap();
    assert!(!again, "runs already");
    // the runs are counted (in hotmesh.crons) once each run's answer has committed
    let (cycles, running) = eventually(10, "two cron runs counted, and the cron ended", || async {
        let r: (f64, bool) = sqlx::query_as(
            "SELECT cycles::float8, running FROM hotmesh.crons WHERE id = 'sq-cron'",
        )
        .fetch_one(p)
        .await
        .unwrap();
        (!r.1).then_some(r)
    })
    .await;
    assert_eq!(cycles, 2.0);
    assert!(!running, "max cycles reached");
    assert_eq!(runs.load(Ordering::SeqCst), 4, "two calls, two cron runs");
    let nightly: bool =
        sqlx::query_scalar("SELECT hotmesh.cron('sql.square', 'nightly', '0 0 * * *', '1')")
            .fetch_one(p)
            .await
            .unwrap();
    assert!(nightly);
    let stopped: bool = sqlx::query_scalar("SELECT hotmesh.cron_stop('nightly')")
        .fetch_one(p)
        .await
        .unwrap();
    assert!(stopped);
    let e = sqlx::query("SELECT hotmesh.cron('sql.square', 'bad', 'now and then')")
        .execute(p)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid argument every"), "{e}");
    mc.stop().await;
}

#[tokio::test]
async fn a_sql_function_answers_calls_and_crons_with_no_process() {
    let c = setup().await;
    exec(
        DB,
        "CREATE TABLE tally (n int);
         CREATE FUNCTION square(args jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT to_jsonb((args #>> '{}')::int * (args #>> '{}')::int) $$;
         CREATE FUNCTION tick(args jsonb) RETURNS jsonb LANGUAGE sql AS $$ INSERT INTO tally VALUES (1) RETURNING to_jsonb(n) $$;
         CREATE FUNCTION boom(args jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'boom: %', args; END $$;",
    )
    .await;
    let mc = MeshCall::new(c).await.unwrap();
    let p = mc.hotmesh().pool();
    for (topic, f) in [
        ("db.square", "square(jsonb)"),
        ("db.tick", "tick(jsonb)"),
        ("db.boom", "boom(jsonb)"),
    ] {
        let ok: bool = sqlx::query_scalar("SELECT hotmesh.connect_sql($1, $2::regprocedure)")
            .bind(topic)
            .bind(f)
            .fetch_one(p)
            .await
            .unwrap();
        assert!(ok);
    }
    // called from Rust and from SQL: answered inside the database
    let n: i64 = mc.exec("db.square", 12, CallOptions::new()).await.unwrap();
    assert_eq!(n, 144);
    let r: (Value,) = sqlx::query_as("CALL hotmesh.exec('db.square', '5', '{}', NULL)")
        .fetch_one(p)
        .await
        .unwrap();
    assert_eq!(r.0, json!(25));
    // a function that fails: its message, as the call's error; the next call is fine
    let e = mc
        .exec::<Value>("db.boom", "x", CallOptions::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("boom: \"x\""), "{e}");
    let n: i64 = mc.exec("db.square", 3, CallOptions::new()).await.unwrap();
    assert_eq!(n, 9);
    // a cron of a SQL function: nothing but the database runs it
    assert!(mc
        .cron(
            "db.tick",
            "ticks",
            json!({}),
            CronOptions::every("200ms").max_cycles(3)
        )
        .await
        .unwrap());
    eventually(10, "three ticks", || async {
        let n: i64 = scalar(DB, "SELECT count(*) FROM tally").await;
        (n == 3).then_some(())
    })
    .await;
    // a function of the wrong shape is refused
    exec(
        DB,
        "CREATE FUNCTION wrong(n int) RETURNS int LANGUAGE sql AS $$ SELECT n $$",
    )
    .await;
    let e = sqlx::query("SELECT hotmesh.connect_sql('db.wrong', 'wrong(int)'::regprocedure)")
        .execute(p)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("must take one jsonb and return one jsonb"),
        "{e}"
    );
    // connected by a role that is not a superuser: runs as that role, and cannot take
    // the engine worker's rights back
    exec(
        DB,
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mc_alice') THEN CREATE ROLE mc_alice LOGIN; END IF; END $$;
         GRANT EXECUTE ON FUNCTION hotmesh.connect_sql(text, regprocedure) TO mc_alice;
         CREATE FUNCTION whoami(args jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT to_jsonb(current_user::text) $$;
         CREATE FUNCTION escalate(args jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$ BEGIN SET ROLE postgres; RETURN to_jsonb(current_user::text); END $$;",
    )
    .await;
    let alice = sqlx::PgPool::connect(&url_for(DB).replace("postgres@", "mc_alice@"))
        .await
        .unwrap();
    for (topic, f) in [
        ("db.whoami", "whoami(jsonb)"),
        ("db.escalate", "escalate(jsonb)"),
    ] {
        sqlx::query("SELECT hotmesh.connect_sql($1, $2::regprocedure)")
            .bind(topic)
            .bind(f)
            .execute(&alice)
            .await
            .unwrap();
    }
    let who: String = mc
        .exec("db.whoami", json!({}), CallOptions::new())
        .await
        .unwrap();
    assert_eq!(who, "mc_alice");
    let e = mc
        .exec::<String>("db.escalate", json!({}), CallOptions::new())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("cannot set parameter \"role\""),
        "{e}"
    );
    let gone: bool = sqlx::query_scalar("SELECT hotmesh.disconnect_sql('db.square')")
        .fetch_one(p)
        .await
        .unwrap();
    assert!(gone);
}
