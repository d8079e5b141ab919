//! The shape of a graph: an activity may be reached by several transitions (as in the
//! original's durable collator); its ancestors are then the ones common to every path from
//! the trigger. Loops of transitions stay errors; converging branches deploy with a warning.

use hotmesh_manifest::{compile_manifest, CompiledApp};

const BATCHES: &str = include_str!("apps/batches.yaml");

mod common;
use common::{ancestors, graph};

fn warned(app: &CompiledApp, words: &[&str]) -> bool {
    app.warnings
        .iter()
        .any(|w| words.iter().all(|x| w.contains(x)))
}

#[test]
fn a_collator_shaped_app_deploys_with_common_ancestors() {
    let app = compile_manifest(BATCHES).unwrap();
    assert!(app.warnings.is_empty(), "{:?}", app.warnings);
    assert_eq!(ancestors(&app, "turn"), ["begin"]);
    // `next` is reached from `turn` and from `run_step`: only `begin` and `turn` are on
    // every path, at the same place
    assert_eq!(ancestors(&app, "next"), ["begin", "turn"]);
    assert_eq!(ancestors(&app, "run_step"), ["begin", "turn"]);
    assert_eq!(ancestors(&app, "rest"), ["begin", "turn"]);
    assert_eq!(app.activities["next"].parent.as_deref(), Some("turn"));
    assert!(app.activities["turn"].cycle_target);
    assert_eq!(app.activities["next"].ancestor.as_deref(), Some("turn"));
    assert_eq!(app.activities["run_step"].produces, ["results"]);
}

#[test]
fn a_cycle_reached_from_two_parents_deploys() {
    let app = compile_manifest(&graph(
        "        pivot:\n          type: hook\n          cycle: true\n        work:\n          type: worker\n          topic: w\n        again:\n          type: cycle\n          ancestor: pivot\n",
        "        t:\n          - to: pivot\n        pivot:\n          - to: again\n          - to: work\n        work:\n          - to: again\n",
    ))
    .unwrap();
    assert_eq!(ancestors(&app, "again"), ["t", "pivot"]);
    // `parent` is the first transition to it, in manifest order
    assert_eq!(app.activities["again"].parent.as_deref(), Some("pivot"));
    assert!(app.activities["pivot"].cycle_target);
    assert!(app.warnings.is_empty(), "{:?}", app.warnings);
}

#[test]
fn ancestors_of_a_two_parent_activity_are_the_common_chain() {
    // t -> a -> b -> c and a -> c: c runs at depth 2 or 3; t and a are at the same place on
    // both paths, b is not. d, below c, gets the same common chain (c's depth varies, so c
    // is not addressable from the trigger either).
    let app = compile_manifest(&graph(
        "        a:\n          type: hook\n        b:\n          type: hook\n        c:\n          type: hook\n        d:\n          type: hook\n          job:\n            maps:\n              x: '{b.output.data.x}'\n              y: '{a.output.data.y}'\n",
        "        t:\n          - to: a\n        a:\n          - to: b\n          - to: c\n        b:\n          - to: c\n        c:\n          - to: d\n",
    ))
    .unwrap();
    assert_eq!(ancestors(&app, "b"), ["t", "a"]);
    assert_eq!(ancestors(&app, "c"), ["t", "a"]);
    assert_eq!(ancestors(&app, "d"), ["t", "a"]);
    assert_eq!(app.activities["c"].parent.as_deref(), Some("a"));
    // reading b from d: b runs before d on one path only
    assert!(
        warned(
            &app,
            &[
                "activities.d.job.maps.x (line 19)",
                "{b.output.data.x}",
                "not an ancestor of 'd' on every path",
                "[t, a]",
            ]
        ),
        "{:?}",
        app.warnings
    );
    assert_eq!(app.warnings.len(), 1, "{:?}", app.warnings);
}

