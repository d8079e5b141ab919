//! The engine: its step machine and rules, free of the database, so plain tests cover
//! them:
//! - [`dad`]: dimensional addresses (`,0,1`), which keep each cycle iteration apart;
//! - [`retry`]: worker retry policies (structured and the legacy per-code form);
//! - [`status`]: the job status semaphore's constants;
//! - [`channel`]: NOTIFY channel names and payloads that fit;
//! - [`ids`]: job ids and generations, and the compact timestamps in job metadata;
//! - [`limits`]: bounds on durations and topics that callers hand the engine;
//! - [`options`]: the options of `pub` and `interrupt`, read by the extension, built by
//!   the client;
//! - [`answer`]: an answer's status (success, error, pending);
//! - [`job`] and [`activity`]: a job and its activity rows as the engine holds them in
//!   a transaction, and an activity's status;
//! - [`work`]: a unit of engine work (an activity's leg) and an activity's failure;
//! - [`step`], [`activities`], [`signals`]: the step machine, `Engine<S: Store>`;
//! - [`store`]: the `Store` trait, the engine's only way to storage and time;
//! - [`stream`]: what becomes of a worker message when its worker answers or asks for a
//!   retry (apply, park, requeue, fail);
//! - `memory` (feature `testing`): an in-memory store and a harness to run apps in
//!   plain tests.

pub mod activities;
pub mod activity;
pub mod answer;
pub mod apps;
pub mod channel;
pub mod dad;
pub mod error;
pub mod ids;
pub mod job;
pub mod limits;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod options;
pub mod retry;
pub mod signals;
pub mod status;
pub mod step;
pub mod store;
pub mod stream;
pub mod work;

#[cfg(test)]
mod behaviour;
