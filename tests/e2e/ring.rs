//! Retention by a ring of partitions (sql/engine.sql, src/store/ring.rs): jobs and their
//! activity rows live in eight parts; a turn empties the next part with TRUNCATE after
//! moving the jobs in it that are still within their retention. Nothing a turn moves is
//! lost or changed, whatever runs at the time.

use hotmesh_tests::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const APP: &str = r#"
app:
  id: ring
  version: '1'
  graphs:
    - subscribes: ring.start
      publishes: ring.done
      expire: 600
      activities:
        t: { type: trigger }
        a: { type: worker, topic: ring.step, input: { maps: { n: '{t.output.data.n}' } },
             job: { maps: { a: '{$self.output.data.n}' } } }
        b: { type: worker, topic: ring.step, input: { maps: { n: '{a.output.data.n}' } },
             job: { maps: { b: '{$self.output.data.n}' } } }
        h: { type: hook, job: { maps: { said: '{$self.hook.data.said}' } } }
      transitions:
        t: [ { to: a } ]
        a: [ { to: b } ]
        b: [ { to: h } ]
      hooks:
        ring.say: [ { to: h, conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] } } ]
"#;

async fn current(db: &str) -> i16 {
    scalar(db, "SELECT current FROM hotmesh.ring").await
}

/// Answers every `ring.step` message with its input `n` (doubled), until `stop`.
async fn answer_steps(p: sqlx::PgPool, stop: Arc<AtomicBool>, answered: Arc<AtomicUsize>) {
    while !stop.load(Ordering::Relaxed) {
        let got: Vec<(i64, i64, serde_json::Value)> = sqlx::query_as(
            "SELECT id, reservation, data FROM hotmesh.dequeue('ring.step', 20, 30)",
        )
        .fetch_all(&p)
        .await
        .unwrap();
        if got.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let ids: Vec<i64> = got.iter().map(|g| g.0).collect();
        let reservations: Vec<i64> = got.iter().map(|g| g.1).collect();
        let data: Vec<serde_json::Value> = got
            .iter()
            .map(|g| json!({ "n": g.2["n"].as_i64().unwrap_or(0) * 2 }))
            .collect();
        let n = ids.len();
        sqlx::query("SELECT hotmesh.respond_batch($1, $2, NULL, NULL, $3)")
            .bind(&ids)
            .bind(&data)
            .bind(&reservations)
            .execute(&p)
            .await
            .unwrap();
        answered.fetch_add(n, Ordering::Relaxed);
    }
}

/// Starts `n` workflows with ids `<prefix>-<i>` and input `n: i`; returns the ids.
async fn start(p: &sqlx::PgPool, prefix: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        sqlx::query("SELECT hotmesh.pub('ring.start', $1, $2)")
            .bind(json!({ "n": i }))
            .bind(json!({ "id": id }))
            .execute(p)
            .await
            .unwrap();
    }
    ids
}

/// Signals the hook of every job in `ids`, then waits for each to complete; returns
/// their states.
async fn finish(p: &sqlx::PgPool, ids: &[String]) -> Vec<serde_json::Value> {
    for id in ids {
        eventually(60, "the job waits at its hook", || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM hotmesh.signal_hooks WHERE job_id = $1 AND topic = 'ring.say'",
            )
            .bind(id)
            .fetch_one(p)
            .await
            .unwrap();
            (n == 1).then_some(())
        })
        .await;
        sqlx::query("SELECT hotmesh.signal('ring.say', $1)")
            .bind(json!({ "id": id, "said": format!("hi {id}") }))
            .execute(p)
            .await
            .unwrap();
    }
    let mut out = vec![];
    for id in ids {
        let state: serde_json::Value = sqlx::query_scalar("SELECT hotmesh.wait_for_job($1, 30000)")
            .bind(id)
            .fetch_one(p)
            .await
            .unwrap();
        out.push(state);
    }
    out
}

