//! The launcher: one static background worker per cluster. It connects to no database
//! (so it never blocks `DROP DATABASE`), reads the shared catalog `pg_database`, and
//! keeps one engine worker running per database that has the extension. The decisions
//! are made by `hotmesh_bgworker::reconcile`; this file only carries them out.

use super::{txn, ENGINE_TYPE, LAUNCHER_TYPE};
use crate::{gucs, shared};
use hotmesh_bgworker::{plan, Action, Database, PlanConfig, WorkerHandle};
use pgrx::bgworkers::*;
use pgrx::prelude::*;
use pgrx::PgMemoryContexts;
use std::collections::{HashMap, HashSet};
use std::ffi::CStr;
use std::time::Duration;

pub fn register() {
    BackgroundWorkerBuilder::new(LAUNCHER_TYPE)
        .set_type(LAUNCHER_TYPE)
        .set_library("hotmesh")
        .set_function("hotmesh_launcher_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        // a crashed or terminated launcher comes back; it exits non-zero on purpose
        .set_restart_time(Some(Duration::from_secs(1)))
        .load();
}

/// Connectable, non-template, valid databases, by a scan of the shared catalog.
fn list_databases() -> Vec<Database> {
    let mut out = Vec::new();
    unsafe {
        let rel = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as _);
        let scan = pg_sys::table_beginscan_catalog(rel, 0, std::ptr::null_mut());
        loop {
            let tup = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tup.is_null() {
                break;
            }
            let form = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_database>(tup);
            if (*form).datallowconn
                && !(*form).datistemplate
                && (*form).datconnlimit != pg_sys::DATCONNLIMIT_INVALID_DB
            {
                let name = CStr::from_ptr((*form).datname.data.as_ptr())
                    .to_string_lossy()
                    .into_owned();
                out.push(Database {
                    oid: (*form).oid.to_u32(),
                    name,
                });
            }
        }
        pg_sys::table_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as _);
    }
    out
}

fn liveness(handles: &HashMap<u32, DynamicBackgroundWorker>, dboid: u32, pid: i32) -> WorkerHandle {
    match handles.get(&dboid) {
        Some(h) => match h.pid() {
            Err(BackgroundWorkerStatus::Stopped) | Err(BackgroundWorkerStatus::PostmasterDied) => {
                WorkerHandle::Stopped
            }
            // running, or registered and not forked yet
            Ok(_) | Err(_) => WorkerHandle::Alive,
        },
        // no handle (this launcher did not start it): judge by the pid it reported
        None if pid != 0 => {
            if shared::proc_alive(pid) {
                WorkerHandle::Alive
            } else {
                WorkerHandle::Stopped
            }
        }
        None => WorkerHandle::None,
    }
}

fn start_engine(dboid: u32, name: &str) -> Option<DynamicBackgroundWorker> {
    // the handle is palloc'd: keep it out of any transaction's memory
    let title = format!("{ENGINE_TYPE} {name}");
    let title: String = title.chars().take(90).collect();
    unsafe {
        PgMemoryContexts::TopMemoryContext.switch_to(|_| {
            BackgroundWorkerBuilder::new(&title)
                .set_type(ENGINE_TYPE)
                .set_library("hotmesh")
                .set_function("hotmesh_engine_main")
                .enable_spi_access()
                .set_start_time(BgWorkerStartTime::RecoveryFinished)
                .set_restart_time(None) // the launcher restarts it, not the postmaster
                .set_argument(Some(pg_sys::Datum::from(dboid)))
                .set_notify_pid(pg_sys::MyProcPid)
                .load_dynamic()
                .ok()
        })
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn hotmesh_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // no database: the launcher only reads shared catalogs
    BackgroundWorker::connect_worker_to_spi(None, None);
    shared::exclusive().0.launcher_pid = shared::my_pid();
    log!("hotmesh launcher started");

    let cfg = PlanConfig {
        max_databases: gucs::MAX_DATABASES.get().max(1) as usize,
        ..PlanConfig::default()
    };
    let mut handles: HashMap<u32, DynamicBackgroundWorker> = HashMap::new();
    let mut absent: HashSet<u32> = HashSet::new();
    let mut warned: HashSet<u32> = HashSet::new();

    loop {
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        match txn::run(list_databases) {
            Ok(dbs) => {
                let now = shared::now_ms();
                let actions = {
                    let mut t = shared::exclusive();
                    plan::reconcile(
                        now,
                        &dbs,
                        &mut t.0,
                        &mut absent,
                        |oid, pid| liveness(&handles, oid, pid),
                        &cfg,
                    )
                };
                for action in actions {
                    apply(action, &mut handles, &mut warned);
                }
            }
            Err(msg) => warning!("hotmesh launcher: cannot list databases: {msg}"),
        }

        let mut sleep = gucs::poll_interval();
        if let Some(deadline) = plan::next_deadline(&shared::share().0) {
            let ms = (deadline - shared::now_ms()).max(1) as u64;
            sleep = sleep.min(Duration::from_millis(ms));
        }
        if !BackgroundWorker::wait_latch(Some(sleep)) {
            break; // SIGTERM or postmaster death
        }
    }
    shared::exclusive().0.launcher_pid = 0;
    log!("hotmesh launcher exiting");
    // Exit non-zero: after pg_terminate_backend the postmaster starts a new launcher;
    // during shutdown it starts nothing.
    unsafe { pg_sys::proc_exit(1) };
}

fn apply(
    action: Action,
    handles: &mut HashMap<u32, DynamicBackgroundWorker>,
    warned: &mut HashSet<u32>,
) {
    match action {
        Action::Start { dboid, name } => match start_engine(dboid, &name) {
            Some(h) => {
                handles.insert(dboid, h);
            }
            None => {
                // no free background worker slot: try again later
                let mut t = shared::exclusive();
                if let Some(slot) = t.0.find_mut(dboid) {
                    slot.state = hotmesh_bgworker::SlotState::Backoff;
                    slot.until_ms = shared::now_ms() + 5_000;
                }
                drop(t);
                if warned.insert(dboid) {
                    warning!(
                        "hotmesh launcher: cannot start an engine worker for database \"{name}\": no free background worker slot; raise max_worker_processes"
                    );
                }
            }
        },
        Action::Stop { dboid } => {
            if let Some(h) = handles.remove(&dboid) {
                let _ = h.terminate();
            }
        }
        Action::Forget { dboid } => {
            handles.remove(&dboid);
        }
        Action::TableFull { dboid, name } => {
            if warned.insert(dboid) {
                warning!(
                    "hotmesh launcher: database \"{name}\" gets no engine worker: all {} slots are in use",
                    hotmesh_bgworker::MAX_SLOTS
                );
            }
        }
    }
}
