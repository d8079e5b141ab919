//! YAML (and JSON, which YAML reads too) into a tree that remembers the line of every
//! node, so validation errors can point at the line. Anchors, aliases and `<<` merge
//! keys are resolved here; duplicate keys are an error, as in js-yaml.
//!
//! Hostile text is refused before anything big or deep is built: the parser's events
//! are read one at a time in a loop (yaml-rust2's own `load` recurses once per level
//! of nesting), nesting stops at [`MAX_DEPTH`], and every alias is priced (nodes,
//! bytes, depth) before it is copied, so a few kilobytes of anchors cannot stand for
//! gigabytes.

use std::collections::{HashMap, HashSet};

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;
use yaml_rust2::Yaml;

use crate::error::ManifestError;
use crate::guard::tick;
use crate::limits::VALUE_OVERHEAD;
pub use crate::limits::{MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_NODES};

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    /// 1-based; 0 when the node did not come from text (hotmesh.map's jsonb).
    pub line: usize,
}

impl Node {
    pub fn new(kind: Kind, line: usize) -> Node {
        Node { kind, line }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(String, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) | Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// A scalar as the string JavaScript would use for it as an object key.
    pub fn scalar_text(&self) -> Option<String> {
        Some(match &self.kind {
            Kind::Null => "null".into(),
            Kind::Bool(b) => b.to_string(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => crate::js::number_to_string(*f),
            Kind::Str(s) => s.clone(),
            _ => return None,
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        // nodes are at most MAX_DEPTH deep, so this recursion is bounded
        tick();
        match &self.kind {
            Kind::Null => serde_json::Value::Null,
            Kind::Bool(b) => serde_json::Value::Bool(*b),
            Kind::Int(i) => serde_json::Value::from(*i),
            Kind::Float(f) => crate::value::number_to_json(*f),
            Kind::Str(s) => serde_json::Value::String(s.clone()),
            Kind::Seq(s) => serde_json::Value::Array(s.iter().map(Node::to_json).collect()),
            Kind::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// From JSON (no lines). Refuses nesting deeper than MAX_DEPTH.
    pub fn from_json(j: &serde_json::Value) -> Result<Node, ManifestError> {
        fn go(j: &serde_json::Value, depth: usize) -> Result<Node, ManifestError> {
            tick();
            if depth > MAX_DEPTH {
                return Err(ManifestError::invalid(
                    "",
                    0,
                    format!("nested deeper than {MAX_DEPTH} levels"),
                ));
            }
            let kind = match j {
                serde_json::Value::Null => Kind::Null,
                serde_json::Value::Bool(b) => Kind::Bool(*b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Kind::Int(i),
                    None => Kind::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
                serde_json::Value::String(s) => Kind::Str(s.clone()),
                serde_json::Value::Array(a) => Kind::Seq(
                    a.iter()
                        .map(|v| go(v, depth + 1))
                        .collect::<Result<_, _>>()?,
                ),
                serde_json::Value::Object(o) => Kind::Map(
                    o.iter()
                        .map(|(k, v)| Ok((k.clone(), go(v, depth + 1)?)))
                        .collect::<Result<_, ManifestError>>()?,
                ),
            };
            Ok(Node::new(kind, 0))
        }
        go(j, 0)
    }
}

/// What a finished node costs: nodes and bytes once expanded, and how many levels of
/// containers it holds (a scalar holds none).
#[derive(Clone, Copy, Default)]
struct Cost {
    nodes: usize,
    bytes: usize,
    height: usize,
}

enum Body {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(String, Node)>,
        /// where each key is in `entries` (duplicate checks stay linear)
        index: HashMap<String, usize>,
        /// the pending key, with its line
        pending: Option<(String, usize)>,
        /// keys written explicitly (a merge may bring the others)
        explicit: HashSet<String>,
    },
}

struct Frame {
    body: Body,
    line: usize,
    anchor: usize,
    cost: Cost,
}

struct Loader {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: HashMap<usize, (Node, Cost)>,
    /// the whole document so far, aliases expanded
    nodes: usize,
    bytes: usize,
    error: Option<ManifestError>,
}

fn resolve_plain(text: &str) -> Kind {
    match Yaml::from_str(text) {
        Yaml::Null => Kind::Null,
        Yaml::Boolean(b) => Kind::Bool(b),
        Yaml::Integer(i) => Kind::Int(i),
        Yaml::Real(r) => match r.parse::<f64>() {
            Ok(f) => Kind::Float(f),
            Err(_) => match r.to_ascii_lowercase().trim_start_matches('+') {
                ".inf" => Kind::Float(f64::INFINITY),
                "-.inf" => Kind::Float(f64::NEG_INFINITY),
                ".nan" => Kind::Float(f64::NAN),
                _ => Kind::Str(r),
            },
        },
        _ => Kind::Str(text.to_string()),
    }
}

impl Loader {
    fn fail(&mut self, line: usize, message: String) {
        if self.error.is_none() {
            self.error = Some(ManifestError::Syntax {
                line,
                column: 0,
                message,
            });
        }
    }

    /// Counts `cost` more of the document (at `line`); false, with the error set, when
    /// that passes a limit. Called before an alias is copied.
    fn charge(&mut self, cost: Cost, line: usize) -> bool {
        self.nodes = self.nodes.saturating_add(cost.nodes);
        self.bytes = self.bytes.saturating_add(cost.bytes);
        if self.nodes > MAX_NODES {
            self.fail(
                line,
                format!("the document expands to more than {MAX_NODES} nodes (aliases included)"),
            );
            return false;
        }
        if self.bytes > MAX_DOCUMENT_BYTES {
            self.fail(
                line,
                format!(
                    "the document expands to more than {MAX_DOCUMENT_BYTES} bytes (aliases included)"
                ),
            );
            return false;
        }
        if self.stack.len() + cost.height > MAX_DEPTH {
            self.fail(line, format!("nested deeper than {MAX_DEPTH} levels"));
            return false;
        }
        true
    }

    fn start(&mut self, body: Body, line: usize, anchor: usize) {
        if self.stack.len() >= MAX_DEPTH {
            return self.fail(line, format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let cost = Cost {
            nodes: 1,
            bytes: VALUE_OVERHEAD,
            height: 0,
        };
        if !self.charge(cost, line) {
            return;
        }
        self.stack.push(Frame {
            body,
            line,
            anchor,
            cost,
        });
    }

    fn end(&mut self) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let kind = match frame.body {
            Body::Seq(items) => Kind::Seq(items),
            Body::Map { entries, .. } => Kind::Map(entries),
        };
        let mut cost = frame.cost;
        cost.height += 1;
        self.finish(Node::new(kind, frame.line), cost, frame.anchor);
    }

    /// A finished node: remembered under its anchor, then added to its parent.
    fn finish(&mut self, node: Node, cost: Cost, anchor: usize) {
        if anchor > 0 {
            // a copy for later aliases: the node is at most MAX_DEPTH deep and within
            // the document limits, which it has already been charged against
            self.anchors.insert(anchor, (node.clone(), cost));
        }
        self.push_value(node, cost);
    }

    fn push_value(&mut self, node: Node, cost: Cost) {
        let Some(frame) = self.stack.last_mut() else {
            if !self.docs.is_empty() {
                let line = node.line;
                return self.fail(line, "expected a single document".into());
            }
            self.docs.push(node);
            return;
        };
        frame.cost.nodes += cost.nodes;
        frame.cost.bytes += cost.bytes;
        frame.cost.height = frame.cost.height.max(cost.height);
        match &mut frame.body {
            Body::Seq(items) => items.push(node),
            Body::Map {
                entries,
                index,
                pending,
                explicit,
            } => match pending.take() {
                None => match node.scalar_text() {
                    Some(k) => *pending = Some((k, node.line)),
                    None => {
                        let line = node.line;
                        self.fail(line, "a mapping key must be a scalar".into());
                    }
                },
                Some((k, key_line)) => {
                    // a block value is reported at its key's line, where a reader looks
                    let mut node = node;
                    if matches!(node.kind, Kind::Map(_) | Kind::Seq(_)) {
                        node.line = key_line;
                    }
                    if k == "<<" {
                        // merge keys: copy what the mapping does not set itself
                        let sources: Vec<Node> = match node.kind {
                            Kind::Map(_) => vec![node],
                            Kind::Seq(s) => s,
                            _ => vec![],
                        };
                        for src in sources {
                            if let Kind::Map(m) = src.kind {
                                for (mk, mv) in m {
                                    tick();
                                    if !index.contains_key(&mk) {
                                        index.insert(mk.clone(), entries.len());
                                        entries.push((mk, mv));
                                    }
                                }
                            }
                        }
                    } else if explicit.contains(&k) {
                        let msg = format!("duplicated mapping key '{k}'");
                        self.fail(key_line, msg);
                    } else {
                        explicit.insert(k.clone());
                        // an explicit key overrides one that a merge brought in
                        match index.get(&k) {
                            Some(&i) => entries[i].1 = node,
                            None => {
                                index.insert(k.clone(), entries.len());
                                entries.push((k, node));
                            }
                        }
                    }
                }
            },
        }
    }

    fn on_event(&mut self, ev: Event, line: usize) {
        match ev {
            Event::SequenceStart(anchor, _) => self.start(Body::Seq(vec![]), line, anchor),
            Event::MappingStart(anchor, _) => self.start(
                Body::Map {
                    entries: vec![],
                    index: HashMap::new(),
                    pending: None,
                    explicit: HashSet::new(),
                },
                line,
                anchor,
            ),
            Event::SequenceEnd | Event::MappingEnd => self.end(),
            Event::Scalar(text, style, anchor, tag) => {
                let cost = Cost {
                    nodes: 1,
                    bytes: VALUE_OVERHEAD + text.len(),
                    height: 0,
                };
                if !self.charge(cost, line) {
                    return;
                }
                let kind = match (style, tag) {
                    (_, Some(t)) if t.suffix == "str" => Kind::Str(text),
                    (TScalarStyle::Plain, Some(t)) => match t.suffix.as_str() {
                        "int" | "float" | "bool" | "null" => resolve_plain(&text),
                        _ => Kind::Str(text),
                    },
                    (TScalarStyle::Plain, None) => resolve_plain(&text),
                    _ => Kind::Str(text),
                };
                self.finish(Node::new(kind, line), cost, anchor);
            }
            Event::Alias(id) => {
                let Some(&(_, cost)) = self.anchors.get(&id) else {
                    return self.fail(line, "unknown alias".into());
                };
                // priced before it is copied
                if !self.charge(cost, line) {
                    return;
                }
                let mut n = self.anchors[&id].0.clone();
                n.line = line;
                self.push_value(n, cost);
            }
            _ => {}
        }
    }
}

/// Parses one YAML (or JSON) document.
pub fn parse(text: &str) -> Result<Node, ManifestError> {
    let mut loader = Loader {
        stack: vec![],
        docs: vec![],
        anchors: Default::default(),
        nodes: 0,
        bytes: 0,
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    // the events, one at a time: Parser::load would recurse once per level
    loop {
        tick();
        let (ev, mark) = match parser.next_token() {
            Ok(x) => x,
            Err(e) => {
                let m = e.marker();
                return Err(ManifestError::Syntax {
                    line: m.line(),
                    column: m.col() + 1,
                    message: e.info().to_string(),
                });
            }
        };
        if ev == Event::StreamEnd {
            break;
        }
        loader.on_event(ev, mark.line());
        if let Some(e) = loader.error.take() {
            // dropping the partial tree is shallow: it is at most MAX_DEPTH deep
            return Err(e);
        }
    }
    match loader.docs.pop() {
        None => Err(ManifestError::Syntax {
            line: 1,
            column: 1,
            message: "the manifest is empty".into(),
        }),
        Some(doc) => Ok(doc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_types_and_merges() {
        let doc = parse("app:\n  id: demo\n  version: '1'\n  n: 12\n  f: 1.5\n  t: true\n  z: ~\n  base: &b { x: 1, y: 2 }\n  ext:\n    <<: *b\n    y: 3\n").unwrap();
        let app = doc.get("app").unwrap();
        assert_eq!(app.get("id").unwrap().line, 2);
        assert_eq!(app.get("version").unwrap().kind, Kind::Str("1".into()));
        assert_eq!(app.get("n").unwrap().kind, Kind::Int(12));
        assert_eq!(app.get("t").unwrap().kind, Kind::Bool(true));
        assert_eq!(app.get("z").unwrap().kind, Kind::Null);
        assert_eq!(
            app.get("ext").unwrap().to_json(),
            serde_json::json!({"x": 1, "y": 3})
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("app:\n  id: a\n  id: b\n").unwrap_err();
        assert!(matches!(e, ManifestError::Syntax { line: 3, .. }), "{e}");
        let e = parse("app:\n  id: [a\n").unwrap_err();
        assert!(matches!(e, ManifestError::Syntax { .. }), "{e}");
        let deep = "[".repeat(500) + &"]".repeat(500);
        assert!(parse(&deep).is_err());
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn json_is_yaml() {
        let doc = parse(r#"{"app": {"id": "x", "version": "2", "list": [1, 2.5, null]}}"#).unwrap();
        assert_eq!(
            doc.to_json(),
            serde_json::json!({"app": {"id": "x", "version": "2", "list": [1, 2.5, null]}})
        );
    }
}