#[test]
fn common_chains_follow_every_path_without_enumerating_them() {
    // a ladder of 40 diamonds has 2^40 paths: the chain of its end is the trigger alone
    let mut acts = String::new();
    let mut trans = String::from("        t:\n          - to: l0\n          - to: r0\n");
    for i in 0..40 {
        acts +=
            &format!("        l{i}:\n          type: hook\n        r{i}:\n          type: hook\n");
        let next = if i == 39 {
            "          - to: end\n".to_string()
        } else {
            format!("          - to: l{}\n          - to: r{}\n", i + 1, i + 1)
        };
        trans += &format!("        l{i}:\n{next}        r{i}:\n{next}");
    }
    acts += "        end:\n          type: hook\n";
    let app = compile_manifest(&graph(&acts, &trans)).unwrap();
    assert_eq!(ancestors(&app, "end"), ["t"]);
    assert_eq!(ancestors(&app, "l0"), ["t"]);
    // every rung converges at one depth: a warning each
    assert!(warned(&app, &["activities.end:", "same depth"]));
}

#[test]
fn a_transition_loop_is_still_rejected() {
    let e = compile_manifest(&graph(
        "        a:\n          type: hook\n        b:\n          type: hook\n",
        "        t:\n          - to: a\n        a:\n          - to: b\n        b:\n          - to: a\n",
    ))
    .unwrap_err();
    assert_eq!(e.path(), "app.graphs[0].transitions.b[0].to", "{e}");
    assert_eq!(e.line(), 19, "{e}");
    assert!(
        e.to_string().contains(
            "transitions form a loop (a -> b -> a); loops are written with a cycle activity"
        ),
        "{e}"
    );
    // a loop nothing reaches is rejected too, and so is an activity that is its own child
    let e = compile_manifest(&graph(
        "        a:\n          type: hook\n        b:\n          type: hook\n",
        "        a:\n          - to: b\n        b:\n          - to: a\n",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("form a loop"), "{e}");
    let e = compile_manifest(&graph(
        "        a:\n          type: hook\n",
        "        t:\n          - to: a\n        a:\n          - to: a\n",
    ))
    .unwrap_err();
    assert_eq!(e.path(), "app.graphs[0].transitions.a[0].to", "{e}");
    assert!(e.to_string().contains("(a -> a)"), "{e}");
}

#[test]
fn converging_branches_at_one_depth_warn() {
    let app = compile_manifest(&graph(
        "        a:\n          type: hook\n        b:\n          type: hook\n        c:\n          type: hook\n",
        "        t:\n          - to: a\n          - to: b\n        a:\n          - to: c\n        b:\n          - to: c\n",
    ))
    .unwrap();
    assert_eq!(ancestors(&app, "c"), ["t"]);
    assert!(
        warned(
            &app,
            &[
                "app.graphs[0].activities.c:",
                "from 'a' and from 'b' at the same depth",
                "exclusive"
            ]
        ),
        "{:?}",
        app.warnings
    );
    // two transitions from one activity to the same one
    let app = compile_manifest(&graph(
        "        a:\n          type: hook\n",
        "        t:\n          - to: a\n            conditions:\n              code: 200\n          - to: a\n            conditions:\n              code: 500\n",
    ))
    .unwrap();
    assert!(
        warned(&app, &["activities.a:", "by two transitions from 't'"]),
        "{:?}",
        app.warnings
    );
    // branches that converge at different depths run in different dimensions: no warning
    let app = compile_manifest(&graph(
        "        a:\n          type: hook\n        b:\n          type: hook\n        c:\n          type: hook\n",
        "        t:\n          - to: a\n          - to: c\n        a:\n          - to: b\n        b:\n          - to: c\n",
    ))
    .unwrap();
    assert!(app.warnings.is_empty(), "{:?}", app.warnings);
}

#[test]
fn a_cycle_whose_ancestor_is_not_on_every_path_is_rejected() {
    let e = compile_manifest(&graph(
        "        a:\n          type: hook\n        b:\n          type: hook\n          cycle: true\n        c:\n          type: cycle\n          ancestor: b\n",
        "        t:\n          - to: a\n        a:\n          - to: b\n          - to: c\n        b:\n          - to: c\n",
    ))
    .unwrap_err();
    assert_eq!(e.path(), "app.graphs[0].activities.c.ancestor", "{e}");
    assert_eq!(e.line(), 16, "{e}");
    assert!(
        e.to_string()
            .contains("cycle target 'b' is not an ancestor of it on every path from the trigger"),
        "{e}"
    );
}

#[test]
fn an_unreachable_activity_with_several_parents_still_warns() {
    let app = compile_manifest(&graph(
        "        a:\n          type: hook\n        b:\n          type: hook\n        c:\n          type: hook\n",
        "        t:\n          - to: a\n        b:\n          - to: c\n        a:\n          - to: c\n",
    ))
    .unwrap();
    assert!(warned(&app, &["activities.b:", "not reachable"]));
    assert!(!warned(&app, &["activities.c:"]), "{:?}", app.warnings);
    // only the parent that runs counts: c is a's child
    assert_eq!(ancestors(&app, "c"), ["t", "a"]);
}

/// A trigger's `stats.measures` compile with their paths (the first three segments of the
/// target dropped), and a new job's context gives a row per measure that resolves.
#[test]
fn stats_measures_record_a_row_per_resolved_measure() {
    use hotmesh_manifest::stats::{Granularity, MeasureKind};
    let app = hotmesh_manifest::compile_manifest(
        "app:\n  id: s\n  version: '1'\n  graphs:\n    - subscribes: s.go\n      activities:\n        t:\n          type: trigger\n          stats:\n            key: '{$self.input.data.shop}'\n            granularity: 15m\n            measures:\n              - { measure: count, target: '{$self.input.data.region}' }\n              - { measure: sum, target: '{$self.input.data.order.total}' }\n              - { measure: index, target: '{$self.input.data.customer}' }\n              - { measure: max, target: '{$self.input.data.missing}' }\n",
    )
    .unwrap();
    let stats = app.activities["t"].stats.as_ref().expect("compiled");
    assert_eq!(stats.granularity, Granularity::Minutes(15));
    let kinds: Vec<(MeasureKind, &str)> = stats
        .measures
        .iter()
        .map(|m| (m.kind, m.path.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (MeasureKind::Count, "region"),
            (MeasureKind::Sum, "order/total"),
            (MeasureKind::Index, "customer"),
            (MeasureKind::Max, "missing"),
        ]
    );
    let data = serde_json::json!({"region": "eu", "order": {"total": "12.5"}, "customer": 7});
    let ctx = serde_json::json!({"t": {"input": {"data": data}, "output": {"data": data}}});
    let rows = stats.record(&hotmesh_manifest::Env {
        job: &ctx,
        self_id: Some("t"),
    });
    let got: Vec<(&str, &str, &str, Option<f64>)> = rows
        .iter()
        .map(|r| (r.measure, r.target.as_str(), r.facet.as_str(), r.value))
        .collect();
    // the job count, then each measure that resolved (`missing` did not)
    assert_eq!(
        got,
        vec![
            ("count", "", "", None),
            ("count", "region", "eu", None),
            ("sum", "order/total", "", Some(12.5)),
            ("index", "customer", "7", None),
        ]
    );
}

#[test]
fn stats_without_measures_record_nothing_and_bad_ones_are_rejected() {
    let base = "app:\n  id: s\n  version: '1'\n  graphs:\n    - subscribes: s.go\n      activities:\n        t:\n          type: trigger\n          stats:\n";
    let app = hotmesh_manifest::compile_manifest(&format!(
        "{base}            id: '{{$self.input.data.id}}'\n"
    ))
    .unwrap();
    assert!(app.activities["t"].stats.is_none());
    for (yaml, path) in [
        (
            "            measures: [ { measure: median, target: '{$self.input.data.a}' } ]\n",
            "stats.measures[0].measure",
        ),
        (
            "            measures: [ { measure: sum, target: 'a' } ]\n",
            "stats.measures[0].target",
        ),
        (
            "            measures: [ { measure: sum } ]\n",
            "stats.measures[0].target",
        ),
        (
            "            granularity: 2h\n            measures: []\n",
            "stats.granularity",
        ),
        ("            measures: 5\n", "stats.measures"),
    ] {
        let e = hotmesh_manifest::compile_manifest(&format!("{base}{yaml}")).unwrap_err();
        assert_eq!(
            e.path(),
            format!("app.graphs[0].activities.t.{path}"),
            "{e}"
        );
    }
}
