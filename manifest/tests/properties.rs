//! Property tests: whatever the text or the expression, the compiler and the evaluator
//! answer with a value or an error, never a panic (a panic in a backend is an aborted
//! statement at best).

use hotmesh_manifest::compile_manifest;
use hotmesh_manifest::expr::{compile, Env};
use hotmesh_manifest::{functions, yaml};
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i32>().prop_map(|i| serde_json::json!(i)),
        (-1e6f64..1e6).prop_map(|f| serde_json::json!(f)),
        "[a-z{}@$.\\[\\]0-9 _-]{0,12}".prop_map(serde_json::Value::String),
        prop::sample::select(functions::names())
            .prop_map(|n| serde_json::Value::String(format!("{{@{n}}}"))),
        prop::sample::select(vec![
            "{a.b}",
            "{$job.data.x}",
            "{$self.output.data}",
            "{$item}",
            "{$output.k}",
            "{$key}",
            "{$index}",
            "{a.b.0}",
            "{a.b.length}"
        ])
        .prop_map(|s| serde_json::Value::String(s.into())),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            prop::collection::vec(prop::collection::vec(inner.clone(), 0..4), 1..4)
                .prop_map(|rows| serde_json::json!({"@pipe": rows})),
            prop::collection::vec(inner.clone(), 0..3)
                .prop_map(|body| serde_json::json!({"@pipe": [body.clone(), {"@reduce": [body]}]})),
            prop::collection::btree_map("[a-z@]{1,5}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn expressions_never_panic(expr in json_value(), ctx in json_value()) {
        let ctx = serde_json::json!({"a": {"b": ctx.clone()}, "data": {"x": ctx}, "metadata": {}});
        if let Ok(node) = yaml::Node::from_json(&expr) {
            if let Ok(e) = compile(&node, "x") {
                let _ = e.eval(&Env { job: &ctx, self_id: Some("a") });
            }
        }
    }

    #[test]
    fn functions_never_panic(name in prop::sample::select(functions::names()), args in prop::collection::vec(json_value(), 0..4)) {
        let f = functions::lookup(&name).unwrap();
        let args: Vec<_> = args.iter().map(hotmesh_manifest::Value::from_json).collect();
        let _ = f(&args);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = compile_manifest(&text);
    }

    #[test]
    fn mutated_manifests_never_panic(cut in 0usize..4000, insert in "[ :\\-\\[\\]{}'\"a-z0-9\n]{0,8}") {
        let base = include_str!("apps/everything.yaml");
        let at = base.char_indices().map(|(i, _)| i).nth(cut % base.chars().count()).unwrap_or(0);
        let text = format!("{}{}{}", &base[..at], insert, &base[at..]);
        let _ = compile_manifest(&text);
    }

    #[test]
    fn generated_manifests_never_panic(graphs in prop::collection::vec(json_value(), 0..3), id in json_value()) {
        let doc = serde_json::json!({"app": {"id": id, "version": "1", "graphs": graphs}});
        let _ = compile_manifest(&doc.to_string());
    }
}
