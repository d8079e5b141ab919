//! The engine worker of one database. Started by the launcher, it first checks that the
//! extension is installed (if not, it says so and leaves), then loops: one iteration per
//! latch wake-up or poll, each in its own transaction, surviving ERRORs.
//!
//! Each iteration runs the router, the SQL functions connected as workers, the time scout
//! and housekeeping (`router`, `targets`, `scout`, `housekeeping`), then sleeps on the
//! latch until the next due time or a wake-up at commit, whichever comes first.

use super::{bridge, housekeeping, router, scout, targets, txn};
use crate::{gucs, shared};
use hotmesh_bgworker::SlotState;
use pgrx::bgworkers::*;
use pgrx::prelude::*;

fn extension_installed() -> bool {
    unsafe { pg_sys::get_extension_oid(c"hotmesh".as_ptr(), true) != pg_sys::InvalidOid }
}

/// Takes the extension's lock (shared) for this iteration's transaction, and says
/// whether the extension is still there. `DROP EXTENSION` locks the extension itself
/// first, then each of its tables: an iteration that already holds some table while the
/// drop holds others would deadlock with it. Holding the extension's lock first, the two
/// wait for each other in one order (and after a drop, the extension is gone).
fn lock_extension() -> bool {
    unsafe {
        let oid = pg_sys::get_extension_oid(c"hotmesh".as_ptr(), true);
        if oid == pg_sys::InvalidOid {
            return false;
        }
        pg_sys::LockDatabaseObject(
            pg_sys::ExtensionRelationId,
            oid,
            0,
            pg_sys::AccessShareLock as pg_sys::LOCKMODE,
        );
    }
    extension_installed()
}

/// Whether the installed extension's SQL matches this library (after a library
/// upgrade the tables may be missing until ALTER EXTENSION UPDATE). Said once.
fn schema_current() -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);
    let v = Spi::get_one::<String>(
        "SELECT extversion::text FROM pg_catalog.pg_extension WHERE extname = 'hotmesh'",
    )
    .ok()
    .flatten();
    let ok = v.as_deref() == Some(env!("CARGO_PKG_VERSION"));
    if !ok && !WARNED.swap(true, Ordering::Relaxed) {
        warning!(
            "hotmesh engine: the extension in this database is version {}, the library {}: run ALTER EXTENSION hotmesh UPDATE",
            v.unwrap_or_default(),
            env!("CARGO_PKG_VERSION")
        );
    }
    if ok {
        WARNED.store(false, Ordering::Relaxed);
    }
    ok
}

enum Step {
    /// Sleep until this unix ms (None: the poll interval), unless woken.
    Continue {
        due_ms: Option<i64>,
        busy: bool,
        /// Messages were left for later: their jobs were held by other transactions.
        deferred: bool,
        /// The ring's turn was due and could not be made (a lock not had in time).
        behind: bool,
    },
    ExtensionGone,
}

/// How soon the router looks again at messages whose job another transaction held:
/// 5 ms, doubling while the job stays held (a long user transaction), up to 1 s.
fn deferred_retry(passes: u32) -> std::time::Duration {
    std::time::Duration::from_millis((5u64 << passes.min(8)).min(1000))
}

/// Housekeeping runs at most this often.
const HOUSEKEEPING_MS: i64 = 5_000;
/// ... or this often while the ring's turn is due and fails (each try waits at most
/// 200 ms for a lock: the engine keeps most of its time for timers and steps).
const HOUSEKEEPING_BEHIND_MS: i64 = 1_000;

