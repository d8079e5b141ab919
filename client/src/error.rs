//! Errors of the client, carrying the engine's SQLSTATE where there is one.

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
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
    NotPreloaded { message: String },
    /// An error raised by the database or the engine, with its SQLSTATE.
    #[error("{message} (SQLSTATE {code})")]
    Database { code: String, message: String },
    /// Any other failure of the connection or the driver.
    #[error(transparent)]
    Sql(sqlx::Error),
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
            if code == "55000" && message.contains("hotmesh library is not preloaded") {
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
            return Error::Database { code, message };
        }
        Error::Sql(e)
    }

    /// The SQLSTATE of a database error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Database { code, .. } => Some(code),
            _ => None,
        }
    }
}
