//! Errors raised by the extension's SQL functions, each with its SQLSTATE.

use hotmesh_engine::error::EngineError;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum HotmeshError {
    /// A refusal of the engine's rules (`hotmesh_engine::error`): its message as is.
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{}", hotmesh_engine::error::NOT_PRELOADED)]
    NotPreloaded,
    /// A manifest that does not parse or breaks a rule; the message names the YAML path
    /// and line.
    #[error("{0}")]
    Manifest(hotmesh_manifest::ManifestError),
    #[error("version '{version}' of app '{app}' already exists with different content")]
    VersionExists { app: String, version: String },
    #[error("{path} (line {line}): topic '{topic}' is already subscribed by app '{app}' (active version '{version}')")]
    TopicTaken {
        path: String,
        line: usize,
        topic: String,
        app: String,
        version: String,
    },
    #[error("app '{app}' has no version '{version}'")]
    NoSuchVersion {
        app: String,
        version: String,
        app_known: bool,
    },
    #[error("{0} Not Found")]
    StateNotFound(String),
    #[error("job {0} is still running: scrub deletes jobs that have ended")]
    JobRunning(String),
    #[error("{0} cannot run inside a transaction block: it commits the job before it waits")]
    InTransactionBlock(String),
    #[error("timeout: job {job_id} did not complete within {ms} ms")]
    Timeout { job_id: String, ms: i64 },

    #[error("{what} is nested deeper than {max} levels")]
    TooDeep { what: String, max: usize },
    /// `what`: "app 'x'", or what was asked for when no app is known yet.
    #[error("permission denied: role {role} may not {privilege} {what}")]
    PermissionDenied {
        role: String,
        privilege: &'static str,
        what: String,
    },
}

/// The SQLSTATE of each refusal of the engine, as `hotmesh_engine::error` names it (the
/// client maps the same names back to the engine's codes).
pub(crate) fn engine_sqlstate(e: &EngineError) -> PgSqlErrorCode {
    PgSqlErrorCode::from(make_sqlstate(e.sqlstate()))
}

/// Postgres's MAKE_SQLSTATE: five characters, six bits each.
fn make_sqlstate(s: &str) -> i32 {
    s.bytes()
        .take(5)
        .enumerate()
        .map(|(i, c)| ((c.wrapping_sub(b'0') as i32) & 0x3F) << (6 * i))
        .sum()
}

impl HotmeshError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            HotmeshError::NotPreloaded => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            HotmeshError::Engine(e) => engine_sqlstate(e),
            HotmeshError::Manifest(hotmesh_manifest::ManifestError::Syntax { .. }) => {
                PgSqlErrorCode::ERRCODE_SYNTAX_ERROR
            }
            HotmeshError::Manifest(_) => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            HotmeshError::VersionExists { .. } | HotmeshError::TopicTaken { .. } => {
                PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT
            }
            HotmeshError::NoSuchVersion { .. } => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            HotmeshError::JobRunning(_) => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            HotmeshError::InTransactionBlock(_) => PgSqlErrorCode::ERRCODE_ACTIVE_SQL_TRANSACTION,
            HotmeshError::StateNotFound(_) => PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
            HotmeshError::Timeout { .. } => PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
            HotmeshError::TooDeep { .. } => PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX,
            HotmeshError::PermissionDenied { .. } => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            HotmeshError::Manifest(e) => {
                let mut d = vec![];
                if !e.path().is_empty() {
                    d.push(format!("path: {}", e.path()));
                }
                if e.line() > 0 {
                    d.push(format!("line: {}", e.line()));
                }
                (!d.is_empty()).then(|| d.join(", "))
            }
            HotmeshError::StateNotFound(_) => Some("code: 404".into()),
            HotmeshError::Timeout { .. } => Some("code: 504".into()),
            _ => None,
        }
    }

    fn hint(&self) -> Option<&'static str> {
        match self {
            HotmeshError::NotPreloaded => Some(
                "Add this line to postgresql.conf and restart the server: shared_preload_libraries = 'hotmesh'",
            ),
            HotmeshError::VersionExists { .. } => Some("A version is immutable: deploy the changed manifest under a new version."),
            HotmeshError::TopicTaken { .. } => Some("Each topic starts jobs of one app: rename the topic or deactivate the other app's version."),
            HotmeshError::NoSuchVersion { app_known: false, .. } => Some("No version of this app is deployed: run hotmesh.deploy first."),
            HotmeshError::NoSuchVersion { .. } => Some("SELECT version FROM hotmesh.versions WHERE app_id = '…' lists the deployed versions."),
            HotmeshError::Engine(EngineError::UnknownTopic(_)) => Some("SELECT topic FROM hotmesh.topics WHERE kind = 'subscribes' lists the topics that start jobs."),
            HotmeshError::Engine(EngineError::AppNotActive { .. }) => Some("Activate a version: SELECT hotmesh.activate(app, version)."),
            HotmeshError::Engine(EngineError::JobCompleted(_)) => Some("Pass {\"suppress\": true} to ignore jobs that already ended."),
            HotmeshError::JobRunning(_) => Some("Interrupt it first: SELECT hotmesh.interrupt(topic, job_id), then scrub it."),
            HotmeshError::InTransactionBlock(_) => Some("Inside a transaction, start the job with SELECT hotmesh.pub(topic, data), COMMIT, then SELECT hotmesh.wait_for_job(job_id, timeout_ms)."),
            HotmeshError::Timeout { .. } => Some("The job keeps running: read it later with hotmesh.get_state or wait with hotmesh.wait_for_job."),
            HotmeshError::PermissionDenied { .. } => Some("The app's owner grants it: SELECT hotmesh.grant_app(app, role, privilege); docs/security.md explains the roles."),
            _ => None,
        }
    }

    /// Raises this error as a Postgres ERROR (never returns).
    pub fn raise(self) -> ! {
        let mut report = ErrorReport::new(self.sqlstate(), self.to_string(), "hotmesh");
        if let Some(h) = self.hint() {
            report = report.set_hint(h);
        }
        if let Some(d) = self.detail() {
            report = report.set_detail(d);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }
}

/// What the store reports to the engine (a stats query it could not resolve) keeps its
/// meaning on the way back.
impl From<HotmeshError> for EngineError {
    fn from(e: HotmeshError) -> Self {
        match e {
            HotmeshError::Engine(e) => e,
            other => EngineError::Internal(other.to_string()),
        }
    }
}

impl From<hotmesh_engine::options::OptionError> for HotmeshError {
    fn from(e: hotmesh_engine::options::OptionError) -> Self {
        HotmeshError::Engine(EngineError::InvalidArgument {
            name: e.name,
            problem: e.problem,
        })
    }
}

/// Raises an engine refusal as a Postgres ERROR (never returns).
pub trait Raise {
    fn raise(self) -> !;
}

impl Raise for EngineError {
    fn raise(self) -> ! {
        HotmeshError::from(self).raise()
    }
}

/// Raises a result's error as a Postgres ERROR (never returns on an error).
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T, E: Into<HotmeshError>> OrRaise<T> for Result<T, E> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| e.into().raise())
    }
}
