//! `{@json.*}`: JSON.stringify (with its `space` argument) and JSON.parse.

use super::{arg, s, Func};
use crate::guard::tick;
use crate::js;
use crate::limits::{check_bytes, too_large, MAX_VALUE_BYTES, VALUE_OVERHEAD};
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
        v => s(write(v, &indent)?),
    }
}

/// JSON text as JavaScript writes it: numbers in JavaScript's format, keys in its order.
/// Indentation can make the text many times the value's size, so the writer stops
/// once the text passes [`MAX_VALUE_BYTES`] (the buffer is at most twice that).
pub(crate) fn write(v: &Value, indent: &str) -> Result<String, String> {
    let mut out = String::new();
    write_value(v, indent, 0, &mut out)?;
    Ok(out)
}

fn full(out: &str) -> Result<(), String> {
    if out.len() > MAX_VALUE_BYTES {
        return Err(too_large(out.len(), MAX_VALUE_BYTES));
    }
    Ok(())
}

fn quote(s: &str, out: &mut String) {
    out.push_str(&serde_json::Value::String(s.to_owned()).to_string());
}

/// Recurses once per level of the value, which is at most MAX_VALUE_DEPTH deep (plus
/// the levels of the map that built it).
fn write_value(v: &Value, indent: &str, depth: usize, out: &mut String) -> Result<(), String> {
    tick();
    full(out)?;
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
                return Ok(());
            }
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                write_value(e, indent, depth + 1, out)?;
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
                return Ok(());
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
                write_value(&o.props[*k], indent, depth + 1, out)?;
            }
            nl(out, depth);
            out.push('}');
        }
    }
    full(out)
}

fn parse(a: &[Value]) -> Result<Value, String> {
    let text = js::to_string(arg(a, 0));
    // each value costs more than its text (`[0,0,…]` is two bytes a value): an upper
    // bound on the values, counted before parsing (serde_json stops at 128 levels)
    let values = 1 + text
        .bytes()
        .filter(|b| matches!(b, b',' | b':' | b'[' | b'{'))
        .count();
    check_bytes(
        text.len()
            .saturating_add(values.saturating_mul(2 * VALUE_OVERHEAD)),
    )?;
    serde_json::from_str::<serde_json::Value>(&text)
        .map(|j| Value::from_json(&j))
        .map_err(|e| format!("SyntaxError: {e} in JSON"))
}
