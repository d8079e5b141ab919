//! `{@object.*}`: Object.* over plain data. Integrity levels (freeze, seal,
//! preventExtensions) are tracked on the value; symbols and property attributes other
//! than the value do not exist in JSON data, so the descriptor functions only see
//! ordinary data properties.

use super::{arg, b, not_a_function, Func};
use crate::guard::tick;
use crate::js;
use crate::limits::{check_bytes, value_size, ENTRY_OVERHEAD, MAX_VALUE_BYTES, VALUE_OVERHEAD};
use crate::value::{array_index, Integrity, Object, Value};

pub const FUNCTIONS: &[(&str, Func)] = &[
    ("get", get),
    ("set", set),
    ("create", create),
    ("keys", |a| {
        Ok(Value::Arr(
            own_keys(arg(a, 0), false)?
                .into_iter()
                .map(Value::Str)
                .collect(),
        ))
    }),
    ("values", |a| {
        Ok(Value::Arr(
            entries_of(arg(a, 0))?.into_iter().map(|(_, v)| v).collect(),
        ))
    }),
    ("entries", |a| {
        Ok(Value::Arr(
            entries_of(arg(a, 0))?
                .into_iter()
                .map(|(k, v)| Value::Arr(vec![Value::Str(k), v]))
                .collect(),
        ))
    }),
    ("fromEntries", from_entries),
    ("assign", assign),
    ("getOwnPropertyNames", |a| {
        // the wrapper reads `obj || {}`: a falsy value has no names
        let v = if js::to_boolean(arg(a, 0)) {
            arg(a, 0)
        } else {
            &Value::Undefined
        };
        Ok(Value::Arr(
            own_keys(v, true)?.into_iter().map(Value::Str).collect(),
        ))
    }),
    ("getOwnPropertySymbols", |_| Ok(Value::Arr(vec![]))),
    ("getOwnPropertyDescriptor", descriptor),
    ("defineProperty", define_property),
    ("defineProperties", define_properties),
    ("freeze", |a| lock(a, Integrity::Frozen)),
    ("isFrozen", |a| is_locked(a, Integrity::Frozen)),
    ("seal", |a| lock(a, Integrity::Sealed)),
    ("isSealed", |a| is_locked(a, Integrity::Sealed)),
    ("preventExtensions", |a| lock(a, Integrity::NonExtensible)),
    ("isExtensible", |a| {
        b(
            matches!(arg(a, 0), Value::Obj(o) if o.integrity == Integrity::Extensible)
                || matches!(arg(a, 0), Value::Arr(_) | Value::Date(_)),
        )
    }),
    ("hasOwnProperty", has_own),
    ("isPrototypeOf", is_prototype_of),
    ("propertyIsEnumerable", is_enumerable),
];

fn get(a: &[Value]) -> Result<Value, String> {
    match arg(a, 0) {
        v if v.is_nullish() => Ok(Value::Undefined),
        v => js::get_property(v, arg(a, 1)),
    }
}

fn set(a: &[Value]) -> Result<Value, String> {
    let mut target = match arg(a, 0) {
        v if !js::to_boolean(v) => Value::Obj(Object::new()),
        v => v.clone(),
    };
    let key = js::property_key(arg(a, 1));
    set_in(&mut target, key, arg(a, 2).clone())?;
    Ok(target)
}

/// `target[key] = value`, in place (assign and defineProperties set many keys: copying
/// the target for each was quadratic).
fn set_in(target: &mut Value, key: String, value: Value) -> Result<(), String> {
    tick();
    match target {
        Value::Obj(o) => o.set(key, value)?,
        Value::Arr(items) => match array_index(&key) {
            Some(i) => {
                let i = i as usize;
                if i > 10_000_000 {
                    return Err("RangeError: hotmesh caps arrays at 10,000,000 elements".into());
                }
                // the holes are values too: counted before they are made
                check_bytes((i + 1).saturating_mul(VALUE_OVERHEAD))?;
                if i >= items.len() {
                    items.resize(i + 1, Value::Undefined);
                }
                items[i] = value;
            }
            None if key == "length" => {
                let len = js::to_number(&value);
                if len < 0.0 || len != len.trunc() || len > 1e7 {
                    return Err("RangeError: Invalid array length".into());
                }
                check_bytes((len as usize).saturating_mul(VALUE_OVERHEAD))?;
                items.resize(len as usize, Value::Undefined);
            }
            // named properties on arrays do not survive as JSON
            None => {}
        },
        Value::Date(_) => {}
        v => {
            return Err(format!(
                "Cannot create property '{key}' on {} '{}'",
                v.type_name(),
                js::to_string(v)
            ))
        }
    }
    Ok(())
}

fn create(a: &[Value]) -> Result<Value, String> {
    let mut o = Object::new();
    for pair in a.chunks(2) {
        o.props.insert(
            js::property_key(&pair[0]),
            pair.get(1).cloned().unwrap_or_default(),
        );
    }
    Ok(Value::Obj(o))
}

