//! `{@conditional.*}`: JavaScript's comparison operators, the ternary and `??`.

use super::{arg, b, Func};
use crate::js;
use crate::value::Value;

pub const FUNCTIONS: &[(&str, Func)] = &[
    ("ternary", |a| {
        Ok(if js::to_boolean(arg(a, 0)) {
            arg(a, 1)
        } else {
            arg(a, 2)
        }
        .clone())
    }),
    ("equality", |a| b(js::loose_eq(arg(a, 0), arg(a, 1)))),
    ("strict_equality", |a| {
        b(js::strict_eq(arg(a, 0), arg(a, 1)))
    }),
    ("inequality", |a| b(!js::loose_eq(arg(a, 0), arg(a, 1)))),
    ("strict_inequality", |a| {
        b(!js::strict_eq(arg(a, 0), arg(a, 1)))
    }),
    ("greater_than", |a| b(js::gt(arg(a, 0), arg(a, 1)))),
    ("less_than", |a| b(js::lt(arg(a, 0), arg(a, 1)))),
    ("greater_than_or_equal", |a| b(js::ge(arg(a, 0), arg(a, 1)))),
    ("less_than_or_equal", |a| b(js::le(arg(a, 0), arg(a, 1)))),
    ("nullish", nullish),
];

fn nullish(a: &[Value]) -> Result<Value, String> {
    Ok(if arg(a, 0).is_nullish() {
        arg(a, 1)
    } else {
        arg(a, 0)
    }
    .clone())
}
