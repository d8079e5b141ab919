//! The worker protocol, in SQL: `dequeue` reserves messages of a topic (SKIP LOCKED,
//! with a visibility timeout); `respond` applies the answer as the activity's Leg 2 in
//! the same transaction; `retry`, `fail` and `heartbeat` do what they say. A reservation
//! that lapses makes the message available again; one handed out too often without an
//! answer is dead-lettered and the job hears code 999.

use super::spi::{with_engine, Engine, Kind, Status, Work};
use super::{db, ring, state};
use hotmesh_engine::retry::{Policy, POISON_DELIVERIES};
use hotmesh_engine::status;
use hotmesh_engine::stream::{on_answer, on_retry, Disposition, DEAD_LETTERED};
use pgrx::JsonB;
use serde_json::{json, Value};
use std::collections::HashMap;

/// A worker message as the engine needs it to answer.
struct Message {
    job_id: String,
    gid: String,
    aid: String,
    dad: String,
    attempt: i32,
    policy: Policy,
}

/// "Not dead-lettered", for the statements that find messages by id or by job. Said as
/// a CASE so that the planner cannot prove the partial indexes' predicate
/// (`dead_lettered_at IS NULL`) from it. Where it can, it may read `worker_stream_ready`
/// or `worker_stream_due` whole to find the id: planned on an empty queue, that costs
/// the same as the primary key, the plan is cached, and with a backlog every answer
/// read the whole index (seen: 90 buffers for one message of 1,100). Reads of a queue
/// in order (`dequeue`, the router's) say `dead_lettered_at IS NULL`: they want those
/// indexes.
macro_rules! not_dead_lettered {
    () => {
        "CASE WHEN dead_lettered_at IS NULL THEN true ELSE false END"
    };
}
pub(crate) use not_dead_lettered;

/// The message's columns the engine reads (`load`, `take`, `take_all`), of the stream
/// as `w`.
macro_rules! message_columns {
    () => {
        "w.job_id, w.gid, w.activity_id, w.dad, w.attempt, w.max_attempts, w.backoff_coefficient, w.maximum_interval,
         w.initial_interval, w.retry_codes"
    };
}

/// Reads a message and locks it. The job row is locked first (by
/// [`Engine::lock_message`]), then the message: the same order as every other path, so
/// answers and interrupts cannot deadlock.
fn load(engine: &mut Engine, id: i64, reservation: Option<i64>) -> Option<Message> {
    lock_running(engine, id)?;
    db::query(
        concat!(
            "SELECT ",
            message_columns!(),
            " FROM hotmesh.worker_stream w WHERE id = $1 AND ",
            not_dead_lettered!(),
            " AND ($2::int8 IS NULL OR reservation = $2) FOR UPDATE"
        ),
        &[id.into(), reservation.into()],
        read_message,
    )
}

