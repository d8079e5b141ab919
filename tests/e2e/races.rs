//! Races between sessions, where lock order matters: signals that arrive while their
//! hooks' timers come due, answers to messages of a job being interrupted. Every path
//! takes the job row first, so none of these may deadlock or lose a step.

use hotmesh_tests::*;
use serde_json::{json, Value};
use sqlx::postgres::PgPool;
use sqlx::Row;
use std::time::Duration;

const DB: &str = "e2e_races";

const APP: &str = r#"
app:
  id: races
  version: '1'
  graphs:
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
    - subscribes: slow.start
      expire: 300
      activities:
        s: { type: trigger, stats: { id: '{$self.input.data.id}' } }
        work: { type: worker, topic: races.slow, job: { maps: { done: true } } }
      transitions:
        s: [ { to: work } ]
"#;

async fn setup() -> PgPool {
    with_app(DB, APP, "races", "1", 24).await
}

/// Deadlocks the server detected in this test's database (the engine worker's count
/// reaches the statistics within its next report, about a second).
async fn deadlocks(p: &PgPool) -> i64 {
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(p)
        .await
        .unwrap();
    sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = $1")
        .bind(DB)
        .fetch_one(p)
        .await
        .unwrap()
}

/// Rounds of 20 jobs whose hook timers come due while 20 sessions signal them: every
/// signal call succeeds, every job ends exactly once (by the timer or by the signal),
/// the loser leaves nothing behind, and the server detects no deadlock.
#[tokio::test]
async fn signals_racing_due_timers_never_deadlock() {
    let p = setup().await;
    let before = deadlocks(&p).await;
    let log_from = log_size();
    for round in 0..8 {
        let ids: Vec<String> = (0..20).map(|i| format!("r{round}-{i}")).collect();
        let mut tx = p.begin().await.unwrap();
        for id in &ids {
            sqlx::query("SELECT hotmesh.pub('race.start', $1)")
                .bind(json!({"id": id, "sleep": 0.5}))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let due = tokio::time::Instant::now() + Duration::from_millis(500);
        // the signals arrive spread over the moment the timers come due, one session each
        let sends = ids.iter().enumerate().map(|(i, id)| {
            let p = p.clone();
            let id = id.clone();
            let at = due + Duration::from_millis(i as u64 * 2) - Duration::from_millis(20);
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                sqlx::query("SELECT hotmesh.signal('race.signal', $1)")
                    .bind(json!({"id": id, "by": "signal"}))
                    .execute(&p)
                    .await
            })
        });
        for s in futures_join(sends).await {
            s.expect("signal call succeeds (no 40P01)");
        }
        for id in &ids {
            let s: Value = sqlx::query_scalar("SELECT hotmesh.wait_for_job($1, 5000)")
                .bind(id)
                .fetch_one(&p)
                .await
                .unwrap();
            let by = s["data"]["by"].as_str().unwrap_or_default();
            assert!(by == "timer" || by == "signal", "{s}");
            assert_eq!(s["metadata"]["js"], 0, "ended exactly once: {s}");
            // a timer row that a router batch held when the signal won is removed when
            // the router comes to it
            eventually(
                5,
                &format!("the loser left nothing behind ({id})"),
                || async {
                    let left: i64 = sqlx::query_scalar(
                        "SELECT (SELECT count(*) FROM hotmesh.engine_stream WHERE job_id = $1)
                          + (SELECT count(*) FROM hotmesh.signal_hooks WHERE job_id = $1)",
                    )
                    .bind(id)
                    .fetch_one(&p)
                    .await
                    .unwrap();
                    (left == 0).then_some(())
                },
            )
            .await;
        }
    }
    // the engine worker reports its statistics within about a second
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let logged = log_lines_since(log_from, "deadlock detected");
    assert!(
        logged.is_empty(),
        "deadlocks in the server log:\n{}",
        logged.join("\n")
    );
    assert_eq!(deadlocks(&p).await, before, "the server detected deadlocks");
}

/// A worker reserved a message, then the job was interrupted: the message is gone or
/// fenced, and the late answer returns false and changes nothing.
#[tokio::test]
async fn an_answer_after_an_interrupt_is_refused() {
    let p = setup().await;
    sqlx::query("SELECT hotmesh.pub('slow.start', $1)")
        .bind(json!({"id": "slow-1"}))
        .execute(&p)
        .await
        .unwrap();
    // the worker holds its dequeue transaction open while it works, as some do
    let mut worker = p.begin().await.unwrap();
    let row = sqlx::query("SELECT id FROM hotmesh.dequeue('races.slow', 1, 30)")
        .fetch_one(&mut *worker)
        .await
        .unwrap();
    let msg: i64 = row.get(0);
    let interrupted: bool = sqlx::query_scalar("SELECT hotmesh.interrupt('slow.start', 'slow-1')")
        .fetch_one(&p)
        .await
        .unwrap();
    assert!(interrupted);
    let answered: bool = sqlx::query_scalar("SELECT hotmesh.respond($1, '{\"late\": true}')")
        .bind(msg)
        .fetch_one(&mut *worker)
        .await
        .unwrap();
    worker.commit().await.unwrap();
    assert!(!answered, "an answer to an interrupted job is refused");
    let s: Value = sqlx::query_scalar("SELECT hotmesh.get_state('slow.start', 'slow-1')")
        .fetch_one(&p)
        .await
        .unwrap();
    assert!(s["data"].get("done").is_none(), "{s}");
    assert!(s["metadata"]["js"].as_i64().unwrap() < -100_000_000, "{s}");
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM hotmesh.worker_stream WHERE job_id = 'slow-1'")
            .fetch_one(&p)
            .await
            .unwrap();
    assert_eq!(left, 0, "the fenced message is removed");
}

/// A message reserved (and committed) before the interrupt: the interrupt removes it,
/// and the late answer returns false.
#[tokio::test]
async fn a_reserved_message_does_not_survive_an_interrupt() {
    let p = setup().await;
    sqlx::query("SELECT hotmesh.pub('slow.start', $1)")
        .bind(json!({"id": "slow-2"}))
        .execute(&p)
        .await
        .unwrap();
    let msg: i64 = sqlx::query_scalar("SELECT id FROM hotmesh.dequeue('races.slow', 1, 30)")
        .fetch_one(&p)
        .await
        .unwrap();
    sqlx::query("SELECT hotmesh.interrupt('slow.start', 'slow-2')")
        .execute(&p)
        .await
        .unwrap();
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM hotmesh.worker_stream WHERE job_id = 'slow-2'")
            .fetch_one(&p)
            .await
            .unwrap();
    assert_eq!(left, 0, "the reserved message is removed by the interrupt");
    let answered: bool = sqlx::query_scalar("SELECT hotmesh.respond($1)")
        .bind(msg)
        .fetch_one(&p)
        .await
        .unwrap();
    assert!(!answered);
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = vec![];
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
