//! The engine worker of one database. Started by the launcher, it first checks that the
//! extension is installed (if not, it says so and leaves), then loops: one iteration per
//! latch wake-up or poll, each in its own transaction, surviving ERRORs.
//!
//! Later issues give the iteration its real work (the stream router and the time scout);
//! the life cycle here is what they run in.

use super::txn;
use crate::{gucs, shared};
use hotmesh_bgworker::SlotState;
use pgrx::bgworkers::*;
use pgrx::prelude::*;

fn extension_installed() -> bool {
    unsafe { pg_sys::get_extension_oid(c"hotmesh".as_ptr(), true) != pg_sys::InvalidOid }
}

enum Step {
    Continue,
    ExtensionGone,
}

fn iteration(injected: Option<String>) -> Step {
    if !extension_installed() {
        return Step::ExtensionGone;
    }
    if let Some(msg) = injected {
        error!("{msg}");
    }
    Step::Continue
}

/// Records that the extension is not installed here, unless a `CREATE EXTENSION`
/// committed since `seen` was read (then the caller must look again). True: leave.
fn absent(dboid: u32, seen: u32, me: i32) -> bool {
    shared::exclusive().0.mark_absent(dboid, seen, me)
}

/// The slot's `created` counter, read before looking at `pg_extension`.
fn created(dboid: u32) -> u32 {
    shared::share().0.find(dboid).map(|s| s.created).unwrap_or(0)
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
        let Some(slot) = t.0.find_mut(dboid) else { return };
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
        let Some(slot) = t.0.find_mut(dboid) else { return };
        if slot.pid != me || slot.state == SlotState::Paused {
            return;
        }
        slot.state = SlotState::Running;
        slot.started_ms = shared::now_ms();
        slot.failures = 0;
        slot.loops = 0;
        slot.errors = 0;
    }
    log!("hotmesh engine started");

    // One lock per iteration: ownership check, loop count and injected error together.
    // Bound in a `let` statement so the guard drops here; as a `while let` scrutinee it
    // would be held through the whole iteration, latch wait included.
    loop {
        let it = shared::exclusive().0.begin_iteration(dboid, me);
        let Some(it) = it else { break };
        let injected = it.injected_error;
        match txn::run(move || iteration(injected)) {
            Ok(Step::Continue) => {}
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
        if !BackgroundWorker::wait_latch(Some(gucs::poll_interval())) {
            break; // SIGTERM or postmaster death
        }
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
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
