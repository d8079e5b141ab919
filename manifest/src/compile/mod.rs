//! A HotMesh app manifest, validated and compiled into the model the engine runs
//! (`crate::model`). Every rule a manifest can break is reported with its YAML path and
//! line. The app's frame here; each graph's phases in `graph.rs`, its shape (loops,
//! parents, common ancestors) in `shape.rs`, each activity's settings, maps and
//! transition rules in `activity.rs`.

mod activity;
mod graph;
mod shape;

use activity::*;
use graph::*;
use shape::*;

use indexmap::IndexMap;

use std::collections::HashMap;

use crate::error::ManifestError;
use crate::limits::{MAX_GRAPHS, MAX_WARNINGS};
use crate::model::*;
use crate::yaml::{self, Kind, Node};

/// The settings compiled as expressions, per activity type. Anything else stays in
/// `config` as written.
const SETTINGS: &[&str] = &[
    "sleep",
    "emit",
    "persist",
    "statusThreshold",
    "statusThresholdType",
    "expire",
    "await",
    "entity",
    "target",
    "reason",
    "throw",
    "code",
    "status",
    "key_name",
    "key_value",
    "scrub",
    "stack",
    "descend",
    "telemetry",
    "escalation",
];

const KNOWN_FIELDS: &[&str] = &[
    "type",
    "title",
    "subtype",
    "topic",
    "input",
    "output",
    "job",
    "hook",
    "telemetry",
    "emit",
    "persist",
    "statusThreshold",
    "statusThresholdType",
    "sleep",
    "expire",
    "retry",
    "cycle",
    "escalation",
    "stats",
    "entity",
    "await",
    "ancestor",
    "signal",
    "status",
    "code",
    "key_name",
    "key_value",
    "resolver",
    "scrub",
    "target",
    "reason",
    "throw",
    "descend",
    "stack",
    "settings",
    "collationInt",
    "consumes",
    "produces",
    "PRODUCES",
    "dependents",
    "ancestors",
    "parent",
    "trigger",
    "subscribes",
    "publishes",
    "persistent",
    "schema",
    "description",
];

struct Ctx {
    warnings: Vec<String>,
    /// warnings past MAX_WARNINGS, counted but not written
    dropped: usize,
    /// transitions and ancestor entries of the app so far
    transitions: usize,
    ancestor_entries: usize,
}

impl Ctx {
    /// Adds a warning; its text is only made while there is room for it (some name
    /// long ancestor lists).
    fn warn(&mut self, text: impl FnOnce() -> String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(text());
        } else {
            self.dropped += 1;
        }
    }
}

fn p(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.into()
    } else {
        format!("{path}.{key}")
    }
}

fn need_map<'a>(node: &'a Node, path: &str) -> Result<&'a [(String, Node)], ManifestError> {
    node.as_map().ok_or_else(|| {
        ManifestError::invalid(
            path,
            node.line,
            format!("expected a mapping, found {}", node.type_name()),
        )
    })
}

