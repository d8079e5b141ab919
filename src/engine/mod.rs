//! The engine: jobs, activity legs, streams, signals and timers, as SQL functions and
//! the engine worker's router. Every step runs in the caller's transaction: a step
//! commits whole or not at all, and the job row lock serializes the steps of a job.

pub mod api;
pub mod apps;
pub mod db;
pub mod grants;
pub mod notify;
pub mod queries;
pub mod router;
pub mod state;
pub mod stats;
pub mod step;
pub mod store;
pub mod stream;
