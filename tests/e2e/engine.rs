//! The engine end to end, where commits and other sessions matter: duplicate delivery,
//! a worker that dies mid-message, a server restart under load, the timer/signal race,
//! a stream of 202 answers, completion notifications, wake-ups of idle workers and
//! poison messages.

use hotmesh_tests::*;
use serde_json::{json, Value};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::Row;
use std::time::{Duration, Instant};

const DB: &str = "e2e_engine";

const APP: &str = r#"
app:
  id: e2e
  version: '1'
  graphs:
    - subscribes: three.start
      publishes: three.done
      expire: 300
      activities:
        t: { type: trigger }
        a: { type: worker, topic: e2e.step, input: { maps: { step: a, n: '{t.output.data.n}' } }, job: { maps: { a: '{$self.output.data.seen}' } } }
        b: { type: worker, topic: e2e.step, input: { maps: { step: b, n: '{t.output.data.n}' } }, job: { maps: { b: '{$self.output.data.seen}' } } }
        c: { type: worker, topic: e2e.step, input: { maps: { step: c, n: '{t.output.data.n}' } }, job: { maps: { c: '{$self.output.data.seen}' } } }
      transitions:
        t: [ { to: a } ]
        a: [ { to: b } ]
        b: [ { to: c } ]
    - subscribes: race.start
      expire: 300
      activities:
        r: { type: trigger, stats: { id: '{$self.input.data.id}' } }
        w:
          type: hook
          sleep: '{r.output.data.sleep}'
          job: { maps: { by: { '@pipe': [['{$self.hook.data.by}', 'timer'], ['{@conditional.nullish}']] } } }
      transitions:
        r: [ { to: w } ]
      hooks:
        race.signal:
          - to: w
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] }
    - subscribes: stream.start
      activities:
        s: { type: trigger }
        p: { type: worker, topic: e2e.stream, job: { maps: { last: '{$self.output.data.i}' } } }
        each: { type: hook, job: { maps: { count: { '@pipe': [['{$job.data.count}', 0], ['{@conditional.nullish}', 1], ['{@math.add}']] } } } }
      transitions:
        s: [ { to: p } ]
        p: [ { to: each, conditions: { code: 202 } } ]
    - subscribes: emit.start
      publishes: emit.done
      expire: 300
      activities:
        e0: { type: trigger }
        first: { type: worker, topic: e2e.emit, emit: true, job: { maps: { first: '{$self.output.data.v}' } } }
        second: { type: worker, topic: e2e.emit, job: { maps: { second: '{$self.output.data.v}' } } }
      transitions:
        e0: [ { to: first } ]
        first: [ { to: second } ]
    - subscribes: persist.start
      publishes: persist.done
      expire: 300
      activities:
        p0: { type: trigger }
        work: { type: worker, topic: e2e.emit, persist: true, job: { maps: { done: true } } }
        inbox: { type: hook, job: { maps: { closed: true } } }
      transitions:
        p0: [ { to: work }, { to: inbox } ]
      hooks:
        persist.signal:
          - to: inbox
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] }
"#;

async fn pool() -> PgPool {
    PgPoolOptions::new()
        .max_connections(8)
        .connect(&url_for(DB))
        .await
        .expect("pool")
}

async fn setup() -> PgPool {
    with_app(DB, APP, "e2e", "1", 8).await
}

async fn pub_job(p: &PgPool, topic: &str, data: Value) -> String {
    sqlx::query_scalar("SELECT hotmesh.pub($1, $2)")
        .bind(topic)
        .bind(data)
        .fetch_one(p)
        .await
        .unwrap()
}

/// One worker pass: dequeue up to `batch` messages of the step topic and answer each
/// with the step it saw. Returns how many it answered.
async fn work_once(p: &PgPool, batch: i32) -> Result<usize, sqlx::Error> {
    work_once_reserving(p, batch, 30.0).await
}

