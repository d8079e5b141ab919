//! `{@date.*}` and `{@cron.nextDelay}`. Dates accept what the original's
//! getDateInstance accepts: a Date, a number of milliseconds, an ISO date or date-time
//! string, or a string that starts with an integer (read as milliseconds). Local time
//! is UTC.

use super::{arg, n, s, Func};
use crate::date::{self as d, make_date, make_day, make_time, parts, time_clip};
use crate::js;
use crate::value::Value;

pub const CRON_FUNCTIONS: &[(&str, Func)] = &[("nextDelay", next_delay)];

pub const FUNCTIONS: &[(&str, Func)] = &[
    ("fromISOString", |a| Ok(Value::Date(construct(arg(a, 0))))),
    ("now", |_| n(crate::now_ms())),
    ("yyyymmdd", yyyymmdd),
    ("parse", |a| n(d::parse(&js::to_string(arg(a, 0))))),
    ("getDate", |a| field(a, |p| p.day)),
    ("getDay", |a| field(a, |p| p.weekday)),
    ("getFullYear", |a| field(a, |p| p.year)),
    ("getHours", |a| field(a, |p| p.hour)),
    ("getMilliseconds", |a| field(a, |p| p.ms)),
    ("getMinutes", |a| field(a, |p| p.minute)),
    ("getMonth", |a| field(a, |p| p.month)),
    ("getSeconds", |a| field(a, |p| p.second)),
    ("getTime", |a| n(instance(arg(a, 0))?)),
    ("getTimezoneOffset", |a| {
        let t = instance(arg(a, 0))?;
        n(if t.is_nan() { f64::NAN } else { 0.0 })
    }),
    ("getUTCDate", |a| field(a, |p| p.day)),
    ("getUTCDay", |a| field(a, |p| p.weekday)),
    ("getUTCFullYear", |a| field(a, |p| p.year)),
    ("getUTCHours", |a| field(a, |p| p.hour)),
    ("getUTCMilliseconds", |a| field(a, |p| p.ms)),
    ("getUTCMinutes", |a| field(a, |p| p.minute)),
    ("getUTCMonth", |a| field(a, |p| p.month)),
    ("getUTCSeconds", |a| field(a, |p| p.second)),
    ("setMilliseconds", |a| set(a, Unit::Ms)),
    ("setMinutes", |a| set(a, Unit::Minutes)),
    ("setMonth", |a| set(a, Unit::Month)),
    ("setSeconds", |a| set(a, Unit::Seconds)),
    ("setTime", |a| {
        instance(arg(a, 0))?;
        n(time_clip(js::to_number(arg(a, 1))))
    }),
    ("setDate", |a| set(a, Unit::Date)),
    ("setFullYear", |a| set(a, Unit::Year)),
    ("setHours", |a| set(a, Unit::Hours)),
    ("setUTCDate", |a| set(a, Unit::Date)),
    ("setUTCFullYear", |a| set(a, Unit::Year)),
    ("setUTCHours", |a| set(a, Unit::Hours)),
    ("setUTCMilliseconds", |a| set(a, Unit::Ms)),
    ("setUTCMinutes", |a| set(a, Unit::Minutes)),
    ("setUTCMonth", |a| set(a, Unit::Month)),
    ("setUTCSeconds", |a| set(a, Unit::Seconds)),
    ("toDateString", |a| {
        s(d::to_date_string(instance(arg(a, 0))?, false))
    }),
    ("toISOString", |a| iso(instance(arg(a, 0))?).map(Value::Str)),
    ("toISOXString", to_isox_string),
    ("toJSON", |a| {
        let t = instance(arg(a, 0))?;
        Ok(d::iso_string(t).map(Value::Str).unwrap_or(Value::Null))
    }),
    ("toLocaleDateString", |a| locale(a, true, false)),
    ("toLocaleString", |a| locale(a, true, true)),
    ("toLocaleTimeString", |a| locale(a, false, true)),
    ("toString", |a| {
        s(d::to_date_string(instance(arg(a, 0))?, true))
    }),
    ("UTC", utc),
    ("valueOf", |a| n(instance(arg(a, 0))?)),
];

/// `new Date(value)`, which the original's fromISOString calls with whatever it gets: a
/// date copies its time, a string (or a list or object, as its string) is parsed, and
/// anything else is a number of milliseconds (null is 0).
fn construct(v: &Value) -> f64 {
    match v {
        Value::Date(t) => *t,
        Value::Str(st) => d::parse(st),
        Value::Arr(_) | Value::Obj(_) => d::parse(&js::to_string(v)),
        other => time_clip(js::to_number(other)),
    }
}

/// The original's getDateInstance: the time value of an accepted input.
fn instance(v: &Value) -> Result<f64, String> {
    match v {
        Value::Date(t) => Ok(*t),
        Value::Num(x) => Ok(time_clip(*x)),
        Value::Str(st) => {
            if iso_shaped(st) {
                return Ok(d::parse(st));
            }
            let ms = parse_int10(st);
            if ms.is_nan() {
                Err("Invalid date format".into())
            } else {
                Ok(time_clip(ms))
            }
        }
        _ => Err("Invalid date format".into()),
    }
}

