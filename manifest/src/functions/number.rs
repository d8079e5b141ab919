//! `{@number.*}`: Number.* predicates, parsing and formatting (toFixed, toExponential
//! and toPrecision round the exact binary value half up, as JavaScript does).

use super::{arg, b, n, not_a_function, num, s, Func};
use crate::js;
use crate::value::Value;

pub const FUNCTIONS: &[(&str, Func)] = &[
    ("isFinite", |a| {
        b(matches!(arg(a, 0), Value::Num(x) if x.is_finite()))
    }),
    ("isEven", |a| {
        b(!num(a, 0).is_nan() && num(a, 0) % 2.0 == 0.0)
    }),
    (
        "isOdd",
        |a| b(!num(a, 0).is_nan() && num(a, 0) % 2.0 != 0.0),
    ),
    ("isInteger", |a| {
        b(matches!(arg(a, 0), Value::Num(x) if x.is_finite() && *x == x.trunc()))
    }),
    ("isNaN", |a| {
        b(matches!(arg(a, 0), Value::Num(x) if x.is_nan()))
    }),
    ("parseFloat", parse_float),
    ("parseInt", parse_int),
    ("toFixed", to_fixed),
    ("toExponential", to_exponential),
    ("toPrecision", to_precision),
    ("gte", |a| b(js::ge(arg(a, 0), arg(a, 1)))),
    ("lte", |a| b(js::le(arg(a, 0), arg(a, 1)))),
    ("gt", |a| b(js::gt(arg(a, 0), arg(a, 1)))),
    ("lt", |a| b(js::lt(arg(a, 0), arg(a, 1)))),
    ("max", |a| n(super::math::extreme(a, true))),
    ("min", |a| n(super::math::extreme(a, false))),
    ("pow", |a| n(super::math::pow(num(a, 0), num(a, 1)))),
    ("round", |a| n(super::math::round(num(a, 0)))),
    // in earlier versions of the original (the 0.26 number group has none): kept so
    // apps written for those still deploy
    ("add", super::math::add),
    ("subtract", super::math::subtract),
    ("multiply", super::math::multiply),
    ("divide", super::math::divide),
];

fn parse_float(a: &[Value]) -> Result<Value, String> {
    let text = js::to_string(arg(a, 0));
    let t = text.trim_start_matches(js::is_js_space);
    n(js::decimal_prefix(t).map(|(v, _)| v).unwrap_or(f64::NAN))
}

fn parse_int(a: &[Value]) -> Result<Value, String> {
    let text = js::to_string(arg(a, 0));
    let mut t = text.trim_start_matches(js::is_js_space);
    let neg = t.starts_with('-');
    if neg || t.starts_with('+') {
        t = &t[1..];
    }
    let mut radix = js::to_int32(arg(a, 1));
    let mut strip = true;
    if radix != 0 {
        if !(2..=36).contains(&radix) {
            return n(f64::NAN);
        }
        strip = radix == 16;
    } else {
        radix = 10;
    }
    if strip && (t.starts_with("0x") || t.starts_with("0X")) {
        t = &t[2..];
        radix = 16;
    }
    let digits: &str = &t[..t
        .find(|c: char| !c.is_digit(radix as u32))
        .unwrap_or(t.len())];
    if digits.is_empty() {
        return n(f64::NAN);
    }
    let v = if radix == 10 {
        digits.parse::<f64>().unwrap_or(f64::NAN)
    } else {
        digits.chars().fold(0.0, |acc, c| {
            acc * radix as f64 + c.to_digit(radix as u32).unwrap_or(0) as f64
        })
    };
    n(if neg { -v } else { v })
}

fn this_num(a: &[Value], method: &str) -> Result<f64, String> {
    match arg(a, 0) {
        Value::Num(x) => Ok(*x),
        v => Err(not_a_function(v, method)),
    }
}

/// The exact decimal expansion of |x|: (integer digits, fraction digits).
fn exact(x: f64) -> (String, String) {
    let t = format!("{:.1100}", x.abs());
    let (i, f) = t.split_once('.').unwrap_or((&t, ""));
    (i.to_string(), f.trim_end_matches('0').to_string())
}

