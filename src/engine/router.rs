//! The engine worker's duties, one call per loop iteration:
//! - the router applies due engine-stream messages in batches: one transaction for the
//!   batch, a subtransaction per message (an ERROR undoes only that message, which is
//!   tried again later and dead-lettered after a few failures);
//! - the time scout finds the next due time (timers, delayed retries, reservations
//!   that lapse), so the worker sleeps on its latch exactly until then, and wakes the
//!   listeners of worker topics whose messages just became available;
//! - poison messages are dead-lettered as soon as their last reservation lapses;
//! - housekeeping: expired jobs past retention, stale early signals.

use super::db;
use super::notify;
use super::step::{Kind, Status, Work};
use hotmesh_engine::channel;
use pgrx::JsonB;
use serde_json::Value;

/// Messages per router transaction.
pub const BATCH: i64 = 200;
/// Failed tries before an engine message is dead-lettered.
const MAX_ENGINE_ATTEMPTS: i32 = 5;

struct Row {
    id: i64,
    work: Work,
}

/// What one router pass did.
pub struct Routed {
    /// Messages taken (applied, dropped as stale, or failed).
    pub taken: usize,
    /// Messages left for the next pass: their job was held by another transaction.
    pub deferred: usize,
}

/// Applies up to [`BATCH`] due engine messages. A message whose job another
/// transaction holds is left for the next pass instead of waited for: the router then
/// never waits behind a caller (a signal, an answer, an interrupt) nor deadlocks with
/// one, whatever order that caller takes its locks in.
pub fn route() -> Routed {
    let rows: Vec<Row> = db::query(
        "SELECT id, type, job_id, gid, activity_id, dad, token, data, status, code
           FROM hotmesh.engine_stream
          WHERE dead_lettered_at IS NULL AND visible_at <= now()
          ORDER BY priority DESC, visible_at, id
          LIMIT $1 FOR UPDATE SKIP LOCKED",
        &[BATCH.into()],
        |t| {
            let mut v = vec![];
            for r in t {
                let id = r.get::<i64>(1)?.unwrap_or(0);
                let Some(kind) = Kind::parse(&r.get::<String>(2)?.unwrap_or_default()) else {
                    continue;
                };
                let token = if kind == Kind::Timer {
                    Some(id.to_string())
                } else {
                    r.get::<String>(7)?
                };
                v.push(Row {
                    id,
                    work: Work {
                        kind,
                        job_id: r.get::<String>(3)?.unwrap_or_default(),
                        gid: r.get::<String>(4)?.unwrap_or_default(),
                        aid: r.get::<String>(5)?.unwrap_or_default(),
                        dad: r.get::<String>(6)?.unwrap_or_default(),
                        token,
                        data: db::json(r.get::<JsonB>(8)?).unwrap_or(Value::Null),
                        status: Status::parse(&r.get::<String>(9)?.unwrap_or_default())
                            .unwrap_or(Status::Success),
                        code: r.get::<i32>(10)?.unwrap_or(200) as i64,
                    },
                });
            }
            Ok(v)
        },
    );
    let mut routed = Routed {
        taken: 0,
        deferred: 0,
    };
    for Row { id, work } in rows {
        let mark = notify::mark();
        let r = crate::engine::step::apply_unless_busy(work.job_id.clone(), move |e| {
            db::exec(
                "DELETE FROM hotmesh.engine_stream WHERE id = $1",
                &[id.into()],
            );
            e.push(work);
        });
        let msg = match r {
            Ok(true) => {
                routed.taken += 1;
                continue;
            }
            Ok(false) => {
                routed.deferred += 1;
                continue;
            }
            Err(msg) => msg,
        };
        routed.taken += 1;
        notify::rollback_to(mark);
        pgrx::warning!("hotmesh router: message {id}: {msg}");
        db::exec(
            "UPDATE hotmesh.engine_stream
                SET attempts = attempts + 1, last_error = $2,
                    visible_at = now() + make_interval(secs => power(2, attempts)),
                    dead_lettered_at = CASE WHEN attempts + 1 >= $3 THEN now() END
              WHERE id = $1",
            &[id.into(), msg.into(), MAX_ENGINE_ATTEMPTS.into()],
        );
    }
    routed
}