#[tokio::test]
async fn a_turn_truncates_jobs_past_retention_and_moves_the_others_with_their_rows() {
    const DB: &str = "e2e_ring_turn";
    let p = with_app(DB, APP, "ring", "1", 8).await;
    let here = current(DB).await;
    let next = (here + 1) % 8;
    // the next part: jobs past the 7-day retention (with activity rows, a hook
    // registration and a stats row), and jobs expired a day ago (kept: within retention)
    for sql in [
        format!(
            "INSERT INTO hotmesh.jobs (id, gid, app_id, version, topic, status, created_at, completed_at, expired_at, part)
             SELECT 'gone-' || i, 'g', 'ring', '1', 'ring.start', 0, now() - interval '9 days',
                    now() - interval '9 days', now() - interval '8 days', {next} FROM generate_series(1, 1000) i"
        ),
        format!(
            "INSERT INTO hotmesh.jobs (id, gid, app_id, version, topic, status, data, created_at, completed_at, expired_at, part)
             SELECT 'kept-' || i, 'g', 'ring', '1', 'ring.start', 0, jsonb_build_object('i', i), now() - interval '2 days',
                    now() - interval '2 days', now() - interval '1 day', {next} FROM generate_series(1, 100) i"
        ),
        format!(
            "INSERT INTO hotmesh.activities (job_id, activity_id, dad, type, status, output, part)
             SELECT j.id, a, ',0', 'worker', 'done', jsonb_build_object('of', j.id), {next}
               FROM hotmesh.jobs j, unnest(ARRAY['t', 'a']) a WHERE j.part = {next}"
        ),
        "INSERT INTO hotmesh.signal_hooks (app_id, topic, key, job_id, gid, activity_id, dad, expires_at)
         VALUES ('ring', 'ring.say', 'gone-1', 'gone-1', 'g', 'h', ',0', 'infinity')"
            .to_string(),
        "INSERT INTO hotmesh.stats (app_id, key, bucket, measure, target, job_id)
         VALUES ('ring', 'k', '0', 'count', '', 'gone-1'), ('ring', 'k', '0', 'count', '', 'kept-1')"
            .to_string(),
    ] {
        sqlx::query(&sql).execute(&p).await.unwrap();
    }
    // workflows of our own, running in the current part
    let ids = start(&p, "live", 20).await;
    let placed: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM hotmesh.jobs_p{here} WHERE id LIKE 'live-%'"
    ))
    .fetch_one(&p)
    .await
    .unwrap();
    assert_eq!(placed, 20, "new jobs go into the current part");
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let worker = tokio::spawn(answer_steps(p.clone(), stop.clone(), answered.clone()));

    let turned: bool = sqlx::query_scalar("SELECT hotmesh.turn_ring(true)")
        .fetch_one(&p)
        .await
        .unwrap();
    assert!(turned);
    assert_eq!(current(DB).await, next, "the next part is current");
    let count = |sql: &'static str| {
        let p = p.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&p)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM hotmesh.jobs WHERE id LIKE 'gone-%'").await,
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM hotmesh.activities WHERE job_id LIKE 'gone-%'").await,
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM hotmesh.signal_hooks WHERE job_id = 'gone-1'").await,
        0,
        "the hooks of the jobs that leave go with them"
    );
    assert_eq!(
        count("SELECT count(*) FROM hotmesh.stats WHERE job_id LIKE 'gone-%'").await,
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM hotmesh.stats WHERE job_id = 'kept-1'").await,
        1
    );
    let kept: (i64, i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*), count(*) FILTER (WHERE part = {here}), sum((data->>'i')::int)
           FROM hotmesh.jobs WHERE id LIKE 'kept-%'"
    ))
    .fetch_one(&p)
    .await
    .unwrap();
    assert_eq!(
        kept,
        (100, 100, 5050),
        "jobs within retention moved to the part before, unchanged"
    );
    let rows: (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*), count(*) FILTER (WHERE part = {here} AND output->>'of' = job_id)
           FROM hotmesh.activities WHERE job_id LIKE 'kept-%'"
    ))
    .fetch_one(&p)
    .await
    .unwrap();
    assert_eq!(rows, (200, 200), "their activity rows moved with them");

    // seven more turns bring the live jobs' part round: they move, and run on
    for _ in 0..7 {
        sqlx::query("SELECT hotmesh.turn_ring(true)")
            .execute(&p)
            .await
            .unwrap();
    }
    assert_eq!(current(DB).await, here);
    let live_parts: Vec<i16> =
        sqlx::query_scalar("SELECT DISTINCT part FROM hotmesh.jobs WHERE id LIKE 'live-%'")
            .fetch_all(&p)
            .await
            .unwrap();
    assert_eq!(
        live_parts,
        vec![(here + 7) % 8],
        "moved once, to the part before"
    );
    let states = finish(&p, &ids).await;
    stop.store(true, Ordering::Relaxed);
    worker.await.unwrap();
    for (i, s) in states.iter().enumerate() {
        assert_eq!(s["data"]["a"], json!(i as i64 * 2), "{s}");
        assert_eq!(s["data"]["b"], json!(i as i64 * 4), "{s}");
        assert_eq!(s["data"]["said"], json!(format!("hi live-{i}")), "{s}");
    }
    assert_eq!(answered.load(Ordering::Relaxed), 40);
    let turns: i64 = scalar(DB, "SELECT turns FROM hotmesh.ring").await;
    assert_eq!(turns, 8);
    p.close().await;
    exec("postgres", &format!("DROP DATABASE {DB} WITH (FORCE)")).await;
}

