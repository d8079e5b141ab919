//! JavaScript's abstract operations over [`Value`]: the coercions, comparisons and number
//! formatting the original's functions inherit from the language.

use crate::value::{array_index, Value};

/// JavaScript's white space and line terminators (what `trim` and `Number()` strip).
pub fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\u{9}'..='\u{d}'
            | ' '
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
            | '\u{feff}'
    )
}

pub fn trim(s: &str) -> &str {
    s.trim_matches(is_js_space)
}

/// Number::toString(10): the shortest digits that round-trip, in JavaScript's layout.
pub fn number_to_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if x < 0.0 {
        return format!("-{}", number_to_string(-x));
    }
    let (digits, n) = shortest_digits(x);
    layout(&digits, n)
}

/// The shortest round-trip decimal digits of a positive finite `x`, and the exponent `n`
/// such that x = 0.d1d2… × 10^n.
pub fn shortest_digits(x: f64) -> (String, i32) {
    let e = format!("{x:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() {
        "0".to_string()
    } else {
        digits.to_string()
    };
    (digits, exp.parse::<i32>().unwrap_or(0) + 1)
}

fn layout(digits: &str, n: i32) -> String {
    let k = digits.len() as i32;
    if k <= n && n <= 21 {
        let mut s = digits.to_string();
        s.extend(std::iter::repeat_n('0', (n - k) as usize));
        s
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{}", "0".repeat((-n) as usize), digits)
    } else {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        if k == 1 {
            format!("{digits}e{sign}{}", e.abs())
        } else {
            format!("{}.{}e{sign}{}", &digits[..1], &digits[1..], e.abs())
        }
    }
}

/// StringToNumber: the whole trimmed string must be a numeric literal.
pub fn string_to_number(s: &str) -> f64 {
    let t = trim(s);
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(rest) = t.strip_prefix(prefix) {
            if rest.is_empty() || !rest.chars().all(|c| c.is_digit(radix)) {
                return f64::NAN;
            }
            return rest.chars().fold(0.0, |acc, c| {
                acc * radix as f64 + c.to_digit(radix).unwrap_or(0) as f64
            });
        }
    }
    match decimal_prefix(t) {
        Some((v, len)) if len == t.len() => v,
        _ => f64::NAN,
    }
}

/// The longest prefix of `s` that is a StrDecimalLiteral (what parseFloat reads), with
/// its value and its length in bytes.
pub fn decimal_prefix(s: &str) -> Option<(f64, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    let neg = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    if s[i..].starts_with("Infinity") {
        let v = if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        return Some((v, i + 8));
    }
    let start = i;
    let mut int_digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        int_digits += 1;
    }
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        let mut j = i + 1;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
            frac_digits += 1;
        }
        if int_digits > 0 || frac_digits > 0 {
            i = j;
        }
    }
    if int_digits == 0 && frac_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let ds = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > ds {
            i = j;
        }
    }
    let text = &s[start..i];
    let text = if text.starts_with('.') {
        format!("0{text}")
    } else {
        text.to_string()
    };
    let text = text.replace(".e", ".0e").replace(".E", ".0E");
    let v: f64 = text.trim_end_matches('.').parse().ok()?;
    Some((if neg { -v } else { v }, i))
}

pub fn to_number(v: &Value) -> f64 {
    match v {
        Value::Undefined => f64::NAN,
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Num(n) => *n,
        Value::Str(s) => string_to_number(s),
        Value::Date(t) => *t,
        Value::Arr(_) => string_to_number(&to_string(v)),
        Value::Obj(_) => f64::NAN,
    }
}