/// One pass: route due engine messages (a full batch means more wait: `busy`), then the
/// time scout's look at what comes due next, and now and then housekeeping.
fn iteration(injected: Option<String>, since_ms: i64, housekeep: bool) -> Step {
    if !lock_extension() {
        return Step::ExtensionGone;
    }
    if let Some(msg) = injected {
        error!("{msg}");
    }
    if !schema_current() {
        // the library was upgraded, the database not yet (ALTER EXTENSION hotmesh UPDATE)
        return Step::Continue {
            due_ms: None,
            busy: false,
            deferred: false,
            behind: false,
        };
    }
    let routed = router::route();
    // SQL functions connected as workers: their messages, answered here (in a
    // subtransaction: a problem there must not stop the routing and the timers)
    let targets_left = match txn::sub(targets::run) {
        Ok((_, left)) => left,
        Err(msg) => {
            warning!("hotmesh engine: SQL function workers: {msg}");
            false
        }
    };
    let behind = housekeep && housekeeping::run(gucs::retention_s());
    let due_ms = scout::run(since_ms);
    Step::Continue {
        due_ms,
        busy: routed.taken as i64 >= router::BATCH || targets_left,
        deferred: routed.deferred > 0,
        behind,
    }
}

/// Sends the work notifications that committed transactions left in the relay, in a
/// transaction of its own: it writes nothing, so it holds the notification lock only
/// briefly (no WAL flush).
/// True when a relayed topic is a SQL function's (the engine worker answers it: a pass
/// now, not at the next wake-up).
fn relay() -> bool {
    match txn::run(crate::store::notify::drain_relay) {
        Ok(ours) => ours,
        Err(msg) => {
            warning!("hotmesh engine: relaying notifications: {msg}");
            false
        }
    }
}

/// Records that the extension is not installed here, unless a `CREATE EXTENSION`
/// committed since `seen` was read (then the caller must look again). True: leave.
fn absent(dboid: u32, seen: u32, me: i32) -> bool {
    shared::exclusive().0.mark_absent(dboid, seen, me)
}

