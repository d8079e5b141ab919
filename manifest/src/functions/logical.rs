//! `{@logical.*}`: `&&` and `||`, which return one of their operands.

use super::{arg, Func};
use crate::js::to_boolean;

pub const FUNCTIONS: &[(&str, Func)] = &[
    ("and", |a| {
        Ok(if to_boolean(arg(a, 0)) {
            arg(a, 1)
        } else {
            arg(a, 0)
        }
        .clone())
    }),
    ("or", |a| {
        Ok(if to_boolean(arg(a, 0)) {
            arg(a, 0)
        } else {
            arg(a, 1)
        }
        .clone())
    }),
];
