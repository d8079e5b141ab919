//! The mapping language: references, literals, nested maps, @pipe rows, fan-in,
//! @reduce and its context variables, and the errors of each.

use hotmesh_manifest::expr::{compile, map_once, Env};
use hotmesh_manifest::yaml;
use serde_json::{json, Value as J};

fn job() -> J {
    json!({
        "metadata": {"jid": "j1", "app": "demo"},
        "data": {"name": "ann", "n": 3},
        "a": {"output": {"data": {"x": 5, "s": "hello", "items": [10, 20, 30], "obj": {"k1": 1, "k2": 2}, "nums": [1, 2, 3, 4]}}},
        "b": {"hook": {"data": {"ok": true}}, "output": {"data": {"y": "Y"}}}
    })
}

/// Compiles `yaml` as a map value and evaluates it against job(), with `$self` = b.
fn eval(yaml_text: &str) -> Option<J> {
    let node = yaml::parse(yaml_text).unwrap();
    let expr = compile(&node, "test").unwrap();
    let j = job();
    expr.eval_json(&Env {
        job: &j,
        self_id: Some("b"),
    })
    .unwrap()
}

#[test]
fn references_and_literals() {
    assert_eq!(eval("'{a.output.data.x}'"), Some(json!(5)));
    assert_eq!(eval("'{a.output.data.items.1}'"), Some(json!(20)));
    assert_eq!(eval("'{a.output.data.items.length}'"), Some(json!(3)));
    assert_eq!(
        eval("'{a.output.data.missing}'"),
        None,
        "missing is undefined"
    );
    assert_eq!(
        eval("'{a.output.data.s.length}'"),
        None,
        "strings have no own properties here"
    );
    assert_eq!(eval("'{$job.data.name}'"), Some(json!("ann")));
    assert_eq!(eval("'{$job.metadata.jid}'"), Some(json!("j1")));
    assert_eq!(eval("'{$self.hook.data.ok}'"), Some(json!(true)));
    assert_eq!(
        eval("'hello {a.output.data.x}'"),
        Some(json!("hello {a.output.data.x}")),
        "no interpolation"
    );
    assert_eq!(eval("42"), Some(json!(42)));
    assert_eq!(eval("~"), Some(json!(null)));
    assert_eq!(eval("'{@symbol.whitespace}'"), Some(json!(" ")));
}

#[test]
fn nested_objects_and_lists() {
    let got = eval(
        "{ a: '{a.output.data.x}', b: { c: [1, '{b.output.data.y}'], d: '{nope.x}' }, e: literal }",
    );
    assert_eq!(
        got,
        Some(json!({"a": 5, "b": {"c": [1, "Y"]}, "e": "literal"}))
    );
}

#[test]
fn pipes_rows_and_extra_cells() {
    assert_eq!(
        eval("{'@pipe': [['{a.output.data.x}', 2], ['{@math.multiply}']]}"),
        Some(json!(10))
    );
    assert_eq!(eval("{'@pipe': [['{a.output.data.s}'], ['{@string.toUpperCase}', ' world'], ['{@string.concat}']]}"), Some(json!("HELLO world")));
    // a function in a later cell is called with no arguments
    assert_eq!(eval("{'@pipe': [['x'], ['{@string.concat}', '{@symbol.whitespace}', 'y'], ['{@string.concat}']]}"), Some(json!("x y")));
    // objects inside a row are literals, not maps
    assert_eq!(
        eval("{'@pipe': [[{k: '{a.output.data.x}'}, 'k'], ['{@object.get}']]}"),
        Some(json!("{a.output.data.x}"))
    );
}

#[test]
fn nested_pipes_fan_in() {
    let y = "{'@pipe': [{'@pipe': [['{a.output.data.s}'], ['{@string.toUpperCase}']]}, {'@pipe': [['-']]}, {'@pipe': [['{$job.data.name}']]}, ['{@string.concat}']]}";
    assert_eq!(eval(y), Some(json!("HELLO-ann")));
}