/// [`work_once`] with a reservation of `seconds`.
async fn work_once_reserving(p: &PgPool, batch: i32, seconds: f64) -> Result<usize, sqlx::Error> {
    let rows = sqlx::query("SELECT id, data FROM hotmesh.dequeue('e2e.step', $1, $2)")
        .bind(batch)
        .bind(seconds)
        .fetch_all(p)
        .await?;
    for r in &rows {
        let id: i64 = r.get(0);
        let data: Value = r.get(1);
        sqlx::query("SELECT hotmesh.respond($1, $2)")
            .bind(id)
            .bind(json!({"seen": data["step"]}))
            .execute(p)
            .await?;
    }
    Ok(rows.len())
}

async fn status(p: &PgPool, id: &str) -> i64 {
    sqlx::query_scalar("SELECT hotmesh.get_status($1)")
        .bind(id)
        .fetch_one(p)
        .await
        .unwrap()
}

/// A message answered twice (two workers raced after a reservation lapsed) is applied
/// once.
#[tokio::test]
async fn a_message_answered_twice_is_applied_once() {
    let p = &setup().await;
    let id = pub_job(p, "three.start", json!({"n": 1})).await;
    let first: i64 = sqlx::query_scalar("SELECT id FROM hotmesh.dequeue('e2e.step', 1, 0.2)")
        .fetch_one(p)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again: i64 = sqlx::query_scalar("SELECT id FROM hotmesh.dequeue('e2e.step', 1, 30)")
        .fetch_one(p)
        .await
        .unwrap();
    assert_eq!(first, again, "a lapsed reservation is delivered again");
    let (a, b) = tokio::join!(
        sqlx::query_scalar::<_, bool>("SELECT hotmesh.respond($1, '{\"seen\": \"x\"}')")
            .bind(first)
            .fetch_one(p),
        sqlx::query_scalar::<_, bool>("SELECT hotmesh.respond($1, '{\"seen\": \"y\"}')")
            .bind(first)
            .fetch_one(p),
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one answer is applied");
    let msgs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM hotmesh.worker_stream WHERE job_id = $1")
            .bind(&id)
            .fetch_one(p)
            .await
            .unwrap();
    assert_eq!(msgs, 1, "one next message (b), not two");
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM hotmesh.activities WHERE job_id = $1 AND activity_id = 'b'",
    )
    .bind(&id)
    .fetch_one(p)
    .await
    .unwrap();
    assert_eq!(rows, 1);
    while work_once(p, 10).await.unwrap() > 0 {}
    assert_eq!(status(p, &id).await, 0);
}

/// A worker connection that dies holding a message: the message comes back after its
/// reservation and completes once.
#[tokio::test]
async fn a_worker_that_dies_mid_message_loses_nothing() {
    let p = &setup().await;
    let id = pub_job(p, "three.start", json!({"n": 2})).await;
    {
        let mut doomed = connect(DB).await;
        let mid: i64 = sqlx::query_scalar("SELECT id FROM hotmesh.dequeue('e2e.step', 1, 0.5)")
            .fetch_one(&mut doomed)
            .await
            .unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut doomed)
            .await
            .unwrap();
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(p)
            .await
            .unwrap();
        let _ = mid;
    }
    let n = eventually(10, "the lapsed message is redelivered", || async {
        let n = work_once(p, 10).await.unwrap();
        (n > 0).then_some(n)
    })
    .await;
    assert_eq!(n, 1);
    while work_once(p, 10).await.unwrap() > 0 {}
    let data: Value = sqlx::query_scalar("SELECT data FROM hotmesh.jobs WHERE id = $1")
        .bind(&id)
        .fetch_one(p)
        .await
        .unwrap();
    assert_eq!(data, json!({"a": "a", "b": "b", "c": "c"}));
    let deliveries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM hotmesh.activities WHERE job_id = $1")
            .bind(&id)
            .fetch_one(p)
            .await
            .unwrap();
    assert_eq!(deliveries, 4, "trigger and three workers, once each");
}