/// `^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{3})?Z)?$`
fn iso_shaped(st: &str) -> bool {
    let b = st.as_bytes();
    let dig =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    if !(dig(0..4) && b.get(4) == Some(&b'-') && dig(5..7) && b.get(7) == Some(&b'-') && dig(8..10))
    {
        return false;
    }
    match b.len() {
        10 => true,
        20 | 24 => {
            b[10] == b'T'
                && dig(11..13)
                && b[13] == b':'
                && dig(14..16)
                && b[16] == b':'
                && dig(17..19)
                && (b.len() == 20 || (b[19] == b'.' && dig(20..23)))
                && b[b.len() - 1] == b'Z'
        }
        _ => false,
    }
}

fn parse_int10(st: &str) -> f64 {
    let t = st.trim_start_matches(js::is_js_space);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits = &t[..t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len())];
    match digits.parse::<f64>() {
        Ok(v) if !digits.is_empty() => {
            if neg {
                -v
            } else {
                v
            }
        }
        _ => f64::NAN,
    }
}

fn field(a: &[Value], f: fn(&d::Parts) -> i64) -> Result<Value, String> {
    let t = instance(arg(a, 0))?;
    n(parts(t).map(|p| f(&p) as f64).unwrap_or(f64::NAN))
}

fn iso(t: f64) -> Result<String, String> {
    d::iso_string(t).ok_or_else(|| "RangeError: Invalid time value".to_string())
}

/// Today's UTC date: the original's yyyymmdd takes no argument, so one is ignored.
fn yyyymmdd(_: &[Value]) -> Result<Value, String> {
    let p = parts(crate::now_ms()).ok_or("RangeError: Invalid time value")?;
    s(format!("{:04}-{:02}-{:02}", p.year, p.month + 1, p.day))
}

fn to_isox_string(a: &[Value]) -> Result<Value, String> {
    let t = if js::to_boolean(arg(a, 0)) {
        instance(arg(a, 0))?
    } else {
        crate::now_ms()
    };
    s(iso(t)?
        .chars()
        .filter(|c| !matches!(c, ':' | 'T' | 'Z' | '-'))
        .collect())
}

fn locale(a: &[Value], date: bool, time: bool) -> Result<Value, String> {
    let t = instance(arg(a, 0))?;
    match arg(a, 1) {
        Value::Undefined => {}
        Value::Str(l) if l.eq_ignore_ascii_case("en-US") || l.eq_ignore_ascii_case("en") => {}
        other => {
            return Err(format!(
                "unsupported locale {} (hotmesh formats dates for en-US)",
                js::to_string(other)
            ))
        }
    }
    match arg(a, 2) {
        Value::Undefined => {}
        Value::Obj(o)
            if o.props
                .iter()
                .all(|(k, v)| k == "timeZone" && matches!(v, Value::Str(z) if z == "UTC")) => {}
        _ => return Err("unsupported date format options (only { timeZone: 'UTC' })".into()),
    }
    s(d::locale_string(t, date, time))
}

#[derive(Clone, Copy)]
enum Unit {
    Year,
    Month,
    Date,
    Hours,
    Minutes,
    Seconds,
    Ms,
}

/// The Date setters. The original's wrappers always pass every optional argument, and
/// JavaScript reads an explicit `undefined` as NaN, so leaving one out gives NaN
/// (setMinutes(d, 5) is NaN in the original too).
fn set(a: &[Value], unit: Unit) -> Result<Value, String> {
    let t = instance(arg(a, 0))?;
    let x = |i: usize| js::to_number(arg(a, i));
    let Some(p) = parts(if t.is_nan() { 0.0 } else { t }) else {
        return n(f64::NAN);
    };
    let (y, mo, dd, h, mi, sec, ms) = (
        p.year as f64,
        p.month as f64,
        p.day as f64,
        p.hour as f64,
        p.minute as f64,
        p.second as f64,
        p.ms as f64,
    );
    if t.is_nan() && !matches!(unit, Unit::Year) {
        return n(f64::NAN);
    }
    let v = match unit {
        Unit::Year => make_date(make_day(x(1), x(2), x(3)), make_time(h, mi, sec, ms)),
        Unit::Month => make_date(make_day(y, x(1), x(2)), make_time(h, mi, sec, ms)),
        Unit::Date => make_date(make_day(y, mo, x(1)), make_time(h, mi, sec, ms)),
        Unit::Hours => make_date(make_day(y, mo, dd), make_time(x(1), x(2), x(3), x(4))),
        Unit::Minutes => make_date(make_day(y, mo, dd), make_time(h, x(1), x(2), x(3))),
        Unit::Seconds => make_date(make_day(y, mo, dd), make_time(h, mi, x(1), x(2))),
        Unit::Ms => make_date(make_day(y, mo, dd), make_time(h, mi, sec, x(1))),
    };
    n(time_clip(v))
}

/// Date.UTC. The original passes all seven arguments, and an explicit undefined is NaN,
/// so every field must be given (Date.UTC(2026, 0) is NaN in the original too).
fn utc(a: &[Value]) -> Result<Value, String> {
    let x = |i: usize| js::to_number(arg(a, i));
    let mut y = x(0);
    if y.is_finite() && (0.0..=99.0).contains(&y.trunc()) {
        y = 1900.0 + y.trunc();
    }
    n(time_clip(make_date(
        make_day(y, x(1), x(2)),
        make_time(x(3), x(4), x(5), x(6)),
    )))
}

/// -1 for anything but a string, as the original; see [`crate::cron::next_delay`].
fn next_delay(a: &[Value]) -> Result<Value, String> {
    match arg(a, 0) {
        Value::Str(expr) => n(crate::cron::next_delay(expr, crate::now_ms() as i64)?),
        _ => n(-1.0),
    }
}
