//! hotmesh: the HotMesh durable workflow engine, running inside PostgreSQL.
//!
//! Processes (see ARCHITECTURE.md): one launcher per cluster, and one engine worker per
//! database where the extension is installed. Both only exist when the library is in
//! `shared_preload_libraries`; without it, `CREATE EXTENSION` still works and the
//! functions that need the workers say which postgresql.conf line is missing.

use pgrx::prelude::*;

mod api;
mod bgworkers;
mod error;
mod guard;
mod gucs;
mod json;
mod shared;
mod store;
mod utility;
mod wake;

::pgrx::pg_module_magic!(name, version);

// The schema, created first and plainly: a `hotmesh` schema that exists already (made by
// someone who hoped the extension would adopt it, and own what it holds) makes CREATE
// EXTENSION fail. pgrx's own `CREATE SCHEMA IF NOT EXISTS` after it is then a no-op.
extension_sql!(
    "CREATE SCHEMA hotmesh;",
    name = "bootstrap_schema",
    bootstrap
);

// The app catalog: tables and views (sql/catalog.sql).
extension_sql_file!(
    "../sql/catalog.sql",
    name = "catalog",
    requires = [api::admin::hotmesh::version]
);
// The engine's tables (sql/engine.sql) and the pubsub procedure (sql/pubsub.sql).
extension_sql_file!("../sql/engine.sql", name = "engine", requires = ["catalog"]);
extension_sql_file!(
    "../sql/pubsub.sql",
    name = "pubsub",
    requires = [
        api::jobs::hotmesh::pub_job,
        api::jobs::hotmesh::wait_for_job,
        api::jobs::hotmesh::_outside_transaction_block
    ]
);
// Stats: what triggers' stats.measures record (sql/stats.sql).
extension_sql_file!("../sql/stats.sql", name = "stats", requires = ["engine"]);
// MeshFlow's journal: the marks of workflow jobs as rows (sql/journal.sql).
extension_sql_file!(
    "../sql/journal.sql",
    name = "journal",
    requires = ["engine"]
);
// MeshCall's crons as rows (sql/meshcall.sql).
extension_sql_file!(
    "../sql/meshcall.sql",
    name = "meshcall",
    requires = ["engine"]
);
// MeshData's search indexes and hotmesh.find_where (sql/meshdata.sql).
extension_sql_file!(
    "../sql/meshdata.sql",
    name = "meshdata",
    requires = ["engine"]
);
// The quorum: client processes, roll call, throttles; and hotmesh.release (sql/quorum.sql).
extension_sql_file!(
    "../sql/quorum.sql",
    name = "quorum",
    requires = [
        "engine",
        api::admin::hotmesh::work_channel,
        api::admin::hotmesh::quorum_channel,
        api::grants::hotmesh::authorize
    ]
);
// Privileges per app: hotmesh.grant_app / revoke_app (sql/grants.sql).
extension_sql_file!("../sql/grants.sql", name = "grants", requires = ["quorum"]);
// The bridges to Redis and NATS: hotmesh.transports, hotmesh.bridges (sql/transports.sql).
extension_sql_file!(
    "../sql/transports.sql",
    name = "transports",
    requires = ["engine", api::admin::hotmesh::transports_changed]
);
// Privileges and the launcher's wake-up, run last by CREATE EXTENSION (sql/ holds the text).
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // Shared memory, static workers and hooks are only possible while the postmaster
    // loads us from shared_preload_libraries. A backend that loads the library for a
    // plain function call runs _PG_init too, and must stop early.
    let preloading = unsafe { pg_sys::process_shared_preload_libraries_in_progress };
    // every process that loads the library, preloaded or not: long evaluations of
    // manifests and maps answer cancels and stop short of the stack's end
    guard::install();
    gucs::define(preloading);
    if !preloading {
        return;
    }
    shared::init();
    utility::install();
    bgworkers::launcher::register();
}

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        // preloading starts the launcher; a long poll proves that wake-ups use latches
        vec![
            "shared_preload_libraries = 'hotmesh'",
            "hotmesh.poll_interval = 60000",
        ]
    }
}
