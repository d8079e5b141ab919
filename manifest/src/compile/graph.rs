//! One graph, compiled in six phases over a `GraphCx`: its activities, transitions,
//! shape, cycles, references and hook rules.

use super::*;
use indexmap::IndexMap;

use std::collections::HashMap;

use indexmap::IndexSet;

use crate::error::ManifestError;
use crate::expr::{self, RefSite};
use crate::guard::tick;
use crate::limits::{
    MAX_ACTIVITIES, MAX_ACTIVITY_ID_BYTES, MAX_ANCESTOR_ENTRIES, MAX_GRAPH_DEPTH, MAX_TRANSITIONS,
};
use crate::model::*;
use crate::yaml::{Kind, Node};

pub(super) fn compile_graph(
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
    share_job_slots(&gc, out, cx);
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
pub(super) struct GraphCx<'a> {
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
pub(super) fn read_activities<'a>(
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

/// `x[N]` job keys: the original reserves paths `data/x/0` .. per graph (the trigger's
/// PRODUCES, `resolveJobMapsPaths`), so every `x[N]` of a graph stores as many slots as
/// the largest N among them. A key that reserves none (`x[]`, `x[0]`) stores nothing there:
/// warned, since the value it maps is lost.
fn share_job_slots(gc: &GraphCx, out: &mut CompiledApp, cx: &mut Ctx) {
    let mut most: HashMap<String, u32> = HashMap::new();
    for aid in &gc.ids {
        for m in &out.activities[aid].job {
            if let JobKey::Slots { name, slots } = &m.key {
                let n = most.entry(name.clone()).or_default();
                *n = (*n).max(*slots);
            }
        }
    }
    if most.is_empty() {
        return;
    }
    for aid in &gc.ids {
        let act = out.activities.get_mut(aid).expect("compiled activity");
        for m in &mut act.job {
            if let JobKey::Slots { name, slots } = &mut m.key {
                *slots = most[name.as_str()];
                if *slots == 0 {
                    let maps = gc
                        .acts
                        .iter()
                        .find(|(id, _)| id == aid)
                        .and_then(|(_, a)| a.get("job")?.get("maps"));
                    let (key, line) = maps
                        .and_then(Node::as_map)
                        .and_then(|kv| kv.iter().find(|(k, _)| matches!(JobKey::parse(k), JobKey::Slots { name: ref n, .. } if n == name)))
                        .map(|(k, n)| (k.clone(), n.line))
                        .unwrap_or_else(|| (name.clone(), 0));
                    let gpath = gc.gpath;
                    cx.warn(|| format!("{gpath}.activities.{aid}.job.maps.{key} (line {line}): '{key}' reserves no slots, so the original stores nothing for it (`{name}[N]` stores entries 0 to N-1 of its value)"));
                }
            }
        }
    }
}

/// Phase 2: the transitions, only to activities of this graph: every edge, in manifest
/// order, with the path and line of its `to`; each rule attached to its activity.
pub(super) fn read_transitions(
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
pub(super) fn place(
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
pub(super) fn check_cycles(
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
pub(super) fn check_references(
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
pub(super) fn read_hook_rules(
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

/// `{a.b.c}`
pub(super) fn ref_text(parts: &[Box<str>]) -> String {
    format!(
        "{{{}}}",
        parts.iter().map(|s| &**s).collect::<Vec<_>>().join(".")
    )
}

/// The error for a reference whose root is not `$self`, `$job` or an activity of the graph.
pub(super) fn unknown_root(
    site: &RefSite,
    whole: &str,
    declared: &IndexMap<String, String>,
) -> ManifestError {
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
