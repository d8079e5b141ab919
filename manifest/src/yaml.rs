//! YAML (and JSON, which YAML reads too) into a tree that remembers the line of every
//! node, so validation errors can point at the line. Anchors, aliases and `<<` merge
//! keys are resolved here; duplicate keys are an error, as in js-yaml.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::Yaml;

use crate::error::ManifestError;

/// Deeper documents are refused: every later pass recurses, and a backend must not
/// overflow its stack on hostile input.
pub const MAX_DEPTH: usize = 100;
/// Aliases can multiply a document; this caps the expanded size.
pub const MAX_NODES: usize = 1_000_000;

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

enum Frame {
    Seq(Vec<Node>, usize, usize),
    /// entries, pending key (with its line), line, anchor, keys written explicitly
    Map(
        Vec<(String, Node)>,
        Option<(String, usize)>,
        usize,
        usize,
        Vec<String>,
    ),
}

struct Loader {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: std::collections::HashMap<usize, Node>,
    nodes: usize,
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

    fn push_value(&mut self, node: Node) {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.fail(
                node.line,
                format!("the document expands to more than {MAX_NODES} nodes"),
            );
            return;
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(entries, pending, _, _, explicit)) => match pending.take() {
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
                                    if !entries.iter().any(|(e, _)| *e == mk) {
                                        entries.push((mk, mv));
                                    }
                                }
                            }
                        }
                    } else if explicit.contains(&k) {
                        if self.error.is_none() {
                            let msg = format!("duplicated mapping key '{k}'");
                            self.error = Some(ManifestError::Syntax {
                                line: key_line,
                                column: 0,
                                message: msg,
                            });
                        }
                    } else {
                        explicit.push(k.clone());
                        // an explicit key overrides one that a merge brought in
                        match entries.iter().position(|(e, _)| *e == k) {
                            Some(i) => entries[i].1 = node,
                            None => entries.push((k, node)),
                        }
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for Loader {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let line = mark.line();
        match ev {
            Event::SequenceStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    return self.fail(line, format!("nested deeper than {MAX_DEPTH} levels"));
                }
                self.stack.push(Frame::Seq(vec![], line, anchor));
            }
            Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    return self.fail(line, format!("nested deeper than {MAX_DEPTH} levels"));
                }
                self.stack
                    .push(Frame::Map(vec![], None, line, anchor, vec![]));
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(items, l, anchor)) = self.stack.pop() {
                    let node = Node::new(Kind::Seq(items), l);
                    if anchor > 0 {
                        self.anchors.insert(anchor, node.clone());
                    }
                    self.push_value(node);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(entries, _, l, anchor, _)) = self.stack.pop() {
                    let node = Node::new(Kind::Map(entries), l);
                    if anchor > 0 {
                        self.anchors.insert(anchor, node.clone());
                    }
                    self.push_value(node);
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let kind = match (style, tag) {
                    (_, Some(t)) if t.suffix == "str" => Kind::Str(text),
                    (TScalarStyle::Plain, Some(t)) => match t.suffix.as_str() {
                        "int" | "float" | "bool" | "null" => resolve_plain(&text),
                        _ => Kind::Str(text),
                    },
                    (TScalarStyle::Plain, None) => resolve_plain(&text),
                    _ => Kind::Str(text),
                };
                let node = Node::new(kind, line);
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_value(node);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(n) => {
                    let mut n = n.clone();
                    n.line = line;
                    let size = count(&n);
                    self.nodes += size;
                    self.push_value(n);
                }
                None => self.fail(line, "unknown alias".into()),
            },
            _ => {}
        }
    }
}

fn count(n: &Node) -> usize {
    match &n.kind {
        Kind::Seq(s) => 1 + s.iter().map(count).sum::<usize>(),
        Kind::Map(m) => 1 + m.iter().map(|(_, v)| count(v)).sum::<usize>(),
        _ => 1,
    }
}

/// Parses one YAML (or JSON) document.
pub fn parse(text: &str) -> Result<Node, ManifestError> {
    let mut loader = Loader {
        stack: vec![],
        docs: vec![],
        anchors: Default::default(),
        nodes: 0,
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut loader, true) {
        let m = e.marker();
        return Err(ManifestError::Syntax {
            line: m.line(),
            column: m.col() + 1,
            message: e.info().to_string(),
        });
    }
    if let Some(e) = loader.error {
        return Err(e);
    }
    match loader.docs.len() {
        0 => Err(ManifestError::Syntax {
            line: 1,
            column: 1,
            message: "the manifest is empty".into(),
        }),
        1 => Ok(loader.docs.remove(0)),
        _ => Err(ManifestError::Syntax {
            line: loader.docs[1].line,
            column: 1,
            message: "expected a single document".into(),
        }),
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
