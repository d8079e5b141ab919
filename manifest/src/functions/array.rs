//! `{@array.*}`. The mutating methods return what the original's wrappers return (pop
//! the removed element, push the list, unshift the new length); maps copy values, so
//! the source is never changed.

use super::{arg, n, not_a_function, Func};
use crate::guard::tick;
use crate::js;
use crate::limits::{check_bytes, value_size, MAX_VALUE_BYTES};
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

/// The size of the values a list function copies into its result, checked before the
/// copy.
fn check_copies<'a>(values: impl IntoIterator<Item = &'a Value>) -> Result<(), String> {
    let mut total = 0usize;
    for v in values {
        total += value_size(v, MAX_VALUE_BYTES - total.min(MAX_VALUE_BYTES))
            .map_err(|e| e.message(MAX_VALUE_BYTES))?;
    }
    check_bytes(total)
}

fn concat(args: &[Value]) -> Result<Value, String> {
    match arg(args, 0) {
        Value::Arr(a) => {
            check_copies([arg(args, 0), arg(args, 1)])?;
            let mut out = a.clone();
            match arg(args, 1) {
                Value::Arr(more) => out.extend(more.iter().cloned()),
                v => out.push(v.clone()),
            }
            Ok(Value::Arr(out))
        }
        // String.prototype.concat
        Value::Str(s) => {
            let more = js::to_string(arg(args, 1));
            check_bytes(s.len().saturating_add(more.len()))?;
            Ok(Value::Str(format!("{s}{more}")))
        }
        v => Err(not_a_function(v, "concat")),
    }
}

/// indexOf/lastIndexOf/includes on a string receiver (the wrapper calls the method by
/// name), in UTF-16 units as JavaScript counts. The search itself runs on the UTF-8
/// text (linear time: comparing at every position was quadratic): a needle that is a
/// whole string starts and ends on character boundaries in both encodings.
pub(crate) fn str_search(s: &str, search: &Value, from: &Value, last: bool) -> f64 {
    let needle = js::to_string(search);
    let len = s.encode_utf16().count();
    let needle_len = needle.encode_utf16().count();
    if last {
        let n = js::to_number(from);
        let start = if n.is_nan() { f64::INFINITY } else { n.trunc() };
        let start = start.clamp(0.0, len as f64) as usize;
        if needle_len > len {
            return -1.0;
        }
        let start = start.min(len - needle_len);
        if needle.is_empty() {
            return start as f64;
        }
        // a match that starts at or before `start` ends at or before this
        let end = byte_at_unit(s, start + needle_len, false);
        s[..end]
            .rfind(needle.as_str())
            .map(|b| s[..b].encode_utf16().count() as f64)
            .unwrap_or(-1.0)
    } else {
        let start = js::to_integer(from).clamp(0.0, len as f64) as usize;
        if needle.is_empty() {
            return start as f64;
        }
        let begin = byte_at_unit(s, start, true);
        s[begin..]
            .find(needle.as_str())
            .map(|b| s[..begin + b].encode_utf16().count() as f64)
            .unwrap_or(-1.0)
    }
}

/// The byte offset of UTF-16 unit `unit` of `s`; inside a surrogate pair, the character
/// boundary after it (`up`) or before it.
fn byte_at_unit(s: &str, unit: usize, up: bool) -> usize {
    let mut units = 0;
    for (b, c) in s.char_indices() {
        if units >= unit {
            return b;
        }
        let w = c.len_utf16();
        if units + w > unit {
            return if up { b + c.len_utf8() } else { b };
        }
        units += w;
    }
    s.len()
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
                .find(|(_, v)| {
                    tick();
                    js::strict_eq(v, arg(args, 1))
                })
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
                .find(|&i| {
                    tick();
                    js::strict_eq(&a[i], arg(args, 1))
                })
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
    // separators first, then each piece: the size is known before the join
    let mut total = a.len().saturating_sub(1).saturating_mul(sep.len());
    check_bytes(total)?;
    let mut pieces = Vec::with_capacity(a.len());
    for e in a {
        tick();
        let p = if e.is_nullish() {
            String::new()
        } else {
            js::to_string(e)
        };
        total = total.saturating_add(p.len());
        check_bytes(total)?;
        pieces.push(p);
    }
    Ok(Value::Str(pieces.join(&sep)))
}

fn pop(args: &[Value]) -> Result<Value, String> {
    Ok(this_arr(args, "pop")?.last().cloned().unwrap_or_default())
}

/// The original's push returns the list with the items appended, not its new length.
fn push(args: &[Value]) -> Result<Value, String> {
    this_arr(args, "push")?;
    check_copies(args)?;
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
    let cmp = |x: &Value, y: &Value| {
        tick();
        super::sort::compare(x, y, ascending)
    };
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