/// The slot's `created` counter, read before looking at `pg_extension`.
fn created(dboid: u32) -> u32 {
    shared::share()
        .0
        .find(dboid)
        .map(|s| s.created)
        .unwrap_or(0)
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn hotmesh_engine_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let dboid = arg.value() as u32;
    let me = shared::my_pid();

    // Claim the slot before connecting: one worker per database, whatever happened to
    // the launcher that started us.
    {
        let mut t = shared::exclusive();
        let Some(slot) = t.0.find_mut(dboid) else {
            return;
        };
        if slot.pid != 0 && slot.pid != me && shared::proc_alive(slot.pid) {
            return;
        }
        slot.pid = me;
    }
    // However this process ends (return, SIGTERM, FATAL), give the slot back and tell
    // the launcher, which may not be our notify_pid if it was restarted since.
    unsafe { pg_sys::before_shmem_exit(Some(on_exit), pg_sys::Datum::from(dboid)) };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(dboid)), None);

    // Is the extension here? A CREATE EXTENSION that commits while we look wins.
    loop {
        let seen = created(dboid);
        match txn::run(extension_installed) {
            Ok(true) => break,
            Ok(false) => {
                if absent(dboid, seen, me) {
                    debug1!("hotmesh engine: extension not installed in this database");
                    return;
                }
            }
            Err(msg) => {
                warning!("hotmesh engine: cannot check for the extension: {msg}");
                return;
            }
        }
    }
    {
        let mut t = shared::exclusive();
        let Some(slot) = t.0.find_mut(dboid) else {
            return;
        };
        if slot.pid != me || slot.state == SlotState::Paused {
            return;
        }
        slot.state = SlotState::Running;
        slot.started_ms = shared::now_ms();
        // `failures` stays: the launcher's plan resets it once a worker has run long
        // enough (a worker that dies young again waits twice as long)
        slot.loops = 0;
        slot.errors = 0;
    }
    log!("hotmesh engine started");

    // One lock per iteration: ownership check, loop count and injected error together.
    // Bound in a `let` statement so the guard drops here; as a `while let` scrutinee it
    // would be held through the whole iteration, latch wait included.
    let mut since_ms = shared::now_ms();
    let mut last_housekeeping = 0;
    // consecutive passes that left messages for later
    let mut deferrals = 0u32;
    let mut bridge = bridge::Keeper::default();
    loop {
        let it = shared::exclusive().0.begin_iteration(dboid, me);
        let Some(it) = it else { break };
        let injected = it.injected_error;
        let started = shared::now_ms();
        let housekeep = started - last_housekeeping >= HOUSEKEEPING_MS;
        if housekeep {
            last_housekeeping = started;
        }
        let mut wait = gucs::poll_interval();
        relay();
        match txn::run(move || iteration(injected, since_ms, housekeep)) {
            Ok(Step::Continue {
                due_ms,
                busy,
                deferred,
                behind,
            }) => {
                since_ms = started;
                if behind {
                    // the next pass soon, not in 5 s
                    last_housekeeping = started - HOUSEKEEPING_MS + HOUSEKEEPING_BEHIND_MS;
                    wait = wait.min(std::time::Duration::from_millis(
                        HOUSEKEEPING_BEHIND_MS as u64,
                    ));
                }
                if busy {
                    continue;
                }
                if let Some(due) = due_ms {
                    let ms = (due - shared::now_ms()).max(0) as u64;
                    wait = wait.min(std::time::Duration::from_millis(ms));
                }
                deferrals = if deferred { deferrals + 1 } else { 0 };
                if deferred {
                    wait = wait.min(deferred_retry(deferrals - 1));
                }
            }
            Ok(Step::ExtensionGone) => {
                if absent(dboid, it.created, me) {
                    log!("hotmesh engine: extension dropped, exiting");
                    return;
                }
            }
            Err(msg) => {
                warning!("hotmesh engine: {msg}");
                if let Some(s) = shared::exclusive().0.find_mut(dboid) {
                    s.record_error(shared::now_ms(), &msg);
                }
            }
        }
        if bridge.due(it.transports_changed, shared::now_ms()) {
            bridge.look(dboid);
        }
        if let Some(at) = bridge.next_ms() {
            let ms = (at - shared::now_ms()).max(0) as u64;
            wait = wait.min(std::time::Duration::from_millis(ms));
        }
        // A background worker reports its statistics itself: table counts (autovacuum
        // reads them to see the dead rows the router leaves) and the database's
        // (deadlocks, commits). At most once a second; until then it says how long to wait.
        let stats_in = unsafe { pg_sys::pgstat_report_stat(false) };
        if stats_in > 0 {
            wait = wait.min(std::time::Duration::from_millis(stats_in as u64));
        }
        let until = shared::now_ms() + wait.as_millis() as i64;
        shared::exclusive().0.sleep_until(dboid, me, until);
        // Sleep until `until`, or until woken for an iteration (a poke). A wake-up of the
        // relay alone (a transaction committed work notifications) sends them and sleeps
        // on: at thousands of starts a second, a whole iteration for each would cost a core.
        let mut stop = false;
        loop {
            let left = (until - shared::now_ms()).max(0) as u64;
            if !BackgroundWorker::wait_latch(Some(std::time::Duration::from_millis(left))) {
                stop = true; // SIGTERM or postmaster death
                break;
            }
            if BackgroundWorker::sighup_received() {
                unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            }
            let ours = relay();
            if shared::exclusive().0.take_poke(dboid, me)
                || ours
                || shared::now_ms() >= until
                || bridge.exited()
            {
                break;
            }
        }
        if stop {
            break;
        }
    }
    log!("hotmesh engine exiting");
}

/// Exit callback: gives the slot back and wakes the launcher, which decides what comes
/// next from the slot's state (absent, paused, or restart after a back-off).
#[pg_guard]
unsafe extern "C-unwind" fn on_exit(_code: std::ffi::c_int, arg: pg_sys::Datum) {
    let dboid = arg.value() as u32;
    let me = shared::my_pid();
    let launcher = {
        let mut t = shared::exclusive();
        if let Some(s) = t.0.find_mut(dboid) {
            if s.pid == me {
                s.pid = 0;
            }
        }
        t.0.launcher_pid
    };
    shared::set_latch(launcher);
}
