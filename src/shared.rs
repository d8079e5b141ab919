//! The slot table in shared memory (see `hotmesh_bgworker::slot`), and small helpers
//! around it that every process uses.

use hotmesh_bgworker::{Relay, SlotTable};
use pgrx::lwlock::{PgLwLockExclusiveGuard, PgLwLockShareGuard};
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use pgrx::{pg_shmem_init, PgLwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// `SlotTable` is plain data (`Copy`, no pointers), so it can live in shared memory.
#[derive(Copy, Clone, Default)]
#[repr(transparent)]
pub struct SharedTable(pub SlotTable);
unsafe impl PGRXSharedMemory for SharedTable {}

static TABLE: PgLwLock<SharedTable> = unsafe { PgLwLock::new(c"hotmesh_slots") };

/// The work notifications committing transactions leave for their engine workers
/// (`hotmesh_bgworker::relay`).
#[derive(Copy, Clone, Default)]
#[repr(transparent)]
pub struct SharedRelay(pub Relay);
unsafe impl PGRXSharedMemory for SharedRelay {}

static RELAY: PgLwLock<SharedRelay> = unsafe { PgLwLock::new(c"hotmesh_relay") };

/// Set once in the postmaster, inherited by every child: whether the table exists.
static mut READY: bool = false;

pub fn init() {
    pg_shmem_init!(TABLE);
    pg_shmem_init!(RELAY);
    unsafe { READY = true };
}

/// Whether the library was preloaded (so the table and the workers exist).
pub fn ready() -> bool {
    unsafe { READY }
}

pub fn share() -> PgLwLockShareGuard<'static, SharedTable> {
    TABLE.share()
}

pub fn exclusive() -> PgLwLockExclusiveGuard<'static, SharedTable> {
    TABLE.exclusive()
}

pub fn relay() -> PgLwLockExclusiveGuard<'static, SharedRelay> {
    RELAY.exclusive()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn my_pid() -> i32 {
    unsafe { pg_sys::MyProcPid }
}

pub fn my_database() -> u32 {
    unsafe { pg_sys::MyDatabaseId }.to_u32()
}

/// A C string PostgreSQL returned, as text; None for a null pointer.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that lives through the call.
pub unsafe fn text_of(p: *const std::ffi::c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        Some(
            unsafe { std::ffi::CStr::from_ptr(p) }
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// The name of database `oid` (in a transaction: it reads the catalog); None if gone.
pub fn database_name(oid: u32) -> Option<String> {
    unsafe { text_of(pg_sys::get_database_name(pg_sys::Oid::from(oid))) }
}

/// Sets the latch of the backend or worker with this pid. False if it is gone.
pub fn set_latch(pid: i32) -> bool {
    if pid == 0 {
        return false;
    }
    unsafe {
        let proc_ = pg_sys::BackendPidGetProc(pid);
        if proc_.is_null() {
            return false;
        }
        pg_sys::SetLatch(&raw mut (*proc_).procLatch);
    }
    true
}

/// Whether a backend or worker with this pid is alive.
pub fn proc_alive(pid: i32) -> bool {
    pid != 0 && unsafe { !pg_sys::BackendPidGetProc(pid).is_null() }
}

/// Unix milliseconds as a `timestamptz`.
pub fn timestamptz(ms: i64) -> Option<TimestampWithTimeZone> {
    // Postgres counts microseconds from 2000-01-01
    const PG_EPOCH_MS: i64 = 946_684_800_000;
    if ms <= 0 {
        return None;
    }
    TimestampWithTimeZone::try_from((ms - PG_EPOCH_MS) * 1000).ok()
}