/// Like [`load`], and removes the message, in one statement: the job row is read and
/// locked first (a materialized CTE that the `DELETE` waits for: the same lock order as
/// every other path), then the message is deleted and returned. The common answer's
/// first statement.
fn take(engine: &mut Engine, id: i64, reservation: Option<i64>) -> Option<Message> {
    static SQL: &str = concat!(
        "WITH j AS MATERIALIZED (",
        state::job_of_message!(),
        "),
         m AS (DELETE FROM hotmesh.worker_stream w WHERE id = $1 AND ",
        not_dead_lettered!(),
        " AND ($2::int8 IS NULL OR reservation = $2) AND EXISTS (SELECT FROM j)
               RETURNING ",
        message_columns!(),
        ")
         SELECT j.*, m.* FROM j LEFT JOIN m ON true"
    );
    let (job, part, message) = ring::locate(|part| {
        db::query(
            ring::sql(SQL, part),
            &[id.into(), reservation.into()],
            |t| {
                if t.is_empty() {
                    return Ok(None);
                }
                let r = t.first();
                Ok(Some((
                    state::read_job(&r)?,
                    state::read_part(&r)?,
                    message_at(&r, state::JOB_COLUMNS)?,
                )))
            },
        )
    })?;
    engine.store.place(&job.id, part);
    let job_id = job.id.clone();
    // a job this engine holds already (an earlier answer of the batch) keeps its state
    let running = status::running(engine.jobs.entry(job_id).or_insert(job).status);
    if !running && message.is_none() {
        // an answer after the job ended removes its message whatever its reservation
        remove(id);
    }
    message.filter(|_| running)
}

/// Locks the message's job. None when the message is gone, or its job ended (then the
/// message is removed): an answer that comes after an interrupt, or after the job
/// failed, changes nothing and says so.
fn lock_running(engine: &mut Engine, id: i64) -> Option<()> {
    let job = engine.lock_message(id)?;
    if !status::running(engine.jobs[&job].status) {
        remove(id);
        return None;
    }
    Some(())
}

fn read_message(t: pgrx::spi::SpiTupleTable) -> pgrx::spi::SpiResult<Option<Message>> {
    if t.is_empty() {
        return Ok(None);
    }
    message_at(&t.first(), 0)
}

/// The message in the current row's columns after the first `at` (None: they are null).
fn message_at(r: &pgrx::spi::SpiTupleTable, at: usize) -> pgrx::spi::SpiResult<Option<Message>> {
    let Some(job_id) = r.get::<String>(at + 1)? else {
        return Ok(None);
    };
    let codes = match db::json(r.get::<crate::json::Json>(at + 10)?) {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    };
    Ok(Some(Message {
        job_id,
        gid: r.get::<String>(at + 2)?.unwrap_or_default(),
        aid: r.get::<String>(at + 3)?.unwrap_or_default(),
        dad: r.get::<String>(at + 4)?.unwrap_or_default(),
        attempt: r.get::<i32>(at + 5)?.unwrap_or(0),
        policy: Policy {
            max_attempts: r.get::<i32>(at + 6)?.unwrap_or(1),
            backoff_coefficient: r.get::<f64>(at + 7)?.unwrap_or(10.0),
            maximum_interval: r.get::<f64>(at + 8)?.unwrap_or(120.0),
            initial_interval: r.get::<f64>(at + 9)?.unwrap_or(1.0),
            codes,
        },
    }))
}

fn remove(id: i64) {
    db::exec(
        "DELETE FROM hotmesh.worker_stream WHERE id = $1",
        &[id.into()],
    );
}

/// Schedules another attempt after `delay` seconds.
fn requeue(id: i64, delay: f64, error: &Value) {
    let delay = hotmesh_engine::limits::clamp_seconds(delay);
    db::exec(
        "UPDATE hotmesh.worker_stream
            SET attempt = attempt + 1, deliveries = 0, visible_at = now() + make_interval(secs => $2),
                reserved_by = NULL, reserved_until = NULL, reservation = NULL, last_error = $3
          WHERE id = $1",
        &[id.into(), delay.into(), JsonB(error.clone()).into()],
    );
    // the engine worker wakes the topic's listeners when the retry is due
    crate::wake::engine_due_at_commit(crate::shared::now_ms() + (delay * 1000.0) as i64);
}

/// Applies an answer to the message's activity: Leg 2 and what follows, in this
/// transaction; the state is written back by the caller's [`Engine::flush`].
fn answer(engine: &mut Engine, m: Message, id: i64, data: Value, status: Status, code: i64) {
    engine.push(Work {
        kind: Kind::Response,
        job_id: m.job_id,
        gid: m.gid,
        aid: m.aid,
        dad: m.dad,
        token: Some(id.to_string()),
        data,
        status,
        code,
    });
    engine.apply();
}

/// Applies a worker's answer. False when the message is gone (answered already, or its
/// job ended), or `reservation` is not the message's current one (it was handed out
/// again): a duplicate or late answer changes nothing.
pub fn respond(id: i64, reservation: Option<i64>, data: Value, st: Status, code: i64) -> bool {
    with_engine(|e| respond_in(e, id, reservation, data, st, code))
}

/// An answer as `respond_batch` passes it: message id, reservation, data, status, code.
pub type Answer = (i64, Option<i64>, Value, Status, i64);

/// Applies answers on one engine, in the order of their messages' jobs (the order given
/// within a job: see [`in_job_order`]), and writes their state back once: a batch of
/// ten answers runs one `INSERT` of the next messages and one upsert of the activity
/// rows, not ten of each. A batch of successes (the common batch) also takes its
/// messages, locks their jobs and reads the rows its answers need in two statements
/// ([`take_all`], [`Engine::preload_answers`]), not two per answer. Returns the ids
/// applied.
pub fn respond_all(answers: Vec<Answer>) -> Vec<i64> {
    with_engine(|e| {
        if answers.len() < 2 || answers.iter().any(|a| a.3 != Status::Success) {
            return in_job_order(answers, |a| a.0)
                .into_iter()
                .filter_map(|(id, r, d, st, code)| respond_in(e, id, r, d, st, code).then_some(id))
                .collect();
        }
        let (answers, mut taken) = take_all(e, answers);
        let preload: Vec<(String, String, String)> = taken
            .values()
            .filter(|m| status::running(e.jobs[&m.job_id].status))
            .map(|m| (m.job_id.clone(), m.aid.clone(), m.dad.clone()))
            .collect();
        e.preload_answers(&preload);
        answers
            .into_iter()
            .filter_map(|(id, r, d, st, code)| {
                let applied = match taken.remove(&id) {
                    // taken by the batch: applied if its job still runs (an earlier
                    // answer may have ended it), as `take` decides
                    Some(m) if status::running(e.jobs[&m.job_id].status) => {
                        answer(e, m, id, d, st, code);
                        true
                    }
                    Some(_) => false,
                    // not taken (its job in another part, a stale reservation, gone): the
                    // single answer's way decides
                    None => respond_in(e, id, r, d, st, code),
                };
                applied.then_some(id)
            })
            .collect()
    })
}

/// A batch of success answers' first statement: locks the job of each message (in job
/// order, the order of every batch) in the current part of the ring, then deletes the
/// message if its reservation matches, as [`take`] does for one. Returns the answers in
/// their jobs' order (those whose message it did not take first) and the messages
/// taken, by id; their jobs become the engine's. An answer whose message it did not take
/// (its job in another part, a stale reservation, gone) goes the single answer's way.
///
/// One statement, no join of the batch with itself: each message finds its job by the
/// primary key (a lateral lookup that locks it), and the delete returns the job's columns
/// with the message's. (A join of the locked jobs with the deleted messages is nested
/// loops over both, and with 1,000 answers it tripled the batch's time.)
fn take_all(engine: &mut Engine, answers: Vec<Answer>) -> (Vec<Answer>, HashMap<i64, Message>) {
    static SQL: &str = concat!(
        "WITH m AS MATERIALIZED (
              SELECT w.id AS message, w.job_id AS job, a.r
                FROM (SELECT unnest($1::int8[]) AS id, unnest($2::int8[]) AS r) a
                JOIN hotmesh.worker_stream w ON w.id = a.id
               WHERE ",
        not_dead_lettered!(),
        "
               ORDER BY w.job_id, w.id),
              l AS MATERIALIZED (
              SELECT j.*, m.message, m.r FROM m CROSS JOIN LATERAL (",
        state::job_select!(),
        " WHERE j.id = m.job AND (j.expired_at IS NULL OR j.expired_at > now()) FOR UPDATE OF j) j)
         DELETE FROM hotmesh.worker_stream w USING l
          WHERE w.id = l.message AND ",
        not_dead_lettered!(),
        " AND (l.r IS NULL OR w.reservation = l.r)
         RETURNING l.*, w.id, ",
        message_columns!()
    );
    let ids: Vec<i64> = answers.iter().map(|a| a.0).collect();
    let reservations: Vec<Option<i64>> = answers.iter().map(|a| a.1).collect();
    let part = ring::guess();
    let rows: Vec<(state::Job, i64, Message)> = db::query_probes(
        ring::sql(SQL, Some(part)),
        &[ids.into(), reservations.into()],
        |mut t| {
            let mut rows = Vec::with_capacity(t.len());
            // the table's cursor moved row by row: the readers of single rows read it
            while t.next().is_some() {
                // the job's columns, the message and reservation asked for, then the
                // message as deleted (every row has one: the rows are the deletes)
                let id = t.get::<i64>(state::JOB_COLUMNS + 3)?;
                let message = message_at(&t, state::JOB_COLUMNS + 3)?;
                if let (Some(id), Some(m)) = (id, message) {
                    rows.push((state::read_job(&t)?, id, m));
                }
            }
            Ok(rows)
        },
    );
    let mut job_of: HashMap<i64, String> = HashMap::new();
    let mut taken = HashMap::new();
    for (job, id, m) in rows {
        job_of.insert(id, job.id.clone());
        taken.insert(id, m);
        engine.store.place(&job.id, part);
        engine.jobs.entry(job.id.clone()).or_insert(job);
    }
    (by_job(answers, |a| a.0, &job_of), taken)
}

/// [`respond`] on the caller's engine, without writing back.
fn respond_in(
    engine: &mut Engine,
    id: i64,
    reservation: Option<i64>,
    data: Value,
    st: Status,
    code: i64,
) -> bool {
    let m = if st == Status::Success {
        // the common answer: the message is consumed as it is read
        take(engine, id, reservation)
    } else {
        load(engine, id, reservation)
    };
    let Some(m) = m else {
        return false;
    };
    match on_answer(st, code, m.attempt, &m.policy) {
        Disposition::Requeue { delay } => {
            requeue(id, delay, &json!({"code": code, "data": data}));
            return true;
        }
        Disposition::Park => {
            db::exec(
                "UPDATE hotmesh.worker_stream SET reserved_until = 'infinity' WHERE id = $1",
                &[id.into()],
            );
        }
        // a success's message was consumed as it was read (`take`)
        Disposition::Apply if st != Status::Success => remove(id),
        Disposition::Apply | Disposition::Fail { .. } => {}
    }
    answer(engine, m, id, data, st, code);
    true
}

/// `items` (answers to worker messages) ordered by their messages' jobs, keeping the
/// given order within a job: every batch then locks jobs in one order, so two batches
/// answering messages of the same jobs cannot deadlock.
pub fn in_job_order<T>(items: Vec<T>, message: impl Fn(&T) -> i64) -> Vec<T> {
    if items.len() < 2 {
        return items;
    }
    let ids: Vec<i64> = items.iter().map(&message).collect();
    // joined from the ids (an index probe each): `id = ANY ($1)` gets a generic plan
    // that scans the whole stream
    let jobs: HashMap<i64, String> = db::texts::<2>(
        "SELECT w.id::text, w.job_id FROM unnest($1::int8[]) AS m(id) JOIN hotmesh.worker_stream w ON w.id = m.id",
        &[ids.into()],
    )
    .into_iter()
    .filter_map(|[id, job]| Some((id.parse().ok()?, job)))
    .collect();
    by_job(items, message, &jobs)
}

/// `items` sorted by the job of their message (`jobs`: message id to job id), stably:
/// the given order stays within a job, and items of no known job come first.
fn by_job<T>(items: Vec<T>, message: impl Fn(&T) -> i64, jobs: &HashMap<i64, String>) -> Vec<T> {
    let mut keyed: Vec<(&str, T)> = items
        .into_iter()
        .map(|it| (jobs.get(&message(&it)).map_or("", String::as_str), it))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(b.0));
    keyed.into_iter().map(|(_, it)| it).collect()
}

/// An error answer that is not retried (hotmesh.fail).
pub fn respond_final(id: i64, reservation: Option<i64>, data: Value, code: i64) -> bool {
    with_engine(|e| {
        let Some(m) = take(e, id, reservation) else {
            return false;
        };
        answer(e, m, id, data, Status::Error, code);
        true
    })
}

/// The worker asks for another attempt: after `delay` seconds, or the policy's delay
/// (at least 1 s without a policy). With no attempt left, it is an error answer (597).
pub fn retry(id: i64, reservation: Option<i64>, delay: Option<f64>, error: Value) -> bool {
    with_engine(|e| {
        let Some(m) = load(e, id, reservation) else {
            return false;
        };
        match on_retry(delay, m.attempt, &m.policy) {
            Disposition::Requeue { delay } => requeue(id, delay, &error),
            Disposition::Fail { code } => {
                remove(id);
                answer(e, m, id, error, Status::Error, code);
            }
            Disposition::Apply | Disposition::Park => unreachable!("a retry is requeued or fails"),
        }
        true
    })
}

/// Extends a reservation (a long callback still runs). False if the message is gone,
/// its job ended, or `reservation` is not its current one: the callback may stop.
pub fn heartbeat(id: i64, reservation: Option<i64>, seconds: f64) -> bool {
    db::exec(
        concat!(
            "UPDATE hotmesh.worker_stream w
                SET reserved_until = now() + make_interval(secs => $2), visible_at = now() + make_interval(secs => $2)
              WHERE id = $1 AND ",
            not_dead_lettered!(),
            " AND reserved_until IS NOT NULL AND reserved_until <> 'infinity'
                AND ($3::int8 IS NULL OR reservation = $3)
                AND EXISTS (SELECT 1 FROM hotmesh.jobs j WHERE j.id = w.job_id AND j.status > 0)"
        ),
        &[id.into(), seconds.into(), reservation.into()],
    ) == 1
}

/// Dead-letters messages whose reservations lapsed too often (their worker keeps
/// dying), and tells each job with code 999, each in its own subtransaction. A message
/// whose job another transaction holds waits for the next sweep. Returns how many.
pub fn sweep_poison() -> usize {
    // oldest lapse first, in the order of `worker_stream_reserved` (db::query_in_order):
    // never a whole read of another index of the queue
    let rows = db::query_in_order(
        "SELECT id::text, deliveries::text, job_id, gid, activity_id, dad FROM hotmesh.worker_stream
          WHERE dead_lettered_at IS NULL AND reserved_until < now() AND deliveries >= greatest(max_attempts, $1)
          ORDER BY reserved_until LIMIT 100 FOR UPDATE SKIP LOCKED",
        &[POISON_DELIVERIES.into()],
        db::as_texts::<6>,
    );
    let mut n = 0;
    for [id, deliveries, job_id, gid, aid, dad] in rows {
        let message_id: i64 = id.parse().unwrap_or(0);
        let r = crate::store::spi::apply_unless_busy(job_id.clone(), move |e| {
            let message =
                format!("message {id} dead-lettered: no answer after {deliveries} deliveries");
            db::exec(
                "UPDATE hotmesh.worker_stream
                    SET dead_lettered_at = now(), last_error = jsonb_build_object('code', $3::int4, 'message', $2::text)
                  WHERE id = $1::int8",
                &[id.as_str().into(), message.as_str().into(), (DEAD_LETTERED as i32).into()],
            );
            e.push(Work {
                kind: Kind::Response,
                job_id,
                gid,
                aid,
                dad,
                token: Some(id),
                data: json!({"message": message, "code": DEAD_LETTERED}),
                status: Status::Error,
                code: DEAD_LETTERED,
            });
        });
        match r {
            Ok(true) => n += 1,
            Ok(false) => {}
            Err(msg) => {
                // telling its job failed (the job's own data may be what fails): the
                // message is dead-lettered all the same, with why, so it leaves the
                // sweep and the sweep goes on with the others
                pgrx::warning!("hotmesh: poison sweep: message {message_id}: {msg}");
                db::exec(
                    "UPDATE hotmesh.worker_stream
                        SET dead_lettered_at = now(),
                            last_error = jsonb_build_object('code', $3::int4, 'message', 'dead-lettered; its job could not be told: ' || $2::text)
                      WHERE id = $1",
                    &[message_id.into(), msg.into(), (DEAD_LETTERED as i32).into()],
                );
            }
        }
    }
    n
}
