//! The `{@group.name}` function catalog. Each function behaves as the original's wrapper
//! does, called as its pipe calls it: the wrapper's defaults and guards around the
//! JavaScript built-in's coercions and results for odd input, and an error (the
//! JavaScript exception) where the original throws.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::js;
use crate::value::Value;

mod array;
mod bitwise;
mod conditional;
mod date;
mod json;
mod logical;
mod math;
mod number;
mod object;
pub mod regexp;
mod sort;
mod string;
mod symbol;
mod unary;

/// A catalog function: the resolved arguments in, a value or the JavaScript error out.
pub type Func = fn(&[Value]) -> Result<Value, String>;

pub struct Group {
    pub name: &'static str,
    pub functions: &'static [(&'static str, Func)],
}

/// Every group, in the spec's order.
pub fn groups() -> &'static [Group] {
    static GROUPS: OnceLock<Vec<Group>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        vec![
            Group {
                name: "array",
                functions: array::FUNCTIONS,
            },
            Group {
                name: "bitwise",
                functions: bitwise::FUNCTIONS,
            },
            Group {
                name: "conditional",
                functions: conditional::FUNCTIONS,
            },
            Group {
                name: "cron",
                functions: date::CRON_FUNCTIONS,
            },
            Group {
                name: "date",
                functions: date::FUNCTIONS,
            },
            Group {
                name: "json",
                functions: json::FUNCTIONS,
            },
            Group {
                name: "logical",
                functions: logical::FUNCTIONS,
            },
            Group {
                name: "math",
                functions: math::FUNCTIONS,
            },
            Group {
                name: "number",
                functions: number::FUNCTIONS,
            },
            Group {
                name: "object",
                functions: object::FUNCTIONS,
            },
            Group {
                name: "string",
                functions: string::FUNCTIONS,
            },
            Group {
                name: "symbol",
                functions: symbol::FUNCTIONS,
            },
            Group {
                name: "unary",
                functions: unary::FUNCTIONS,
            },
        ]
    })
}

/// Every function with its full name `group.name`.
fn all() -> impl Iterator<Item = (String, Func)> {
    groups().iter().flat_map(|g| {
        g.functions
            .iter()
            .map(move |(n, f)| (format!("{}.{n}", g.name), *f))
    })
}

/// Looks up `group.name`.
pub fn lookup(name: &str) -> Option<Func> {
    static INDEX: OnceLock<HashMap<String, Func>> = OnceLock::new();
    INDEX.get_or_init(|| all().collect()).get(name).copied()
}

/// Every function's full name, for docs and the catalog test.
pub fn names() -> Vec<String> {
    all().map(|(n, _)| n).collect()
}

// Helpers shared by the groups.

const UNDEF: Value = Value::Undefined;

pub(crate) fn arg(args: &[Value], i: usize) -> &Value {
    args.get(i).unwrap_or(&UNDEF)
}

pub(crate) fn num(args: &[Value], i: usize) -> f64 {
    js::to_number(arg(args, i))
}

pub(crate) fn n(x: f64) -> Result<Value, String> {
    Ok(Value::Num(x))
}

pub(crate) fn b(x: bool) -> Result<Value, String> {
    Ok(Value::Bool(x))
}

pub(crate) fn s(x: String) -> Result<Value, String> {
    Ok(Value::Str(x))
}

/// The TypeError JavaScript throws when a method is called on the wrong kind of value.
pub(crate) fn not_a_function(v: &Value, method: &str) -> String {
    if v.is_nullish() {
        format!(
            "Cannot read properties of {} (reading '{method}')",
            js::to_string(v)
        )
    } else {
        format!("{method} is not a function on a {}", v.type_name())
    }
}

/// `args[i]` as a string receiver, or the TypeError.
pub(crate) fn this_str<'a>(args: &'a [Value], method: &str) -> Result<&'a str, String> {
    match arg(args, 0) {
        Value::Str(s) => Ok(s),
        v => Err(not_a_function(v, method)),
    }
}
