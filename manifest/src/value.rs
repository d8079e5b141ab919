//! The values a map works on. JSON cannot hold everything the original's JavaScript
//! functions produce (`undefined`, `NaN`, dates), so maps evaluate over this model and
//! convert to JSON at the end, the way `JSON.stringify` would.

use indexmap::IndexMap;

/// How far an object has been locked by `object.freeze` / `seal` / `preventExtensions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Integrity {
    #[default]
    Extensible,
    NonExtensible,
    Sealed,
    Frozen,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object {
    pub props: IndexMap<String, Value>,
    pub integrity: Integrity,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Value>),
    Obj(Object),
    /// A JavaScript Date: milliseconds since the epoch, NaN when invalid.
    Date(f64),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Num(n)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// A property name JavaScript orders first: a canonical array index.
pub fn array_index(key: &str) -> Option<u32> {
    let b = key.as_bytes();
    if b.is_empty()
        || b.len() > 10
        || (b.len() > 1 && b[0] == b'0')
        || !b.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    key.parse::<u64>()
        .ok()
        .filter(|n| *n < u32::MAX as u64)
        .map(|n| n as u32)
}

impl Object {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, Value)>) -> Self {
        Object {
            props: pairs.into_iter().collect(),
            integrity: Integrity::Extensible,
        }
    }

    /// Keys in JavaScript's enumeration order: array indices ascending, then the rest
    /// in insertion order.
    pub fn keys(&self) -> Vec<&String> {
        let mut idx: Vec<(u32, &String)> = self
            .props
            .keys()
            .filter_map(|k| array_index(k).map(|i| (i, k)))
            .collect();
        if idx.is_empty() {
            return self.props.keys().collect();
        }
        idx.sort_by_key(|(i, _)| *i);
        let mut out: Vec<&String> = idx.into_iter().map(|(_, k)| k).collect();
        out.extend(self.props.keys().filter(|k| array_index(k).is_none()));
        out
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.props.get(key)
    }

    /// Assignment as in strict-mode JavaScript: a frozen object refuses any write, a
    /// non-extensible one refuses new keys.
    pub fn set(&mut self, key: String, value: Value) -> Result<(), String> {
        match self.integrity {
            Integrity::Frozen => {
                return Err(format!(
                    "Cannot assign to read only property '{key}' of object"
                ));
            }
            Integrity::Sealed | Integrity::NonExtensible if !self.props.contains_key(&key) => {
                return Err(format!(
                    "Cannot add property {key}, object is not extensible"
                ));
            }
            _ => {}
        }
        self.props.insert(key, value);
        Ok(())
    }
}

impl Value {
    pub fn obj(pairs: impl IntoIterator<Item = (String, Value)>) -> Value {
        Value::Obj(Object::from_pairs(pairs))
    }

    pub fn is_nullish(&self) -> bool {
        matches!(self, Value::Undefined | Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Num(_) => "number",
            Value::Str(_) => "string",
            Value::Arr(_) => "array",
            Value::Obj(_) => "object",
            Value::Date(_) => "date",
        }
    }

    /// From JSON. Every number becomes a double, as in JavaScript.
    pub fn from_json(j: &serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Num(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(a) => Value::Arr(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => {
                Value::obj(o.iter().map(|(k, v)| (k.clone(), Value::from_json(v))))
            }
        }
    }

    /// To JSON, as `JSON.parse(JSON.stringify(v))` would give: `undefined` has no JSON
    /// (None at the top, dropped from objects, `null` in arrays), non-finite numbers
    /// become `null`, dates their ISO string (`null` when invalid).
    pub fn to_json(&self) -> Option<serde_json::Value> {
        Some(match self {
            Value::Undefined => return None,
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Num(n) => number_to_json(*n),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Arr(a) => serde_json::Value::Array(
                a.iter()
                    .map(|v| v.to_json().unwrap_or(serde_json::Value::Null))
                    .collect(),
            ),
            Value::Obj(o) => {
                let mut m = serde_json::Map::with_capacity(o.props.len());
                for k in o.keys() {
                    if let Some(v) = o.props[k].to_json() {
                        m.insert(k.clone(), v);
                    }
                }
                serde_json::Value::Object(m)
            }
            Value::Date(t) => match crate::date::iso_string(*t) {
                Some(s) => serde_json::Value::String(s),
                None => serde_json::Value::Null,
            },
        })
    }
}

/// A double as JSON: integers stay integers (`3`, not `3.0`), non-finite becomes null.
pub fn number_to_json(n: f64) -> serde_json::Value {
    if !n.is_finite() {
        return serde_json::Value::Null;
    }
    if n == n.trunc() && n.abs() < 9_007_199_254_740_992.0 {
        return serde_json::Value::from(n as i64);
    }
    serde_json::Number::from_f64(n)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}