/// Completion: one notification on the job's channel and the publishes channel, at
/// commit, naming the job and its status but carrying none of its data (any role may
/// LISTEN): the data is read from the job.
#[tokio::test]
async fn completion_is_announced_once() {
    let p = &setup().await;
    let mut l = PgListener::connect(&url_for(DB)).await.unwrap();
    l.listen("three.done").await.unwrap();
    let id = pub_job(p, "three.start", json!({"n": 3})).await;
    l.listen(&format!("three.done.{id}")).await.unwrap();
    while work_once(p, 10).await.unwrap() > 0 {}
    let mut got = vec![];
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < 2 && Instant::now() < deadline {
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), l.recv()).await {
            got.push((
                n.channel().to_string(),
                serde_json::from_str::<Value>(n.payload()).unwrap(),
            ));
        }
    }
    assert_eq!(got.len(), 2, "{got:?}");
    for (ch, payload) in &got {
        assert!(ch == "three.done" || *ch == format!("three.done.{id}"));
        assert_eq!(payload["type"], "job");
        assert_eq!(payload["job"]["metadata"]["jid"], id.as_str());
        assert_eq!(payload["job"]["metadata"]["js"], 0);
        assert_eq!(payload["_ref"], true);
        assert!(payload["job"]["data"].is_null(), "no job data: {payload}");
    }
    assert_eq!(job_data(p, &id).await["c"], "c");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), l.recv())
            .await
            .is_err(),
        "nothing more"
    );
}

/// Answers the one waiting `e2e.emit` message of job `id` with `{v}`.
async fn answer_emit(p: &PgPool, id: &str, v: i64) {
    let m: i64 =
        sqlx::query_scalar("SELECT id FROM hotmesh.dequeue('e2e.emit', 10) WHERE job_id = $1")
            .bind(id)
            .fetch_one(p)
            .await
            .unwrap();
    sqlx::query("SELECT hotmesh.respond($1, $2)")
        .bind(m)
        .bind(json!({ "v": v }))
        .execute(p)
        .await
        .unwrap();
}

/// The job's data, as `hotmesh.get_state` reads it.
async fn job_data(p: &PgPool, id: &str) -> Value {
    let s: Value = sqlx::query_scalar("SELECT hotmesh.get_state(NULL, $1)")
        .bind(id)
        .fetch_one(p)
        .await
        .unwrap();
    s["data"].clone()
}

/// The next notification's payload on `l`'s channels (None after 2 s).
async fn next_payload(l: &mut PgListener) -> Option<Value> {
    match tokio::time::timeout(Duration::from_secs(2), l.recv()).await {
        Ok(Ok(n)) => Some(serde_json::from_str(n.payload()).unwrap()),
        _ => None,
    }
}

/// `emit`: the job's state is announced when the activity finishes, while the job
/// runs on; the end is announced again. `persist`: completion is announced and the
/// expiry starts while a hook keeps the job open.
#[tokio::test]
async fn emit_and_persist_announce_early() {
    let p = &setup().await;
    let mut l = PgListener::connect(&url_for(DB)).await.unwrap();
    l.listen("emit.done").await.unwrap();
    let id = pub_job(p, "emit.start", json!({})).await;
    answer_emit(p, &id, 1).await;
    let interim = next_payload(&mut l).await.expect("the emit");
    assert_eq!(interim["job"]["metadata"]["jid"], id.as_str());
    assert!(interim["job"]["data"].is_null(), "{interim}");
    assert_eq!(job_data(p, &id).await["first"], 1);
    assert!(
        interim["job"]["metadata"]["js"].as_i64().unwrap() > 0,
        "{interim}"
    );
    assert!(status(p, &id).await > 0, "the job runs on");
    answer_emit(p, &id, 2).await;
    let end = next_payload(&mut l).await.expect("the end");
    assert_eq!(job_data(p, &id).await["second"], 2);
    assert_eq!(end["job"]["metadata"]["js"], 0);
    assert!(
        next_payload(&mut l).await.is_none(),
        "two announcements, no more"
    );

    l.listen("persist.done").await.unwrap();
    let id = pub_job(p, "persist.start", json!({})).await;
    answer_emit(p, &id, 1).await;
    let done = next_payload(&mut l).await.expect("the persist");
    assert_eq!(done["job"]["metadata"]["jid"], id.as_str());
    assert_eq!(job_data(p, &id).await["done"], true);
    let (st, expiring): (i32, bool) =
        sqlx::query_as("SELECT status, expired_at IS NOT NULL FROM hotmesh.jobs WHERE id = $1")
            .bind(&id)
            .fetch_one(p)
            .await
            .unwrap();
    assert!(
        st > 0 && expiring,
        "open (status {st}) and expiring ({expiring})"
    );
    sqlx::query("SELECT hotmesh.signal('persist.signal', $1)")
        .bind(json!({ "id": id }))
        .execute(p)
        .await
        .unwrap();
    let end = next_payload(&mut l).await.expect("the end");
    assert_eq!(end["job"]["metadata"]["jid"], id.as_str());
    assert_eq!(job_data(p, &id).await["closed"], true);
    assert_eq!(status(p, &id).await, 0);
}

