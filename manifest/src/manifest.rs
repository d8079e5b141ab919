//! A HotMesh app manifest, validated and compiled into what the engine needs per step:
//! each activity with its parent, ancestors, compiled transitions and compiled maps,
//! cycle targets marked, hook rules attached to their hook activities. Every rule a
//! manifest can break is reported with its YAML path and line.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use std::collections::{HashMap, HashSet};

use indexmap::IndexSet;

use crate::error::ManifestError;
use crate::expr::{self, Env, Expr, RefSite};
use crate::guard::tick;
use crate::limits::{
    MAX_ACTIVITIES, MAX_ACTIVITY_ID_BYTES, MAX_ANCESTOR_ENTRIES, MAX_GRAPHS, MAX_GRAPH_DEPTH,
    MAX_TRANSITIONS, MAX_WARNINGS,
};
use crate::value::Value;
use crate::yaml::{self, Kind, Node};

/// The activity types of HotMesh YAML (`activity` is the legacy name of `hook`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityKind {
    Trigger,
    Worker,
    Await,
    Hook,
    Cycle,
    Signal,
    Interrupt,
}

impl ActivityKind {
    pub fn parse(s: &str) -> Option<ActivityKind> {
        Some(match s {
            "trigger" => ActivityKind::Trigger,
            "worker" => ActivityKind::Worker,
            "await" => ActivityKind::Await,
            "hook" | "activity" => ActivityKind::Hook,
            "cycle" => ActivityKind::Cycle,
            "signal" => ActivityKind::Signal,
            "interrupt" => ActivityKind::Interrupt,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ActivityKind::Trigger => "trigger",
            ActivityKind::Worker => "worker",
            ActivityKind::Await => "await",
            ActivityKind::Hook => "hook",
            ActivityKind::Cycle => "cycle",
            ActivityKind::Signal => "signal",
            ActivityKind::Interrupt => "interrupt",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gate {
    And,
    Or,
}

/// One `{expected, actual}` test of a transition: `actual` is resolved and compared
/// with `===` to the literal `expected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub expected: Value,
    pub actual: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "when")]
pub enum Rule {
    /// No conditions: fires for any result code, errors included.
    Always,
    /// Fires when the result code is one of `codes` and the matches pass.
    Conditions {
        codes: Vec<i64>,
        gate: Gate,
        matches: Vec<Match>,
    },
}

impl Rule {
    /// Whether the transition fires for a result `code` in the job context.
    pub fn passes(&self, code: i64, env: &Env) -> Result<bool, crate::EvalError> {
        let Rule::Conditions {
            codes,
            gate,
            matches,
        } = self
        else {
            return Ok(true);
        };
        if !codes.contains(&code) {
            return Ok(false);
        }
        for m in matches {
            let hit = crate::js::strict_eq(&m.actual.eval(env)?, &m.expected);
            match (gate, hit) {
                (Gate::Or, true) => return Ok(true),
                (Gate::And, false) => return Ok(false),
                _ => {}
            }
        }
        Ok(matches.is_empty() || *gate == Gate::And)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub to: String,
    pub rule: Rule,
}

/// A `hooks` rule: a signal on `topic` reaches hook activity `to` of the job whose
/// resolved `expected` equals the signal's resolved `actual`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookRule {
    pub topic: String,
    pub to: String,
    /// Resolved against the job context when the hook registers.
    pub expected: Option<Expr>,
    /// Resolved against `{$self: {hook: {data}}, $hook: {data}}` when a signal arrives.
    pub actual: Option<Expr>,
}

/// How a `job.maps` key writes job data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKey {
    /// `x` (and `x[N]`, which writes `x`)
    Plain(String),
    /// `x[-]` / `x[_]`: the value's own keys are spread into job data
    Spread,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMap {
    pub key: JobKey,
    pub expr: Expr,
}

/// Applies compiled `job.maps`: the job data fields they write (undefined ones dropped).
pub fn apply_job_maps(
    maps: &[JobMap],
    env: &Env,
) -> Result<serde_json::Map<String, serde_json::Value>, crate::EvalError> {
    let mut out = serde_json::Map::new();
    for m in maps {
        let v = m.expr.eval(env)?;
        match &m.key {
            JobKey::Plain(k) => {
                if let Some(j) = v.to_json() {
                    out.insert(k.clone(), j);
                }
            }
            JobKey::Spread => {
                if let Some(serde_json::Value::Object(o)) = v.to_json() {
                    out.extend(o);
                }
            }
        }
    }
    Ok(out)
}

/// An activity, compiled. Pipe-able fields are expressions; `config` keeps the
/// activity as written (for fields the engine reads rarely).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub id: String,
    pub kind: ActivityKind,
    pub graph: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub ancestors: Vec<String>,
    pub transitions: Vec<Transition>,
    /// A cycle activity re-enters this one.
    #[serde(default)]
    pub cycle_target: bool,
    /// worker/await: the stream or child topic; interrupt: the target's topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<Expr>,
    /// hook: the signal topic a `hooks` rule routes to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Expr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Expr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub job: Vec<JobMap>,
    /// Scalar, pipe-able settings by name: sleep, emit, persist, statusThreshold,
    /// expire, await, entity, stats.id, stats.key, target, reason, throw, code, …
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub settings: IndexMap<String, Expr>,
    /// cycle: the activity it re-enters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ancestor: Option<String>,
    /// Paths this activity's maps read, per activity (`output/data/x`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub consumes: IndexMap<String, Vec<String>>,
    /// The job data keys its `job.maps` write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub produces: Vec<String>,
    /// trigger: the measures its jobs record (`stats.measures`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<crate::stats::Stats>,
    pub config: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    pub subscribes: String,
    /// The line of `subscribes` in the manifest (for errors found after compiling).
    #[serde(default)]
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publishes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire: Option<Expr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent: Option<Expr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<serde_json::Value>,
    pub trigger: String,
    /// Activity ids of this graph, in manifest order.
    pub activities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledApp {
    pub id: String,
    pub version: String,
    #[serde(default)]
    pub settings: serde_json::Value,
    pub graphs: Vec<Graph>,
    pub activities: IndexMap<String, Activity>,
    pub hooks: Vec<HookRule>,
    /// Things that deploy but are probably mistakes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

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

fn compile_graph(
    g: &Node,
    gi: usize,
    gpath: &str,
    out: &mut CompiledApp,
    declared: &mut IndexMap<String, String>,
    cx: &mut Ctx,
) -> Result<(), ManifestError> {
    need_map(g, gpath)?;
    let sub_node = g.get("subscribes").ok_or_else(|| {
        ManifestError::invalid(
            p(gpath, "subscribes"),
            g.line,
            "missing: a graph needs the topic it subscribes to",
        )
    })?;
    let subscribes = need_str(sub_node, &p(gpath, "subscribes"))?;
    let publishes = g
        .get("publishes")
        .map(|n| need_str(n, &p(gpath, "publishes")))
        .transpose()?;
    let acts_node = g.get("activities").ok_or_else(|| {
        ManifestError::invalid(
            p(gpath, "activities"),
            g.line,
            "missing: a graph needs activities",
        )
    })?;

    let mut gc = read_activities(g, gi, gpath, acts_node, out, declared, cx)?;
    let edges = read_transitions(&mut gc, out, declared, cx)?;
    let shape = place(&gc, &edges, out, cx)?;
    check_cycles(&gc, &shape, out, cx)?;
    check_references(&gc, &shape, out, declared, cx)?;
    read_hook_rules(&gc, out, declared, cx)?;
    let expire = g
        .get("expire")
        .map(|n| expr::compile(n, &p(gpath, "expire")))
        .transpose()?;
    let persistent = g
        .get("persistent")
        .map(|n| expr::compile(n, &p(gpath, "persistent")))
        .transpose()?;
    out.graphs.push(Graph {
        subscribes,
        line: sub_node.line,
        publishes,
        expire,
        persistent,
        input_schema: g
            .get("input")
            .and_then(|i| i.get("schema"))
            .map(Node::to_json),
        output_schema: g
            .get("output")
            .and_then(|o| o.get("schema"))
            .map(Node::to_json),
        trigger: gc.trigger,
        activities: gc.ids,
    });
    Ok(())
}

/// One graph being compiled: its node, path and activities, and what the first phase
/// learns of them (their ids in manifest order, where each map reads what, the trigger).
struct GraphCx<'a> {
    g: &'a Node,
    gi: usize,
    gpath: &'a str,
    acts: &'a [(String, Node)],
    ids: Vec<String>,
    /// the index of each activity id of this graph
    pos: HashMap<&'a str, usize>,
    sites: IndexMap<String, Vec<RefSite>>,
    trigger: String,
}

impl GraphCx<'_> {
    fn index(&self, id: &str) -> Option<usize> {
        self.pos.get(id).copied()
    }

    /// The activity's node, for the lines of errors.
    fn node_of(&self, id: &str) -> &Node {
        self.acts
            .iter()
            .find(|(k, _)| k == id)
            .map_or(self.g, |(_, n)| n)
    }

    /// Why `root` is not a common ancestor of activity `i`, called `who` (for errors and
    /// warnings).
    fn not_common(&self, shape: &Shape, root: usize, i: usize, who: &str) -> String {
        let ids = &self.ids;
        if shape.reaches(root, i) {
            let common: Vec<&str> = shape.chain(i).iter().map(|&a| ids[a].as_str()).collect();
            format!("is not an ancestor of {who} on every path from the trigger ('{}' is reached through several paths; its common ancestors are [{}])", ids[i], common.join(", "))
        } else {
            format!("is not an ancestor of {who}")
        }
    }
}

/// Phase 1: the activities (type, id, maps, and where each map's references were
/// written) and the one trigger.
fn read_activities<'a>(
    g: &'a Node,
    gi: usize,
    gpath: &'a str,
    acts_node: &'a Node,
    out: &mut CompiledApp,
    declared: &mut IndexMap<String, String>,
    cx: &mut Ctx,
) -> Result<GraphCx<'a>, ManifestError> {
    let acts = need_map(acts_node, &p(gpath, "activities"))?;
    let mut ids: Vec<String> = vec![];
    let mut sites: IndexMap<String, Vec<RefSite>> = IndexMap::new();
    let mut triggers: Vec<(String, usize)> = vec![];
    // the index of each activity id of this graph
    let mut pos: HashMap<&str, usize> = HashMap::new();
    if declared.len() + acts.len() > MAX_ACTIVITIES {
        return Err(ManifestError::invalid(
            p(gpath, "activities"),
            acts_node.line,
            format!(
                "the app has more than {MAX_ACTIVITIES} activities ({} with this graph's)",
                declared.len() + acts.len()
            ),
        ));
    }
    for (aid, a) in acts {
        tick();
        let apath = format!("{gpath}.activities.{aid}");
        if aid.len() > MAX_ACTIVITY_ID_BYTES {
            return Err(ManifestError::invalid(
                &apath,
                a.line,
                format!(
                    "an activity id is at most {MAX_ACTIVITY_ID_BYTES} bytes (this one is {})",
                    aid.len()
                ),
            ));
        }
        if !valid_activity_id(aid) {
            return Err(ManifestError::invalid(&apath, a.line, format!("'{aid}' is not a valid activity id (no '.', braces, brackets, '/', ',' or spaces; not starting with '$' or '@')")));
        }
        if let Some(first) = declared.get(aid) {
            return Err(ManifestError::invalid(&apath, a.line, format!("activity id '{aid}' is already used at {first}; ids must be unique across all graphs of the app")));
        }
        declared.insert(aid.clone(), apath.clone());
        need_map(a, &apath)?;
        let t_node = a.get("type").ok_or_else(|| {
            ManifestError::invalid(
                p(&apath, "type"),
                a.line,
                "missing: every activity needs a type",
            )
        })?;
        let t = need_str(t_node, &p(&apath, "type"))?;
        let kind = ActivityKind::parse(&t).ok_or_else(|| {
            ManifestError::invalid(p(&apath, "type"), t_node.line, format!("unknown activity type '{t}' (expected trigger, worker, await, hook, cycle, signal or interrupt)"))
        })?;
        if kind == ActivityKind::Trigger {
            triggers.push((aid.clone(), a.line));
        }
        let (act, act_sites) = compile_activity(aid, a, kind, gi, &apath, g, cx)?;
        pos.insert(aid.as_str(), ids.len());
        ids.push(aid.clone());
        out.activities.insert(aid.clone(), act);
        sites.insert(aid.clone(), act_sites);
    }
    let trigger = match triggers.as_slice() {
        [(t, _)] => t.clone(),
        [] => {
            return Err(ManifestError::invalid(
                p(gpath, "activities"),
                acts_node.line,
                "the graph has no trigger; it needs exactly one activity of type trigger",
            ))
        }
        [_, (second, line), ..] => {
            return Err(ManifestError::invalid(
                format!("{gpath}.activities.{second}"),
                *line,
                format!(
                    "the graph has {} triggers ({}); it needs exactly one",
                    triggers.len(),
                    triggers
                        .iter()
                        .map(|t| t.0.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
    };
    Ok(GraphCx {
        g,
        gi,
        gpath,
        acts,
        ids,
        pos,
        sites,
        trigger,
    })
}

/// Phase 2: the transitions, only to activities of this graph: every edge, in manifest
/// order, with the path and line of its `to`; each rule attached to its activity.
fn read_transitions(
    gc: &mut GraphCx,
    out: &mut CompiledApp,
    declared: &IndexMap<String, String>,
    cx: &mut Ctx,
) -> Result<Vec<Edge>, ManifestError> {
    let GraphCx {
        g,
        gpath,
        pos,
        sites,
        trigger,
        ..
    } = gc;
    let (g, gpath, trigger) = (*g, *gpath, trigger.as_str());
    let mut edges: Vec<Edge> = vec![];
    if let Some(tnode) = g.get("transitions") {
        let tpath = p(gpath, "transitions");
        if !matches!(tnode.kind, Kind::Null) {
            for (from, list) in need_map(tnode, &tpath)? {
                let fpath = format!("{tpath}.{from}");
                if !pos.contains_key(from.as_str()) {
                    return Err(ManifestError::invalid(
                        &fpath,
                        list.line,
                        format!("transition from unknown activity '{from}' (not in this graph)"),
                    ));
                }
                let items: Vec<&Node> = match &list.kind {
                    Kind::Seq(s) => s.iter().collect(),
                    Kind::Map(_) => vec![list],
                    _ => {
                        return Err(ManifestError::invalid(
                            &fpath,
                            list.line,
                            format!(
                                "expected a list of {{to, conditions}}, found {}",
                                list.type_name()
                            ),
                        ))
                    }
                };
                for (i, item) in items.iter().enumerate() {
                    tick();
                    let ipath = format!("{fpath}[{i}]");
                    cx.transitions += 1;
                    if cx.transitions > MAX_TRANSITIONS {
                        return Err(ManifestError::invalid(
                            &ipath,
                            item.line,
                            format!("the app has more than {MAX_TRANSITIONS} transitions"),
                        ));
                    }
                    need_map(item, &ipath)?;
                    let to_node = item.get("to").ok_or_else(|| {
                        ManifestError::invalid(
                            p(&ipath, "to"),
                            item.line,
                            "missing: a transition needs `to`",
                        )
                    })?;
                    let to = need_str(to_node, &p(&ipath, "to"))?;
                    if !pos.contains_key(to.as_str()) {
                        let other = if declared.contains_key(&to) {
                            " (it belongs to another graph)"
                        } else {
                            ""
                        };
                        return Err(ManifestError::invalid(
                            p(&ipath, "to"),
                            to_node.line,
                            format!("transition to unknown activity '{to}'{other}"),
                        ));
                    }
                    if to == trigger {
                        return Err(ManifestError::invalid(
                            p(&ipath, "to"),
                            to_node.line,
                            format!("'{to}' is the trigger; nothing can transition to it"),
                        ));
                    }
                    edges.push(Edge {
                        from: from.clone(),
                        to: to.clone(),
                        path: p(&ipath, "to"),
                        line: to_node.line,
                    });
                    let (rule, rule_sites) =
                        compile_rule(item.get("conditions"), &p(&ipath, "conditions"))?;
                    sites[from.as_str()].extend(rule_sites);
                    out.activities[from.as_str()]
                        .transitions
                        .push(Transition { to, rule });
                }
            }
        }
    }
    Ok(edges)
}

/// Phase 3: the shape: no loops; per activity its parents and its common ancestors.
fn place(
    gc: &GraphCx,
    edges: &[Edge],
    out: &mut CompiledApp,
    cx: &mut Ctx,
) -> Result<Shape, ManifestError> {
    let GraphCx {
        g,
        gpath,
        acts,
        ids,
        pos,
        trigger,
        ..
    } = gc;
    let (g, gpath) = (*g, *gpath);
    let shape = Shape::new(pos, edges, pos[trigger.as_str()]).map_err(|e| match e {
        ShapeError::Loop(e) => {
            let names: Vec<&str> = e.loop_ids.iter().map(|&i| ids[i].as_str()).collect();
            ManifestError::invalid(
                &e.edge.path,
                e.edge.line,
                format!(
                    "transitions form a loop ({} -> {}); loops are written with a cycle activity",
                    names.join(" -> "),
                    names[0]
                ),
            )
        }
        ShapeError::TooDeep(i) => ManifestError::invalid(
            format!("{gpath}.activities.{}", ids[i]),
            acts.iter().find(|(k, _)| *k == ids[i]).map_or(g.line, |(_, n)| n.line),
            format!(
                "'{}' is more than {MAX_GRAPH_DEPTH} transitions from the start of its graph; a graph is at most {MAX_GRAPH_DEPTH} deep (loops are written with a cycle activity)",
                ids[i]
            ),
        ),
    })?;
    // every activity lists its ancestors: that list is counted before it is made
    cx.ancestor_entries += (0..ids.len()).map(|i| shape.chain_len(i)).sum::<usize>();
    if cx.ancestor_entries > MAX_ANCESTOR_ENTRIES {
        return Err(ManifestError::invalid(
            p(gpath, "transitions"),
            g.get("transitions").map_or(g.line, |t| t.line),
            format!("the app's activities have more than {MAX_ANCESTOR_ENTRIES} ancestors in all (each activity lists the common ancestors it can read): the graphs are too deep for their size"),
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        tick();
        if i != shape.trigger && !shape.reachable[i] {
            cx.warn(|| format!("{gpath}.activities.{id}: not reachable from the trigger '{trigger}'; it never runs"));
        }
        if let Some((a, b)) = shape.converging[i] {
            cx.warn(|| {
                let from = if a == b {
                    format!("by two transitions from '{}'", ids[a])
                } else {
                    format!("from '{}' and from '{}' at the same depth", ids[a], ids[b])
                };
                format!("{gpath}.activities.{id}: reached {from}; if both run in one job, the second finds '{id}' already entered and the job never completes: make the branches exclusive (conditions that cannot both pass) or join them through job data")
            });
        }
        let act = &mut out.activities[id.as_str()];
        act.parent = shape.parents[i].first().map(|&p| ids[p].clone());
        act.ancestors = shape.chain(i).iter().map(|&a| ids[a].clone()).collect();
    }
    Ok(shape)
}

/// Phase 4: cycles: the ancestor must be a common ancestor (and not the trigger).
fn check_cycles(
    gc: &GraphCx,
    shape: &Shape,
    out: &mut CompiledApp,
    cx: &mut Ctx,
) -> Result<(), ManifestError> {
    let GraphCx {
        gpath,
        ids,
        trigger,
        ..
    } = gc;
    for (i, id) in ids.iter().enumerate() {
        let act = &out.activities[id.as_str()];
        if act.kind != ActivityKind::Cycle {
            continue;
        }
        let apath = format!("{gpath}.activities.{id}");
        let anode = gc.node_of(id);
        let Some(target) = act.ancestor.clone() else {
            return Err(ManifestError::invalid(
                p(&apath, "ancestor"),
                anode.line,
                "missing: a cycle needs the `ancestor` it re-enters",
            ));
        };
        let line = anode.get("ancestor").map(|n| n.line).unwrap_or(anode.line);
        if !gc.index(&target).is_some_and(|t| shape.in_chain(t, i)) {
            let why = match gc.index(&target) {
                Some(t) => gc.not_common(shape, t, i, "it"),
                None => "is not an activity of this graph".into(),
            };
            return Err(ManifestError::invalid(p(&apath, "ancestor"), line, format!("cycle target '{target}' {why}; a cycle re-enters an activity on every path from the trigger to it")));
        }
        if target == *trigger {
            return Err(ManifestError::invalid(p(&apath, "ancestor"), line, format!("cycle target '{target}' is the trigger, which cannot run twice; cycle to a hook after it")));
        }
        if !act.transitions.is_empty() {
            cx.warn(|| {
                format!("{apath}: a cycle activity has no children; its transitions never fire")
            });
        }
        out.activities[target.as_str()].cycle_target = true;
    }
    Ok(())
}

/// Phase 5: references: roots are $self, $job or an activity of this graph; reading one
/// that is not a common ancestor deploys with a warning. Each activity lists what it
/// reads of the others (`consumes`).
fn check_references(
    gc: &GraphCx,
    shape: &Shape,
    out: &mut CompiledApp,
    declared: &IndexMap<String, String>,
    cx: &mut Ctx,
) -> Result<(), ManifestError> {
    let GraphCx { ids, sites, .. } = gc;
    for (i, id) in ids.iter().enumerate() {
        let act = &out.activities[id.as_str()];
        for site in &sites[id.as_str()] {
            let root = &*site.parts[0];
            if root == "$self" || root == "$job" {
                continue;
            }
            let whole = ref_text(&site.parts);
            let Some(r) = gc.index(root) else {
                return Err(unknown_root(site, &whole, declared));
            };
            if r != i && !shape.in_chain(r, i) {
                cx.warn(|| format!("{} (line {}): {whole} reads '{root}', which {}; only common ancestors (and $job) are reliably readable", site.path, site.line, gc.not_common(shape, r, i, &format!("'{id}'"))));
            }
        }
        let mut consumes: IndexMap<String, IndexSet<String>> = IndexMap::new();
        for (_, e) in act.expressions() {
            for r in e.refs() {
                let Some((root, rest)) = r.split_first() else {
                    continue;
                };
                if &**root == "$self" || &**root == "$job" {
                    continue;
                }
                let path = rest.iter().map(|s| &**s).collect::<Vec<_>>().join("/");
                consumes.entry(root.to_string()).or_default().insert(path);
            }
        }
        out.activities[id.as_str()].consumes = consumes
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
    }
    Ok(())
}

/// Phase 6: hook rules, attached to their hook activity.
fn read_hook_rules(
    gc: &GraphCx,
    out: &mut CompiledApp,
    declared: &IndexMap<String, String>,
    cx: &mut Ctx,
) -> Result<(), ManifestError> {
    let GraphCx {
        g, gi, gpath, pos, ..
    } = gc;
    let (g, gi, gpath) = (*g, *gi, *gpath);
    if let Some(hnode) = g.get("hooks") {
        let hpath = p(gpath, "hooks");
        if !matches!(hnode.kind, Kind::Null) {
            for (topic, rules) in need_map(hnode, &hpath)? {
                let rpath = format!("{hpath}.{topic}");
                let list = rules.as_seq().ok_or_else(|| {
                    ManifestError::invalid(
                        &rpath,
                        rules.line,
                        format!("expected a list of hook rules, found {}", rules.type_name()),
                    )
                })?;
                for (i, r) in list.iter().enumerate() {
                    let ipath = format!("{rpath}[{i}]");
                    need_map(r, &ipath)?;
                    let to_node = r.get("to").ok_or_else(|| {
                        ManifestError::invalid(
                            p(&ipath, "to"),
                            r.line,
                            "missing: a hook rule needs `to`",
                        )
                    })?;
                    let to = need_str(to_node, &p(&ipath, "to"))?;
                    let Some(target) = out.activities.get_mut(&to).filter(|a| a.graph == gi) else {
                        return Err(ManifestError::invalid(
                            p(&ipath, "to"),
                            to_node.line,
                            format!("hook rule to unknown activity '{to}'"),
                        ));
                    };
                    if target.kind != ActivityKind::Hook {
                        return Err(ManifestError::invalid(
                            p(&ipath, "to"),
                            to_node.line,
                            format!(
                                "hook rule to '{to}', a {} activity; signals reach hook activities",
                                target.kind.name()
                            ),
                        ));
                    }
                    if let Some(t) = target.hook_topic.as_ref().filter(|t| *t != topic) {
                        return Err(ManifestError::invalid(
                            p(&ipath, "to"),
                            to_node.line,
                            format!("'{to}' already receives signals on topic '{t}'"),
                        ));
                    }
                    target.hook_topic = Some(topic.clone());
                    let m0 = r
                        .get("conditions")
                        .and_then(|c| c.get("match"))
                        .and_then(|m| m.as_seq())
                        .and_then(|m| m.first());
                    let mpath = format!("{ipath}.conditions.match[0]");
                    let expected = match m0.and_then(|m| m.get("expected")) {
                        Some(n) => {
                            let (e, refs) = expr::compile_sites(n, &p(&mpath, "expected"))?;
                            // resolved against the job when the hook registers
                            for site in &refs {
                                let root = &*site.parts[0];
                                if root != "$self" && root != "$job" && !pos.contains_key(root) {
                                    return Err(unknown_root(
                                        site,
                                        &ref_text(&site.parts),
                                        declared,
                                    ));
                                }
                            }
                            Some(e)
                        }
                        None => None,
                    };
                    let actual = match m0.and_then(|m| m.get("actual")) {
                        Some(n) => {
                            let (e, refs) = expr::compile_sites(n, &p(&mpath, "actual"))?;
                            // resolved against the signal alone
                            for site in &refs {
                                let root = &*site.parts[0];
                                if root != "$self" && root != "$hook" {
                                    cx.warn(|| format!("{} (line {}): {} reads '{root}', but a hook rule's `actual` is resolved against the signal alone ({{$self.hook.data.…}} or {{$hook.data.…}}): it is always undefined", site.path, site.line, ref_text(&site.parts)));
                                }
                            }
                            Some(e)
                        }
                        None => None,
                    };
                    out.hooks.push(HookRule {
                        topic: topic.clone(),
                        to,
                        expected,
                        actual,
                    });
                }
            }
        }
    }
    Ok(())
}

/// A transition, for the analysis of a graph's shape.
struct Edge {
    from: String,
    to: String,
    /// The YAML path and line of its `to`.
    path: String,
    line: usize,
}

/// `{a.b.c}`
fn ref_text(parts: &[Box<str>]) -> String {
    format!(
        "{{{}}}",
        parts.iter().map(|s| &**s).collect::<Vec<_>>().join(".")
    )
}

/// The error for a reference whose root is not `$self`, `$job` or an activity of the graph.
fn unknown_root(site: &RefSite, whole: &str, declared: &IndexMap<String, String>) -> ManifestError {
    let root = &*site.parts[0];
    let elsewhere = if declared.contains_key(root) {
        " (it belongs to another graph; share data through a child job's output)"
    } else {
        ""
    };
    ManifestError::invalid(
        &site.path,
        site.line,
        format!("malformed reference {whole}: '{root}' is not an activity of this graph, nor $self or $job{elsewhere}"),
    )
}

/// A graph's transitions as a DAG over the indices of its activities, with what the
/// engine's addressing needs per activity. Activity `x` runs at a depth (the number of
/// segments of its dimensional address, minus one) that depends on the path that reached
/// it; its ancestors are read by index from the trigger, so only the longest common prefix
/// of the ancestor lists of all its paths is addressable whatever path ran: that prefix is
/// its `chain`. It is computed in one topological pass, without enumerating paths: the
/// lists through parent `p` are `chain(p) + [p]` when a single path reaches `p` (`exact`),
/// and otherwise have the common prefix `chain(p)` (two different lists, or lists of
/// different lengths, differ before `p`, which is never its own ancestor).
///
/// A chain that ends in `y` is always `chain(y) + [y]`, so the chains form a tree (the
/// parent of `y` is the last activity of `chain(y)`, [`Shape::top`]): a chain is kept as
/// its last activity, a common prefix is a lowest common ancestor in that tree, and
/// whether `r` is in a chain is an interval test. Nothing here is quadratic in the size
/// of the graph (a chain of n activities has n²/2 ancestor entries written out; they are
/// only written by [`Shape::chain`], for the compiled app, after being counted).
struct Shape {
    trigger: usize,
    /// Distinct parents, in the manifest order of their first transition to it.
    parents: Vec<Vec<usize>>,
    children: Vec<Vec<usize>>,
    reachable: Vec<bool>,
    /// The last activity of each chain (`root` for an empty chain).
    top: Vec<usize>,
    /// Each activity's level in the tree: the length of `chain(x) + [x]`.
    level: Vec<usize>,
    /// Entry and exit times of a walk of the tree (for `in_chain`).
    enter: Vec<usize>,
    exit: Vec<usize>,
    /// Two transitions that can enter the activity at the same depth: (parent, parent),
    /// the same parent twice when it has two transitions to it.
    converging: Vec<Option<(usize, usize)>>,
}

/// A loop of transitions: the activities on it, and the transition that closes it.
struct Loop<'e> {
    loop_ids: Vec<usize>,
    edge: &'e Edge,
}

enum ShapeError<'e> {
    Loop(Loop<'e>),
    /// This activity is more than MAX_GRAPH_DEPTH transitions from a start.
    TooDeep(usize),
}

/// The depths an activity can run at, as a bit set.
type Depths = Vec<u64>;

impl Shape {
    /// `pos`: the index of each activity id; `edges` are between them; `t`: the trigger.
    fn new<'e>(
        pos: &HashMap<&str, usize>,
        edges: &'e [Edge],
        t: usize,
    ) -> Result<Shape, ShapeError<'e>> {
        let n = pos.len();
        let root = n;
        let at = |id: &str| pos.get(id).copied().unwrap_or(0);
        let mut parents: Vec<Vec<usize>> = vec![vec![]; n];
        let mut children: Vec<Vec<usize>> = vec![vec![]; n];
        // every transition, duplicates included, per target
        let mut entries: Vec<Vec<usize>> = vec![vec![]; n];
        let mut seen = HashSet::new();
        for e in edges {
            let (f, to) = (at(&e.from), at(&e.to));
            entries[to].push(f);
            if seen.insert((f, to)) {
                parents[to].push(f);
                children[f].push(to);
            }
        }
        // topological order (Kahn); what is left is on or below a loop
        let mut indegree: Vec<usize> = parents.iter().map(Vec::len).collect();
        let mut order: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut k = 0;
        while k < order.len() {
            tick();
            for &c in &children[order[k]] {
                indegree[c] -= 1;
                if indegree[c] == 0 {
                    order.push(c);
                }
            }
            k += 1;
        }
        if order.len() < n {
            return Err(ShapeError::Loop(Self::find_loop(
                &parents, &indegree, edges, &at,
            )));
        }
        let mut reachable = vec![false; n];
        reachable[t] = true;
        let mut stack = vec![t];
        while let Some(x) = stack.pop() {
            tick();
            for &c in &children[x] {
                if !reachable[c] {
                    reachable[c] = true;
                    stack.push(c);
                }
            }
        }
        // a parent that never runs does not lead here (unless nothing leads here)
        let counts = |x: usize, p: usize| !reachable[x] || reachable[p];

        // the longest path to each activity bounds the depths (and the bit sets)
        let mut longest = vec![0usize; n];
        for &x in &order {
            for &p in &parents[x] {
                if counts(x, p) {
                    longest[x] = longest[x].max(longest[p] + 1);
                }
            }
            if longest[x] > MAX_GRAPH_DEPTH {
                return Err(ShapeError::TooDeep(x));
            }
        }
        let words = longest.iter().max().copied().unwrap_or(0) / 64 + 1;

        // `lift[k][x]`: the tree ancestor 2^k levels above x (for common prefixes)
        let levels = (usize::BITS - (MAX_GRAPH_DEPTH + 1).leading_zeros()) as usize + 1;
        let mut lift = vec![vec![root; n + 1]; levels];
        let mut level = vec![0usize; n + 1];
        let mut top = vec![root; n];
        let mut exact = vec![true; n];
        let mut depths: Vec<Depths> = vec![vec![0; words]; n];
        let mut converging = vec![None; n];
        for &x in &order {
            tick();
            let ps: Vec<usize> = parents[x]
                .iter()
                .copied()
                .filter(|&p| counts(x, p))
                .collect();
            if ps.is_empty() {
                depths[x][0] = 1;
            }
            // the common prefix of the lists through each parent
            let mut common: Option<usize> = None;
            for &p in &ps {
                let through = if exact[p] { p } else { top[p] };
                common = Some(match common {
                    None => through,
                    Some(c) => Self::meet(&lift, &level, c, through),
                });
                // one deeper than the parent
                let from = depths[p].clone();
                let mut carry = 0;
                for (to, d) in depths[x].iter_mut().zip(from) {
                    *to |= (d << 1) | carry;
                    carry = d >> 63;
                }
            }
            top[x] = common.unwrap_or(root);
            // a start is reached one way (by starting there)
            exact[x] = ps.is_empty() || (ps.len() == 1 && exact[ps[0]]);
            level[x] = level[top[x]] + 1;
            lift[0][x] = top[x];
            for j in 1..levels {
                lift[j][x] = lift[j - 1][lift[j - 1][x]];
            }
            // two transitions that can enter x at one depth (in a job: x runs)
            if !reachable[x] {
                continue;
            }
            let mut union: Depths = vec![0; words];
            let counted: Vec<usize> = entries[x]
                .iter()
                .copied()
                .filter(|&p| counts(x, p))
                .collect();
            'entries: for (j, &p) in counted.iter().enumerate() {
                for w in 0..words {
                    let both = depths[p][w] & union[w];
                    if both != 0 {
                        // the earlier transition that reaches the lowest shared depth
                        let bit = both & both.wrapping_neg();
                        let q = counted[..j]
                            .iter()
                            .copied()
                            .find(|&q| depths[q][w] & bit != 0)
                            .unwrap_or(p);
                        converging[x] = Some((q, p));
                        break 'entries;
                    }
                }
                for w in 0..words {
                    union[w] |= depths[p][w];
                }
            }
        }
        // entry and exit times of the chain tree, walked without recursion
        let mut kids: Vec<Vec<usize>> = vec![vec![]; n + 1];
        for x in 0..n {
            kids[top[x]].push(x);
        }
        let (mut enter, mut exit) = (vec![0; n + 1], vec![0; n + 1]);
        let mut clock = 0;
        let mut walk = vec![(root, 0usize)];
        while let Some((x, next)) = walk.pop() {
            if next == 0 {
                enter[x] = clock;
                clock += 1;
            }
            if let Some(&c) = kids[x].get(next) {
                walk.push((x, next + 1));
                walk.push((c, 0));
            } else {
                exit[x] = clock;
            }
        }
        Ok(Shape {
            trigger: t,
            parents,
            children,
            reachable,
            top,
            level,
            enter,
            exit,
            converging,
        })
    }

    /// The common prefix of the chains that end in `a` and in `b`: their lowest common
    /// ancestor in the tree (by binary lifting).
    fn meet(lift: &[Vec<usize>], level: &[usize], mut a: usize, mut b: usize) -> usize {
        if level[a] < level[b] {
            std::mem::swap(&mut a, &mut b);
        }
        for j in (0..lift.len()).rev() {
            if level[a] >= level[b] + (1 << j) {
                a = lift[j][a];
            }
        }
        if a == b {
            return a;
        }
        for j in (0..lift.len()).rev() {
            if lift[j][a] != lift[j][b] {
                a = lift[j][a];
                b = lift[j][b];
            }
        }
        lift[0][a]
    }

    /// Every activity left by Kahn's pass has a parent left: walking parents finds a
    /// loop.
    fn find_loop<'e>(
        parents: &[Vec<usize>],
        indegree: &[usize],
        edges: &'e [Edge],
        at: &dyn Fn(&str) -> usize,
    ) -> Loop<'e> {
        let n = parents.len();
        let mut walk = vec![(0..n).find(|&i| indegree[i] > 0).unwrap_or(0)];
        let mut in_walk: Vec<Option<usize>> = vec![None; n];
        in_walk[walk[0]] = Some(0);
        let mut loop_ids = vec![];
        loop {
            tick();
            let cur = walk[walk.len() - 1];
            let Some(&p) = parents[cur].iter().find(|&&p| indegree[p] > 0) else {
                break;
            };
            if let Some(first) = in_walk[p] {
                // walk[first..] is the loop, backwards
                loop_ids = walk[first..].to_vec();
                loop_ids.reverse();
                break;
            }
            in_walk[p] = Some(walk.len());
            walk.push(p);
        }
        // the transition that closes it: the last of its transitions written
        let next: HashMap<usize, usize> = loop_ids
            .iter()
            .enumerate()
            .map(|(j, &a)| (a, loop_ids[(j + 1) % loop_ids.len()]))
            .collect();
        let edge = edges
            .iter()
            .rev()
            .find(|e| next.get(&at(&e.from)) == Some(&at(&e.to)))
            .unwrap_or(&edges[0]);
        let start = at(&edge.to);
        let s = loop_ids.iter().position(|&a| a == start).unwrap_or(0);
        loop_ids.rotate_left(s);
        Loop { loop_ids, edge }
    }

    /// How many ancestors activity `x` lists.
    fn chain_len(&self, x: usize) -> usize {
        self.level[x] - 1
    }

    /// The common ancestors of `x`, from the trigger down.
    fn chain(&self, x: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.chain_len(x));
        let mut y = self.top[x];
        while y != self.top.len() {
            out.push(y);
            y = self.top[y];
        }
        out.reverse();
        out
    }

    /// Whether `r` is a common ancestor of `x` (in its chain).
    fn in_chain(&self, r: usize, x: usize) -> bool {
        let y = self.top[x];
        r != x && self.enter[r] <= self.enter[y] && self.exit[y] <= self.exit[r]
    }

    /// Whether activity `to` can be reached from `from` by transitions.
    fn reaches(&self, from: usize, to: usize) -> bool {
        let mut seen = vec![false; self.children.len()];
        let mut stack = vec![from];
        while let Some(x) = stack.pop() {
            tick();
            for &c in &self.children[x] {
                if c == to {
                    return true;
                }
                if !seen[c] {
                    seen[c] = true;
                    stack.push(c);
                }
            }
        }
        false
    }
}

