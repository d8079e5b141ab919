//! Background workers: the launcher (one per cluster) and the engine workers (one per
//! database with the extension). See ARCHITECTURE.md for their life cycle.

pub mod engine;
pub mod launcher;
pub mod txn;

/// `backend_type` shown in `pg_stat_activity`.
pub const LAUNCHER_TYPE: &str = "hotmesh launcher";
pub const ENGINE_TYPE: &str = "hotmesh engine";