/// A worker listening on its topic's channel hears of new work at commit.
#[tokio::test]
async fn idle_workers_are_woken() {
    let p = &setup().await;
    let mut l = PgListener::connect(&url_for(DB)).await.unwrap();
    l.listen("hotmesh.work.e2e.step").await.unwrap();
    let t0 = Instant::now();
    pub_job(p, "three.start", json!({"n": 4})).await;
    let n = tokio::time::timeout(Duration::from_secs(2), l.recv())
        .await
        .expect("woken")
        .unwrap();
    assert_eq!(n.payload(), "e2e.step");
    assert!(t0.elapsed() < Duration::from_secs(1));
    // the start's commit left the notification in the relay and the engine worker sent
    // it: the notifying commit never waited for the notification lock
    let engine: i32 =
        sqlx::query_scalar("SELECT pid FROM hotmesh.workers() WHERE database = current_database()")
            .fetch_one(p)
            .await
            .unwrap();
    assert_eq!(
        n.process_id() as i64,
        engine as i64,
        "sent by the engine worker"
    );
    while work_once(p, 10).await.unwrap() > 0 {}
    // the answers' own notifications, sent after them
    while tokio::time::timeout(Duration::from_millis(300), l.recv())
        .await
        .is_ok()
    {}
    // a start that rolls back wakes nobody
    let mut tx = p.begin().await.unwrap();
    sqlx::query("SELECT hotmesh.pub('three.start', '{\"n\": 5}')")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(700), l.recv())
            .await
            .is_err(),
        "no notification for a start that rolled back"
    );
}

/// A hook waiting for a signal with a timeout: whichever comes first wins, exactly
/// once, however close the two are.
#[tokio::test]
async fn a_timer_and_a_signal_race_and_one_wins() {
    let p = &setup().await;
    let mut ids = vec![];
    for i in 0..20 {
        let id = format!("race-{i}");
        pub_job(p, "race.start", json!({"id": id, "sleep": 0.3})).await;
        ids.push(id);
    }
    tokio::time::sleep(Duration::from_millis(290)).await;
    for (i, id) in ids.iter().enumerate() {
        if i % 2 == 0 {
            sqlx::query("SELECT hotmesh.signal('race.signal', $1)")
                .bind(json!({"id": id, "by": "signal"}))
                .execute(p)
                .await
                .unwrap();
        }
    }
    for id in &ids {
        let s: Value = sqlx::query_scalar("SELECT hotmesh.wait_for_job($1, 5000)")
            .bind(id)
            .fetch_one(p)
            .await
            .unwrap();
        let by = s["data"]["by"].as_str().unwrap().to_string();
        assert!(by == "timer" || by == "signal", "{s}");
        assert_eq!(s["metadata"]["js"], 0, "completed exactly once: {s}");
        // a timer row that a router batch held when the signal won is removed when the
        // router comes to it
        eventually(5, "the loser left nothing behind", || async {
            let open: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM hotmesh.engine_stream WHERE job_id = $1) + (SELECT count(*) FROM hotmesh.signal_hooks WHERE job_id = $1)",
            )
            .bind(id)
            .fetch_one(p)
            .await
            .unwrap();
            (open == 0).then_some(())
        })
        .await;
    }
}

