//! A fuzz run with a time bound, for CI: structured YAML text, whole manifests (random
//! graphs of random activities, transitions and maps) and mapping expressions (random
//! `@pipe` / `@reduce` trees over the whole function catalog, with arguments chosen to
//! reach the limits: huge counts, long strings, hostile patterns). Whatever comes in,
//! the answer is a value or a ManifestError / EvalError: no panic, no stack overflow,
//! no abort. The default run takes about 15 s in a debug build; `HOTMESH_FUZZ_CASES=100000`
//! runs 100 times as many cases.

use hotmesh_manifest::compile::{compile_manifest, deploy_plan};
use hotmesh_manifest::expr::{self, compile, Env};
use hotmesh_manifest::{functions, yaml};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Cases per property: `default` (the expression property's 1,000 is the unit), scaled
/// by HOTMESH_FUZZ_CASES / 1,000 when it is set.
fn cases(default: u32) -> u32 {
    std::env::var("HOTMESH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        // the default mix, scaled
        .map(|n| (n as u64 * default as u64 / 1_000).max(1) as u32)
        .unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        // a failure is reported as generated: shrinking hostile values takes long
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    }
}

// ---- YAML text -------------------------------------------------------------------------

/// Pieces of YAML syntax, glued at random: anchors, aliases, merges, flow and block
/// collections, tags, quotes, block scalars.
fn yaml_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("- ".to_string()),
        Just("a: ".to_string()),
        Just("? ".to_string()),
        Just("<<: *x\n".to_string()),
        Just("&x ".to_string()),
        Just("*x".to_string()),
        Just("&y [*x, *x, *x]\n".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(", ".to_string()),
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just("!!str ".to_string()),
        Just("!!int ".to_string()),
        Just("'q'".to_string()),
        Just("\"q\\n\"".to_string()),
        Just("|\n  text\n".to_string()),
        Just("---\n".to_string()),
        Just("# c\n".to_string()),
        "[a-z0-9]{1,6}",
        (1usize..2000).prop_map(|n| "- ".repeat(n)),
        (1usize..2000).prop_map(|n| "[".repeat(n)),
        (1usize..500).prop_map(|n| "{a: ".repeat(n)),
    ]
}

fn yaml_text() -> impl Strategy<Value = String> {
    prop::collection::vec(yaml_piece(), 0..40).prop_map(|p| p.concat())
}

// ---- expressions -----------------------------------------------------------------------

/// Arguments that reach the limits as well as ordinary ones.
fn argument() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(vec![
            0.0,
            -1.0,
            1.5,
            2.0,
            10.0,
            63.0,
            64.0,
            1e3,
            1e6,
            1e7,
            99_999_999.0,
            1e8,
            1e9,
            4_294_967_296.0,
            -1e300,
            1e308,
        ])
        .prop_map(|f| json!(f)),
        "[a-z0-9 ,.:\\-]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "(a+)+$",
            "(a|a)*$",
            "(.*a){25}",
            "\\d+",
            "[^]",
            "(?=a)",
            "(a)\\1",
            "\\u{1F600}",
            "(",
            "x{2,}",
            "{a.b}",
            "{$job.big}",
            "{$job.items}",
            "{$job.deep}",
            "{$item}",
            "{$output}",
            "{$key}",
            "{$index}",
            "{$input}",
            "{a.b.length}",
            "{$self.output.data}",
        ])
        .prop_map(|s| Value::String(s.into())),
        (1usize..3_000).prop_map(|n| Value::String("ab".repeat(n))),
        prop::collection::vec(any::<i8>().prop_map(|i| json!(i)), 0..20).prop_map(Value::Array),
        Just(json!({"k": [1, 2, {"z": "w"}], "n": 1})),
    ]
}

fn function_name() -> impl Strategy<Value = String> {
    prop::sample::select(functions::names()).prop_map(|n| format!("{{@{n}}}"))
}

/// A pipe row that calls a function: its first cell is a `{@function}` (or a context
/// variable), the rest are arguments.
fn call_row() -> impl Strategy<Value = Value> {
    (
        prop_oneof![4 => function_name(), 1 => Just("{$output}".to_string())],
        prop::collection::vec(argument(), 0..4),
    )
        .prop_map(|(head, rest)| {
            let mut row = vec![Value::String(head)];
            row.extend(rest);
            Value::Array(row)
        })
}

