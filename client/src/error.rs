//! Errors of the client, carrying the engine's SQLSTATE where there is one.

/// Everything a client call can fail with.
///
/// ```no_run
/// # async fn demo(hm: hotmesh_client::HotMesh) {
/// use hotmesh_client::Error;
/// match hm.get_state("order-7").await {
///     Ok(s) => println!("{}", s.data),
///     Err(e) if e.code() == 404 => println!("no such job"),
///     Err(Error::Connect(e)) => println!("database down: {e}"),
///     Err(e) => println!("{e} (code {})", e.code()),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be reached.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    /// The extension is not installed in this database.
    #[error(
        "the hotmesh extension is not installed in this database (run CREATE EXTENSION hotmesh)"
    )]
    NotInstalled,
    /// The engine's background workers are not running (the library is not preloaded).
    #[error("{message}")]
    NotPreloaded {
        /// The server's message, with its hint (the postgresql.conf line to add).
        message: String,
    },
    /// An error raised by the database or the engine, with its SQLSTATE (the engine's
    /// own code for it is [`Error::code`]).
    #[error("{message} (SQLSTATE {sqlstate})")]
    Database {
        /// The SQLSTATE (five characters).
        sqlstate: String,
        /// The server's message.
        message: String,
    },
    /// Any other failure of the connection or the driver.
    #[error(transparent)]
    Sql(sqlx::Error),
    /// A client argument was rejected before anything was sent (the name says which).
    #[error("invalid argument {name}: {problem}")]
    Invalid {
        /// The argument (`options.pending`, `data`, …).
        name: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// `pubsub` (or a wait) gave up: the job runs on. Code 504.
    #[error("timed out after {ms} ms waiting for job {job_id} (code 504)")]
    Timeout {
        /// The job waited for (it runs on).
        job_id: String,
        /// How long the wait was.
        ms: u64,
    },
    /// The job ended with an error (its `metadata.err`): code 410 when interrupted, else
    /// the error's code.
    #[error("job {job_id} failed with code {code}: {message}")]
    Job {
        /// The job.
        job_id: String,
        /// The error's code (410: interrupted).
        code: i64,
        /// The error's message.
        message: String,
        /// The whole error object the engine kept.
        error: serde_json::Value,
    },
    /// A manifest file could not be read or its `$ref`s resolved.
    #[error("{path}: {problem}")]
    Manifest {
        /// The file (or `$ref`) at fault.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A call to Redis or NATS failed (a subscription on a transport `sub_url`).
    #[error(transparent)]
    Transport(hotmesh_transport::TransportError),
    /// The client was stopped: a call made after [`HotMesh::stop`](crate::HotMesh::stop) began.
    #[error("the client is stopped")]
    Stopped,
    /// A live job (a running workflow) already has this id. Code 409.
    #[error("Duplicate job: {job_id} (a live job has this id; code 409)")]
    Duplicate {
        /// The id asked for.
        job_id: String,
    },
    /// A MeshFlow workflow stopped because its replayed code asked for another operation
    /// than the one its journal recorded at `index`. Code 593.
    #[error("workflow {job_id} stopped: {message}")]
    NonDeterminism {
        /// The workflow (job) id.
        job_id: String,
        /// The operation's index in its run.
        index: u32,
        /// What the journal holds there.
        recorded: String,
        /// What the code asked for.
        current: String,
        /// The whole message.
        message: String,
    },
}

/// SQLSTATE classes 08 (connection exception) and 57P (the server shutting down or
/// terminating the session).
pub(crate) fn connection_class(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || sqlstate.starts_with("57P")
}

/// A driver error that means the server could not be reached or went away.
pub(crate) fn is_connection(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    ) || matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| connection_class(&c)))
}

impl Error {
    /// Sorts a driver error into the variants above.
    pub(crate) fn from_sqlx(e: sqlx::Error) -> Error {
        if let sqlx::Error::Database(db) = &e {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = db.message().to_string();
            // 3F000 invalid_schema_name, 42883 undefined_function: the schema is missing
            if (code == "3F000" || code == "42883") && message.contains("hotmesh") {
                return Error::NotInstalled;
            }
            if code == hotmesh_engine::error::sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE
                && message == hotmesh_engine::error::NOT_PRELOADED
            {
                // the hint names the postgresql.conf line to add: keep it
                let hint = db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .and_then(|pg| pg.hint())
                    .map(|h| format!(". {h}"))
                    .unwrap_or_default();
                return Error::NotPreloaded {
                    message: format!("{message}{hint}"),
                };
            }
            return Error::Database {
                sqlstate: code,
                message,
            };
        }
        Error::Sql(e)
    }

    /// Whether the server could not be reached or went away (a refused or lost
    /// connection, a server shutting down): worth trying again later, unlike the
    /// others.
    ///
    /// ```
    /// let e = hotmesh_client::Error::Database { sqlstate: "57P01".into(), message: "terminating connection".into() };
    /// assert!(e.is_connection_lost());
    /// assert!(!hotmesh_client::Error::NotInstalled.is_connection_lost());
    /// ```
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::Connect(_) => true,
            Error::Sql(e) => is_connection(e),
            Error::Database { sqlstate, .. } => connection_class(sqlstate),
            Error::Transport(e) => e.is_connection(),
            _ => false,
        }
    }

    /// The SQLSTATE of a database error.
    ///
    /// ```
    /// let e = hotmesh_client::Error::Database { sqlstate: "23505".into(), message: "Duplicate job: a".into() };
    /// assert_eq!(e.sqlstate(), Some("23505"));
    /// ```
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Database { sqlstate, .. } => Some(sqlstate),
            _ => None,
        }
    }

    /// The engine's code for this error, as the original numbers them: 404 (no such
    /// job), 409 (duplicate job), 410 (interrupted), 422 (bad input), 504 (timeout), a
    /// failed job's own code; 500 for anything else.
    ///
    /// ```
    /// let e = hotmesh_client::Error::Timeout { job_id: "j1".into(), ms: 100 };
    /// assert_eq!(e.code(), 504);
    /// ```
    pub fn code(&self) -> i64 {
        match self {
            Error::Timeout { .. } => 504,
            Error::Job { code, .. } => *code,
            Error::Duplicate { .. } => 409,
            Error::NonDeterminism { .. } => 593,
            Error::Invalid { .. } | Error::Manifest { .. } => 422,
            Error::Database { sqlstate, .. } => hotmesh_engine::error::code_of_sqlstate(sqlstate),
            _ => 500,
        }
    }
}
