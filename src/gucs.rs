//! Settings (postgresql.conf), documented in docs/configuration.md.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::time::Duration;

/// Fallback poll of the launcher and the engine workers, in ms. Wake-ups normally come
/// by latch at commit; the poll only bounds how late a missed one can be.
pub static POLL_INTERVAL_MS: GucSetting<i32> = GucSetting::<i32>::new(1_000);

/// Seconds an expired job is kept before the engine worker deletes it.
pub static RETENTION_S: GucSetting<i32> = GucSetting::<i32>::new(7 * 86_400);

/// How many databases get an engine worker at once.
pub static MAX_DATABASES: GucSetting<i32> = GucSetting::<i32>::new(16);

/// Where the bridge worker connects to this server (a socket directory or an address);
/// empty: the first of `unix_socket_directories`, else localhost.
pub static BRIDGE_HOST: GucSetting<Option<std::ffi::CString>> =
    GucSetting::<Option<std::ffi::CString>>::new(None);

/// `preloading`: called from shared_preload_libraries. Postmaster-context settings can
/// only be defined then; a backend that loads the library later must not try (FATAL).
pub fn define(preloading: bool) {
    GucRegistry::define_int_guc(
        c"hotmesh.poll_interval",
        c"Fallback poll interval of hotmesh's background workers.",
        c"Workers are woken by a latch when a transaction commits work for them; this bounds how long they sleep without one.",
        &POLL_INTERVAL_MS,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"hotmesh.retention",
        c"How long expired jobs are kept before they are deleted.",
        c"A completed job expires after its graph's expire (soft delete: still readable); the engine worker deletes it this long after.",
        &RETENTION_S,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_string_guc(
        c"hotmesh.bridge_host",
        c"Where the bridge background worker connects to this server.",
        c"A socket directory or a host address; empty: the first of unix_socket_directories, else localhost. The bridge connects as the role its hotmesh.transports row names.",
        &BRIDGE_HOST,
        GucContext::Sighup,
        GucFlags::default(),
    );
    if !preloading {
        return;
    }
    GucRegistry::define_int_guc(
        c"hotmesh.max_databases",
        c"Maximum number of databases served by hotmesh engine workers at once.",
        c"Each database with the extension uses one background worker; max_worker_processes must leave room for them.",
        &MAX_DATABASES,
        1,
        hotmesh_bgworker::MAX_SLOTS as i32,
        GucContext::Postmaster,
        GucFlags::default(),
    );
}

pub fn poll_interval() -> Duration {
    Duration::from_millis(POLL_INTERVAL_MS.get().max(10) as u64)
}

pub fn retention_s() -> f64 {
    RETENTION_S.get().max(0) as f64
}

/// `hotmesh.bridge_host`, or None when unset or empty.
pub fn bridge_host() -> Option<String> {
    BRIDGE_HOST
        .get()
        .map(|c| c.to_string_lossy().trim().to_string())
        .filter(|h| !h.is_empty())
}
