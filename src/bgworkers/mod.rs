//! Background workers: the launcher (one per cluster), the engine workers (one per
//! database with the extension), the bridge workers (one per database with an enabled
//! transport, started by its engine worker), and the engine worker's duties: the router,
//! the time scout, housekeeping. See ARCHITECTURE.md for their life cycle.

pub mod bridge;
pub mod engine_worker;
pub mod housekeeping;
pub mod launcher;
pub mod router;
pub mod scout;
pub mod targets;
pub mod txn;

/// `backend_type` shown in `pg_stat_activity`.
pub const LAUNCHER_TYPE: &str = "hotmesh launcher";
pub const ENGINE_TYPE: &str = "hotmesh engine";