pub fn to_string(v: &Value) -> String {
    match v {
        Value::Undefined => "undefined".into(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Num(n) => number_to_string(*n),
        Value::Str(s) => s.clone(),
        // recurses once per level of nested lists (values are at most
        // MAX_VALUE_DEPTH deep)
        Value::Arr(a) => a
            .iter()
            .map(|e| {
                crate::guard::tick();
                if e.is_nullish() {
                    String::new()
                } else {
                    to_string(e)
                }
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Obj(_) => "[object Object]".into(),
        Value::Date(t) => crate::date::to_date_string(*t, true),
    }
}

pub fn to_boolean(v: &Value) -> bool {
    match v {
        Value::Undefined | Value::Null => false,
        Value::Bool(b) => *b,
        Value::Num(n) => !(n.is_nan() || *n == 0.0),
        Value::Str(s) => !s.is_empty(),
        Value::Arr(_) | Value::Obj(_) | Value::Date(_) => true,
    }
}

/// ToIntegerOrInfinity.
pub fn to_integer(v: &Value) -> f64 {
    let n = to_number(v);
    if n.is_nan() {
        0.0
    } else {
        n.trunc() + 0.0
    }
}

pub fn to_int32(v: &Value) -> i32 {
    to_uint32(v) as i32
}

pub fn to_uint32(v: &Value) -> u32 {
    let n = to_number(v);
    if !n.is_finite() {
        return 0;
    }
    n.trunc().rem_euclid(4_294_967_296.0) as u32
}

/// ToPrimitive with the default hint: dates and arrays become strings, objects
/// "[object Object]".
pub fn to_primitive(v: &Value) -> Value {
    match v {
        Value::Arr(_) | Value::Obj(_) | Value::Date(_) => Value::Str(to_string(v)),
        _ => v.clone(),
    }
}

/// ToPrimitive with hint number: dates give their time value.
fn to_primitive_number(v: &Value) -> Value {
    match v {
        Value::Date(t) => Value::Num(*t),
        _ => to_primitive(v),
    }
}

/// The `+` operator.
pub fn add(a: &Value, b: &Value) -> Value {
    let (pa, pb) = (to_primitive(a), to_primitive(b));
    if matches!(pa, Value::Str(_)) || matches!(pb, Value::Str(_)) {
        let mut s = to_string(&pa);
        s.push_str(&to_string(&pb));
        return Value::Str(s);
    }
    Value::Num(to_number(&pa) + to_number(&pb))
}

/// `===`. Two objects are never strictly equal here: maps copy values, so there is no
/// shared identity to compare.
pub fn strict_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Num(x), Value::Num(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        _ => false,
    }
}

/// `==`.
pub fn loose_eq(a: &Value, b: &Value) -> bool {
    use Value::*;
    match (a, b) {
        (Undefined | Null, Undefined | Null) => true,
        (Undefined | Null, _) | (_, Undefined | Null) => false,
        (Num(_), Num(_)) | (Str(_), Str(_)) | (Bool(_), Bool(_)) => strict_eq(a, b),
        (Num(x), Str(s)) | (Str(s), Num(x)) => *x == string_to_number(s),
        (Bool(x), _) => loose_eq(&Num(f64::from(u8::from(*x))), b),
        (_, Bool(y)) => loose_eq(a, &Num(f64::from(u8::from(*y)))),
        (Arr(_) | Obj(_) | Date(_), Arr(_) | Obj(_) | Date(_)) => false,
        (Arr(_) | Obj(_) | Date(_), _) => loose_eq(&to_primitive(a), b),
        (_, Arr(_) | Obj(_) | Date(_)) => loose_eq(a, &to_primitive(b)),
    }
}

/// Abstract relational comparison `a < b`; None stands for `undefined` (a NaN).
pub fn less_than(a: &Value, b: &Value) -> Option<bool> {
    let (pa, pb) = (to_primitive_number(a), to_primitive_number(b));
    if let (Value::Str(x), Value::Str(y)) = (&pa, &pb) {
        return Some(x.encode_utf16().lt(y.encode_utf16()));
    }
    let (x, y) = (to_number(&pa), to_number(&pb));
    if x.is_nan() || y.is_nan() {
        None
    } else {
        Some(x < y)
    }
}

pub fn lt(a: &Value, b: &Value) -> bool {
    less_than(a, b) == Some(true)
}
pub fn gt(a: &Value, b: &Value) -> bool {
    less_than(b, a) == Some(true)
}
pub fn le(a: &Value, b: &Value) -> bool {
    less_than(b, a) == Some(false)
}
pub fn ge(a: &Value, b: &Value) -> bool {
    less_than(a, b) == Some(false)
}

/// `String.prototype.localeCompare` as Node runs it in its default locale (en-US, which
/// has no tailoring: ICU's root collation, tertiary strength). ICU4X implements the same
/// collation, so accents, case and scripts order as they do in Node.
pub fn locale_compare(a: &str, b: &str) -> std::cmp::Ordering {
    use icu_collator::{options::CollatorOptions, Collator, CollatorBorrowed};
    static ROOT: std::sync::OnceLock<CollatorBorrowed<'static>> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        Collator::try_new(Default::default(), CollatorOptions::default())
            .expect("the root collation is compiled in")
    })
    .compare(a, b)
}