/// Wakes the listeners of worker topics with messages that became available since
/// `since_ms` (a retry's delay passed, a reservation lapsed). Returns the next time
/// anything is due (engine timers, delayed worker messages, reservations), in unix ms.
pub fn scout(since_ms: i64) -> Option<i64> {
    // a lapsed reservation of a message handed out too often: dead-letter it now (the
    // index on reserved_until keeps this cheap)
    super::stream::sweep_poison();
    let since = since_ms as f64 / 1000.0;
    let topics = db::texts::<1>(
        "SELECT DISTINCT topic FROM hotmesh.worker_stream
          WHERE dead_lettered_at IS NULL
            AND ((visible_at > created_at AND visible_at > to_timestamp($1) AND visible_at <= now())
              OR (reserved_until > to_timestamp($1) AND reserved_until <= now()))",
        &[since.into()],
    );
    for [t] in topics {
        notify::text(channel::work(&t), &t);
    }
    db::one::<f64>(
        "SELECT (extract(epoch FROM least(
                    (SELECT min(visible_at) FROM hotmesh.engine_stream WHERE dead_lettered_at IS NULL AND visible_at > now()),
                    (SELECT min(visible_at) FROM hotmesh.worker_stream WHERE dead_lettered_at IS NULL AND visible_at > now()),
                    (SELECT min(reserved_until) FROM hotmesh.worker_stream
                      WHERE dead_lettered_at IS NULL AND reserved_until > now() AND reserved_until < 'infinity'))) * 1000)::float8",
        &[],
    )
    .map(|ms| ms.ceil() as i64)
}

/// Jobs expired longer than `retention_s`, early signals that expired, messages of
/// ended jobs.
/// Returns true when jobs past retention are left (the pass ran out of its time): the
/// engine worker then comes back sooner than the usual 5 s.
pub fn housekeeping(retention_s: f64) -> bool {
    // batches of 1,000 while they come full, for up to a quarter of a second a pass: one
    // batch per pass (every 5 s) removed at most 200 jobs a second, less than a busy
    // database finishes, and the kept set grew without end
    let started = std::time::Instant::now();
    let mut behind = false;
    // by ctid (a TID scan): `id IN (…)` planned a hash join over every kept job once a
    // batch was a thousand rows; in expiry order, so the batch comes from the index (a
    // generic plan guesses a third of the table matches and would scan it)
    while db::exec(
        "DELETE FROM hotmesh.jobs WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM hotmesh.jobs WHERE expired_at < now() - make_interval(secs => $1)
            ORDER BY expired_at LIMIT 1000 FOR UPDATE SKIP LOCKED))",
        &[retention_s.into()],
    ) == 1000
    {
        if started.elapsed() >= std::time::Duration::from_millis(250) {
            behind = true;
            break;
        }
        crate::guard::check();
    }
    // in expiry order from the index, a batch at a time: bounded, and a plan that does
    // not depend on how many rows `now()` is guessed to cut off
    db::exec(
        "DELETE FROM hotmesh.pending_signals WHERE id IN
           (SELECT id FROM hotmesh.pending_signals WHERE expires_at < now() ORDER BY expires_at LIMIT 1000)",
        &[],
    );
    // messages of jobs that ended while a worker held them (its transaction still open
    // when the job's other messages were removed): no answer to them can apply. Only a
    // reserved message can have been held, so the partial index on reservations bounds
    // this by the work in flight, not by the backlog
    db::exec(
        "DELETE FROM hotmesh.worker_stream WHERE id IN
           (SELECT w.id FROM hotmesh.worker_stream w JOIN hotmesh.jobs j ON j.id = w.job_id
             WHERE w.reserved_until IS NOT NULL AND w.dead_lettered_at IS NULL AND j.status <= 0
             LIMIT 1000 FOR UPDATE OF w SKIP LOCKED)",
        &[],
    );
    behind
}