/// Own enumerable string keys (with `length` for getOwnPropertyNames of arrays and
/// strings). Primitives other than strings have none; so do falsy values, as the
/// wrapper's `obj && …` short-circuits.
fn own_keys(v: &Value, with_length: bool) -> Result<Vec<String>, String> {
    // a list's or a string's keys are made one per element: counted first
    let made = match v {
        Value::Arr(items) => items.len(),
        Value::Str(st) => st.encode_utf16().count(),
        _ => 0,
    };
    check_bytes(made.saturating_mul(VALUE_OVERHEAD + 12))?;
    let mut keys: Vec<String> = match v {
        Value::Obj(o) => o.keys().into_iter().cloned().collect(),
        Value::Arr(_) | Value::Str(_) => (0..made).map(|i| i.to_string()).collect(),
        _ => vec![],
    };
    if with_length && matches!(v, Value::Arr(_) | Value::Str(_)) {
        keys.push("length".into());
    }
    Ok(keys)
}

/// Whether `key` is an own property of a list or a string (its indices and `length`),
/// without listing them.
fn own_index_key(v: &Value, key: &str) -> bool {
    let len = match v {
        Value::Arr(items) => items.len(),
        Value::Str(st) => st.encode_utf16().count(),
        _ => return false,
    };
    key == "length" || array_index(key).is_some_and(|i| (i as usize) < len)
}

fn entries_of(v: &Value) -> Result<Vec<(String, Value)>, String> {
    if !js::to_boolean(v) {
        return Ok(vec![]);
    }
    let keys = own_keys(v, false)?;
    // every entry copies its value (a string's are one character each)
    let values = match v {
        Value::Str(_) => keys.len().saturating_mul(VALUE_OVERHEAD + 4),
        _ => value_size(v, MAX_VALUE_BYTES).map_err(|e| e.message(MAX_VALUE_BYTES))?,
    };
    check_bytes(
        keys.len()
            .saturating_mul(2 * VALUE_OVERHEAD + ENTRY_OVERHEAD + 12)
            .saturating_add(values),
    )?;
    let units: Vec<u16> = match v {
        Value::Str(st) => js::utf16(st),
        _ => vec![],
    };
    Ok(keys
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            tick();
            let val = match v {
                Value::Str(_) => Value::Str(js::from_utf16(&units[i..i + 1])),
                Value::Arr(items) => items[i].clone(),
                Value::Obj(o) => o.get(&k).cloned().unwrap_or_default(),
                _ => Value::Undefined,
            };
            (k, val)
        })
        .collect())
}

fn from_entries(a: &[Value]) -> Result<Value, String> {
    let Value::Arr(items) = arg(a, 0) else {
        return Err(format!("{} is not iterable", js::to_string(arg(a, 0))));
    };
    let mut o = Object::new();
    for item in items {
        tick();
        match item {
            Value::Arr(_) | Value::Obj(_) => {
                let k = js::get_property(item, &Value::Num(0.0))?;
                let v = js::get_property(item, &Value::Num(1.0))?;
                o.props.insert(js::property_key(&k), v);
            }
            other => {
                return Err(format!(
                    "Iterator value {} is not an entry object",
                    js::to_string(other)
                ))
            }
        }
    }
    Ok(Value::Obj(o))
}

/// `Object.assign(target || {}, ...sources)`: a list target takes index keys as
/// elements; a string target becomes its String object, whose characters are read-only;
/// a number or boolean becomes its wrapper object, which has no properties of its own.
fn assign(a: &[Value]) -> Result<Value, String> {
    let mut target = match arg(a, 0) {
        v if !js::to_boolean(v) => Value::Obj(Object::new()),
        Value::Str(st) => string_object(st)?,
        Value::Num(_) | Value::Bool(_) => Value::Obj(Object::new()),
        v => v.clone(),
    };
    let string = matches!(arg(a, 0), Value::Str(_));
    for src in a.iter().skip(1) {
        for (k, v) in entries_of(src)? {
            if string && own_index_key(arg(a, 0), &k) {
                return Err(format!(
                    "Cannot assign to read only property '{k}' of object"
                ));
            }
            set_in(&mut target, k, v)?;
        }
        check_bytes(value_size(&target, MAX_VALUE_BYTES).map_err(|e| e.message(MAX_VALUE_BYTES))?)?;
    }
    Ok(target)
}

/// A String object's enumerable own properties: its UTF-16 units by index.
fn string_object(st: &str) -> Result<Value, String> {
    let units = js::utf16(st);
    check_bytes(
        units
            .len()
            .saturating_mul(2 * VALUE_OVERHEAD + ENTRY_OVERHEAD + 12),
    )?;
    Ok(Value::obj(units.iter().enumerate().map(|(i, u)| {
        (i.to_string(), Value::Str(js::from_utf16(&[*u])))
    })))
}