/// ToPropertyKey for the values a map can hold.
pub fn property_key(v: &Value) -> String {
    to_string(v)
}

/// `value[key]`, as JavaScript reads a property of a JSON-like value. Reading from
/// null or undefined is the TypeError JavaScript throws.
pub fn get_property(v: &Value, key: &Value) -> Result<Value, String> {
    let k = property_key(key);
    Ok(match v {
        Value::Undefined | Value::Null => {
            return Err(format!(
                "Cannot read properties of {} (reading '{k}')",
                to_string(v)
            ));
        }
        Value::Arr(a) => {
            if k == "length" {
                Value::Num(a.len() as f64)
            } else {
                array_index(&k)
                    .and_then(|i| a.get(i as usize))
                    .cloned()
                    .unwrap_or_default()
            }
        }
        Value::Str(s) => {
            if k == "length" {
                Value::Num(s.encode_utf16().count() as f64)
            } else {
                match array_index(&k) {
                    Some(i) => s
                        .encode_utf16()
                        .nth(i as usize)
                        .map(|c| Value::Str(from_utf16(&[c])))
                        .unwrap_or_default(),
                    None => Value::Undefined,
                }
            }
        }
        Value::Obj(o) => o.get(&k).cloned().unwrap_or_default(),
        _ => Value::Undefined,
    })
}

/// UTF-16 back to a Rust string; a lone surrogate becomes U+FFFD (JSON cannot carry it).
pub fn from_utf16(u: &[u16]) -> String {
    String::from_utf16_lossy(u)
}

pub fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// Relative index as used by slice(): negative counts from the end, clamped to [0, len].
pub fn relative_index(v: &Value, len: usize, default: usize) -> usize {
    if matches!(v, Value::Undefined) {
        return default;
    }
    let n = to_integer(v);
    let len_f = len as f64;
    if n < 0.0 {
        (len_f + n).max(0.0) as usize
    } else {
        n.min(len_f) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_javascript_does() {
        for (x, s) in [
            (1.0, "1"),
            (-0.0, "0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (123.456, "123.456"),
            (1.5e-10, "1.5e-10"),
            (2f64.powi(70), "1.1805916207174113e+21"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(number_to_string(x), s, "{x}");
        }
    }

    #[test]
    fn strings_convert_to_numbers_as_javascript_does() {
        for (s, x) in [
            (" 12 ", 12.0),
            ("", 0.0),
            ("0x1F", 31.0),
            ("1e3", 1000.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("-Infinity", f64::NEG_INFINITY),
        ] {
            assert_eq!(string_to_number(s), x, "{s}");
        }
        for s in [
            "abc",
            "1,2",
            "inf",
            "nan",
            "-0x1",
            "1e",
            "1_000",
            "Infinityx",
        ] {
            assert!(string_to_number(s).is_nan(), "{s}");
        }
    }

    #[test]
    fn equality_and_order() {
        assert!(loose_eq(&Value::Num(1.0), &Value::from("1")));
        assert!(loose_eq(&Value::Null, &Value::Undefined));
        assert!(!loose_eq(&Value::Null, &Value::Num(0.0)));
        assert!(loose_eq(&Value::Bool(true), &Value::from("1")));
        assert!(lt(&Value::from("10"), &Value::from("9")));
        assert!(gt(&Value::from("10"), &Value::Num(9.0)));
        assert!(!ge(&Value::Num(f64::NAN), &Value::Num(1.0)));
        assert_eq!(add(&Value::Num(1.0), &Value::from("2")), Value::from("12"));
    }
}
