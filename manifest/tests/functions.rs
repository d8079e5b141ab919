//! The function table: every case in functions/table.json was run by JavaScript
//! (functions/oracle.js mirrors the original's wrappers); hotmesh must give the same
//! result, or fail where JavaScript throws. It also checks that the table covers the
//! whole catalog.

use std::collections::BTreeSet;

use hotmesh_manifest::functions;
use hotmesh_manifest::value::{Object, Value};

fn decode(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Object(m) if m.contains_key("$undefined") => Value::Undefined,
        serde_json::Value::Object(m) if m.contains_key("$number") => {
            Value::Num(match m["$number"].as_str().unwrap() {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                "-0" => -0.0,
                other => panic!("bad number {other}"),
            })
        }
        serde_json::Value::Object(m) if m.contains_key("$date") => match decode(&m["$date"]) {
            Value::Num(t) => Value::Date(t),
            other => panic!("bad date {other:?}"),
        },
        serde_json::Value::Object(m) if m.contains_key("$object") => {
            Value::Obj(Object::from_pairs(
                m["$object"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|kv| (kv[0].as_str().unwrap().to_string(), decode(&kv[1]))),
            ))
        }
        serde_json::Value::Array(a) => Value::Arr(a.iter().map(decode).collect()),
        other => Value::from_json(other),
    }
}

/// Deep equality where NaN equals NaN and -0 differs from 0; key order matters.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) | (Value::Date(x), Value::Date(y)) => {
            (x.is_nan() && y.is_nan()) || (x == y && x.is_sign_negative() == y.is_sign_negative())
        }
        (Value::Arr(x), Value::Arr(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Obj(x), Value::Obj(y)) => {
            let (kx, ky) = (x.keys(), y.keys());
            kx == ky && kx.iter().all(|k| same(&x.props[*k], &y.props[*k]))
        }
        _ => a == b,
    }
}

#[test]
fn every_function_matches_javascript() {
    let table: serde_json::Value =
        serde_json::from_str(include_str!("functions/table.json")).unwrap();
    let cases = table["cases"].as_array().unwrap();
    let mut failures = vec![];
    for c in cases {
        let name = c["fn"].as_str().unwrap();
        let args: Vec<Value> = c["args"].as_array().unwrap().iter().map(decode).collect();
        let f = functions::lookup(name).unwrap_or_else(|| panic!("{name} is not in the catalog"));
        let got = f(&args);
        let expected = &c["result"];
        let ok = match (expected.get("$error"), &got) {
            (Some(_), Err(_)) => true,
            (Some(_), Ok(_)) | (None, Err(_)) => false,
            (None, Ok(v)) => {
                // the delay depends on the clock: the cron unit tests check its value
                name == "cron.nextDelay"
                    && expected.as_str() == Some("checked in Rust")
                    && matches!(v, Value::Num(s) if *s >= 5.0)
                    || same(v, &decode(expected))
            }
        };
        if !ok {
            failures.push(format!(
                "{name}({}) = {got:?}, JavaScript gives {expected}",
                c["args"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_table_covers_the_whole_catalog() {
    let table: serde_json::Value =
        serde_json::from_str(include_str!("functions/table.json")).unwrap();
    let tested: BTreeSet<&str> = table["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["fn"].as_str().unwrap())
        .collect();
    // nondeterministic: checked against the clock below
    let clocked = ["date.now", "date.yyyymmdd", "math.random", "symbol.date"];
    let missing: Vec<String> = functions::names()
        .into_iter()
        .filter(|n| !tested.contains(n.as_str()) && !clocked.contains(&n.as_str()))
        .collect();
    assert!(missing.is_empty(), "functions without cases: {missing:?}");
    assert!(matches!(functions::lookup("date.now").unwrap()(&[]), Ok(Value::Num(t)) if t > 1.7e12));
    assert!(
        matches!(functions::lookup("math.random").unwrap()(&[]), Ok(Value::Num(r)) if (0.0..1.0).contains(&r))
    );
    assert!(
        matches!(functions::lookup("symbol.date").unwrap()(&[]), Ok(Value::Date(t)) if t > 1.7e12)
    );
    // today, whatever the argument (the original's yyyymmdd takes none), and a falsy
    // date in toISOXString is now
    let call = |name: &str, args: &[Value]| functions::lookup(name).unwrap()(args).unwrap();
    let Value::Str(today) = call(
        "date.toISOString",
        &[Value::Num(hotmesh_manifest::now_ms())],
    ) else {
        panic!("toISOString gives a string")
    };
    for arg in [
        vec![],
        vec![Value::Num(0.0)],
        vec![Value::from("1999-01-01")],
    ] {
        assert_eq!(call("date.yyyymmdd", &arg), Value::from(&today[..10]));
        let Value::Str(isox) = call("date.toISOXString", &arg) else {
            panic!("toISOXString gives a string")
        };
        let falsy = arg.first().is_none_or(|v| *v == Value::Num(0.0));
        assert_eq!(
            isox.starts_with(&today[..10].replace('-', "")),
            falsy,
            "{arg:?}"
        );
    }
}
