//! An answer's status: what a worker's answer (`hotmesh.respond`) or a signal
//! (`hotmesh.signal`) says of the activity it reaches. The extension parses it from SQL
//! and the client sends it, so both spell it with this type.

/// The status of an answer.
///
/// ```
/// use hotmesh_engine::answer::Status;
/// assert_eq!(Status::parse("pending"), Ok(Status::Pending));
/// assert_eq!(Status::Pending.default_code(), 202);
/// assert!(Status::parse("done").unwrap_err().contains("'success', 'error' or 'pending'"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The activity's work is done (code 200 unless given).
    Success,
    /// The work failed (code 500 unless given): the activity's error leg.
    Error,
    /// A partial result (code 202 unless given): the activity stays open for more.
    Pending,
}

impl Status {
    /// As SQL and the original spell it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Pending => "pending",
        }
    }

    /// Reads a status; the error says which are known.
    pub fn parse(s: &str) -> Result<Status, String> {
        Ok(match s {
            "success" => Status::Success,
            "error" => Status::Error,
            "pending" => Status::Pending,
            _ => {
                return Err(format!(
                    "must be 'success', 'error' or 'pending', got '{s}'"
                ))
            }
        })
    }

    /// The code of an answer that gives none.
    pub fn default_code(self) -> i64 {
        match self {
            Status::Success => 200,
            Status::Pending => 202,
            Status::Error => 500,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_name() {
        for s in [Status::Success, Status::Error, Status::Pending] {
            assert_eq!(Status::parse(s.name()), Ok(s));
        }
        assert!(Status::parse("Success").is_err());
    }
}
