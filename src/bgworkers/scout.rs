//! The time scout: finds the next due time (timers, delayed retries, reservations that
//! lapse), so the engine worker sleeps on its latch exactly until then; wakes the
//! listeners of worker topics whose messages just became available; and dead-letters
//! poison messages as soon as their last reservation lapses.

use crate::store::{db, notify};
use hotmesh_engine::channel;

/// Wakes the listeners of worker topics with messages that became available since
/// `since_ms` (a retry's delay passed, a reservation lapsed). Returns the next time
/// anything is due (engine timers, delayed worker messages, reservations), in unix ms.
pub fn run(since_ms: i64) -> Option<i64> {
    // a lapsed reservation of a message handed out too often: dead-letter it now (the
    // index on reserved_until keeps this cheap)
    crate::store::stream::sweep_poison();
    let since = since_ms as f64 / 1000.0;
    // each half read in its index's order (db::query_in_order): the one plan left reads
    // the range since the last pass of `worker_stream_due` and of `worker_stream_reserved`,
    // never a whole index, however the queue looked when it was planned
    let topics = db::query_in_order(
        "SELECT DISTINCT topic FROM (
            (SELECT topic FROM hotmesh.worker_stream
              WHERE dead_lettered_at IS NULL AND visible_at > created_at
                AND visible_at > to_timestamp($1) AND visible_at <= now()
              ORDER BY visible_at)
            UNION ALL
            (SELECT topic FROM hotmesh.worker_stream
              WHERE dead_lettered_at IS NULL AND reserved_until > to_timestamp($1) AND reserved_until <= now()
              ORDER BY reserved_until)) t",
        &[since.into()],
        db::as_texts::<1>,
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
