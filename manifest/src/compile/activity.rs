//! One activity: its settings, maps and transition rules, compiled.

use super::*;
use indexmap::IndexMap;

use crate::error::ManifestError;
use crate::expr::{self, Expr, RefSite};
use crate::model::*;
use crate::value::Value;
use crate::yaml::{Kind, Node};

pub(super) fn compile_rule(
    cond: Option<&Node>,
    path: &str,
) -> Result<(Rule, Vec<RefSite>), ManifestError> {
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

pub(super) fn compile_maps(
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

pub(super) fn compile_job_maps(
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
        let key = JobKey::parse(k);
        if let JobKey::Plain(name) | JobKey::Slots { name, .. } = &key {
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
pub(super) fn not_implemented(a: &Node, kind: ActivityKind, apath: &str, cx: &mut Ctx) {
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

pub(super) fn compile_activity(
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