fn compile_rule(cond: Option<&Node>, path: &str) -> Result<(Rule, Vec<RefSite>), ManifestError> {
    let Some(c) = cond.filter(|c| !matches!(c.kind, Kind::Null)) else {
        return Ok((Rule::Always, vec![]));
    };
    need_map(c, path)?;
    let codes = match c.get("code") {
        None => vec![200],
        Some(n) => {
            let list: Vec<&Node> = match &n.kind {
                Kind::Seq(s) => s.iter().collect(),
                _ => vec![n],
            };
            list.iter()
                .map(|n| match &n.kind {
                    Kind::Int(i) => Ok(*i),
                    Kind::Str(s) if s.parse::<i64>().is_ok() => Ok(s.parse().unwrap_or(0)),
                    _ => Err(ManifestError::invalid(
                        p(path, "code"),
                        n.line,
                        format!("a status code is an integer, not {}", n.type_name()),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let gate = match c.get("gate").and_then(Node::as_str) {
        None | Some("and") => Gate::And,
        Some("or") => Gate::Or,
        Some(other) => {
            return Err(ManifestError::invalid(
                p(path, "gate"),
                c.get("gate").map(|n| n.line).unwrap_or(c.line),
                format!("gate is 'and' or 'or', not '{other}'"),
            ));
        }
    };
    let mut matches = vec![];
    let mut sites = vec![];
    if let Some(m) = c.get("match") {
        let list = m.as_seq().ok_or_else(|| {
            ManifestError::invalid(
                p(path, "match"),
                m.line,
                format!(
                    "expected a list of {{expected, actual}}, found {}",
                    m.type_name()
                ),
            )
        })?;
        for (i, item) in list.iter().enumerate() {
            let ipath = format!("{path}.match[{i}]");
            need_map(item, &ipath)?;
            let expected = item
                .get("expected")
                .map(|n| Value::from_json(&n.to_json()))
                .unwrap_or_default();
            let actual_node = item.get("actual").ok_or_else(|| {
                ManifestError::invalid(
                    p(&ipath, "actual"),
                    item.line,
                    "missing: a match needs `actual`",
                )
            })?;
            let (actual, refs) = expr::compile_sites(actual_node, &p(&ipath, "actual"))?;
            sites.extend(refs);
            matches.push(Match { expected, actual });
        }
    }
    Ok((
        Rule::Conditions {
            codes,
            gate,
            matches,
        },
        sites,
    ))
}

fn compile_maps(
    a: &Node,
    section: &str,
    apath: &str,
    sites: &mut Vec<RefSite>,
) -> Result<Option<Expr>, ManifestError> {
    let Some(s) = a.get(section) else {
        return Ok(None);
    };
    match s.get("maps") {
        Some(m) if !matches!(m.kind, Kind::Null) => {
            let path = format!("{apath}.{section}.maps");
            need_map(m, &path)?;
            let (e, refs) = expr::compile_sites(m, &path)?;
            sites.extend(refs);
            Ok(Some(e))
        }
        _ => Ok(None),
    }
}

fn compile_job_maps(
    a: &Node,
    apath: &str,
    sites: &mut Vec<RefSite>,
) -> Result<(Vec<JobMap>, Vec<String>), ManifestError> {
    let Some(m) = a
        .get("job")
        .and_then(|j| j.get("maps"))
        .filter(|m| !matches!(m.kind, Kind::Null))
    else {
        return Ok((vec![], vec![]));
    };
    let path = format!("{apath}.job.maps");
    let mut maps = vec![];
    let mut produces = vec![];
    for (k, v) in need_map(m, &path)? {
        let (expr, refs) = expr::compile_sites(v, &p(&path, k))?;
        sites.extend(refs);
        let key = match k.find('[') {
            Some(i) => {
                let inner = k[i + 1..].split(']').next().unwrap_or("");
                if inner == "-" || inner == "_" {
                    JobKey::Spread
                } else if inner.is_empty() || inner.trim().parse::<f64>().is_ok() {
                    // `x[N]` writes x (N only told the original how many paths to reserve)
                    JobKey::Plain(k[..i].to_string())
                } else {
                    JobKey::Plain(k.clone())
                }
            }
            None => JobKey::Plain(k.clone()),
        };
        if let JobKey::Plain(name) = &key {
            produces.push(name.clone());
        }
        maps.push(JobMap { key, expr });
    }
    Ok((maps, produces))
}

/// Warnings for fields that change what the original does but that the engine does not
/// run yet. Fields it ignores because they only describe (`title`, `description`, the
/// `schema`s, `hook` as the schema of a hook's data), only observe (`telemetry`), are
/// derived here (`cycle`, `parent`, `ancestors`, the compiler's own fields) or are ignored
/// by the original as well (`statusThresholdType`) deploy silently.
fn not_implemented(a: &Node, kind: ActivityKind, apath: &str, cx: &mut Ctx) {
    let mut warn = |field: &str, node: &Node, what: &str| {
        cx.warn(|| format!("{apath}.{field} (line {}): {what}", node.line));
    };
    if let Some(n) = a.get("escalation") {
        warn(
            "escalation",
            n,
            "escalation is not implemented yet: the activity waits without escalating",
        );
    }
    match kind {
        ActivityKind::Trigger => {
            let deps: Vec<(&str, &Node)> = ["parent", "adjacent"]
                .into_iter()
                .filter_map(|k| Some((k, a.get("stats")?.get(k)?)))
                .collect();
            if let Some((k, n)) = deps.first() {
                let what = if deps.len() > 1 {
                    "stats.parent and stats.adjacent are"
                } else {
                    "this is"
                };
                warn(&format!("stats.{k}"), n, &format!("{what} not implemented yet (job dependencies): interrupting or expiring that job does not end this one (`interrupt` with `descend: true` reaches the child jobs an await started)"));
            }
        }
        ActivityKind::Interrupt => {
            if let Some(n) = a.get("stack") {
                warn(
                    "stack",
                    n,
                    "not used: the interrupted job's error has no stack",
                );
            }
        }
        _ => {}
    }
}

fn compile_activity(
    aid: &str,
    a: &Node,
    kind: ActivityKind,
    gi: usize,
    apath: &str,
    graph: &Node,
    cx: &mut Ctx,
) -> Result<(Activity, Vec<RefSite>), ManifestError> {
    let mut sites = vec![];
    let mut compile = |n: &Node, path: &str| -> Result<Expr, ManifestError> {
        let (e, refs) = expr::compile_sites(n, path)?;
        sites.extend(refs);
        Ok(e)
    };
    for (k, v) in a.as_map().unwrap_or(&[]) {
        if !KNOWN_FIELDS.contains(&k.as_str()) {
            cx.warn(|| format!("{apath}.{k} (line {}): unknown field, ignored", v.line));
        }
    }
    not_implemented(a, kind, apath, cx);
    let mut settings = IndexMap::new();
    for name in SETTINGS {
        if let Some(n) = a.get(name) {
            settings.insert(name.to_string(), compile(n, &p(apath, name))?);
        }
    }
    // graph-level expire/persistent are copied onto activities that do not set them
    for name in ["expire", "persistent"] {
        if !settings.contains_key(name) {
            if let Some(n) = graph.get(name) {
                settings.insert(
                    name.to_string(),
                    compile(n, &format!("app.graphs[{gi}].{name}"))?,
                );
            }
        }
    }
    let mut measures = None;
    if let Some(stats) = a.get("stats") {
        if kind == ActivityKind::Trigger {
            measures = crate::stats::Stats::compile(stats, &p(apath, "stats"), &mut compile)?;
        }
        for k in ["id", "key"] {
            if let Some(n) = stats.get(k) {
                settings.insert(
                    format!("stats.{k}"),
                    compile(n, &format!("{apath}.stats.{k}"))?,
                );
            }
        }
    }
    let topic = match a.get("topic") {
        Some(n) => Some(compile(n, &p(apath, "topic"))?),
        None => None,
    };
    if matches!(
        kind,
        ActivityKind::Worker | ActivityKind::Await | ActivityKind::Signal
    ) && topic.is_none()
    {
        return Err(ManifestError::invalid(
            p(apath, "topic"),
            a.line,
            format!("missing: a {} activity needs a topic", kind.name()),
        ));
    }
    let ancestor = match (kind, a.get("ancestor")) {
        (ActivityKind::Cycle, Some(n)) => Some(need_str(n, &p(apath, "ancestor"))?),
        _ => None,
    };
    let mut input = compile_maps(a, "input", apath, &mut sites)?;
    if kind == ActivityKind::Signal {
        // a signal's payload is its `signal.maps`; the resolver finds the targets
        if let Some(m) = compile_maps(a, "signal", apath, &mut sites)? {
            input = Some(m);
        }
        if let Some(r) = compile_maps(a, "resolver", apath, &mut sites)? {
            settings.insert("resolver".into(), r);
        }
    }
    let output = compile_maps(a, "output", apath, &mut sites)?;
    let (job, produces) = compile_job_maps(a, apath, &mut sites)?;
    let subtype = match kind {
        ActivityKind::Worker | ActivityKind::Await => a.get("topic").and_then(Node::scalar_text),
        _ => a.get("subtype").and_then(Node::scalar_text),
    };
    let act = Activity {
        id: aid.to_string(),
        kind,
        graph: gi,
        title: a.get("title").and_then(Node::scalar_text),
        subtype,
        parent: None,
        ancestors: vec![],
        transitions: vec![],
        cycle_target: false,
        topic,
        hook_topic: None,
        input,
        output,
        job,
        settings,
        ancestor,
        consumes: IndexMap::new(),
        produces,
        stats: measures,
        config: a.to_json(),
    };
    Ok((act, sites))
}

impl Activity {
    /// Every compiled expression, with the field it came from.
    pub fn expressions(&self) -> Vec<(String, &Expr)> {
        let mut out: Vec<(String, &Expr)> = vec![];
        if let Some(e) = &self.topic {
            out.push(("topic".into(), e));
        }
        if let Some(e) = &self.input {
            out.push(("input.maps".into(), e));
        }
        if let Some(e) = &self.output {
            out.push(("output.maps".into(), e));
        }
        for m in &self.job {
            out.push(("job.maps".into(), &m.expr));
        }
        for (k, e) in &self.settings {
            out.push((k.clone(), e));
        }
        for t in &self.transitions {
            if let Rule::Conditions { matches, .. } = &t.rule {
                for m in matches {
                    out.push((format!("transitions(to {})", t.to), &m.actual));
                }
            }
        }
        for (i, m) in self
            .stats
            .iter()
            .flat_map(|s| s.measures.iter().enumerate())
        {
            out.push((format!("stats.measures[{i}].target"), &m.target));
        }
        out
    }
}

impl CompiledApp {
    /// The graph a topic starts, if any.
    pub fn graph_for(&self, topic: &str) -> Option<&Graph> {
        self.graphs.iter().find(|g| g.subscribes == topic)
    }

    /// A summary for hotmesh.deploy's answer and the catalog.
    pub fn summary(&self) -> serde_json::Value {
        let graphs: Vec<serde_json::Value> = self
            .graphs
            .iter()
            .map(|g| {
                let mut types: IndexMap<&str, usize> = IndexMap::new();
                for id in &g.activities {
                    *types
                        .entry(self.activities[id.as_str()].kind.name())
                        .or_default() += 1;
                }
                serde_json::json!({
                    "subscribes": g.subscribes,
                    "publishes": g.publishes,
                    "trigger": g.trigger,
                    "activities": g.activities.len(),
                    "types": types,
                })
            })
            .collect();
        serde_json::json!({
            "app_id": self.id,
            "version": self.version,
            "graphs": graphs,
            "activities": self.activities.len(),
            "topics": self.topics().into_iter().map(|t| serde_json::json!({"topic": t.topic, "kind": t.kind, "activity": t.activity})).collect::<Vec<_>>(),
            "hooks": self.hooks.len(),
            "warnings": self.warnings,
        })
    }

    /// Every literal topic the app uses: what it subscribes to, publishes, and the worker,
    /// await and hook topics of its activities.
    pub fn topics(&self) -> Vec<TopicUse> {
        let mut out = vec![];
        for g in &self.graphs {
            out.push(TopicUse {
                topic: g.subscribes.clone(),
                kind: "subscribes",
                activity: Some(g.trigger.clone()),
                graph: g.subscribes.clone(),
            });
            if let Some(p) = &g.publishes {
                out.push(TopicUse {
                    topic: p.clone(),
                    kind: "publishes",
                    activity: None,
                    graph: g.subscribes.clone(),
                });
            }
            for id in &g.activities {
                let a = &self.activities[id.as_str()];
                let lit = a
                    .topic
                    .as_ref()
                    .and_then(Expr::as_literal)
                    .and_then(|v| v.as_str().map(str::to_string));
                let kind = match a.kind {
                    ActivityKind::Worker => Some("worker"),
                    ActivityKind::Await => Some("await"),
                    ActivityKind::Signal => Some("signal"),
                    _ => None,
                };
                if let (Some(kind), Some(t)) = (kind, lit) {
                    out.push(TopicUse {
                        topic: t,
                        kind,
                        activity: Some(id.clone()),
                        graph: g.subscribes.clone(),
                    });
                }
                if let Some(t) = &a.hook_topic {
                    out.push(TopicUse {
                        topic: t.clone(),
                        kind: "hook",
                        activity: Some(id.clone()),
                        graph: g.subscribes.clone(),
                    });
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicUse {
    pub topic: String,
    pub kind: &'static str,
    pub activity: Option<String>,
    /// The `subscribes` of the graph it belongs to.
    pub graph: String,
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
