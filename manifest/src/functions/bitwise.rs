//! `{@bitwise.*}`: 32-bit integer operators, as in JavaScript.

use super::{arg, n, Func};
use crate::js::{to_int32, to_uint32};
use crate::value::Value;

pub const FUNCTIONS: &[(&str, Func)] = &[
    ("and", |a| {
        n(f64::from(to_int32(arg(a, 0)) & to_int32(arg(a, 1))))
    }),
    ("or", |a| {
        n(f64::from(to_int32(arg(a, 0)) | to_int32(arg(a, 1))))
    }),
    ("xor", |a| {
        n(f64::from(to_int32(arg(a, 0)) ^ to_int32(arg(a, 1))))
    }),
    ("leftShift", |a| {
        n(f64::from(to_int32(arg(a, 0)).wrapping_shl(shift(a))))
    }),
    ("rightShift", |a| {
        n(f64::from(to_int32(arg(a, 0)).wrapping_shr(shift(a))))
    }),
    ("unsignedRightShift", |a| {
        n(f64::from(to_uint32(arg(a, 0)).wrapping_shr(shift(a))))
    }),
];

fn shift(a: &[Value]) -> u32 {
    to_uint32(arg(a, 1)) & 31
}