fn require_object<'a>(v: &'a Value, method: &str) -> Result<&'a Value, String> {
    match v {
        Value::Obj(_) | Value::Arr(_) | Value::Date(_) => Ok(v),
        _ => Err(format!("Object.{method} called on non-object")),
    }
}

fn descriptor(a: &[Value]) -> Result<Value, String> {
    let target = match arg(a, 0) {
        Value::Undefined | Value::Null => return Ok(Value::Undefined),
        v => v,
    };
    let key = js::property_key(arg(a, 1));
    let own = match target {
        Value::Obj(o) => o.props.contains_key(&key),
        _ => own_index_key(target, &key),
    };
    if !own {
        return Ok(Value::Undefined);
    }
    let frozen = matches!(target, Value::Obj(o) if o.integrity == Integrity::Frozen)
        || matches!(target, Value::Str(_));
    let sealed = frozen || matches!(target, Value::Obj(o) if o.integrity == Integrity::Sealed);
    let length = key == "length" && matches!(target, Value::Arr(_) | Value::Str(_));
    Ok(Value::obj([
        (
            "value".to_string(),
            js::get_property(target, &Value::Str(key))?,
        ),
        ("writable".to_string(), Value::Bool(!frozen)),
        ("enumerable".to_string(), Value::Bool(!length)),
        ("configurable".to_string(), Value::Bool(!sealed && !length)),
    ]))
}

/// Object.defineProperty: an existing property takes the new value; a new one is
/// hidden (not enumerable, so absent from keys and JSON) unless the descriptor says
/// `enumerable: true`, as in JavaScript.
fn define_property(a: &[Value]) -> Result<Value, String> {
    let mut target = require_object(arg(a, 0), "defineProperty")?.clone();
    define_in(&mut target, js::property_key(arg(a, 1)), arg(a, 2))?;
    Ok(target)
}

/// Object.defineProperty on `target`, in place.
fn define_in(target: &mut Value, key: String, desc: &Value) -> Result<(), String> {
    let Value::Obj(desc) = desc else {
        return Err("Property description must be an object".into());
    };
    let value = desc.get("value").cloned().unwrap_or_default();
    let exists = matches!(&*target, Value::Obj(o) if o.props.contains_key(&key));
    let visible = desc.get("enumerable").is_some_and(js::to_boolean);
    if !exists && !visible {
        if let Value::Obj(o) = &*target {
            if o.integrity != Integrity::Extensible {
                return Err(format!(
                    "Cannot define property {key}, object is not extensible"
                ));
            }
        }
        return Ok(());
    }
    set_in(target, key, value)
}

fn define_properties(a: &[Value]) -> Result<Value, String> {
    let mut target = require_object(arg(a, 0), "defineProperties")?.clone();
    if arg(a, 1).is_nullish() {
        return Err("Cannot convert undefined or null to object".into());
    }
    for (k, d) in entries_of(arg(a, 1))? {
        define_in(&mut target, k, &d)?;
    }
    Ok(target)
}

fn lock(a: &[Value], level: Integrity) -> Result<Value, String> {
    Ok(match arg(a, 0) {
        Value::Obj(o) => {
            let mut o = o.clone();
            o.integrity = o.integrity.max(level);
            Value::Obj(o)
        }
        v => v.clone(),
    })
}

fn is_locked(a: &[Value], level: Integrity) -> Result<Value, String> {
    b(match arg(a, 0) {
        Value::Obj(o) => {
            o.integrity >= level || (o.props.is_empty() && o.integrity != Integrity::Extensible)
        }
        Value::Arr(_) | Value::Date(_) => false,
        _ => true,
    })
}

fn has_own(a: &[Value]) -> Result<Value, String> {
    let target = arg(a, 0);
    if target.is_nullish() {
        return Err(not_a_function(target, "hasOwnProperty"));
    }
    let key = js::property_key(arg(a, 1));
    b(match target {
        Value::Obj(o) => o.props.contains_key(&key),
        _ => own_index_key(target, &key),
    })
}

/// `Object.prototype.isPrototypeOf.call(obj, value)`: false for a primitive value before
/// obj is even looked at; otherwise a TypeError for no obj, and false, as plain data
/// never has another data value in its prototype chain.
fn is_prototype_of(a: &[Value]) -> Result<Value, String> {
    if !matches!(arg(a, 1), Value::Obj(_) | Value::Arr(_) | Value::Date(_)) {
        return b(false);
    }
    if arg(a, 0).is_nullish() {
        return Err("Cannot convert undefined or null to object".into());
    }
    b(false)
}

fn is_enumerable(a: &[Value]) -> Result<Value, String> {
    let key = js::property_key(arg(a, 1));
    if key == "length" && matches!(arg(a, 0), Value::Arr(_) | Value::Str(_)) {
        return b(false);
    }
    has_own(a)
}
