//! Manifests: a multi-graph app with every activity type compiles; each rule a
//! manifest can break is reported with its YAML path and line.

use hotmesh_manifest::compile::{compile_manifest, deploy_plan};
use hotmesh_manifest::model::{apply_job_maps, write_job_field, ActivityKind, JobKey, Rule};
use hotmesh_manifest::{Env, ManifestError};
use serde_json::json;

const EVERYTHING: &str = include_str!("apps/everything.yaml");

#[test]
fn every_activity_type_compiles() {
    let app = compile_manifest(EVERYTHING).unwrap();
    assert_eq!((app.id.as_str(), app.version.as_str()), ("everything", "1"));
    assert_eq!(app.graphs.len(), 2);
    let kinds: std::collections::BTreeSet<&str> =
        app.activities.values().map(|a| a.kind.name()).collect();
    assert_eq!(kinds.len(), 7, "{kinds:?}");
    let g = &app.graphs[0];
    assert_eq!(
        (
            g.subscribes.as_str(),
            g.publishes.as_deref(),
            g.trigger.as_str()
        ),
        ("order.placed", Some("order.done"), "t1")
    );
    // parents, ancestors, cycle targets, hook topics
    let ship = &app.activities["ship"];
    assert_eq!(ship.parent.as_deref(), Some("approve"));
    assert_eq!(ship.ancestors, ["t1", "price", "approve"]);
    assert!(app.activities["approve"].cycle_target);
    assert_eq!(
        app.activities["approve"].hook_topic.as_deref(),
        Some("order.approve")
    );
    assert_eq!(app.activities["retry"].ancestor.as_deref(), Some("approve"));
    // transitions: unconditional, code lists, gates
    assert_eq!(app.activities["t1"].transitions[0].rule, Rule::Always);
    match &app.activities["price"].transitions[1].rule {
        Rule::Conditions { codes, .. } => assert_eq!(codes, &[500, 422]),
        r => panic!("{r:?}"),
    }
    // consumes: what each activity reads
    assert_eq!(
        app.activities["price"].consumes["t1"],
        ["output/data/qty", "output/data/sku"]
    );
    // the compiled form survives storage as JSON
    let back: hotmesh_manifest::CompiledApp =
        serde_json::from_value(serde_json::to_value(&app).unwrap()).unwrap();
    assert_eq!(back, app);
    let summary = app.summary();
    assert_eq!(summary["activities"], 13);
    assert!(summary["topics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["topic"] == "pricing.quote" && t["kind"] == "worker"));
}

#[test]
fn transitions_evaluate_code_match_and_gate() {
    let app = compile_manifest(EVERYTHING).unwrap();
    let job = json!({"price": {"output": {"data": {"unit": 3}}}, "approve": {"hook": {"data": {"ok": false, "answer": "yes"}}}});
    let env = Env::new(&job);
    let price = &app.activities["price"].transitions;
    assert!(price[0].rule.passes(200, &env).unwrap());
    assert!(!price[0].rule.passes(500, &env).unwrap());
    assert!(price[1].rule.passes(422, &env).unwrap());
    let approve = &app.activities["approve"].transitions;
    assert!(
        approve[0].rule.passes(200, &env).unwrap(),
        "or-gate: the second match passes"
    );
    assert!(approve[1].rule.passes(200, &env).unwrap());
    assert!(
        app.activities["t1"].transitions[0]
            .rule
            .passes(500, &env)
            .unwrap(),
        "no conditions fire for errors too"
    );
}

/// The job fields what `maps` write, starting from `fields`.
fn job_fields(
    maps: &[hotmesh_manifest::model::JobMap],
    env: &Env,
    fields: serde_json::Value,
) -> serde_json::Value {
    let serde_json::Value::Object(mut fields) = fields else {
        panic!("fields are an object")
    };
    for (k, w) in apply_job_maps(maps, env).unwrap() {
        write_job_field(&mut fields, k, w);
    }
    serde_json::Value::Object(fields)
}

#[test]
fn job_maps_write_index_and_spread_keys() {
    let app = compile_manifest(EVERYTHING).unwrap();
    let job = json!({"t1": {"input": {"data": {"id": "o1", "qty": 2, "customer": "c9"}}}});
    let env = Env {
        job: &job,
        self_id: Some("t1"),
    };
    assert_eq!(
        job_fields(&app.activities["t1"].job, &env, json!({})),
        json!({"id": "o1", "qty": 2, "-placed-": 1, "_customer": "c9"})
    );
    let job = json!({"t1": {"output": {"data": {"qty": 2}}}, "price": {"output": {"data": {"unit": 2.5, "lines": [1, 2, 3, 4]}}}});
    let env = Env {
        job: &job,
        self_id: Some("price"),
    };
    // `lines[3]`: entries 0 to 2 of the array, each in its slot of object `lines`
    assert_eq!(
        job_fields(&app.activities["price"].job, &env, json!({})),
        json!({"total": "5.00", "lines": {"0": 1, "1": 2, "2": 3}})
    );
    assert_eq!(app.activities["price"].produces, ["total", "lines"]);
}

#[test]
fn an_indexed_job_key_reserves_slots_that_later_writes_add_to() {
    // the original: `x[N]` maps to `x`, and deploy reserves paths x/0 .. x/N-1 for it;
    // each write stores only the slots its value has, so writes accumulate by index
    assert_eq!(
        JobKey::parse("response[25]"),
        JobKey::Slots {
            name: "response".into(),
            slots: 25
        }
    );
    assert_eq!(JobKey::parse("x[-]"), JobKey::Spread);
    assert_eq!(JobKey::parse("x[_]"), JobKey::Spread);
    assert_eq!(JobKey::parse("x"), JobKey::Plain("x".into()));
    assert_eq!(JobKey::parse("x[abc]"), JobKey::Plain("x[abc]".into()));
    // Number() accepts it; parseInt() says how many slots
    for (k, n) in [
        ("x[]", 0),
        ("x[ 3 ]", 3),
        ("x[2.9]", 2),
        ("x[0x10]", 16),
        ("x[1e2]", 1),
        ("x[-4]", 0),
    ] {
        assert_eq!(
            JobKey::parse(k),
            JobKey::Slots {
                name: "x".into(),
                slots: n
            },
            "{k}"
        );
    }

    let app = compile_manifest(
        "app:\n  id: s\n  version: '1'\n  graphs:\n    - subscribes: s.start\n      activities:\n        t:\n          type: trigger\n        a:\n          type: hook\n          job:\n            maps:\n              r[3]:\n                '@pipe':\n                  - ['{t.output.data.i}', '{t.output.data.v}']\n                  - ['{@object.create}']\n        b:\n          type: hook\n          job:\n            maps:\n              r[5]: '{t.output.data.list}'\n              z[]: '{t.output.data.v}'\n      transitions:\n        t:\n          - to: a\n          - to: b\n",
    )
    .unwrap();
    // the paths are per graph: both keys of `r` store 5 slots
    for aid in ["a", "b"] {
        assert_eq!(
            app.activities[aid].job[0].key,
            JobKey::Slots {
                name: "r".into(),
                slots: 5
            },
            "{aid}"
        );
    }
    assert_eq!(app.warnings.len(), 1, "{:?}", app.warnings);
    assert!(
        app.warnings[0].contains("'z[]' reserves no slots"),
        "{:?}",
        app.warnings
    );

    let run = |aid: &str, t: serde_json::Value, fields: serde_json::Value| {
        let job = json!({ "t": { "output": { "data": t } } });
        let env = Env {
            job: &job,
            self_id: Some(aid),
        };
        job_fields(&app.activities[aid].job, &env, fields)
    };
    // three items written one after the other: each adds its index
    let mut data = json!({});
    for (i, v) in [(1, "b"), (0, "a"), (4, "e")] {
        data = run("a", json!({"i": i, "v": v}), data);
    }
    assert_eq!(data, json!({"r": {"0": "a", "1": "b", "4": "e"}}));
    // an index past the slots is not stored; a rewrite replaces its own slot only
    data = run("a", json!({"i": 5, "v": "f"}), data);
    data = run("a", json!({"i": 1, "v": "B"}), data);
    assert_eq!(data, json!({"r": {"0": "a", "1": "B", "4": "e"}}));
    // an array value: its elements by index (holes and past-the-slots ones skipped);
    // `z[]` stores nothing, whatever it maps
    data = run(
        "b",
        json!({"list": [null, "x", 2, 3, 4, 5, 6], "v": "lost"}),
        data,
    );
    assert_eq!(
        data,
        json!({"r": {"0": null, "1": "x", "2": 2, "3": 3, "4": 4}})
    );
    // a field that held no object is started afresh; values with no entries write nothing
    assert_eq!(
        run("a", json!({"i": 2, "v": 7}), json!({"r": "whole"})),
        json!({"r": {"2": 7}})
    );
    assert_eq!(run("b", json!({"list": 12}), json!({})), json!({}));
    assert_eq!(
        run("b", json!({}), json!({"r": {"0": 1}})),
        json!({"r": {"0": 1}})
    );
}

#[test]
fn the_same_content_has_the_same_digest() {
    let (_, a, _) = deploy_plan(EVERYTHING).unwrap();
    let reformatted = EVERYTHING
        .replace("# Every activity type", "# reformatted")
        .replace("  id: everything", "  \"id\": \"everything\"");
    let (_, b, _) = deploy_plan(&reformatted).unwrap();
    assert_eq!(a, b);
    let (_, c, _) =
        deploy_plan(&EVERYTHING.replace("reason: declined", "reason: refused")).unwrap();
    assert_ne!(a, c);
}

/// (manifest, expected path, expected line, words the message must contain)
fn rejects(text: &str, path: &str, line: usize, words: &str) {
    let e = compile_manifest(text).expect_err(text);
    let msg = e.to_string();
    if !path.is_empty() {
        assert_eq!(e.path(), path, "{msg}");
    }
    assert_eq!(e.line(), line, "{msg}");
    assert!(msg.contains(words), "'{msg}' should mention '{words}'");
}

const BASE: &str = "app:\n  id: v\n  version: '1'\n  graphs:\n    - subscribes: v.start\n      activities:\n        t:\n          type: trigger\n";

#[test]
fn bad_manifests_are_rejected_with_path_and_line() {
    rejects("app:\n  id: [oops\n", "", 3, "YAML syntax error");
    rejects(
        "app:\n  version: '1'\n  graphs: []\n",
        "app.id",
        1,
        "the app needs an id",
    );
    rejects(
        "app:\n  id: v\n  graphs: []\n",
        "app.version",
        1,
        "needs a version",
    );
    rejects("app:\n  id: v\n  id: w\n", "", 3, "duplicated mapping key");
    rejects("nothing: here\n", "app", 1, "starts with `app:`");
    rejects(
        &format!("{BASE}        w:\n          type: workr\n          topic: x\n"),
        "app.graphs[0].activities.w.type",
        10,
        "unknown activity type 'workr'",
    );
    rejects(
        &format!("{BASE}    - subscribes: v.other\n      activities:\n        t:\n          type: trigger\n"),
        "app.graphs[1].activities.t",
        11,
        "already used at app.graphs[0].activities.t",
    );
    rejects(
        &format!("{BASE}      transitions:\n        t:\n          - to: nowhere\n"),
        "app.graphs[0].transitions.t[0].to",
        11,
        "transition to unknown activity 'nowhere'",
    );
    rejects(
        &format!("{BASE}        a:\n          type: hook\n        b:\n          type: hook\n      transitions:\n        t:\n          - to: a\n        a:\n          - to: b\n        b:\n          - to: a\n"),
        "app.graphs[0].transitions.b[0].to",
        19,
        "transitions form a loop (a -> b -> a)",
    );
    rejects("app:\n  id: v\n  version: '1'\n  graphs:\n    - subscribes: v.start\n      activities:\n        h:\n          type: hook\n", "app.graphs[0].activities", 6, "no trigger");
    rejects(
        &format!("{BASE}        t2:\n          type: trigger\n"),
        "app.graphs[0].activities.t2",
        9,
        "2 triggers",
    );
    rejects(
        &format!("{BASE}        a:\n          type: hook\n        b:\n          type: hook\n        c:\n          type: cycle\n          ancestor: b\n      transitions:\n        t:\n          - to: a\n          - to: b\n        a:\n          - to: c\n"),
        "app.graphs[0].activities.c.ancestor",
        15,
        "is not an ancestor",
    );
    rejects(&format!("{BASE}        c:\n          type: cycle\n          ancestor: t\n      transitions:\n        t:\n          - to: c\n"), "app.graphs[0].activities.c.ancestor", 11, "is the trigger");
    rejects(&format!("{BASE}        c:\n          type: cycle\n      transitions:\n        t:\n          - to: c\n"), "app.graphs[0].activities.c.ancestor", 9, "needs the `ancestor`");
    rejects(
        &format!("{BASE}          job:\n            maps:\n              x: {{ '@pipe': [['{{$self.input.data.a}}'], ['{{@string.upper}}']] }}\n"),
        "app.graphs[0].activities.t.job.maps.x.@pipe[1][0]",
        11,
        "unknown @pipe function {@string.upper}",
    );
    rejects(
        &format!("{BASE}          job:\n            maps:\n              x: '{{a..b}}'\n"),
        "app.graphs[0].activities.t.job.maps.x",
        11,
        "malformed reference {a..b}",
    );
    rejects(
        &format!("{BASE}          job:\n            maps:\n              x: '{{a}} and {{b}}'\n"),
        "app.graphs[0].activities.t.job.maps.x",
        11,
        "no string interpolation",
    );
    rejects(
        &format!(
            "{BASE}          job:\n            maps:\n              x: '{{ghost.output.data.y}}'\n"
        ),
        "app.graphs[0].activities.t.job.maps.x",
        11,
        "'ghost' is not an activity",
    );
    rejects(&format!("{BASE}          job:\n            maps:\n              x: {{ '@pipe': [['a'], [5]] }}\n"), "app.graphs[0].activities.t.job.maps.x.@pipe[1][0]", 11, "must be a {@function}");
    rejects(&format!("{BASE}    - subscribes: v.start\n      activities:\n        t2:\n          type: trigger\n"), "app.graphs[1].subscribes", 9, "already subscribed");
    rejects(
        &format!("{BASE}        w:\n          type: worker\n"),
        "app.graphs[0].activities.w.topic",
        9,
        "needs a topic",
    );
    rejects(
        &format!("{BASE}      hooks:\n        v.sig:\n          - to: t\n"),
        "app.graphs[0].hooks.v.sig[0].to",
        11,
        "signals reach hook activities",
    );
}

#[test]
fn warnings_do_not_block_a_deploy() {
    let app = compile_manifest(&format!(
        "{BASE}        orphan:\n          type: hook\n          colour: blue\n"
    ))
    .unwrap();
    assert!(
        app.warnings.iter().any(|w| w.contains("not reachable")),
        "{:?}",
        app.warnings
    );
    assert!(
        app.warnings.iter().any(|w| w.contains("unknown field")),
        "{:?}",
        app.warnings
    );
}

#[test]
fn json_manifests_deploy_too() {
    let text = serde_json::to_string(&hotmesh_manifest::yaml::parse(EVERYTHING).unwrap().to_json())
        .unwrap();
    let app = compile_manifest(&text).unwrap();
    assert_eq!(app.activities.len(), 13);
    assert!(matches!(app.activities["ship"].kind, ActivityKind::Await));
}

#[test]
fn an_empty_reference_deploys_without_panicking() {
    let app = compile_manifest(&format!(
        "{BASE}          job:\n            maps:\n              x: '{{}}'\n"
    ))
    .unwrap();
    assert!(app.activities["t"].consumes.is_empty());
}

#[test]
fn errors_are_values_not_panics() {
    for text in [
        "",
        "[]",
        "app: 5",
        "app: {id: x, version: '1', graphs: 7}",
        "app: {id: x, version: '1', graphs: [5]}",
        "\u{0}",
        "app:\n  id: !!binary AAAA\n",
    ] {
        assert!(
            matches!(
                compile_manifest(text),
                Err(ManifestError::Syntax { .. } | ManifestError::Invalid { .. })
            ),
            "{text:?}"
        );
    }
}

#[test]
fn errors_about_a_reference_name_its_key_or_pipe_cell() {
    // input.maps.<key>
    rejects(
        &format!("{BASE}        w1:\n          type: worker\n          topic: w\n          input:\n            maps:\n              m: 1\n              n: '{{ghost.output.data.n}}'\n      transitions:\n        t:\n          - to: w1\n"),
        "app.graphs[0].activities.w1.input.maps.n",
        15,
        "'ghost' is not an activity",
    );
    // job.maps.<key>, several keys
    rejects(
        &format!("{BASE}          job:\n            maps:\n              a: '{{$self.output.data.a}}'\n              b: '{{nobody.output.data.b}}'\n"),
        "app.graphs[0].activities.t.job.maps.b",
        12,
        "'nobody' is not an activity",
    );
    // a cell of a @pipe row, and a cell of a pipe nested as a row
    rejects(
        &format!("{BASE}          job:\n            maps:\n              total:\n                '@pipe':\n                  - ['{{$self.output.data.a}}', '{{ghost.b}}']\n                  - ['{{@math.add}}']\n"),
        "app.graphs[0].activities.t.job.maps.total.@pipe[0][1]",
        13,
        "malformed reference {ghost.b}",
    );
    rejects(
        &format!("{BASE}          job:\n            maps:\n              total:\n                '@pipe':\n                  - '@pipe':\n                      - ['{{$self.output.data.a}}']\n                  - '@pipe':\n                      - ['{{$self.output.data.b}}']\n                      - ['{{@math.add}}', '{{ghost.c}}']\n                  - ['{{@math.add}}']\n"),
        "app.graphs[0].activities.t.job.maps.total.@pipe[1].@pipe[1][1]",
        17,
        "malformed reference {ghost.c}",
    );
    // a transition's conditions.match[i].actual, plain and in a pipe
    rejects(
        &format!("{BASE}        h:\n          type: hook\n      transitions:\n        t:\n          - to: h\n            conditions:\n              match:\n                - expected: 1\n                  actual: '{{t.output.data.a}}'\n                - expected: 2\n                  actual: '{{ghost.output.data.b}}'\n"),
        "app.graphs[0].transitions.t[0].conditions.match[1].actual",
        19,
        "'ghost' is not an activity",
    );
    rejects(
        &format!("{BASE}        h:\n          type: hook\n      transitions:\n        t:\n          - to: h\n            conditions:\n              match:\n                - expected: true\n                  actual:\n                    '@pipe':\n                      - ['{{ghost.a}}', 1]\n                      - ['{{@number.gt}}']\n"),
        "app.graphs[0].transitions.t[0].conditions.match[0].actual.@pipe[0][0]",
        19,
        "'ghost' is not an activity",
    );
    // a hook rule's expected
    rejects(
        &format!("{BASE}        h:\n          type: hook\n      transitions:\n        t:\n          - to: h\n      hooks:\n        v.sig:\n          - to: h\n            conditions:\n              match:\n                - expected: '{{ghost.output.data.id}}'\n                  actual: '{{$self.hook.data.id}}'\n"),
        "app.graphs[0].hooks.v.sig[0].conditions.match[0].expected",
        19,
        "'ghost' is not an activity",
    );
    // a setting, and a reference to another graph's activity
    rejects(
        &format!("{BASE}          stats:\n            id: '{{ghost.x}}'\n"),
        "app.graphs[0].activities.t.stats.id",
        10,
        "'ghost' is not an activity",
    );
    rejects(
        &format!("{BASE}    - subscribes: v.other\n      activities:\n        u:\n          type: trigger\n          job:\n            maps:\n              x: '{{t.output.data.x}}'\n"),
        "app.graphs[1].activities.u.job.maps.x",
        15,
        "it belongs to another graph",
    );
}

#[test]
fn warnings_name_the_key_and_line_too() {
    let app = compile_manifest(&format!("{BASE}        a:\n          type: hook\n        b:\n          type: hook\n          job:\n            maps:\n              x: {{ '@pipe': [['{{a.output.data.x}}'], ['{{@number.isNaN}}']] }}\n      transitions:\n        t:\n          - to: a\n          - to: b\n      hooks:\n        v.sig:\n          - to: b\n            conditions:\n              match:\n                - expected: '{{t.output.data.id}}'\n                  actual: '{{a.output.data.id}}'\n")).unwrap();
    assert!(
        app.warnings.iter().any(|w| w.starts_with(
            "app.graphs[0].activities.b.job.maps.x.@pipe[0][0] (line 15): {a.output.data.x} reads 'a', which is not an ancestor of 'b'"
        )),
        "{:?}",
        app.warnings
    );
    assert!(
        app.warnings.iter().any(|w| w.starts_with(
            "app.graphs[0].hooks.v.sig[0].conditions.match[0].actual (line 26): {a.output.data.id} reads 'a', but a hook rule's `actual` is resolved against the signal alone"
        )),
        "{:?}",
        app.warnings
    );
}

#[test]
fn what_the_engine_does_not_run_yet_is_a_warning() {
    let app = compile_manifest(&format!("{BASE}          title: start\n          telemetry: {{ span: x }}\n          stats:\n            id: '{{$self.input.data.id}}'\n            parent: '{{$self.input.data.origin}}'\n            adjacent: '{{$self.input.data.parent}}'\n        h:\n          type: hook\n          description: waits\n          statusThresholdType: stop\n          escalation:\n            after: 60\n        s:\n          type: signal\n          subtype: all\n          topic: v.sig\n          key_name: k\n          key_value: v\n          scrub: true\n          resolver:\n            maps:\n              id: '{{$job.metadata.jid}}'\n        i:\n          type: interrupt\n          stack: '{{$job.data.trace}}'\n      transitions:\n        t:\n          - to: h\n          - to: s\n          - to: i\n")).unwrap();
    let has = |prefix: &str, words: &str| {
        app.warnings
            .iter()
            .any(|w| w.starts_with(prefix) && w.contains(words))
    };
    assert!(
        has(
            "app.graphs[0].activities.h.escalation (line 19)",
            "escalation is not implemented yet"
        ),
        "{:?}",
        app.warnings
    );
    assert!(
        has(
            "app.graphs[0].activities.t.stats.parent (line 13)",
            "stats.parent and stats.adjacent are not implemented yet"
        ),
        "{:?}",
        app.warnings
    );
    assert!(
        has("app.graphs[0].activities.i.stack (line 33)", "no stack"),
        "{:?}",
        app.warnings
    );
    // title, telemetry, description, statusThresholdType, a signal's resolver and
    // scrub (the stats indexes run): no warning
    assert_eq!(app.warnings.len(), 3, "{:?}", app.warnings);
}
