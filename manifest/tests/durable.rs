//! The original's own `durable` app (APP_VERSION 12: its workflow and collator graphs), as
//! its factory renders it, compiles unchanged: a cycle activity may be the target of
//! several transitions, and every cycle finds its pivot at one depth, which is what the
//! engine's cycle leg relies on (`engine/src/activities/cycle.rs`).

use hotmesh_manifest::model::{ActivityKind, JobKey};
use hotmesh_manifest::{compile_manifest, CompiledApp};

const DURABLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/compat/durable_original.yaml"
));

mod common;
use common::{ancestors, graph};

/// Every cycle's pivot is one of its common ancestors, and the pivot's own ancestors are
/// the ones before it in the cycle's list: the pivot is reached by a single path, so the
/// length of its ancestor list is the depth at which the engine finds its row from any
/// path that reaches the cycle.
fn assert_cycles_find_their_pivot_at_one_depth(app: &CompiledApp) {
    for (id, a) in &app.activities {
        if a.kind != ActivityKind::Cycle {
            continue;
        }
        let pivot = a.ancestor.as_deref().expect("a cycle names its ancestor");
        let depth = app.activities[pivot].ancestors.len();
        assert_eq!(
            a.ancestors.get(depth).map(String::as_str),
            Some(pivot),
            "{id}"
        );
        assert_eq!(
            a.ancestors[..depth],
            app.activities[pivot].ancestors[..],
            "{id}"
        );
        assert!(app.activities[pivot].cycle_target, "{pivot}");
    }
}

fn targets<'a>(app: &'a CompiledApp, id: &str) -> Vec<&'a str> {
    app.activities[id]
        .transitions
        .iter()
        .map(|t| t.to.as_str())
        .collect()
}

