//! `hotmesh validate FILE`: a manifest checked offline, with the rules `hotmesh.deploy`
//! applies (the same compiler, the same topic limits), so a bad app is caught before it
//! reaches a database. Errors read `FILE:LINE: what` as compilers say it, so editors
//! jump to the line.

use crate::exit::Failure;
use hotmesh_manifest::ManifestError;
use serde_json::Value;
use std::path::Path;

/// Validates the manifest in `file` (`-`: standard input) and returns what a deploy
/// would answer, with `status: valid`.
pub fn validate(file: &str) -> Result<Value, Failure> {
    let (text, lines_hold) = read(file)?;
    let (app, digest, _) = hotmesh_manifest::compile::deploy_plan(&text)
        .map_err(|e| manifest_failure(file, &e, lines_hold))?;
    hotmesh_engine::limits::app_topics(&app)
        .map_err(|m| Failure::invalid(format!("{file}: {m}")))?;
    let mut summary = app.summary();
    summary["digest"] = digest.into();
    summary["status"] = "valid".into();
    Ok(summary)
}

/// The manifest's text and whether its lines are the file's (not so once `$ref`s are
/// merged: the merged document is one line of JSON, so a line number would mislead).
fn read(file: &str) -> Result<(String, bool), Failure> {
    if file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Failure::invalid(format!("-: cannot read standard input: {e}")))?;
        return Ok((text, true));
    }
    let merged = hotmesh_client::load_manifest(Path::new(file))?;
    let raw = std::fs::read_to_string(file).unwrap_or_default();
    let lines_hold = merged == raw;
    Ok((merged, lines_hold))
}

/// `FILE:LINE: where: what` as compilers say it (`FILE:LINE:COLUMN:` for a YAML syntax
/// error); no line when it is unknown or not the file's.
fn manifest_failure(file: &str, e: &ManifestError, lines_hold: bool) -> Failure {
    let at = |line: usize, column: usize| match (lines_hold && line > 0, column > 0) {
        (true, true) => format!("{file}:{line}:{column}"),
        (true, false) => format!("{file}:{line}"),
        (false, _) => file.to_string(),
    };
    Failure::invalid(match e {
        ManifestError::Syntax {
            line,
            column,
            message,
        } => format!("{}: YAML syntax error: {message}", at(*line, *column)),
        ManifestError::Invalid {
            path,
            line,
            message,
        } => {
            let path = if path.is_empty() { "manifest" } else { path };
            format!("{}: {path}: {message}", at(*line, 0))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> String {
        let p = std::env::temp_dir().join(format!("hm-validate-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    #[test]
    fn a_good_manifest_is_summarized() {
        let f = file(
            "good.yaml",
            "app:\n  id: v\n  version: '1'\n  graphs:\n    - subscribes: v.start\n      activities:\n        t: { type: trigger }\n",
        );
        let s = validate(&f).unwrap();
        assert_eq!(
            (s["app_id"].as_str(), s["status"].as_str()),
            (Some("v"), Some("valid"))
        );
    }

    #[test]
    fn a_bad_manifest_names_its_file_and_line() {
        let f = file(
            "bad.yaml",
            "app:\n  id: v\n  version: '1'\n  graphs:\n    - subscribes: v.start\n      activities:\n        t: { type: nosuchtype }\n",
        );
        let e = validate(&f).unwrap_err();
        assert_eq!(e.exit, crate::exit::INVALID);
        let at = format!("{f}:7: app.graphs[0].activities.t.type: unknown activity type");
        assert!(e.message.starts_with(&at), "{}", e.message);
    }

    #[test]
    fn a_syntax_error_names_its_line_and_column() {
        let f = file("syntax.yaml", "app:\n  id: [unclosed\n");
        let e = validate(&f).unwrap_err();
        assert!(e.message.starts_with(&format!("{f}:")), "{}", e.message);
        assert!(e.message.contains("YAML syntax error"), "{}", e.message);
    }

    #[test]
    fn merged_refs_get_no_line_number() {
        let e = ManifestError::invalid("app.id", 1, "bad");
        assert_eq!(
            manifest_failure("a.yaml", &e, false).message,
            "a.yaml: app.id: bad"
        );
        assert_eq!(
            manifest_failure("a.yaml", &e, true).message,
            "a.yaml:1: app.id: bad"
        );
    }

    #[test]
    fn a_missing_file_is_invalid_input() {
        let e = validate("/nonexistent/app.yaml").unwrap_err();
        assert_eq!(e.exit, crate::exit::INVALID);
        assert!(e.message.contains("cannot read"), "{}", e.message);
    }
}
