//! `{@array.*}`. The mutating methods return what the original's wrappers return (pop
//! the removed element, push the list, unshift the new length); maps copy values, so
//! the source is never changed.

use super::{arg, n, not_a_function, Func};
use crate::js;
use crate::value::Value;

pub const FUNCTIONS: &[(&str, Func)] = &[
    ("get", get),
    ("length", length),
    ("concat", concat),
    ("indexOf", index_of),
    ("join", join),
    ("lastIndexOf", last_index_of),
    ("pop", pop),
    ("push", push),
    ("reverse", reverse),
    ("shift", shift),
    ("slice", slice),
    ("sort", sort),
    ("splice", splice),
    ("unshift", unshift),
];

fn this_arr<'a>(args: &'a [Value], method: &str) -> Result<&'a Vec<Value>, String> {
    match arg(args, 0) {
        Value::Arr(a) => Ok(a),
        v => Err(not_a_function(v, method)),
    }
}

/// The original reads `array?.[index || 0]`: no list gives undefined, and a falsy index
/// (missing, null, 0, "", NaN, false) reads element 0.
fn get(args: &[Value]) -> Result<Value, String> {
    let (list, index) = (arg(args, 0), arg(args, 1));
    if list.is_nullish() {
        return Ok(Value::Undefined);
    }
    if js::to_boolean(index) {
        js::get_property(list, index)
    } else {
        js::get_property(list, &Value::Num(0.0))
    }
}

fn length(args: &[Value]) -> Result<Value, String> {
    match arg(args, 0) {
        v if v.is_nullish() => Ok(Value::Undefined),
        v => js::get_property(v, &Value::from("length")),
    }
}

fn concat(args: &[Value]) -> Result<Value, String> {
    match arg(args, 0) {
        Value::Arr(a) => {
            let mut out = a.clone();
            match arg(args, 1) {
                Value::Arr(more) => out.extend(more.iter().cloned()),
                v => out.push(v.clone()),
            }
            Ok(Value::Arr(out))
        }
        // String.prototype.concat
        Value::Str(s) => Ok(Value::Str(format!("{s}{}", js::to_string(arg(args, 1))))),
        v => Err(not_a_function(v, "concat")),
    }
}

/// indexOf/lastIndexOf/includes on a string receiver (the wrapper calls the method by name).
pub(crate) fn str_search(s: &str, search: &Value, from: &Value, last: bool) -> f64 {
    let hay = js::utf16(s);
    let needle = js::utf16(&js::to_string(search));
    let len = hay.len();
    let matches_at = |i: usize| i + needle.len() <= len && hay[i..i + needle.len()] == needle[..];
    if last {
        let n = js::to_number(from);
        let start = if n.is_nan() { f64::INFINITY } else { n.trunc() };
        let start = start.clamp(0.0, len as f64) as usize;
        let max = len.saturating_sub(needle.len());
        (0..=start.min(max))
            .rev()
            .find(|&i| matches_at(i))
            .map(|i| i as f64)
            .unwrap_or(-1.0)
    } else {
        let start = js::to_integer(from).clamp(0.0, len as f64) as usize;
        (start..=len)
            .find(|&i| matches_at(i))
            .map(|i| i as f64)
            .unwrap_or(-1.0)
    }
}

pub(crate) fn index_of(args: &[Value]) -> Result<Value, String> {
    match arg(args, 0) {
        Value::Arr(a) => {
            let len = a.len() as f64;
            let k = js::to_integer(arg(args, 2));
            let start = if k < 0.0 { (len + k).max(0.0) } else { k } as usize;
            n(a.iter()
                .enumerate()
                .skip(start)
                .find(|(_, v)| js::strict_eq(v, arg(args, 1)))
                .map(|(i, _)| i as f64)
                .unwrap_or(-1.0))
        }
        Value::Str(s) => n(str_search(s, arg(args, 1), arg(args, 2), false)),
        v => Err(not_a_function(v, "indexOf")),
    }
}

