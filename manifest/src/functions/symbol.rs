//! `{@symbol.*}`: constants that YAML cannot write (null as a value, NaN, ±Infinity, a
//! date of now).

use super::{n, s, Func};
use crate::value::{Object, Value};

pub const FUNCTIONS: &[(&str, Func)] = &[
    ("null", |_| Ok(Value::Null)),
    ("undefined", |_| Ok(Value::Undefined)),
    ("whitespace", |_| s(" ".into())),
    ("object", |_| Ok(Value::Obj(Object::new()))),
    ("array", |_| Ok(Value::Arr(vec![]))),
    ("posInfinity", |_| n(f64::INFINITY)),
    ("negInfinity", |_| n(f64::NEG_INFINITY)),
    ("NaN", |_| n(f64::NAN)),
    ("date", |_| Ok(Value::Date(crate::now_ms()))),
];
