//! The ring of partitions that holds jobs and their activity rows (sql/engine.sql): which
//! partition a statement names, the part a new job goes into, and the turn that empties
//! the part the ring moves into (the engine worker's housekeeping).
//!
//! Why statements name partitions: a lookup by id cannot be pruned (the id says nothing
//! of the part), and through the parent PostgreSQL 15 locks and opens every partition and
//! its indexes for each one: 20–80 µs more per answer (docs/benchmarks.md, "Retention by
//! time partitions"). So the step path runs each statement on one partition: the part a
//! job was found in, or for a first lookup the current part, where most jobs are.

use super::db;
use crate::error::Raise;
use hotmesh_engine::error::EngineError;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A partition of the ring: 0 to [`PARTS`] − 1.
pub type Part = i16;

/// How many parts the ring has (the partitions sql/engine.sql makes).
pub const PARTS: Part = 8;

/// A job's retention is counted from its expiry; a part stays current for a sixth of
/// it by default, so a part comes round again after 8 spans (8/6 of the retention), and
/// only jobs that lived (or stay expired-but-kept) longer than about a span are moved.
const SPANS_PER_RETENTION: f64 = 6.0;

/// The shortest span the retention makes (a span set in `hotmesh.ring.span` is taken as
/// it is): with `hotmesh.retention` 0, a turn every housekeeping pass would write to an
/// idle database every 5 s.
const MIN_SPAN_S: f64 = 60.0;

/// The advisory lock between starts (shared) and the turn (exclusive): a job started
/// while the ring turns could otherwise land in the part before while another with the
/// same id lands in the new one, each unseen by the other's duplicate check.
const RING_LOCK: i64 = 0x686d_7269_6e67; // "hmring"

thread_local! {
    /// Statement texts per template and part, made once per backend and kept: the plan
    /// cache (`db`) keys plans by the text's address.
    static TEXTS: RefCell<HashMap<(usize, i16), &'static str>> = RefCell::new(HashMap::new());
    /// The current part as this backend last read it, and when.
    static GUESS: Cell<Option<(Part, Instant)>> = const { Cell::new(None) };
    /// The transaction (local id, subtransaction id) that holds the shared ring lock,
    /// and the part it read under it.
    static LOCKED: Cell<Option<(u32, u32, Part)>> = const { Cell::new(None) };
}