#[test]
fn reduce_with_context_variables() {
    let sum = "{'@pipe': [['{a.output.data.nums}', 0], {'@reduce': [['{$output}', '{$item}'], ['{@math.add}']]}]}";
    assert_eq!(eval(sum), Some(json!(10)));
    let invert = "{'@pipe': [['{a.output.data.obj}', '{@symbol.object}'], {'@reduce': [['{$output}', '{$item}', '{$key}'], ['{@object.set}']]}]}";
    assert_eq!(eval(invert), Some(json!({"1": "k1", "2": "k2"})));
    let indexes = "{'@pipe': [['{a.output.data.items}', '{@symbol.array}'], {'@reduce': [['{$output}', '{$index}'], ['{@array.concat}']]}]}";
    assert_eq!(eval(indexes), Some(json!([0, 1, 2])));
    // no initial value: $output starts as null
    let first = "{'@pipe': [['{a.output.data.items}'], {'@reduce': [['{$output}', '{$item}'], ['{@conditional.nullish}']]}]}";
    assert_eq!(eval(first), Some(json!(10)));
    // a reduce over nothing returns the initial value
    assert_eq!(eval("{'@pipe': [['{a.output.data.none}', 7], {'@reduce': [['{$output}'], ['{@math.add}', 1]]}]}"), Some(json!(7)));
}

#[test]
fn compile_errors_name_the_place() {
    for (text, words) in [
        (
            "'{@nope.nothing}'",
            "unknown @pipe function {@nope.nothing}",
        ),
        ("'{a..b}'", "empty path segment"),
        ("'{a} {b}'", "no string interpolation"),
        ("{'@pipe': []}", "at least one row"),
        ("{'@pipe': 5}", "a list of rows"),
        ("{'@pipe': [['a'], []]}", "needs a {@function}"),
        ("{'@pipe': [['a'], ['{a.b}']]}", "must be a {@function}"),
        (
            "{'@pipe': [{'@reduce': [['{$output}']]}]}",
            "needs a row before it",
        ),
        ("{'@pipe': [['a'], 'b']}", "a @pipe row is a list of cells"),
    ] {
        let node = yaml::parse(text).unwrap();
        let e = compile(&node, "maps.x").unwrap_err().to_string();
        assert!(e.contains(words), "{text}: {e}");
        assert!(e.starts_with("maps.x"), "{e}");
    }
}

#[test]
fn runtime_errors_are_errors() {
    let j = job();
    let node =
        yaml::parse("{'@pipe': [['{a.output.data.missing}'], ['{@string.toUpperCase}']]}").unwrap();
    let e = compile(&node, "").unwrap().eval(&Env::new(&j)).unwrap_err();
    assert!(
        e.message.contains("{@string.toUpperCase}") && e.message.contains("undefined"),
        "{}",
        e.message
    );
    let node = yaml::parse("{'@pipe': [{'@pipe': [['a']]}]}").unwrap();
    assert!(compile(&node, "").unwrap().eval(&Env::new(&j)).is_err());
}

#[test]
fn map_once_is_the_sql_helper() {
    let got = map_once(
        &json!({"@pipe": [["{a.b}", 1], ["{@math.add}"]]}),
        &json!({"a": {"b": 41}}),
    )
    .unwrap();
    assert_eq!(got, Some(json!(42)));
    assert_eq!(
        map_once(&json!("{$job.data.x}"), &json!({"data": {"x": 1}})).unwrap(),
        Some(json!(1))
    );
    assert!(map_once(&json!("{@no.such}"), &json!({}))
        .unwrap_err()
        .contains("unknown @pipe function"));
}

#[test]
fn compiled_maps_survive_storage() {
    let node = yaml::parse("{ t: {'@pipe': [[[1], '{a.output.data.x}'], ['{@array.concat}'], {'@pipe': [['{$job.data.n}']]}, ['{@math.add}', '{@symbol.NaN}']]} }").unwrap();
    let expr = compile(&node, "").unwrap();
    let stored = serde_json::to_string(&expr).unwrap();
    let back: hotmesh_manifest::Expr = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, expr);
    let j = job();
    assert_eq!(
        back.eval_json(&Env::new(&j)).unwrap(),
        expr.eval_json(&Env::new(&j)).unwrap()
    );
}