/// 50 answers with 202 keep the activity open; each runs the 202 branch once; a final
/// 200 closes it.
#[tokio::test]
async fn a_stream_of_202_answers_runs_each_branch() {
    let p = &setup().await;
    let id = pub_job(p, "stream.start", json!({})).await;
    let mid: i64 = sqlx::query_scalar("SELECT id FROM hotmesh.dequeue('e2e.stream', 1, 30)")
        .fetch_one(p)
        .await
        .unwrap();
    for i in 0..50 {
        let ok: bool = sqlx::query_scalar("SELECT hotmesh.respond($1, $2, 'pending')")
            .bind(mid)
            .bind(json!({"i": i}))
            .fetch_one(p)
            .await
            .unwrap();
        assert!(ok);
    }
    assert!(status(p, &id).await > 0);
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM hotmesh.dequeue('e2e.stream', 1, 30)")
        .fetch_one(p)
        .await
        .unwrap();
    assert_eq!(none, 0, "a parked message is not handed out again");
    sqlx::query("SELECT hotmesh.respond($1, '{\"i\": 50}')")
        .bind(mid)
        .execute(p)
        .await
        .unwrap();
    let data: Value = sqlx::query_scalar("SELECT data FROM hotmesh.jobs WHERE id = $1")
        .bind(&id)
        .fetch_one(p)
        .await
        .unwrap();
    assert_eq!(data, json!({"last": 50, "count": 50}));
    assert_eq!(status(p, &id).await, 0);
}

/// A message whose worker keeps dying is dead-lettered and the activity hears 999.
#[tokio::test]
async fn poison_is_dead_lettered() {
    let p = &setup().await;
    let id = pub_job(p, "three.start", json!({"n": 5})).await;
    for _ in 0..5 {
        eventually(5, "the message again", || async {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM hotmesh.dequeue('e2e.step', 1, 0.1)")
                    .fetch_one(p)
                    .await
                    .unwrap();
            (n == 1).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // the activity gets the error; its unconditional transition goes on (as the original)
    let err: Value = eventually(20, "the activity fails with 999", || async {
        sqlx::query_scalar::<_, Option<Value>>(
            "SELECT error FROM hotmesh.activities WHERE job_id = $1 AND activity_id = 'a'",
        )
        .bind(&id)
        .fetch_one(p)
        .await
        .unwrap()
    })
    .await;
    assert_eq!(err["code"], 999, "{err}");
    let dead: i64 =
        sqlx::query_scalar("SELECT count(*) FROM hotmesh.dead_letters WHERE job_id = $1")
            .bind(&id)
            .fetch_one(p)
            .await
            .unwrap();
    assert_eq!(dead, 1);
    while work_once(p, 10).await.unwrap() > 0 {}
}

/// The server restarts while 200 workflows run: every job completes exactly once with
/// its data intact.
#[tokio::test]
async fn restart_under_load() {
    setup().await;
    let p = pool().await;
    let mut ids = vec![];
    for n in 0..200 {
        ids.push(pub_job(&p, "three.start", json!({"n": n})).await);
    }
    p.close().await;
    // A batch dequeued before the restart whose answers the restart cut off stays
    // reserved until its reservation lapses (2 s here), then comes again: the worker goes
    // on until every job has ended, not until it sees nothing to do.
    let all = ids.clone();
    let worker = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut p = pool().await;
        while Instant::now() < deadline {
            match work_once_reserving(&p, 20, 2.0).await {
                Ok(0) => {
                    let ended: Result<i64, _> = sqlx::query_scalar(
                        "SELECT count(*) FROM hotmesh.jobs WHERE id = ANY($1) AND status = 0",
                    )
                    .bind(&all)
                    .fetch_one(&p)
                    .await;
                    if ended.ok() == Some(all.len() as i64) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(_) => {}
                Err(_) => {
                    // the server went away: reconnect and go on
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if let Ok(np) = PgPoolOptions::new()
                        .max_connections(8)
                        .connect(&url_for(DB))
                        .await
                    {
                        p = np;
                    }
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster("restart", &[]);
    worker.await.unwrap();
    let p = pool().await;
    for (n, id) in ids.iter().enumerate() {
        let s: Value = sqlx::query_scalar("SELECT hotmesh.wait_for_job($1, 30000)")
            .bind(id)
            .fetch_one(&p)
            .await
            .unwrap();
        assert_eq!(s["metadata"]["js"], 0, "job {n}: {s}");
        assert_eq!(s["data"], json!({"a": "a", "b": "b", "c": "c"}), "job {n}");
    }
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM hotmesh.activities a JOIN unnest($1::text[]) i ON i = a.job_id",
    )
    .bind(&ids)
    .fetch_one(&p)
    .await
    .unwrap();
    assert_eq!(rows, 200 * 4, "each step applied once");
}