/// `template` with `{jobs}` and `{acts}` naming `part`'s partitions (None: the parent
/// tables, for a job whose part is not known). Made once per template and part.
pub fn sql(template: &'static str, part: Option<Part>) -> &'static str {
    cached(template, part.unwrap_or(-1), || match part {
        Some(p) => template
            .replace("{jobs}", &format!("hotmesh.jobs_p{p}"))
            .replace("{acts}", &format!("hotmesh.activities_p{p}")),
        None => template
            .replace("{jobs}", "hotmesh.jobs")
            .replace("{acts}", "hotmesh.activities"),
    })
}

fn cached(template: &'static str, code: i16, make: impl FnOnce() -> String) -> &'static str {
    let key = (template.as_ptr() as usize, code);
    if let Some(t) = TEXTS.with(|m| m.borrow().get(&key).copied()) {
        return t;
    }
    let text: &'static str = Box::leak(make().into_boxed_str());
    TEXTS.with(|m| m.borrow_mut().insert(key, text));
    text
}

/// Where to look for a job first: the current part, as read at most a second ago. A
/// stale guess costs a lookup through the parent, never a wrong answer.
pub fn guess() -> Part {
    if let Some((p, at)) = GUESS.with(Cell::get) {
        if at.elapsed() < Duration::from_secs(1) {
            return p;
        }
    }
    let p = read_current();
    GUESS.with(|g| g.set(Some((p, Instant::now()))));
    p
}

fn read_current() -> Part {
    db::one::<i16>("SELECT current FROM hotmesh.ring", &[]).unwrap_or(0)
}

/// The part a job started in this transaction goes into: the current one, read under
/// the shared ring lock (held to the end of the transaction, so the ring cannot turn
/// between this job's duplicate check and its insert).
pub fn part_for_new_job() -> Part {
    // a hot standby refuses the lock (no mode above RowExclusiveLock in recovery): there
    // the insert that follows fails as any write does (25006), which is what to say
    if unsafe { pgrx::pg_sys::RecoveryInProgress() } {
        return read_current();
    }
    // SAFETY: the backend's own PGPROC and transaction state, read on its main thread
    let (lxid, subxid) = unsafe {
        (
            (*pgrx::pg_sys::MyProc).lxid,
            pgrx::pg_sys::GetCurrentSubTransactionId(),
        )
    };
    if let Some((l, s, p)) = LOCKED.with(Cell::get) {
        if l == lxid && s == subxid {
            return p;
        }
    }
    lock_ring(pgrx::pg_sys::ShareLock as i32);
    let p = read_current();
    LOCKED.with(|c| c.set(Some((lxid, subxid, p))));
    GUESS.with(|g| g.set(Some((p, Instant::now()))));
    p
}

/// Takes the ring lock in `mode` until the end of the transaction: the lock
/// `pg_advisory_xact_lock(RING_LOCK)` takes (an int8 key), without a statement.
fn lock_ring(mode: i32) {
    // SAFETY: a lock tag built as SET_LOCKTAG_INT64 builds it, for this database
    unsafe {
        let tag = pgrx::pg_sys::LOCKTAG {
            locktag_field1: pgrx::pg_sys::MyDatabaseId.to_u32(),
            locktag_field2: (RING_LOCK >> 32) as u32,
            locktag_field3: RING_LOCK as u32,
            locktag_field4: 1,
            locktag_type: pgrx::pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
            locktag_lockmethodid: pgrx::pg_sys::USER_LOCKMETHOD as u8,
        };
        pgrx::pg_sys::LockAcquire(&tag, mode, false, false);
    }
}

/// The columns a move copies (every column but `part`).
const JOB_COLUMNS: &str = "id, gid, app_id, version, topic, key, entity, status, data, search, marks, error, \
     parent_job_id, parent_gid, parent_activity, parent_dad, severed, expire_seconds, created_at, updated_at, \
     completed_at, expired_at";
const ACT_COLUMNS: &str =
    "job_id, activity_id, dad, type, status, input, output, hook, error, wait_token, \
     iterations, answers, created_at, updated_at, finished_at";

/// Moves the ring on when the current part has been current for its span: the jobs of
/// the next part still within their retention move to the current one, the rest of it
/// is emptied by TRUNCATE, and the next part becomes current. Returns whether it
/// turned. `force`: whether due or not (`hotmesh.turn_ring(true)`). The engine worker
/// runs it in a subtransaction: a lock not had within 200 ms fails this turn only, and
/// the next pass tries again.
pub fn turn(retention_s: f64, force: bool) -> bool {
    let span = [
        retention_s.into(),
        SPANS_PER_RETENTION.into(),
        MIN_SPAN_S.into(),
    ];
    if !force && !db::one::<bool>(DUE, &span).unwrap_or(false) {
        return false;
    }
    // waits are short or the turn gives up: a lock request queued on the next part
    // holds up every statement that reads through the parent tables behind it. Shorter
    // than deadlock_timeout too, so that in a cycle of waits the turn is the one that
    // gives up (its waits start right after it takes the part's lock), not a step
    let before =
        db::one::<String>("SELECT current_setting('lock_timeout')", &[]).unwrap_or_default();
    db::exec(
        "SELECT set_config('lock_timeout',
                least(200, extract(epoch FROM current_setting('deadlock_timeout')::interval) * 250)::int::text, true)",
        &[],
    );
    // one turn at a time (the engine worker's, an administrator's)
    let current = db::one::<i16>("SELECT current FROM hotmesh.ring FOR UPDATE", &[]).unwrap_or(0);
    let next = (current + 1) % PARTS;
    let from = |t: &str| {
        t.replace("{next}", &next.to_string())
            .replace("{current}", &current.to_string())
    };
    // an empty part (a quiet database, a ring set up just now) needs no lock of its
    // tables: the ring moves on, and nothing is truncated (each TRUNCATE makes new files
    // and catalog rows)
    let empty = db::one::<bool>(cached(IS_EMPTY, next, || from(IS_EMPTY)), &[]).unwrap_or(false);
    if empty {
        // the ring lock all the same: a start must not see two current parts
        lock_ring(pgrx::pg_sys::ExclusiveLock as i32);
        move_on(next, &before);
        return true;
    }
    // the jobs of the part that have not ended: read before any lock but the part's
    // share lock (a scan of the part, once a span: an index for it would cost every
    // start an entry), so that nobody waits while it runs. None of them comes back from
    // ended, and no job enters the part but by a turn, so the list holds at the move
    let open: Vec<String> = db::texts::<1>(cached(OPEN, next, || from(OPEN)), &[])
        .into_iter()
        .map(|[id]| id)
        .collect();
    // what the jobs that leave had elsewhere (jobs_cascade does this for a DELETE);
    // before the ring lock, which holds up every start while it is held
    db::exec(
        cached(LEAVING, next, || from(LEAVING)),
        &[retention_s.into()],
    );
    // the next part's tables first, whole: no statement holds a row of them from here
    // on, so moving rows waits for nobody; then the ring (starts wait from here)
    db::exec(cached(LOCK, next, || from(LOCK)), &[]);
    lock_ring(pgrx::pg_sys::ExclusiveLock as i32);
    // the jobs that stay (not ended: by id; or expired less than the retention ago: by
    // the index jobs_expired) and their activity rows, in one statement
    let moved = db::one::<i64>(
        cached(MOVE, next * PARTS + current, || {
            from(MOVE)
                .replace("{job_columns}", JOB_COLUMNS)
                .replace("{act_columns}", ACT_COLUMNS)
        }),
        &[retention_s.into(), open.into()],
    )
    .unwrap_or(0);
    db::exec(cached(EMPTY, next, || from(EMPTY)), &[]);
    move_on(next, &before);
    tracing::debug!(from = current, to = next, moved, "the ring turned");
    true
}

/// Makes `next` the current part (the caller holds the ring lock), and gives the rest of
/// the transaction back its `lock_timeout`.
fn move_on(next: Part, lock_timeout: &str) {
    db::exec(
        "UPDATE hotmesh.ring SET current = $1, opened_at = now(), turns = turns + 1",
        &[next.into()],
    );
    db::exec(
        "SELECT set_config('lock_timeout', $1, true)",
        &[lock_timeout.into()],
    );
    GUESS.with(|g| g.set(Some((next, Instant::now()))));
}

static DUE: &str =
    "SELECT now() >= opened_at + coalesce(span, make_interval(secs => greatest($1 / $2, $3)))
  FROM hotmesh.ring";

static MOVE: &str = "WITH j AS (DELETE FROM hotmesh.jobs_p{next}
                    WHERE id = ANY ($2::text[]) OR expired_at > now() - make_interval(secs => $1)
                    RETURNING {job_columns}),
     jm AS (INSERT INTO hotmesh.jobs_p{current} ({job_columns}, part) SELECT {job_columns}, {current} FROM j),
     a AS (DELETE FROM hotmesh.activities_p{next} WHERE job_id IN (SELECT id FROM j) RETURNING {act_columns}),
     am AS (INSERT INTO hotmesh.activities_p{current} ({act_columns}, part) SELECT {act_columns}, {current} FROM a)