pub(crate) fn last_index_of(args: &[Value]) -> Result<Value, String> {
    match arg(args, 0) {
        Value::Arr(a) => {
            if a.is_empty() {
                return n(-1.0);
            }
            let len = a.len() as f64;
            // the wrapper always passes fromIndex, so a missing one reads as 0
            let k = js::to_integer(arg(args, 2));
            let from = if k < 0.0 { len + k } else { k.min(len - 1.0) };
            if from < 0.0 {
                return n(-1.0);
            }
            n((0..=from as usize)
                .rev()
                .find(|&i| js::strict_eq(&a[i], arg(args, 1)))
                .map(|i| i as f64)
                .unwrap_or(-1.0))
        }
        Value::Str(s) => n(str_search(s, arg(args, 1), arg(args, 2), true)),
        v => Err(not_a_function(v, "lastIndexOf")),
    }
}

fn join(args: &[Value]) -> Result<Value, String> {
    let a = this_arr(args, "join")?;
    let sep = match arg(args, 1) {
        Value::Undefined => ",".to_string(),
        v => js::to_string(v),
    };
    Ok(Value::Str(
        a.iter()
            .map(|e| {
                if e.is_nullish() {
                    String::new()
                } else {
                    js::to_string(e)
                }
            })
            .collect::<Vec<_>>()
            .join(&sep),
    ))
}

fn pop(args: &[Value]) -> Result<Value, String> {
    Ok(this_arr(args, "pop")?.last().cloned().unwrap_or_default())
}

/// The original's push returns the list with the items appended, not its new length.
fn push(args: &[Value]) -> Result<Value, String> {
    let mut a = this_arr(args, "push")?.clone();
    a.extend(args.iter().skip(1).cloned());
    Ok(Value::Arr(a))
}

fn reverse(args: &[Value]) -> Result<Value, String> {
    let mut a = this_arr(args, "reverse")?.clone();
    a.reverse();
    Ok(Value::Arr(a))
}

fn shift(args: &[Value]) -> Result<Value, String> {
    Ok(this_arr(args, "shift")?
        .first()
        .cloned()
        .unwrap_or_default())
}

fn slice(args: &[Value]) -> Result<Value, String> {
    match arg(args, 0) {
        Value::Arr(a) => {
            let start = js::relative_index(arg(args, 1), a.len(), 0);
            let end = js::relative_index(arg(args, 2), a.len(), a.len());
            Ok(Value::Arr(if start < end {
                a[start..end].to_vec()
            } else {
                vec![]
            }))
        }
        Value::Str(_) => super::string::slice(args),
        v => Err(not_a_function(v, "slice")),
    }
}

/// Sorts a copy with the original's comparator. Its `order` defaults to `ASCENDING`, and
/// any other value (`DESCENDING`, but also `desc` or `asc`) sorts down.
fn sort(args: &[Value]) -> Result<Value, String> {
    let a = this_arr(args, "sort")?.clone();
    let ascending = match arg(args, 1) {
        Value::Undefined => true,
        order => order.as_str() == Some("ASCENDING"),
    };
    let cmp = |x: &Value, y: &Value| super::sort::compare(x, y, ascending);
    Ok(Value::Arr(super::sort::v8_sort(a, &cmp)))
}

/// Returns the removed elements, as Array.prototype.splice does.
fn splice(args: &[Value]) -> Result<Value, String> {
    let a = this_arr(args, "splice")?;
    let len = a.len();
    let start = js::relative_index(arg(args, 1), len, 0);
    // the wrapper always passes deleteCount, so a missing one means 0
    let count = js::to_integer(arg(args, 2)).clamp(0.0, (len - start) as f64) as usize;
    Ok(Value::Arr(a[start..start + count].to_vec()))
}

fn unshift(args: &[Value]) -> Result<Value, String> {
    let a = this_arr(args, "unshift")?;
    n((a.len() + args.len().saturating_sub(1)) as f64)
}
