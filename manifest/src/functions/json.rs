//! `{@json.*}`: JSON.stringify (with its `space` argument) and JSON.parse.

use super::{arg, s, Func};
use crate::js;
use crate::value::{number_to_json, Value};

pub const FUNCTIONS: &[(&str, Func)] = &[("stringify", stringify), ("parse", parse)];

fn stringify(a: &[Value]) -> Result<Value, String> {
    let indent = match arg(a, 2) {
        Value::Num(n) => " ".repeat(n.clamp(0.0, 10.0) as usize),
        Value::Str(s) => s.chars().take(10).collect(),
        _ => String::new(),
    };
    match arg(a, 0) {
        // JSON.stringify(undefined) is undefined, not a string
        Value::Undefined => Ok(Value::Undefined),
        v => s(write(v, &indent)),
    }
}

/// JSON text as JavaScript writes it: numbers in JavaScript's format, keys in its order.
pub(crate) fn write(v: &Value, indent: &str) -> String {
    let mut out = String::new();
    write_value(v, indent, 0, &mut out);
    out
}

fn quote(s: &str, out: &mut String) {
    out.push_str(&serde_json::Value::String(s.to_owned()).to_string());
}

fn write_value(v: &Value, indent: &str, depth: usize, out: &mut String) {
    let nl = |out: &mut String, d: usize| {
        if !indent.is_empty() {
            out.push('\n');
            for _ in 0..d {
                out.push_str(indent);
            }
        }
    };
    match v {
        Value::Undefined | Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Num(x) => match number_to_json(*x) {
            serde_json::Value::Null => out.push_str("null"),
            _ => out.push_str(&js::number_to_string(*x)),
        },
        Value::Str(s) => quote(s, out),
        Value::Date(_) => match v.to_json() {
            Some(serde_json::Value::String(s)) => quote(&s, out),
            _ => out.push_str("null"),
        },
        Value::Arr(a) => {
            if a.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                write_value(e, indent, depth + 1, out);
            }
            nl(out, depth);
            out.push(']');
        }
        Value::Obj(o) => {
            let keys: Vec<&String> = o
                .keys()
                .into_iter()
                .filter(|k| !matches!(o.props[*k], Value::Undefined))
                .collect();
            if keys.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                quote(k, out);
                out.push(':');
                if !indent.is_empty() {
                    out.push(' ');
                }
                write_value(&o.props[*k], indent, depth + 1, out);
            }
            nl(out, depth);
            out.push('}');
        }
    }
}

fn parse(a: &[Value]) -> Result<Value, String> {
    let text = js::to_string(arg(a, 0));
    serde_json::from_str::<serde_json::Value>(&text)
        .map(|j| Value::from_json(&j))
        .map_err(|e| format!("SyntaxError: {e} in JSON"))
}