fn expression() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        argument(),
        function_name().prop_map(Value::String),
        (
            prop::collection::vec(argument(), 1..4),
            prop::collection::vec(call_row(), 0..4)
        )
            .prop_map(|(first, rows)| {
                let mut all = vec![Value::Array(first)];
                all.extend(rows);
                json!({ "@pipe": all })
            }),
    ];
    leaf.prop_recursive(6, 48, 5, |inner| {
        prop_oneof![
            // nested pipes as rows, then a row that takes their results
            (prop::collection::vec(inner.clone(), 1..3), call_row()).prop_map(|(subs, row)| {
                let mut rows: Vec<Value> = subs
                    .into_iter()
                    .map(|s| {
                        if s.get("@pipe").is_some() {
                            s
                        } else {
                            json!({"@pipe": [[s]]})
                        }
                    })
                    .collect();
                rows.push(row);
                json!({ "@pipe": rows })
            }),
            // a fold over a collection
            (
                argument(),
                argument(),
                prop::collection::vec(call_row(), 1..3)
            )
                .prop_map(|(c, init, body)| { json!({"@pipe": [[c, init], {"@reduce": body}]}) }),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn context() -> Value {
    json!({
        "a": {"b": [1, 2, 3], "c": "x"},
        "$job": {
            "big": "z".repeat(20_000),
            "items": (0..300).collect::<Vec<_>>(),
            "deep": (0..100).fold(json!(1), |v, _| json!([v])),
        },
        "metadata": {}
    })
}

// ---- manifests -------------------------------------------------------------------------

const TYPES: &[&str] = &[
    "trigger",
    "worker",
    "await",
    "hook",
    "cycle",
    "signal",
    "interrupt",
    "nope",
];

/// A graph of `n` activities with random types (the first usually a trigger), random
/// transitions (conditions sometimes) and random maps.
fn graph() -> impl Strategy<Value = Value> {
    (2usize..12).prop_flat_map(|n| {
        (
            prop::collection::vec(prop::sample::select(TYPES), n),
            prop::collection::vec((0..n, 0..n, any::<bool>()), 0..(2 * n)),
            prop::collection::vec(expression(), n),
            any::<bool>(),
        )
            .prop_map(move |(types, edges, maps, first_trigger)| {
                let mut acts = serde_json::Map::new();
                for (i, (t, m)) in types.iter().zip(maps).enumerate() {
                    let t = if i == 0 && first_trigger { "trigger" } else { t };
                    acts.insert(
                        format!("a{i}"),
                        json!({"type": t, "topic": "t", "ancestor": "a1", "input": {"maps": {"x": m}}, "job": {"maps": {"y": "{a0.output.data.z}"}}}),
                    );
                }
                let mut trans = serde_json::Map::new();
                for (f, t, cond) in edges {
                    let item = if cond {
                        json!({"to": format!("a{t}"), "conditions": {"match": [{"expected": true, "actual": "{a0.output.data.ok}"}]}})
                    } else {
                        json!({"to": format!("a{t}")})
                    };
                    if let Some(a) = trans.entry(format!("a{f}")).or_insert_with(|| json!([])).as_array_mut() {
                        a.push(item);
                    }
                }
                json!({"subscribes": "go", "activities": acts, "transitions": trans})
            })
    })
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn yaml_text_parses_or_fails_cleanly(text in yaml_text()) {
        let _ = yaml::parse(&text);
        let _ = deploy_plan(&text);
    }
}

proptest! {
    // a manifest is a few dozen expressions: fewer cases
    #![proptest_config(config(100))]

    #[test]
    fn manifests_compile_or_fail_cleanly(graphs in prop::collection::vec(graph(), 1..3)) {
        let doc = json!({"app": {"id": "fuzz", "version": "1", "graphs": graphs}});
        let _ = compile_manifest(&doc.to_string());
        // the same as YAML text: JSON is YAML
        let _ = deploy_plan(&serde_yaml_like(&doc));
    }
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn expressions_evaluate_or_fail_cleanly(e in expression()) {
        let ctx = context();
        let _ = expr::map_once(&e, &ctx);
        if let Ok(node) = yaml::Node::from_json(&e) {
            if let Ok(c) = compile(&node, "x") {
                let _ = c.eval(&Env { job: &ctx, self_id: Some("a") });
            }
        }
    }
}

/// JSON text with newlines between members, so the YAML scanner sees more shapes.
fn serde_yaml_like(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}
