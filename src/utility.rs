//! The ProcessUtility hook (Postgres's name; "hooks" in this project are HotMesh's hook
//! activities): statements that affect the background workers.
//!
//! * `DROP DATABASE`, `ALTER DATABASE … RENAME` / `SET TABLESPACE` and
//!   `CREATE DATABASE … TEMPLATE x` need their database to themselves, and Postgres
//!   refuses them while our engine worker is connected. So the worker is paused (it
//!   leaves within milliseconds) until the statement's transaction ends; the bridge
//!   worker, if one runs, leaves with its connections.
//! * `CREATE DATABASE` wakes the launcher at commit, so the new database is probed.
//! * Any `DROP` wakes this database's engine worker at commit; if the extension went
//!   with it, the worker sees so and leaves.

use crate::{shared, wake};
use pgrx::prelude::*;
use pgrx::{register_xact_callback, PgList, PgXactCallbackEvent};
use std::ffi::CStr;

static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// How long a pause may last if its transaction never reports back (a crashed backend).
const PAUSE_MS: i64 = 60_000;

pub fn install() {
    unsafe {
        PREV_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(hotmesh_process_utility);
    }
}

/// What a utility statement means for the workers.
#[derive(Default)]
struct Effect {
    /// Database that must have no connection while the statement runs.
    exclusive: Option<pg_sys::Oid>,
    /// A database may have appeared.
    new_database: bool,
    /// Something was dropped in this database (maybe the extension).
    dropped: bool,
}

unsafe fn cstr(p: *const std::ffi::c_char) -> Option<&'static CStr> {
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
}

unsafe fn database_oid(name: *const std::ffi::c_char) -> Option<pg_sys::Oid> {
    if name.is_null() {
        return None;
    }
    let oid = unsafe { pg_sys::get_database_oid(name, true) };
    (oid != pg_sys::InvalidOid).then_some(oid)
}

/// The value of option `name` in a DefElem list, as text.
unsafe fn option(options: *mut pg_sys::List, name: &str) -> Option<*mut std::ffi::c_char> {
    let list = unsafe { PgList::<pg_sys::DefElem>::from_pg(options) };
    for def in list.iter_ptr() {
        let defname = unsafe { cstr((*def).defname) }?;
        if defname.to_bytes() == name.as_bytes() && unsafe { !(*def).arg.is_null() } {
            return Some(unsafe { pg_sys::defGetString(def) });
        }
    }
    None
}

unsafe fn classify(node: *mut pg_sys::Node) -> Effect {
    let mut e = Effect::default();
    if node.is_null() {
        return e;
    }
    unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_DropdbStmt => {
                let s = node as *mut pg_sys::DropdbStmt;
                e.exclusive = database_oid((*s).dbname);
            }
            pg_sys::NodeTag::T_RenameStmt => {
                let s = node as *mut pg_sys::RenameStmt;
                if (*s).renameType == pg_sys::ObjectType::OBJECT_DATABASE {
                    e.exclusive = database_oid((*s).subname);
                }
            }
            pg_sys::NodeTag::T_AlterDatabaseStmt => {
                let s = node as *mut pg_sys::AlterDatabaseStmt;
                if option((*s).options, "tablespace").is_some() {
                    e.exclusive = database_oid((*s).dbname);
                }
            }
            pg_sys::NodeTag::T_CreatedbStmt => {
                let s = node as *mut pg_sys::CreatedbStmt;
                e.new_database = true;
                if let Some(template) = option((*s).options, "template") {
                    e.exclusive = database_oid(template);
                }
            }
            pg_sys::NodeTag::T_DropStmt | pg_sys::NodeTag::T_DropOwnedStmt => e.dropped = true,
            _ => {}
        }
    }
    e
}

fn unpause(dboid: u32) {
    shared::exclusive().0.unpause(dboid);
    wake::launcher_now();
}

#[pg_guard]
#[allow(clippy::too_many_arguments)] // Postgres's ProcessUtility_hook_type
unsafe extern "C-unwind" fn hotmesh_process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    let effect = unsafe { classify((*pstmt).utilityStmt) };

    if let Some(oid) = effect.exclusive {
        let dboid = oid.to_u32();
        let (pid, bridge) = {
            let mut t = shared::exclusive();
            let pid = t.0.pause(dboid, shared::now_ms() + PAUSE_MS);
            (pid, t.0.find(dboid).map_or(0, |s| s.bridge_pid))
        };
        if let Some(pid) = pid {
            shared::set_latch(pid);
        }
        // the bridge worker and its connections leave too (it sees the pause)
        shared::set_latch(bridge);
        // Registered before the statement runs, so an ERROR (abort) also lifts the pause.
        register_xact_callback(PgXactCallbackEvent::Commit, move || unpause(dboid));
        register_xact_callback(PgXactCallbackEvent::Abort, move || unpause(dboid));
    }

    unsafe {
        match PREV_PROCESS_UTILITY {
            Some(prev) => prev(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
            None => pg_sys::standard_ProcessUtility(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
        }
    }

    if effect.new_database {
        wake::launcher_at_commit();
    }
    if effect.dropped {
        wake::engine_at_commit();
    }
}
