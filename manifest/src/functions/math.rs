//! `{@math.*}`: Math.* plus the variadic add/subtract/multiply/divide: subtract and
//! divide flatten array arguments one level, add and multiply throw on one (see
//! `list_operand`). add uses JavaScript's `+`, so a string operand concatenates, as in
//! the original. The transcendental functions come from the `libm` crate, a port of the
//! same fdlibm code V8 uses, so results match to the last bit.

use super::{arg, n, num, Func};
use crate::js;
use crate::value::Value;

pub const FUNCTIONS: &[(&str, Func)] = &[
    ("add", add),
    ("subtract", subtract),
    ("multiply", multiply),
    ("divide", divide),
    ("abs", |a| n(num(a, 0).abs())),
    ("acos", |a| n(libm::acos(num(a, 0)))),
    ("acosh", |a| n(libm::acosh(num(a, 0)))),
    ("asin", |a| n(libm::asin(num(a, 0)))),
    ("asinh", |a| n(asinh(num(a, 0)))),
    ("atan", |a| n(libm::atan(num(a, 0)))),
    ("atan2", |a| n(libm::atan2(num(a, 0), num(a, 1)))),
    ("atanh", |a| n(libm::atanh(num(a, 0)))),
    ("cbrt", |a| n(cbrt(num(a, 0)))),
    ("ceil", |a| n(num(a, 0).ceil())),
    ("clz32", |a| {
        n(f64::from(js::to_uint32(arg(a, 0)).leading_zeros()))
    }),
    ("cos", |a| n(libm::cos(num(a, 0)))),
    ("cosh", |a| n(cosh(num(a, 0)))),
    ("exp", |a| n(exp(num(a, 0)))),
    ("expm1", |a| n(libm::expm1(num(a, 0)))),
    ("floor", |a| n(num(a, 0).floor())),
    ("fround", |a| n(f64::from(num(a, 0) as f32))),
    ("hypot", hypot),
    ("imul", |a| {
        n(f64::from(
            js::to_int32(arg(a, 0)).wrapping_mul(js::to_int32(arg(a, 1))),
        ))
    }),
    ("log", |a| n(libm::log(num(a, 0)))),
    ("log10", |a| n(libm::log10(num(a, 0)))),
    ("log1p", |a| n(libm::log1p(num(a, 0)))),
    ("log2", |a| n(libm::log2(num(a, 0)))),
    ("max", max),
    ("min", min),
    ("pow", |a| n(pow(num(a, 0), num(a, 1)))),
    ("random", |_| n(crate::random())),
    ("round", |a| n(round(num(a, 0)))),
    ("sign", |a| n(sign(num(a, 0)))),
    ("sin", |a| n(libm::sin(num(a, 0)))),
    ("sinh", |a| n(libm::sinh(num(a, 0)))),
    ("sqrt", |a| n(num(a, 0).sqrt())),
    ("tan", |a| n(libm::tan(num(a, 0)))),
    ("tanh", |a| n(libm::tanh(num(a, 0)))),
    ("trunc", |a| n(num(a, 0).trunc())),
];

/// V8 returns Math.E exactly for exp(1); fdlibm is one ulp above.
fn exp(x: f64) -> f64 {
    if x == 1.0 {
        std::f64::consts::E
    } else {
        libm::exp(x)
    }
}

/// fdlibm's cosh, on top of [`exp`] (so cosh(1) agrees with V8 too).
fn cosh(x: f64) -> f64 {
    let ax = x.abs();
    if ax.is_nan() || !(0.5 * std::f64::consts::LN_2..22.0).contains(&ax) {
        return libm::cosh(x);
    }
    let t = exp(ax);
    0.5 * t + 0.5 / t
}

/// fdlibm's cbrt (FreeBSD s_cbrt.c, as V8 has it): a bit-level first guess, one
/// polynomial step and one Newton step. The `libm` crate's cbrt is correctly rounded
/// and so differs from V8 in the last bit now and then.
fn cbrt(x: f64) -> f64 {
    const B1: u32 = 715_094_163;
    const B2: u32 = 696_219_795;
    const P0: f64 = 1.875_951_824_271_77;
    const P1: f64 = -1.884_979_795_433_771_7;
    const P2: f64 = 1.621_429_720_105_354_5;
    const P3: f64 = -0.758_397_934_778_766;
    const P4: f64 = 0.145_996_192_886_612_45;
    let bits = x.to_bits();
    let hx = (bits >> 32) as u32;
    let low = bits as u32;
    let sign = hx & 0x8000_0000;
    let hx = hx & 0x7fff_ffff;
    if hx >= 0x7ff0_0000 {
        return x + x;
    }
    let mut t = if hx < 0x0010_0000 {
        if (hx | low) == 0 {
            return x;
        }
        let t = x * f64::from_bits(0x4350_0000_0000_0000); // 2**54
        let high = ((t.to_bits() >> 32) as u32 & 0x7fff_ffff) / 3 + B2;
        f64::from_bits(u64::from(sign | high) << 32)
    } else {
        f64::from_bits(u64::from(sign | (hx / 3 + B1)) << 32)
    };
    let r = (t * t) * (t / x);
    t *= (P0 + r * (P1 + r * P2)) + ((r * r) * r) * (P3 + r * P4);
    t = f64::from_bits((t.to_bits().wrapping_add(0x8000_0000)) & 0xffff_ffff_c000_0000);
    let s = t * t;
    let mut r = x / s;
    let w = t + t;
    r = (r - t) / (w + r);
    t + t * r
}

