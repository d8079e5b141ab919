//! `{@string.*}`: String.prototype methods over UTF-16 code units, as JavaScript
//! counts them. `search` takes its pattern as a JavaScript regular expression.

use super::{arg, b, n, not_a_function, s, this_str, Func};
use crate::guard::tick;
use crate::js::{self, from_utf16, utf16};
use crate::limits::{check_bytes, VALUE_OVERHEAD};
use crate::value::Value;

pub const FUNCTIONS: &[(&str, Func)] = &[
    ("split", split),
    ("charAt", char_at),
    ("concat", concat),
    ("includes", includes),
    ("indexOf", |a| on_str_or_arr(a, "indexOf", false)),
    ("lastIndexOf", |a| on_str_or_arr(a, "lastIndexOf", true)),
    ("slice", slice),
    ("toLowerCase", |a| {
        let st = this_str(a, "toLowerCase")?;
        case_size(st, |c| c.to_lowercase().map(char::len_utf8).sum())?;
        s(st.to_lowercase())
    }),
    ("toUpperCase", |a| {
        let st = this_str(a, "toUpperCase")?;
        case_size(st, |c| c.to_uppercase().map(char::len_utf8).sum())?;
        s(st.to_uppercase())
    }),
    ("trim", |a| s(js::trim(this_str(a, "trim")?).to_string())),
    ("trimStart", |a| {
        s(this_str(a, "trimStart")?
            .trim_start_matches(js::is_js_space)
            .to_string())
    }),
    ("trimEnd", |a| {
        s(this_str(a, "trimEnd")?
            .trim_end_matches(js::is_js_space)
            .to_string())
    }),
    ("padStart", |a| pad(a, true)),
    ("padEnd", |a| pad(a, false)),
    ("replace", replace),
    ("search", search),
    ("substring", substring),
    ("startsWith", |a| starts_ends(a, true)),
    ("endsWith", |a| starts_ends(a, false)),
    ("repeat", repeat),
];

/// The pieces a concat joins, refused before they are joined when the whole would be
/// too large.
fn concat(a: &[Value]) -> Result<Value, String> {
    let mut pieces = Vec::with_capacity(a.len());
    let mut total = 0usize;
    for v in a {
        let p = if v.is_nullish() {
            String::new()
        } else {
            js::to_string(v)
        };
        total = total.saturating_add(p.len());
        check_bytes(total)?;
        pieces.push(p);
    }
    s(pieces.concat())
}

/// A case change can make a string longer (ß is SS): its size, checked first when it
/// could pass the limit.
fn case_size(st: &str, len: impl Fn(char) -> usize) -> Result<(), String> {
    if st.len().saturating_mul(3) > crate::limits::MAX_VALUE_BYTES {
        let mut total = 0usize;
        for (i, c) in st.chars().enumerate() {
            if i % 4096 == 0 {
                tick();
            }
            total += len(c);
        }
        check_bytes(total)?;
    }
    Ok(())
}

fn on_str_or_arr(a: &[Value], method: &str, last: bool) -> Result<Value, String> {
    match arg(a, 0) {
        Value::Str(st) => n(super::array::str_search(st, arg(a, 1), arg(a, 2), last)),
        Value::Arr(_) if last => super::array::last_index_of(a),
        Value::Arr(_) => super::array::index_of(a),
        v => Err(not_a_function(v, method)),
    }
}

fn split(a: &[Value]) -> Result<Value, String> {
    let st = this_str(a, "split")?;
    let parts: Vec<Value> = match arg(a, 1) {
        Value::Undefined => vec![Value::from(st)],
        sep => {
            let sep = js::to_string(sep);
            // every part is a value of its own: counted before they are made
            let count = if sep.is_empty() {
                st.encode_utf16().count()
            } else {
                st.matches(sep.as_str()).count() + 1
            };
            check_bytes(
                count
                    .saturating_mul(VALUE_OVERHEAD + 4)
                    .saturating_add(st.len()),
            )?;
            if sep.is_empty() {
                utf16(st)
                    .iter()
                    .map(|u| Value::Str(from_utf16(&[*u])))
                    .collect()
            } else {
                st.split(sep.as_str()).map(Value::from).collect()
            }
        }
    };
    Ok(Value::Arr(parts))
}

fn char_at(a: &[Value]) -> Result<Value, String> {
    let u = utf16(this_str(a, "charAt")?);
    let i = js::to_integer(arg(a, 1));
    s(if i >= 0.0 && (i as usize) < u.len() {
        from_utf16(&u[i as usize..i as usize + 1])
    } else {
        String::new()
    })
}

fn includes(a: &[Value]) -> Result<Value, String> {
    match arg(a, 0) {
        Value::Str(st) => b(super::array::str_search(st, arg(a, 1), arg(a, 2), false) >= 0.0),
        Value::Arr(items) => {
            let start = js::relative_index(arg(a, 2), items.len(), 0);
            let want = arg(a, 1);
            b(items.iter().skip(start).any(|v| js::strict_eq(v, want) || matches!((v, want), (Value::Num(x), Value::Num(y)) if x.is_nan() && y.is_nan())))
        }
        v => Err(not_a_function(v, "includes")),
    }
}

