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
