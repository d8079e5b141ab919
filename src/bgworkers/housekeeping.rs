//! Housekeeping: the ring's turn (jobs past retention leave with their part, emptied by
//! TRUNCATE: src/store/ring.rs), early signals that expired, and messages of ended
//! jobs, in bounded batches.

use crate::store::{db, ring};
use pgrx::warning;

/// Turns the ring when it is due, removes early signals that expired and messages of
/// ended jobs. Returns true when the turn was due and could not be made (a lock not had
/// in time): the engine worker then comes back sooner than the usual 5 s.
pub fn run(retention_s: f64) -> bool {
    let behind = match super::txn::sub(move || ring::turn(retention_s, false)) {
        Ok(_) => false,
        Err(msg) => {
            warning!("hotmesh engine: the ring did not turn (it tries again): {msg}");
            true
        }
    };
    // in expiry order from the index, a batch at a time: bounded, and a plan that does
    // not depend on how many rows `now()` is guessed to cut off
    db::query_in_order(
        "DELETE FROM hotmesh.pending_signals WHERE id = ANY (ARRAY(
           SELECT id FROM hotmesh.pending_signals WHERE expires_at < now() ORDER BY expires_at LIMIT 1000))",
        &[],
        |t| Ok(t.len()),
    );
    // messages of jobs that ended while a worker held them (its transaction still open
    // when the job's other messages were removed): no answer to them can apply. Only a
    // reserved message can have been held, so the partial index on reservations bounds
    // this by the work in flight, not by the backlog (read in its order: no plan reads
    // another index of the queue whole; the ids found, then deleted by the primary key)
    db::query_in_order(
        "DELETE FROM hotmesh.worker_stream WHERE id = ANY (ARRAY(
           SELECT w.id FROM hotmesh.worker_stream w JOIN hotmesh.jobs j ON j.id = w.job_id
            WHERE w.reserved_until IS NOT NULL AND w.dead_lettered_at IS NULL AND j.status <= 0
            ORDER BY w.reserved_until LIMIT 1000 FOR UPDATE OF w SKIP LOCKED))",
        &[],
        |t| Ok(t.len()),
    );
    behind
}