pub(crate) fn slice(a: &[Value]) -> Result<Value, String> {
    let u = utf16(this_str(a, "slice")?);
    let start = js::relative_index(arg(a, 1), u.len(), 0);
    let end = js::relative_index(arg(a, 2), u.len(), u.len());
    s(if start < end {
        from_utf16(&u[start..end])
    } else {
        String::new()
    })
}

fn substring(a: &[Value]) -> Result<Value, String> {
    let u = utf16(this_str(a, "substring")?);
    let clamp = |v: &Value, d: usize| {
        if matches!(v, Value::Undefined) {
            d
        } else {
            js::to_integer(v).clamp(0.0, u.len() as f64) as usize
        }
    };
    let (x, y) = (clamp(arg(a, 1), 0), clamp(arg(a, 2), u.len()));
    let (lo, hi) = (x.min(y), x.max(y));
    s(from_utf16(&u[lo..hi]))
}

fn pad(a: &[Value], start: bool) -> Result<Value, String> {
    let st = this_str(a, if start { "padStart" } else { "padEnd" })?;
    let u = utf16(st);
    let target = js::to_integer(arg(a, 1));
    let filler_text = match arg(a, 2) {
        Value::Undefined => " ".to_string(),
        v => js::to_string(v),
    };
    let filler = utf16(&filler_text);
    if target <= u.len() as f64 || filler.is_empty() {
        return s(st.to_string());
    }
    if target > 1e8 {
        return Err("RangeError: Invalid string length".into());
    }
    let fill_len = target as usize - u.len();
    // whole fillers, rounded up: the size before the allocation
    check_bytes(st.len() + fill_len.div_ceil(filler.len()) * filler_text.len())?;
    let fill: Vec<u16> = filler.iter().copied().cycle().take(fill_len).collect();
    let out = if start {
        [fill, u].concat()
    } else {
        [u, fill].concat()
    };
    s(from_utf16(&out))
}

/// replace with a string pattern: the first occurrence, with `$&`, `$$`, `` $` `` and
/// `$'` in the replacement, as JavaScript does.
fn replace(a: &[Value]) -> Result<Value, String> {
    let st = this_str(a, "replace")?;
    let pat = js::to_string(arg(a, 1));
    let rep = js::to_string(arg(a, 2));
    let Some(at) = st.find(pat.as_str()) else {
        return s(st.to_string());
    };
    let (before, after) = (&st[..at], &st[at + pat.len()..]);
    // `$\``, `$'` and `$&` each copy part of the string: the size comes first
    let mut size = st.len() - pat.len();
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        size = size.saturating_add(match (c, chars.peek()) {
            ('$', Some('$')) => {
                chars.next();
                1
            }
            ('$', Some('&')) => {
                chars.next();
                pat.len()
            }
            ('$', Some('`')) => {
                chars.next();
                before.len()
            }
            ('$', Some('\'')) => {
                chars.next();
                after.len()
            }
            (c, _) => c.len_utf8(),
        });
        if size > crate::limits::MAX_VALUE_BYTES {
            break;
        }
    }
    check_bytes(size)?;
    let mut out = String::with_capacity(size);
    out.push_str(before);
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            match chars.peek() {
                Some('$') => {
                    out.push('$');
                    chars.next();
                }
                Some('&') => {
                    out.push_str(&pat);
                    chars.next();
                }
                Some('`') => {
                    out.push_str(before);
                    chars.next();
                }
                Some('\'') => {
                    out.push_str(after);
                    chars.next();
                }
                _ => out.push('$'),
            }
        } else {
            out.push(c);
        }
    }
    out.push_str(after);
    s(out)
}

fn search(a: &[Value]) -> Result<Value, String> {
    let st = this_str(a, "search")?;
    let pattern = match arg(a, 1) {
        Value::Undefined => String::new(),
        v => js::to_string(v),
    };
    n(super::regexp::search(st, &pattern)?)
}

fn starts_ends(a: &[Value], starts: bool) -> Result<Value, String> {
    let u = utf16(this_str(a, if starts { "startsWith" } else { "endsWith" })?);
    let needle = utf16(&js::to_string(arg(a, 1)));
    if starts {
        let pos = js::to_integer(arg(a, 2)).clamp(0.0, u.len() as f64) as usize;
        b(u[pos..].starts_with(&needle))
    } else {
        let end = if matches!(arg(a, 2), Value::Undefined) {
            u.len()
        } else {
            js::to_integer(arg(a, 2)).clamp(0.0, u.len() as f64) as usize
        };
        b(u[..end].ends_with(&needle))
    }
}

fn repeat(a: &[Value]) -> Result<Value, String> {
    let st = this_str(a, "repeat")?;
    let count = js::to_integer(arg(a, 1));
    if count < 0.0 || count == f64::INFINITY {
        return Err("RangeError: Invalid repeat count. Must be a positive finite number.".into());
    }
    if count * st.len() as f64 > 1e8 {
        return Err("RangeError: Invalid string length".into());
    }
    check_bytes(count as usize * st.len())?;
    s(st.repeat(count as usize))
}
