//! Background-worker runtime of hotmesh, kept free of Postgres types.
//!
//! The extension owns the processes (launcher and per-database engine workers) and the
//! shared memory; this crate owns the decisions: what a slot in the shared table means
//! ([`slot`]), and what the launcher must do each time it wakes up ([`plan`]). Keeping
//! these pure lets plain `#[test]`s cover every lifecycle rule in milliseconds.

pub mod log_lines;
pub mod plan;
pub mod relay;
pub mod slot;

pub use plan::{reconcile, Action, Database, PlanConfig, WorkerHandle};
pub use relay::Relay;
pub use slot::{Iteration, Slot, SlotState, SlotTable, MAX_SLOTS};