fn asinh(x: f64) -> f64 {
    // keep the sign of -0 and avoid cancellation for large negatives
    if x == 0.0 || !x.is_finite() {
        x
    } else {
        libm::asinh(x)
    }
}

/// Math.pow: unlike powf, 1 ** NaN and (±1) ** ±Infinity are NaN.
pub(crate) fn pow(x: f64, y: f64) -> f64 {
    if y.is_nan() || (x.abs() == 1.0 && y.is_infinite()) {
        return f64::NAN;
    }
    libm::pow(x, y)
}

/// Math.round: halves go up (-2.5 rounds to -2), and -0.4 gives -0.
pub(crate) fn round(x: f64) -> f64 {
    if !x.is_finite() || x == x.trunc() {
        return x;
    }
    if (-0.5..0.0).contains(&x) {
        return -0.0;
    }
    let f = x.floor();
    if x - f >= 0.5 {
        f + 1.0
    } else {
        f
    }
}

fn sign(x: f64) -> f64 {
    if x.is_nan() || x == 0.0 {
        x
    } else {
        x.signum()
    }
}

fn hypot(a: &[Value]) -> Result<Value, String> {
    let xs: Vec<f64> = a.iter().map(js::to_number).collect();
    if xs.iter().any(|x| x.is_infinite()) {
        return n(f64::INFINITY);
    }
    if xs.iter().any(|x| x.is_nan()) {
        return n(f64::NAN);
    }
    let m = xs.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if m == 0.0 {
        return n(0.0);
    }
    n(m * xs.iter().map(|x| (x / m) * (x / m)).sum::<f64>().sqrt())
}

/// Math.max / Math.min: NaN wins, +0 is above -0, no arguments give ∓Infinity.
pub(crate) fn extreme(a: &[Value], want_max: bool) -> f64 {
    let mut best = if want_max {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    };
    let mut nan = false;
    for x in a.iter().map(js::to_number) {
        if x.is_nan() {
            nan = true;
        } else if (want_max && (x > best || (x == 0.0 && best == 0.0 && x.is_sign_positive())))
            || (!want_max && (x < best || (x == 0.0 && best == 0.0 && x.is_sign_negative())))
        {
            best = x;
        }
    }
    if nan {
        f64::NAN
    } else {
        best
    }
}

fn max(a: &[Value]) -> Result<Value, String> {
    n(extreme(a, true))
}

fn min(a: &[Value]) -> Result<Value, String> {
    n(extreme(a, false))
}

/// The TypeError of the original's add and multiply for a list operand: they recurse
/// into it through `this`, and the pipe calls them detached from their handler.
fn list_operand(a: &[Value], method: &str) -> Result<(), String> {
    if a.iter().any(|v| matches!(v, Value::Arr(_))) {
        return Err(format!(
            "Cannot read properties of undefined (reading '{method}')"
        ));
    }
    Ok(())
}

/// add: `0 + a + b …` with JavaScript's `+`.
pub(super) fn add(a: &[Value]) -> Result<Value, String> {
    list_operand(a, "add")?;
    // a string operand makes it a concatenation: its size comes first (numbers, dates
    // and objects print in under 64 bytes)
    let size = a
        .iter()
        .map(|v| match v {
            Value::Str(s) => s.len(),
            _ => 64,
        })
        .fold(0usize, usize::saturating_add);
    crate::limits::check_bytes(size)?;
    Ok(a.iter().fold(Value::Num(0.0), |acc, v| {
        crate::guard::tick();
        js::add(&acc, v)
    }))
}

pub(super) fn multiply(a: &[Value]) -> Result<Value, String> {
    if a.is_empty() {
        return Err("At least one operand is required.".into());
    }
    list_operand(a, "multiply")?;
    n(a.iter().map(js::to_number).product())
}

/// The operands with array arguments spread one level; raw values, as the original
/// reduces over them without coercing first.
fn flatten(a: &[Value]) -> Result<Vec<Value>, String> {
    if a.is_empty() {
        return Err("At least one operand is required.".into());
    }
    let flat: Vec<Value> = a
        .iter()
        .flat_map(|v| match v {
            Value::Arr(inner) => inner.clone(),
            v => vec![v.clone()],
        })
        .collect();
    if flat.is_empty() {
        return Err("At least one operand is required after flattening.".into());
    }
    Ok(flat)
}

/// subtract: a single operand comes back as it is (the original reduces without a seed).
pub(super) fn subtract(a: &[Value]) -> Result<Value, String> {
    let mut f = flatten(a)?.into_iter();
    let first = f.next().unwrap_or_default();
    Ok(f.fold(first, |acc, x| {
        Value::Num(js::to_number(&acc) - js::to_number(&x))
    }))
}

/// divide: a divisor that is the number 0 makes the result NaN (the original's rule; the
/// string "0" divides as JavaScript does, to Infinity).
pub(super) fn divide(a: &[Value]) -> Result<Value, String> {
    let mut f = flatten(a)?.into_iter();
    let mut acc = f.next().unwrap_or_default();
    for x in f {
        acc = if matches!(x, Value::Num(z) if z == 0.0) {
            Value::Num(f64::NAN)
        } else {
            Value::Num(js::to_number(&acc) / js::to_number(&x))
        };
    }
    if js::to_number(&acc).is_nan() {
        return n(f64::NAN);
    }
    Ok(acc)
}
