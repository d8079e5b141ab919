//! Errors raised by the extension's SQL functions, each with its SQLSTATE.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum HotmeshError {
    #[error("hotmesh background workers are not running: the hotmesh library is not preloaded")]
    NotPreloaded,
    #[error("invalid argument {name}: {problem}")]
    InvalidArgument { name: &'static str, problem: String },
}

impl HotmeshError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            HotmeshError::NotPreloaded => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            HotmeshError::InvalidArgument { .. } => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        }
    }

    fn hint(&self) -> Option<&'static str> {
        match self {
            HotmeshError::NotPreloaded => Some(
                "Add this line to postgresql.conf and restart the server: shared_preload_libraries = 'hotmesh'",
            ),
            _ => None,
        }
    }

    /// Raises this error as a Postgres ERROR (never returns).
    pub fn raise(self) -> ! {
        let mut report = ErrorReport::new(self.sqlstate(), self.to_string(), "hotmesh");
        if let Some(h) = self.hint() {
            report = report.set_hint(h);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }
}