/// Rounds a digit string half up at `keep` digits; returns the digits and whether a
/// carry added a leading digit.
fn round_digits(all: &str, keep: usize) -> (String, bool) {
    let mut d: Vec<u8> = all.bytes().take(keep).map(|c| c - b'0').collect();
    d.resize(keep, 0);
    let up = all.as_bytes().get(keep).is_some_and(|c| *c >= b'5');
    let mut carry = false;
    if up {
        let mut i = keep;
        loop {
            if i == 0 {
                d.insert(0, 1);
                carry = true;
                break;
            }
            i -= 1;
            if d[i] == 9 {
                d[i] = 0;
            } else {
                d[i] += 1;
                break;
            }
        }
    }
    (d.into_iter().map(|c| (c + b'0') as char).collect(), carry)
}

fn range_check(v: f64, lo: f64, method: &str) -> Result<usize, String> {
    if !(lo..=100.0).contains(&v) {
        return Err(format!(
            "RangeError: {method}() digits argument must be between {lo} and 100"
        ));
    }
    Ok(v as usize)
}

fn to_fixed(a: &[Value]) -> Result<Value, String> {
    let x = this_num(a, "toFixed")?;
    let f = range_check(js::to_integer(arg(a, 1)), 0.0, "toFixed")?;
    if !x.is_finite() || x.abs() >= 1e21 {
        return s(js::number_to_string(x));
    }
    let (int, frac) = exact(x);
    let all = format!("{int}{frac}");
    let (digits, _) = round_digits(&all, int.len() + f);
    let (ip, fp) = digits.split_at(digits.len() - f);
    let ip = ip.trim_start_matches('0');
    let ip = if ip.is_empty() { "0" } else { ip };
    let body = if f == 0 {
        ip.to_string()
    } else {
        format!("{ip}.{fp}")
    };
    s(if x < 0.0 { format!("-{body}") } else { body })
}

/// Significant digits of |x| (no leading zeros) and the exponent of the first one.
fn significant(x: f64) -> (String, i32) {
    let (int, frac) = exact(x);
    let int = int.trim_start_matches('0');
    if !int.is_empty() {
        (format!("{int}{frac}"), int.len() as i32 - 1)
    } else {
        let lead = frac.len() - frac.trim_start_matches('0').len();
        (frac[lead..].to_string(), -(lead as i32) - 1)
    }
}

fn exp_form(d: &str, e: i32) -> String {
    let mant = if d.len() > 1 {
        format!("{}.{}", &d[..1], &d[1..])
    } else {
        d.to_string()
    };
    format!("{mant}e{}{}", if e < 0 { '-' } else { '+' }, e.abs())
}

fn to_exponential(a: &[Value]) -> Result<Value, String> {
    let x = this_num(a, "toExponential")?;
    if !x.is_finite() {
        return s(js::number_to_string(x));
    }
    let sign = if x < 0.0 { "-" } else { "" };
    let (d, e) = if matches!(arg(a, 1), Value::Undefined) {
        if x == 0.0 {
            ("0".to_string(), 0)
        } else {
            let (digits, n) = js::shortest_digits(x.abs());
            (digits, n - 1)
        }
    } else {
        let f = range_check(js::to_integer(arg(a, 1)), 0.0, "toExponential")?;
        if x == 0.0 {
            ("0".repeat(f + 1), 0)
        } else {
            let (all, e) = significant(x);
            let (d, carry) = round_digits(&all, f + 1);
            if carry {
                (d[..f + 1].to_string(), e + 1)
            } else {
                (d, e)
            }
        }
    };
    s(format!("{sign}{}", exp_form(&d, e)))
}

fn to_precision(a: &[Value]) -> Result<Value, String> {
    let x = this_num(a, "toPrecision")?;
    if matches!(arg(a, 1), Value::Undefined) || !x.is_finite() {
        return s(js::number_to_string(x));
    }
    let p = range_check(js::to_integer(arg(a, 1)), 1.0, "toPrecision")?;
    let sign = if x < 0.0 { "-" } else { "" };
    let (d, e) = if x == 0.0 {
        ("0".repeat(p), 0)
    } else {
        let (all, e) = significant(x);
        let (d, carry) = round_digits(&all, p);
        if carry {
            (d[..p].to_string(), e + 1)
        } else {
            (d, e)
        }
    };
    let body = if e < -6 || e >= p as i32 {
        exp_form(&d, e)
    } else if e >= 0 {
        let (i, f) = d.split_at(e as usize + 1);
        if f.is_empty() {
            i.to_string()
        } else {
            format!("{i}.{f}")
        }
    } else {
        format!("0.{}{d}", "0".repeat((-e - 1) as usize))
    };
    s(format!("{sign}{body}"))
}
