//! What can go wrong with a manifest or a map.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ManifestError {
    /// The text is not YAML (or JSON).
    #[error("YAML syntax error at line {line}{}: {message}", column_text(*.column))]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// The manifest parses but breaks a rule. `path` is the YAML path
    /// (`app.graphs[0].activities.t1.type`), `line` is 0 when unknown.
    #[error("{}{}: {message}", path_text(path), line_text(*line))]
    Invalid {
        path: String,
        line: usize,
        message: String,
    },
}

fn column_text(c: usize) -> String {
    if c > 0 {
        format!(", column {c}")
    } else {
        String::new()
    }
}

fn path_text(p: &str) -> String {
    if p.is_empty() {
        "manifest".into()
    } else {
        p.to_string()
    }
}

fn line_text(l: usize) -> String {
    if l > 0 {
        format!(" (line {l})")
    } else {
        String::new()
    }
}

impl ManifestError {
    pub fn invalid(path: impl Into<String>, line: usize, message: impl Into<String>) -> Self {
        ManifestError::Invalid {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    pub fn line(&self) -> usize {
        match self {
            ManifestError::Syntax { line, .. } | ManifestError::Invalid { line, .. } => *line,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            ManifestError::Syntax { .. } => "",
            ManifestError::Invalid { path, .. } => path,
        }
    }
}

/// A map failed while it ran: the exception the original's JavaScript would throw.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
}

impl From<String> for EvalError {
    fn from(message: String) -> Self {
        EvalError { message }
    }
}
