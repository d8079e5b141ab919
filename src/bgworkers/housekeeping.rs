//! Housekeeping: jobs expired longer than the retention, early signals that expired,
//! and messages of ended jobs, in bounded batches.

use crate::store::db;

/// Jobs expired longer than `retention_s`, early signals that expired, messages of
/// ended jobs.
/// Returns true when jobs past retention are left (the pass ran out of its time): the
/// engine worker then comes back sooner than the usual 5 s.
pub fn run(retention_s: f64) -> bool {
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
