//! Helpers the graph tests share.

use hotmesh_manifest::CompiledApp;

/// A one-graph app: `activities` and `transitions` are the YAML under those keys, indented
/// by 8 spaces.
pub fn graph(activities: &str, transitions: &str) -> String {
    format!("app:\n  id: g\n  version: '1'\n  graphs:\n    - subscribes: g.start\n      activities:\n        t:\n          type: trigger\n{activities}      transitions:\n{transitions}")
}

/// An activity's ancestors, by id.
pub fn ancestors<'a>(app: &'a CompiledApp, id: &str) -> Vec<&'a str> {
    app.activities[id]
        .ancestors
        .iter()
        .map(String::as_str)
        .collect()
}