#[tokio::test]
async fn workflows_finish_once_each_while_the_ring_turns_under_them() {
    const DB: &str = "e2e_ring_load";
    const WORKFLOWS: usize = 300;
    let p = with_app(DB, APP, "ring", "1", 16).await;
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(answer_steps(p.clone(), stop.clone(), answered.clone())))
        .collect();
    // turns as fast as they come: each moves every job of the part it empties
    let turning = {
        let p = p.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut turns, mut refused) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                match sqlx::query("SELECT hotmesh.turn_ring(true)")
                    .execute(&p)
                    .await
                {
                    Ok(_) => turns += 1,
                    // a lock not had within 200 ms: the turn gives up, and is tried again
                    Err(e) if e.to_string().contains("lock timeout") => refused += 1,
                    Err(e) => panic!("turn: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (turns, refused)
        })
    };
    let started = Instant::now();
    let ids = start(&p, "w", WORKFLOWS).await;
    let states = finish(&p, &ids).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (turns, refused) = turning.await.unwrap();
    for (i, s) in states.iter().enumerate() {
        assert_eq!(s["data"]["a"], json!(i as i64 * 2), "{s}");
        assert_eq!(s["data"]["b"], json!(i as i64 * 4), "{s}");
        assert_eq!(s["data"]["said"], json!(format!("hi w-{i}")), "{s}");
    }
    assert_eq!(
        answered.load(Ordering::Relaxed),
        2 * WORKFLOWS,
        "each worker step answered once"
    );
    let twice: i64 = scalar(
        DB,
        "SELECT count(*) FROM (SELECT id FROM hotmesh.jobs GROUP BY id HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(twice, 0, "no job in two parts");
    let rows: i64 = scalar(
        DB,
        "SELECT count(*) FROM hotmesh.activities a JOIN hotmesh.jobs j ON j.id = a.job_id AND j.part = a.part
          WHERE j.id LIKE 'w-%' AND a.status = 'done'",
    )
    .await;
    assert_eq!(
        rows,
        4 * WORKFLOWS as i64,
        "every activity row done, in its job's part"
    );
    assert!(
        turns >= 8,
        "the ring went round at least once ({turns} turns)"
    );
    eprintln!(
        "{WORKFLOWS} workflows in {:.1} s through {turns} turns ({refused} gave up on a lock)",
        started.elapsed().as_secs_f64()
    );
    p.close().await;
    exec("postgres", &format!("DROP DATABASE {DB} WITH (FORCE)")).await;
}
