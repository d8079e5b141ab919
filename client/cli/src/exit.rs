//! The exit codes, in one place: what a script can tell apart without reading stderr.
//! `--help` and docs/client.md print [`TABLE`]; [`Failure`] carries the code of each
//! error to `main`.

use hotmesh_client::Error;

/// The command did what it was asked.
pub const OK: u8 = 0;
/// Any failure not named below (a conflict such as a duplicate job id, an internal error).
pub const FAILURE: u8 = 1;
/// Invalid input: bad arguments or usage (clap exits with 2 for those too), data that is
/// not a JSON object, a manifest that does not validate, a value the engine refuses (422).
pub const INVALID: u8 = 2;
/// Not found: no such job (the engine's code 404).
pub const NOT_FOUND: u8 = 3;
/// Timed out: the job did not end in time (504; it runs on), or `watch --count` saw too
/// few messages before its `--timeout`.
pub const TIMEOUT: u8 = 4;
/// The engine cannot be reached: the server is down or refuses the connection, the
/// extension is not installed there, or its library is not preloaded.
pub const UNREACHABLE: u8 = 5;
/// The job waited for ended with an error, or was interrupted (its code is in the message).
pub const JOB_FAILED: u8 = 6;

/// Every exit code with what it means, for `--help` and the docs.
pub const TABLE: [(u8, &str); 7] = [
    (OK, "success"),
    (FAILURE, "any other failure (e.g. a duplicate job id)"),
    (
        INVALID,
        "invalid input or usage (bad JSON, a manifest that does not validate)",
    ),
    (NOT_FOUND, "not found (no such job)"),
    (TIMEOUT, "timed out (the job runs on)"),
    (
        UNREACHABLE,
        "server unreachable, extension not installed or not preloaded",
    ),
    (JOB_FAILED, "the job ended with an error or was interrupted"),
];

/// The exit-code table as `--help` shows it.
pub fn help_table() -> String {
    let rows: Vec<String> = TABLE.iter().map(|(c, m)| format!("  {c}  {m}")).collect();
    format!("Exit codes:\n{}", rows.join("\n"))
}

/// Why a command failed: the one line printed after `hotmesh: `, an optional hint for
/// what to do about it, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub exit: u8,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    /// An argument the command line itself refuses (before anything is sent).
    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure {
            exit: INVALID,
            message: message.into(),
            hint: None,
        }
    }

    /// The output could not be written (other than to a reader that left).
    pub fn from_io(e: std::io::Error) -> Failure {
        Failure {
            exit: FAILURE,
            message: format!("cannot write the output: {e}"),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            exit: code_of(&e),
            message: message_of(&e),
            hint: hint_of(&e),
        }
    }
}

/// The exit code of a client error: by its kind first (a failed job keeps its own code,
/// which may be any number), then by the engine's code.
pub fn code_of(e: &Error) -> u8 {
    match e {
        Error::NotInstalled | Error::NotPreloaded { .. } => UNREACHABLE,
        e if e.is_connection_lost() => UNREACHABLE,
        Error::Job { .. } => JOB_FAILED,
        Error::Invalid { .. } | Error::Manifest { .. } => INVALID,
        other => match other.code() {
            404 => NOT_FOUND,
            504 => TIMEOUT,
            422 => INVALID,
            _ => FAILURE,
        },
    }
}

/// The error's message; a database error gets the engine's code beside its SQLSTATE
/// (the other kinds say their code already, or have none worth quoting).
fn message_of(e: &Error) -> String {
    match e {
        Error::Database { sqlstate, message } => {
            format!("{message} (SQLSTATE {sqlstate}, code {})", e.code())
        }
        other => other.to_string(),
    }
}

fn hint_of(e: &Error) -> Option<String> {
    match e {
        Error::Connect(_) => Some(
            "check --url (or HOTMESH_DATABASE_URL) and that PostgreSQL is running there".into(),
        ),
        Error::Timeout { job_id, .. } => Some(format!(
            "the job runs on: `hotmesh wait {job_id}` waits for it again"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(sqlstate: &str) -> Error {
        Error::Database {
            sqlstate: sqlstate.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn each_kind_of_failure_has_its_own_exit_code() {
        assert_eq!(code_of(&db("P0002")), NOT_FOUND);
        assert_eq!(code_of(&db("57014")), TIMEOUT);
        assert_eq!(code_of(&db("22023")), INVALID);
        assert_eq!(code_of(&db("23505")), FAILURE);
        let timeout = Error::Timeout {
            job_id: "j".into(),
            ms: 5,
        };
        assert_eq!(code_of(&timeout), TIMEOUT);
        let invalid = Error::Invalid {
            name: "data",
            problem: "p".into(),
        };
        assert_eq!(code_of(&invalid), INVALID);
        assert_eq!(code_of(&Error::NotInstalled), UNREACHABLE);
        let shutdown = Error::Database {
            sqlstate: "57P01".into(),
            message: "terminating connection due to administrator command".into(),
        };
        assert_eq!(code_of(&shutdown), UNREACHABLE);
    }

    #[test]
    fn a_failed_job_exits_6_whatever_its_own_code() {
        for code in [404, 410, 504, 500] {
            let e = Error::Job {
                job_id: "j".into(),
                code,
                message: "m".into(),
                error: serde_json::Value::Null,
            };
            assert_eq!(code_of(&e), JOB_FAILED, "{code}");
        }
    }

    #[test]
    fn the_engine_code_is_said_once() {
        assert_eq!(
            Failure::from(db("P0002")).message,
            "m (SQLSTATE P0002, code 404)"
        );
        let t = Failure::from(Error::Timeout {
            job_id: "j".into(),
            ms: 5,
        });
        assert_eq!(t.message.matches("code 504").count(), 1, "{}", t.message);
        assert!(t.hint.unwrap().contains("hotmesh wait j"));
    }

    #[test]
    fn the_table_lists_every_code_once() {
        let codes: Vec<u8> = TABLE.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, (0..=6).collect::<Vec<u8>>());
    }
}
