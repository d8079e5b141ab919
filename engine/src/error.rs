//! What the engine refuses, with the message users see. The extension raises each as
//! an ERROR with its SQLSTATE (src/error.rs maps them one to one); a test store sees
//! them as values.

/// An error of the engine's rules (a step's own failures are not errors: they follow
/// the activity's error path).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("invalid argument {name}: {problem}")]
    InvalidArgument { name: &'static str, problem: String },
    #[error("map failed: {0}")]
    Map(String),
    #[error("no subscription found for topic {0}")]
    UnknownTopic(String),
    #[error(
        "app '{app}' is not active: topic {topic} belongs to a deployed version that is not active"
    )]
    AppNotActive { topic: String, app: String },
    #[error("Duplicate job: {0}")]
    DuplicateJob(String),
    #[error("Job {0} not found")]
    JobNotFound(String),
    #[error("Job {0} already completed")]
    JobCompleted(String),
    #[error("no active app has a hook rule for signal topic {0}")]
    NoHookRule(String),
    #[error("hotmesh internal error: {0}")]
    Internal(String),
}

/// The message of the ERROR a session gets when the library is not preloaded: the
/// extension raises it and the client recognises it (with SQLSTATE 55000) to say what
/// to do.
pub const NOT_PRELOADED: &str =
    "hotmesh background workers are not running: the hotmesh library is not preloaded";

impl EngineError {
    /// The SQLSTATE the extension raises this refusal with.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            EngineError::InvalidArgument { .. } => sqlstate::INVALID_PARAMETER_VALUE,
            EngineError::Map(_) => sqlstate::DATA_EXCEPTION,
            EngineError::UnknownTopic(_) | EngineError::NoHookRule(_) => sqlstate::UNDEFINED_OBJECT,
            EngineError::AppNotActive { .. } | EngineError::JobCompleted(_) => {
                sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE
            }
            EngineError::DuplicateJob(_) => sqlstate::UNIQUE_VIOLATION,
            EngineError::JobNotFound(_) => sqlstate::NO_DATA_FOUND,
            EngineError::Internal(_) => sqlstate::INTERNAL_ERROR,
        }
    }
}

/// The SQLSTATEs the engine's errors carry (Postgres's own codes, by their names).
pub mod sqlstate {
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const DATA_EXCEPTION: &str = "22000";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const DUPLICATE_OBJECT: &str = "42710";
    pub const SYNTAX_ERROR: &str = "42601";
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const NO_DATA_FOUND: &str = "P0002";
    pub const QUERY_CANCELED: &str = "57014";
    pub const INTERNAL_ERROR: &str = "XX000";
}

/// The engine's code of an ERROR, as the original numbers them, from its SQLSTATE: 404
/// (no such job), 409 (duplicate job), 422 (bad input), 504 (timed out); 500 for
/// anything else. What a client reports as `code()`.
pub fn code_of_sqlstate(state: &str) -> i64 {
    use sqlstate::*;
    match state {
        NO_DATA_FOUND => 404,
        UNIQUE_VIOLATION => 409,
        QUERY_CANCELED => 504,
        INVALID_PARAMETER_VALUE
        | INVALID_TEXT_REPRESENTATION
        | SYNTAX_ERROR
        | UNDEFINED_OBJECT
        | DUPLICATE_OBJECT => 422,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_the_code_a_client_reports() {
        let cases = [
            (EngineError::JobNotFound("j".into()), 404),
            (EngineError::DuplicateJob("j".into()), 409),
            (
                EngineError::InvalidArgument {
                    name: "data",
                    problem: "x".into(),
                },
                422,
            ),
            (EngineError::UnknownTopic("t".into()), 422),
            (EngineError::Internal("x".into()), 500),
        ];
        for (e, code) in cases {
            assert_eq!(code_of_sqlstate(e.sqlstate()), code, "{e}");
        }
    }

    #[test]
    fn every_sqlstate_has_five_characters() {
        for s in [
            sqlstate::INVALID_PARAMETER_VALUE,
            sqlstate::DATA_EXCEPTION,
            sqlstate::UNDEFINED_OBJECT,
            sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
            sqlstate::UNIQUE_VIOLATION,
            sqlstate::NO_DATA_FOUND,
            sqlstate::INTERNAL_ERROR,
        ] {
            assert_eq!(s.len(), 5, "{s}");
        }
    }
}
