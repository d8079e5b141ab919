//! Notifications, sent at commit: at most one NOTIFY per channel per transaction. Job
//! completions on one channel are combined into one payload of references
//! (`hotmesh_engine::channel`: ids and status, no job data); a later state of the same
//! job replaces an earlier one (an emit, then the end).
//! Nothing is sent if the transaction rolls back, and a rolled-back subtransaction
//! (one router message) takes its notifications with it.

use hotmesh_engine::channel;
use indexmap::IndexMap;
use pgrx::{pg_sys, register_xact_callback, IntoDatum, PgXactCallbackEvent};
use serde_json::Value;
use std::cell::RefCell;

enum Pending {
    /// Job references by job id, for a topic: `{type: 'job'|'jobs', …}`.
    Jobs {
        topic: String,
        outputs: IndexMap<String, Value>,
    },
    /// A fixed payload (work available, activation …).
    Text(String),
}

thread_local! {
    static QUEUE: RefCell<Option<IndexMap<String, Pending>>> = const { RefCell::new(None) };
    /// This transaction left work notifications in the relay: wake the engine worker at
    /// commit.
    static RELAYED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// How many entries each mark saw, to undo a subtransaction's additions.
    static LOG: RefCell<Vec<(String, Option<String>)>> = const { RefCell::new(Vec::new()) };
}

fn with_queue<R>(f: impl FnOnce(&mut IndexMap<String, Pending>) -> R) -> R {
    QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        if q.is_none() {
            *q = Some(IndexMap::new());
            register_xact_callback(PgXactCallbackEvent::PreCommit, send);
            register_xact_callback(PgXactCallbackEvent::Commit, || {
                if RELAYED.with(|r| r.replace(false)) {
                    crate::wake::engine_relay();
                }
            });
            register_xact_callback(PgXactCallbackEvent::Abort, || {
                QUEUE.with(|q| q.borrow_mut().take());
                LOG.with(|l| l.borrow_mut().clear());
                RELAYED.with(|r| r.set(false));
            });
        }
        f(q.as_mut().expect("just set"))
    })
}

/// Announces a job (its reference, `channel::job_ref`) on `channel` (of `topic`) at
/// commit.
pub fn job(channel_name: String, topic: &str, job_id: &str, reference: Value) {
    LOG.with(|l| {
        l.borrow_mut()
            .push((channel_name.clone(), Some(job_id.to_string())))
    });
    with_queue(|q| {
        let e = q.entry(channel_name).or_insert_with(|| Pending::Jobs {
            topic: topic.to_string(),
            outputs: IndexMap::new(),
        });
        if let Pending::Jobs { outputs, .. } = e {
            outputs.insert(job_id.to_string(), reference);
        }
    });
}

/// Sends `payload` on `channel` at commit (once, however often this is called).
pub fn text(channel_name: String, payload: &str) {
    LOG.with(|l| l.borrow_mut().push((channel_name.clone(), None)));
    with_queue(|q| {
        q.entry(channel_name)
            .or_insert_with(|| Pending::Text(payload.to_string()));
    });
}

/// A point to roll back to (see [`rollback_to`]).
pub fn mark() -> usize {
    LOG.with(|l| l.borrow().len())
}

/// Forgets what was queued since `mark` (its subtransaction rolled back). Entries queued
/// earlier for the same channel and job are dropped too: rare, and a later step
/// announces the job again.
pub fn rollback_to(mark: usize) {
    let undone: Vec<(String, Option<String>)> = LOG.with(|l| {
        let mut l = l.borrow_mut();
        if l.len() > mark {
            l.split_off(mark)
        } else {
            vec![]
        }
    });
    if undone.is_empty() {
        return;
    }
    QUEUE.with(|q| {
        if let Some(q) = q.borrow_mut().as_mut() {
            for (ch, job) in undone {
                match (q.get_mut(&ch), job) {
                    (Some(Pending::Jobs { outputs, .. }), Some(j)) => {
                        outputs.shift_remove(&j);
                        if outputs.is_empty() {
                            q.shift_remove(&ch);
                        }
                    }
                    (Some(Pending::Text(_)), None) => {
                        q.shift_remove(&ch);
                    }
                    _ => {}
                }
            }
        }
    });
}

