//! `{@unary.*}`: `!`, unary `+` and `-`, and `~`.

use super::{arg, b, n, Func};
use crate::js;

pub const FUNCTIONS: &[(&str, Func)] = &[
    ("not", |a| b(!js::to_boolean(arg(a, 0)))),
    ("positive", |a| n(js::to_number(arg(a, 0)))),
    ("negative", |a| n(-js::to_number(arg(a, 0)))),
    ("bitwise_not", |a| n(f64::from(!js::to_int32(arg(a, 0))))),
];
