//! Wake-ups at commit: a transaction that gives a background worker something to do sets
//! the worker's latch once it commits (never before: the worker must see the rows). At
//! most one callback per transaction and target, however many statements ask.

use crate::shared;
use pgrx::{register_xact_callback, PgXactCallbackEvent};
use std::cell::Cell;

thread_local! {
    static LAUNCHER_PENDING: Cell<bool> = const { Cell::new(false) };
    static ENGINE_PENDING: Cell<bool> = const { Cell::new(false) };
    static TRANSPORTS_PENDING: Cell<bool> = const { Cell::new(false) };
    /// The earliest due time (unix ms) this transaction created; 0: none yet.
    static DUE_PENDING: Cell<i64> = const { Cell::new(0) };
}

/// Runs `f` once when this transaction commits, if `flag` was not set already.
fn once_at_commit(flag: &'static std::thread::LocalKey<Cell<bool>>, f: fn()) {
    if flag.with(|p| p.replace(true)) {
        return;
    }
    register_xact_callback(PgXactCallbackEvent::Commit, move || {
        flag.with(|p| p.set(false));
        f();
    });
    register_xact_callback(PgXactCallbackEvent::Abort, move || {
        flag.with(|p| p.set(false))
    });
}

pub fn launcher_now() {
    let pid = shared::share().0.launcher_pid;
    shared::set_latch(pid);
}

pub fn launcher_at_commit() {
    if shared::ready() {
        once_at_commit(&LAUNCHER_PENDING, launcher_now);
    }
}

/// Wakes this database's engine worker now, for an iteration.
pub fn engine_now() {
    let pid = shared::exclusive().0.poke(shared::my_database());
    shared::set_latch(pid.unwrap_or(0));
}

/// Wakes this database's engine worker to send what the notification relay holds (no
/// poke: it drains and sleeps on).
pub fn engine_relay() {
    let db = shared::my_database();
    shared::set_latch(shared::share().0.find(db).map_or(0, |s| s.pid));
}

pub fn engine_at_commit() {
    if shared::ready() {
        once_at_commit(&ENGINE_PENDING, engine_now);
    }
}

/// Something becomes due at `due_ms` (a reservation lapses, a retry is due): at commit,
/// wake this database's engine worker if it would sleep past that. Most calls under
/// load wake nobody: the worker already sleeps until an earlier due time.
pub fn engine_due_at_commit(due_ms: i64) {
    if !shared::ready() {
        return;
    }
    let prev = DUE_PENDING.with(|d| d.get());
    if prev == 0 {
        register_xact_callback(PgXactCallbackEvent::Commit, || {
            let due = DUE_PENDING.with(|d| d.replace(0));
            let db = shared::my_database();
            let pid = {
                let mut t = shared::exclusive();
                t.0.wake_for(db, due).and_then(|_| t.0.poke(db))
            };
            if let Some(pid) = pid {
                shared::set_latch(pid);
            }
        });
        register_xact_callback(PgXactCallbackEvent::Abort, || {
            DUE_PENDING.with(|d| d.set(0))
        });
        DUE_PENDING.with(|d| d.set(due_ms.max(1)));
    } else {
        DUE_PENDING.with(|d| d.set(prev.min(due_ms.max(1))));
    }
}

/// `hotmesh.transports` changed: at commit, the engine worker looks whether a bridge
/// worker is wanted, and the bridge worker reads the rows again.
pub fn transports_changed_at_commit() {
    if shared::ready() {
        once_at_commit(&TRANSPORTS_PENDING, || {
            let (engine, bridge) = shared::exclusive()
                .0
                .transports_changed(shared::my_database());
            shared::set_latch(engine.unwrap_or(0));
            shared::set_latch(bridge.unwrap_or(0));
        });
    }
}

/// `CREATE EXTENSION` committed here: the launcher must (re)start this database's worker.
pub fn extension_created_at_commit() {
    if !shared::ready() {
        return;
    }
    register_xact_callback(PgXactCallbackEvent::Commit, || {
        let dboid = shared::my_database();
        let ok = shared::exclusive().0.extension_created(dboid);
        if !ok {
            pgrx::warning!(
                "hotmesh: no engine worker slot left for this database (all {} in use)",
                hotmesh_bgworker::MAX_SLOTS
            );
        }
        launcher_now();
    });
}
