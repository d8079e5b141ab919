//! Every SQL function of the extension (`hotmesh.<name>`), one file per domain: apps
//! (deploy, activate, validate, map), jobs (start, interrupt, read, wait, scrub),
//! stream (the worker protocol), signals, grants (privileges per app) and admin
//! (version, workers, wake-ups, channel names). Each reads its arguments into the
//! engine's types and calls the engine on the extension's store (`crate::store`).

pub mod admin;
pub mod apps;
pub mod grants;
pub mod jobs;
pub mod signals;
pub mod stream;

use crate::error::Raise;
use crate::store::spi::Status;
use hotmesh_engine::error::EngineError;

pub(crate) fn bad(name: &'static str, problem: impl Into<String>) -> ! {
    EngineError::InvalidArgument {
        name,
        problem: problem.into(),
    }
    .raise()
}

pub(crate) fn status_arg(s: &str) -> Status {
    Status::parse(s).unwrap_or_else(|p| bad("status", p))
}

/// An answer's code: given (100 to 999), or the status's default.
pub(crate) fn code_arg(st: Status, code: Option<i32>) -> i64 {
    let code = code.map(i64::from).unwrap_or(st.default_code());
    if !(100..=999).contains(&code) {
        bad("code", format!("must be between 100 and 999, got {code}"));
    }
    code
}