#[test]
fn the_originals_durable_app_compiles_unchanged() {
    let app = compile_manifest(DURABLE).unwrap();
    assert_eq!((app.id.as_str(), app.version.as_str()), ("durable", "12"));
    let graphs: Vec<(&str, &str, usize)> = app
        .graphs
        .iter()
        .map(|g| {
            (
                g.subscribes.as_str(),
                g.trigger.as_str(),
                g.activities.len(),
            )
        })
        .collect();
    assert_eq!(
        graphs,
        [
            ("durable.execute", "trigger", 30),
            ("durable.collator.execute", "collator_trigger", 7),
        ]
    );
    assert!(app.graphs[0].persistent.is_some());

    // the collator: `collator_cycler` re-enters the pivot every item goes through, from
    // the pivot itself (next item) and from `collator_proxyer` (a worker, one level down)
    let cycler = &app.activities["collator_cycler"];
    assert_eq!(cycler.kind, ActivityKind::Cycle);
    assert_eq!(cycler.ancestor.as_deref(), Some("collator_cycle_hook"));
    assert_eq!(cycler.parent.as_deref(), Some("collator_cycle_hook"));
    assert_eq!(
        ancestors(&app, "collator_cycler"),
        ["collator_trigger", "collator_cycle_hook"]
    );
    assert_eq!(
        targets(&app, "collator_cycle_hook"),
        [
            "collator_cycler",
            "collator_childer",
            "collator_proxyer",
            "collator_sleeper",
            "collator_waiter"
        ]
    );
    assert_eq!(
        app.activities["collator_proxyer"].kind,
        ActivityKind::Worker
    );
    assert_eq!(targets(&app, "collator_proxyer"), ["collator_cycler"]);
    // each item's activity writes its result into slot `cur_index` of `response[25]`
    for aid in [
        "collator_sleeper",
        "collator_waiter",
        "collator_childer",
        "collator_proxyer",
    ] {
        let keys: Vec<&JobKey> = app.activities[aid].job.iter().map(|m| &m.key).collect();
        assert_eq!(
            keys,
            [&JobKey::Slots {
                name: "response".into(),
                slots: 25
            }],
            "{aid}"
        );
    }

    // the workflow: eleven cycles back to `cycle_hook` or `signaler_cycle_hook`, from
    // different activities at different depths; activities are called by a worker
    // (`proxyer`) on the workflow's topic, no longer through a graph of their own
    assert_eq!(
        targets(&app, "worker"),
        [
            "ender",
            "closer",
            "sleeper",
            "collator",
            "childer",
            "proxyer",
            "continuer",
            "retryer",
            "stopper"
        ]
    );
    assert_eq!(app.activities["proxyer"].kind, ActivityKind::Worker);
    assert_eq!(
        ancestors(&app, "retryer"),
        ["trigger", "cycle_hook", "throttler", "worker"]
    );
    assert_eq!(
        ancestors(&app, "continuer"),
        ["trigger", "cycle_hook", "throttler", "worker"]
    );
    assert_eq!(
        ancestors(&app, "child_cycler"),
        ["trigger", "cycle_hook", "throttler", "worker", "childer"]
    );
    assert_eq!(
        app.activities["signaler_proxy_cycler"].ancestor.as_deref(),
        Some("signaler_cycle_hook")
    );
    let cycles: Vec<(&str, &str)> = app
        .activities
        .values()
        .filter(|a| a.kind == ActivityKind::Cycle)
        .map(|a| (a.id.as_str(), a.ancestor.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(cycles.len(), 12, "{cycles:?}");
    assert_eq!(
        cycles.iter().filter(|(_, to)| *to == "cycle_hook").count(),
        6,
        "{cycles:?}"
    );
    assert_cycles_find_their_pivot_at_one_depth(&app);
    let pivots: Vec<&str> = app
        .activities
        .values()
        .filter(|a| a.cycle_target)
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(
        pivots,
        ["cycle_hook", "signaler_cycle_hook", "collator_cycle_hook"]
    );
    // the worker's patch markers spread into the job
    assert_eq!(app.activities["worker"].job[1].key, JobKey::Spread);

    // signals in: the workflow's `signaler` and the collator's `collator_waiter`
    let hooks: Vec<(&str, &str)> = app
        .hooks
        .iter()
        .map(|h| (h.topic.as_str(), h.to.as_str()))
        .collect();
    assert_eq!(
        hooks,
        [
            ("durable.flow.signal", "signaler"),
            ("durable.wfs.signal", "collator_waiter")
        ]
    );

    // the only warnings: the triggers' stats.parent/adjacent (job dependencies), which the
    // engine does not run yet
    assert_eq!(app.warnings.len(), 2, "{:?}", app.warnings);
    assert!(
        app.warnings.iter().all(|w| w.contains("stats.parent")),
        "{:?}",
        app.warnings
    );
}

#[test]
fn a_cycle_reached_from_several_activities_deploys_when_its_pivot_is_on_every_path() {
    // pivot -> again (depth 2), pivot -> work -> again (3), pivot -> work -> check -> again
    // (4): three parents at three depths, one pivot at depth 1 on every path
    let app = compile_manifest(&graph(
        "        pivot:\n          type: hook\n          cycle: true\n        work:\n          type: worker\n          topic: w\n        check:\n          type: hook\n        again:\n          type: cycle\n          ancestor: pivot\n",
        "        t:\n          - to: pivot\n        pivot:\n          - to: again\n          - to: work\n        work:\n          - to: again\n          - to: check\n        check:\n          - to: again\n",
    ))
    .unwrap();
    assert!(app.warnings.is_empty(), "{:?}", app.warnings);
    assert_eq!(ancestors(&app, "again"), ["t", "pivot"]);
    assert_cycles_find_their_pivot_at_one_depth(&app);
}

#[test]
fn a_cycle_to_a_pivot_reached_at_two_depths_is_still_refused() {
    // t -> pivot and t -> a -> pivot: the pivot runs at depth 1 or 2, so a cycle below it
    // could not find the pivot's row at one depth (and its iterations would split)
    let e = compile_manifest(&graph(
        "        a:\n          type: hook\n        pivot:\n          type: hook\n          cycle: true\n        again:\n          type: cycle\n          ancestor: pivot\n",
        "        t:\n          - to: pivot\n          - to: a\n        a:\n          - to: pivot\n        pivot:\n          - to: again\n",
    ))
    .unwrap_err();
    assert_eq!(e.path(), "app.graphs[0].activities.again.ancestor", "{e}");
    assert!(
        e.to_string().contains(
            "cycle target 'pivot' is not an ancestor of it on every path from the trigger"
        ),
        "{e}"
    );
}