SELECT count(*) FROM j";

static LEAVING: &str = "WITH h AS (DELETE FROM hotmesh.signal_hooks x USING hotmesh.jobs_p{next} g
                   WHERE x.job_id = g.id AND g.expired_at <= now() - make_interval(secs => $1))
DELETE FROM hotmesh.stats s USING hotmesh.jobs_p{next} g
 WHERE s.job_id = g.id AND g.expired_at <= now() - make_interval(secs => $1)";

static OPEN: &str = "SELECT id FROM hotmesh.jobs_p{next} WHERE expired_at IS NULL";

static IS_EMPTY: &str = "SELECT NOT EXISTS (SELECT FROM hotmesh.jobs_p{next})
       AND NOT EXISTS (SELECT FROM hotmesh.activities_p{next})";

static LOCK: &str =
    "LOCK TABLE hotmesh.jobs_p{next}, hotmesh.activities_p{next} IN ACCESS EXCLUSIVE MODE";

static EMPTY: &str = "TRUNCATE hotmesh.jobs_p{next}, hotmesh.activities_p{next}";

/// Runs a job's lookup (`find`: the statement on one part, or on the parents for None)
/// on the guessed part, and where that finds nothing through the parents: twice, since
/// a lookup that waited for the job's row lock while a turn moved the job sees it gone,
/// and a new statement, with a new snapshot, finds it in its new part.
pub fn locate<T>(mut find: impl FnMut(Option<Part>) -> Option<T>) -> Option<T> {
    if let Some(t) = find(Some(guess())) {
        return Some(t);
    }
    find(None).or_else(|| find(None))
}

/// The part job `job_id` is in, looked up through the parent: for a job whose part this
/// transaction did not note (every load notes it: this is a safety net). Raises when
/// there is no such job.
pub fn part_of(job_id: &str) -> Part {
    db::one::<i16>(
        "SELECT part FROM hotmesh.jobs WHERE id = $1 ORDER BY part LIMIT 1",
        &[job_id.into()],
    )
    .unwrap_or_else(|| EngineError::JobNotFound(job_id.into()).raise())
}