/// Pre-commit: hands every queued notification to Postgres (delivered at commit).
fn send() {
    let Some(q) = QUEUE.with(|q| q.borrow_mut().take()) else {
        return;
    };
    LOG.with(|l| l.borrow_mut().clear());
    // work notifications go to the engine worker through the relay where they can
    let work: Vec<(String, String)> = q
        .iter()
        .filter_map(|(ch, p)| match p {
            Pending::Text(t) if *ch == channel::work(t) => Some((ch.clone(), t.clone())),
            _ => None,
        })
        .collect();
    let relayed = relay(work);
    for (ch, p) in q {
        match p {
            Pending::Text(_) if relayed.contains(&ch) => {}
            // a topic named at run time may be long: the channel already says it
            Pending::Text(t) if t.len() > channel::MAX_PAYLOAD => pg_notify(&ch, ""),
            Pending::Text(t) => pg_notify(&ch, &t),
            Pending::Jobs { topic, outputs } => {
                let outs: Vec<Value> = outputs.into_values().collect();
                for payload in channel::jobs_payloads(&topic, &outs) {
                    pg_notify(&ch, &payload);
                }
            }
        }
    }
}

/// How long the relay may hold a database's entries before its transactions stop leaving
/// theirs and notify themselves (and send those left over).
const RELAY_PATIENCE_MS: i64 = 2_000;

/// Leaves this transaction's work notifications (`(channel, topic)`) in the relay, for
/// its engine worker to send once it has committed; returns the channels left there (the
/// transaction sends the others itself). Only a session (not a background worker) with a
/// transaction id, in a database whose engine worker runs and drains the relay: when its
/// entries wait longer than `RELAY_PATIENCE_MS`, the transaction sends those that
/// committed, and its own, itself.
fn relay(work: Vec<(String, String)>) -> Vec<String> {
    if work.is_empty() || !crate::shared::ready() || unsafe { pg_sys::IsBackgroundWorker } {
        return vec![];
    }
    let xid = unsafe { pg_sys::GetTopTransactionIdIfAny() };
    let db = crate::shared::my_database();
    let worker = crate::shared::share().0.find(db).map_or(0, |s| s.pid);
    if xid == pg_sys::InvalidTransactionId || !crate::shared::proc_alive(worker) {
        return vec![];
    }
    let now = crate::shared::now_ms();
    let mut r = crate::shared::relay();
    if r.0.stale(db, now, RELAY_PATIENCE_MS) {
        let left_over = r.0.take(db, xid_outcome);
        drop(r);
        for t in left_over {
            pg_notify(&channel::work(&t), &t);
        }
        return vec![];
    }
    let left: Vec<String> = work
        .into_iter()
        .take_while(|(_, topic)| r.0.leave(db, xid.into_inner(), topic, now))
        .map(|(ch, _)| ch)
        .collect();
    drop(r);
    if !left.is_empty() {
        RELAYED.with(|r| r.set(true));
    }
    left
}

/// What became of transaction `xid` (inside a transaction: clog lookups).
fn xid_outcome(xid: u32) -> hotmesh_bgworker::relay::Outcome {
    use hotmesh_bgworker::relay::Outcome;
    let x = pg_sys::TransactionId::from(xid);
    unsafe {
        if pg_sys::TransactionIdIsInProgress(x) {
            Outcome::InProgress
        } else if pg_sys::TransactionIdDidCommit(x) {
            Outcome::Committed
        } else {
            Outcome::Aborted
        }
    }
}

/// The engine worker's part: sends the work notifications of this database's
/// transactions that committed (each topic once), from a transaction that writes nothing.
pub fn drain_relay() -> bool {
    let topics = crate::shared::relay()
        .0
        .take(crate::shared::my_database(), xid_outcome);
    for t in &topics {
        text(channel::work(t), t);
    }
    // work for a SQL function the engine worker answers itself
    topics
        .iter()
        .any(|t| crate::bgworkers::targets::is_target(t))
}

/// `pg_notify(channel, payload)` without SPI (we are inside commit processing).
fn pg_notify(ch: &str, payload: &str) {
    unsafe {
        pgrx::direct_function_call::<()>(
            pgrx::pg_sys::pg_notify,
            &[ch.into_datum(), payload.into_datum()],
        );
    }
}
