//! The compiled app: what the engine reads at run time, once a manifest passed
//! validation (`crate::compile`): each activity with its parent, ancestors, compiled
//! transitions and maps, cycle targets marked, hook rules attached to their hooks.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::expr::{Env, Expr};
use crate::value::Value;

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
///
/// The original (`mapJobData` in services/activities/activity.ts) renames a key `x[N]`
/// (N a number) to `x`, and spreads the object value of `x[-]` / `x[_]` into job data.
/// What it stores is decided at deploy (`resolveJobMapsPaths` in
/// services/compiler/deployer.ts): the trigger's PRODUCES paths, `data/x` for a plain key
/// and `data/x/0` .. `data/x/{N-1}` for `x[N]`, so N is the number of slots reserved.
/// After each activity only the paths it produced a value for are written to the job
/// hash, field by field, and reading the job rebuilds them into objects
/// (`restoreHierarchy`). So activities that write `x[N]` with different indexes add to
/// one object `{"0": …, "3": …}` instead of replacing each other, and an index at or
/// past N is not stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKey {
    /// `x`, and `x[abc]` (not a number, not a spread), which the original keeps as is
    Plain(String),
    /// `x[N]`: entries `0` .. `slots - 1` of the value are each written into object `x`
    /// on their own; `slots` is the largest N any `x[N]` of the graph reserves (the
    /// original's paths are per graph).
    Slots { name: String, slots: u32 },
    /// `x[-]` / `x[_]`: the value's own keys are spread into job data
    Spread,
}

impl JobKey {
    /// Reads a `job.maps` key as the original does: the text between the first `[` and
    /// the next `]` is a number for JavaScript's `Number()` (`x[25]`, also `x[]`): slots
    /// as many as `parseInt` reads from it (none for `x[]`); `-` or `_`: a spread.
    pub fn parse(k: &str) -> JobKey {
        let Some(i) = k.find('[') else {
            return JobKey::Plain(k.to_string());
        };
        let inner = k[i + 1..].split(']').next().unwrap_or("");
        if inner == "-" || inner == "_" {
            JobKey::Spread
        } else if !crate::js::string_to_number(inner).is_nan() {
            JobKey::Slots {
                name: k[..i].to_string(),
                slots: slot_count(inner),
            }
        } else {
            JobKey::Plain(k.to_string())
        }
    }
}

/// `parseInt(text)` as a slot count: the leading integer (decimal, or hex after `0x`),
/// none when there is none or it is not positive.
fn slot_count(text: &str) -> u32 {
    let mut t = text.trim_start_matches(crate::js::is_js_space);
    if t.starts_with('-') {
        return 0;
    }
    t = t.strip_prefix('+').unwrap_or(t);
    let radix = match t.get(..2) {
        Some("0x") | Some("0X") => {
            t = &t[2..];
            16
        }
        _ => 10,
    };
    let digits = &t[..t.find(|c: char| !c.is_digit(radix)).unwrap_or(t.len())];
    digits.chars().fold(0u32, |n, c| {
        n.saturating_mul(radix)
            .saturating_add(c.to_digit(radix).unwrap_or(0))
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMap {
    pub key: JobKey,
    pub expr: Expr,
}

/// What the `job.maps` of one activity write to one job field.
#[derive(Debug, Clone, PartialEq)]
pub enum JobWrite {
    /// The whole field (`x`, and each key of a spread).
    Whole(serde_json::Value),
    /// Numbered entries of object field `x` (`x[N]`), the others left as they are.
    Slots(Vec<(u32, serde_json::Value)>),
}

/// Applies compiled `job.maps`: what they write, by job field (undefined values dropped).
/// A later map that writes the same field replaces an earlier one, as the keys of the
/// original's mapped object do.
pub fn apply_job_maps(
    maps: &[JobMap],
    env: &Env,
) -> Result<IndexMap<String, JobWrite>, crate::EvalError> {
    let mut out = IndexMap::new();
    for m in maps {
        let v = m.expr.eval(env)?;
        match &m.key {
            JobKey::Plain(k) => {
                if let Some(j) = v.to_json() {
                    out.shift_remove(k);
                    out.insert(k.clone(), JobWrite::Whole(j));
                }
            }
            JobKey::Slots { name, slots } => {
                out.shift_remove(name);
                let entries = slot_entries(&v, *slots);
                if !entries.is_empty() {
                    out.insert(name.clone(), JobWrite::Slots(entries));
                }
            }
            JobKey::Spread => {
                if let Some(serde_json::Value::Object(o)) = v.to_json() {
                    for (k, j) in o {
                        out.shift_remove(&k);
                        out.insert(k, JobWrite::Whole(j));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The entries `0` .. `slots - 1` of a value, as the original reads path `x/i` of it
/// (`getValueByPath`): an object's property `"i"`, an array's element `i`, a string's
/// UTF-16 unit `i`; defined ones only. Other values have none (for null the original
/// throws while storing the job; here nothing is written).
fn slot_entries(v: &Value, slots: u32) -> Vec<(u32, serde_json::Value)> {
    let mut out: Vec<(u32, serde_json::Value)> = match v {
        Value::Obj(o) => o
            .props
            .iter()
            .filter_map(|(k, x)| {
                let i = crate::value::array_index(k).filter(|i| *i < slots)?;
                Some((i, x.to_json()?))
            })
            .collect(),
        Value::Arr(a) => a
            .iter()
            .take(slots as usize)
            .enumerate()
            .filter_map(|(i, x)| Some((i as u32, x.to_json()?)))
            .collect(),
        Value::Str(s) => crate::js::utf16(s)
            .iter()
            .take(slots as usize)
            .enumerate()
            .map(|(i, u)| {
                let unit = crate::js::from_utf16(std::slice::from_ref(u));
                (i as u32, serde_json::Value::String(unit))
            })
            .collect(),
        _ => vec![],
    };
    out.sort_by_key(|(i, _)| *i);
    out
}

/// Writes what the job maps produced for `key` into a job's fields: a whole value
/// replaces the field; slots are set in the field's object, which they start when the
/// field holds no object (the original rebuilds `x` from its `x/i` paths).
pub fn write_job_field(
    fields: &mut serde_json::Map<String, serde_json::Value>,
    key: String,
    w: JobWrite,
) {
    match w {
        JobWrite::Whole(j) => {
            fields.insert(key, j);
        }
        JobWrite::Slots(entries) => {
            let field = fields
                .entry(key)
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if !field.is_object() {
                *field = serde_json::Value::Object(serde_json::Map::new());
            }
            if let serde_json::Value::Object(o) = field {
                for (i, j) in entries {
                    o.insert(i.to_string(), j);
                }
            }
        }
    }
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