fn need_str(node: &Node, path: &str) -> Result<String, ManifestError> {
    match &node.kind {
        Kind::Str(s) if !s.is_empty() => Ok(s.clone()),
        Kind::Int(_) | Kind::Float(_) => Ok(node.scalar_text().unwrap_or_default()),
        Kind::Str(_) => Err(ManifestError::invalid(path, node.line, "must not be empty")),
        _ => Err(ManifestError::invalid(
            path,
            node.line,
            format!("expected a string, found {}", node.type_name()),
        )),
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_activity_id(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('$')
        && !s.starts_with('@')
        && !s.contains(['.', '{', '}', '[', ']', '/', ','])
        && !s.chars().any(char::is_whitespace)
}

/// Parses, validates and compiles a manifest (YAML or JSON text).
pub fn compile_manifest(text: &str) -> Result<CompiledApp, ManifestError> {
    let root = yaml::parse(text)?;
    compile_node(&root)
}

pub fn compile_node(root: &Node) -> Result<CompiledApp, ManifestError> {
    need_map(root, "")?;
    let app = root.get("app").ok_or_else(|| {
        ManifestError::invalid("app", root.line, "missing: a manifest starts with `app:`")
    })?;
    need_map(app, "app")?;
    let id_node = app.get("id").ok_or_else(|| {
        ManifestError::invalid("app.id", app.line, "missing: the app needs an id")
    })?;
    let id = need_str(id_node, "app.id")?;
    if !valid_name(&id) {
        return Err(ManifestError::invalid(
            "app.id",
            id_node.line,
            format!("'{id}' is not a valid app id (letters, digits, '-' and '_', at most 63)"),
        ));
    }
    let v_node = app.get("version").ok_or_else(|| {
        ManifestError::invalid("app.version", app.line, "missing: the app needs a version")
    })?;
    let version = need_str(v_node, "app.version")?;
    if version.len() > 63 || version.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ManifestError::invalid(
            "app.version",
            v_node.line,
            format!("'{version}' is not a valid version"),
        ));
    }
    let graphs_node = app.get("graphs").ok_or_else(|| {
        ManifestError::invalid(
            "app.graphs",
            app.line,
            "missing: the app needs at least one graph",
        )
    })?;
    let graphs = graphs_node.as_seq().ok_or_else(|| {
        ManifestError::invalid(
            "app.graphs",
            graphs_node.line,
            format!(
                "expected a list of graphs, found {}",
                graphs_node.type_name()
            ),
        )
    })?;
    if graphs.is_empty() {
        return Err(ManifestError::invalid(
            "app.graphs",
            graphs_node.line,
            "the app needs at least one graph",
        ));
    }

    if graphs.len() > MAX_GRAPHS {
        return Err(ManifestError::invalid(
            "app.graphs",
            graphs_node.line,
            format!("the app has {} graphs; at most {MAX_GRAPHS}", graphs.len()),
        ));
    }
    let mut cx = Ctx {
        warnings: vec![],
        dropped: 0,
        transitions: 0,
        ancestor_entries: 0,
    };
    let mut out = CompiledApp {
        id,
        version,
        settings: app
            .get("settings")
            .map(Node::to_json)
            .unwrap_or(serde_json::Value::Null),
        graphs: vec![],
        activities: IndexMap::new(),
        hooks: vec![],
        warnings: vec![],
    };
    // where each activity was declared, for duplicate reports
    let mut declared: IndexMap<String, String> = IndexMap::new();
    for (gi, g) in graphs.iter().enumerate() {
        let gpath = format!("app.graphs[{gi}]");
        if g.get("$ref").is_some() {
            return Err(ManifestError::invalid(
                &gpath,
                g.line,
                "`$ref` to another file is resolved by the client before deploy (hotmesh-client's deploy_file); hotmesh.deploy takes the merged manifest",
            ));
        }
        compile_graph(g, gi, &gpath, &mut out, &mut declared, &mut cx)?;
    }
    let mut subscribed: HashMap<&str, usize> = HashMap::new();
    for (gi, g) in out.graphs.iter().enumerate() {
        if let Some(gj) = subscribed.insert(g.subscribes.as_str(), gi) {
            let t = &g.subscribes;
            let node = graphs[gi].get("subscribes").unwrap_or(&graphs[gi]);
            return Err(ManifestError::invalid(
                format!("app.graphs[{gi}].subscribes"),
                node.line,
                format!("topic '{t}' is already subscribed by app.graphs[{gj}]"),
            ));
        }
    }
    if cx.dropped > 0 {
        cx.warnings
            .push(format!("… and {} more warnings", cx.dropped));
    }
    out.warnings = cx.warnings;
    Ok(out)
}

/// A stable digest of a manifest's content: the same app written with other spacing,
/// comments or key quoting gives the same digest.
pub fn content_digest(root_json: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    fn canonical(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String((*k).clone()).to_string());
                    out.push(':');
                    canonical(&m[*k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(a) => {
                out.push('[');
                for (i, e) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(e, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    canonical(root_json, &mut s);
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a manifest and returns it compiled with its content digest.
pub fn deploy_plan(text: &str) -> Result<(CompiledApp, String, serde_json::Value), ManifestError> {
    let root = yaml::parse(text)?;
    let app = compile_node(&root)?;
    let json = root.to_json();
    Ok((app, content_digest(&json), json))
}
