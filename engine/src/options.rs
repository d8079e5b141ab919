//! The options of `hotmesh.pub` and `hotmesh.interrupt`, and a stats query, one type each: the extension
//! reads the caller's JSON with [`PubOptions::from_json`] and
//! [`InterruptOptions::from_json`], the client builds the same types and sends
//! `to_json()`, and checks them with the same functions before anything is sent. The
//! option names, their defaults and their checks are written here once.

use crate::limits;
use serde_json::{json, Map, Value};

/// An option the caller got wrong: `name` is its path (`options.expire`), `problem`
/// what was wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionError {
    pub name: &'static str,
    pub problem: String,
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid argument {}: {}", self.name, self.problem)
    }
}

impl std::error::Error for OptionError {}

fn bad<T>(name: &'static str, problem: impl Into<String>) -> Result<T, OptionError> {
    Err(OptionError {
        name,
        problem: problem.into(),
    })
}

fn object<'a>(name: &'static str, v: &'a Value) -> Result<&'a Map<String, Value>, OptionError> {
    match v {
        Value::Object(m) => Ok(m),
        other => bad(name, format!("must be a JSON object, got {other}")),
    }
}

fn seconds(name: &'static str, v: &Value) -> Result<f64, OptionError> {
    match v.as_f64() {
        Some(s) => limits::seconds(s).or_else(|p| bad(name, p)),
        None => bad(name, format!("must be a number of seconds, got {v}")),
    }
}

/// A job's `expire`: seconds, or 0 or less for never.
fn expire(name: &'static str, v: &Value) -> Result<f64, OptionError> {
    match v.as_f64() {
        Some(s) => limits::expire(s).or_else(|p| bad(name, p)),
        None => bad(name, format!("must be a number of seconds, got {v}")),
    }
}

fn boolean(name: &'static str, v: &Value) -> Result<bool, OptionError> {
    v.as_bool()
        .map_or_else(|| bad(name, "must be true or false"), Ok)
}

/// Calls `read` with each option of the object `v`; `read` returns false for a name it
/// does not know, which is refused, naming the `known` ones.
fn each_option(
    v: &Value,
    known: &str,
    mut read: impl FnMut(&str, &Value) -> Result<bool, OptionError>,
) -> Result<(), OptionError> {
    let Value::Object(opts) = v else {
        return bad("options", "must be a JSON object");
    };
    for (k, v) in opts {
        if !read(k, v)? {
            return bad("options", format!("unknown option '{k}' (known: {known})"));
        }
    }
    Ok(())
}

/// A string option; any other JSON value is taken as its text (the original accepts
/// numbers for `entity` and `reason`).
fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// How a job starts (`hotmesh.pub`'s `options`).
///
/// ```
/// use hotmesh_engine::options::PubOptions;
/// let o = PubOptions::new().id("order-1").search("region", "eu");
/// assert_eq!(o.to_json()["id"], "order-1");
/// assert_eq!(PubOptions::from_json(&o.to_json()).unwrap(), o);
/// assert!(PubOptions::from_json(&serde_json::json!({"ttl": 5})).is_err());
/// // serde: the same JSON, with the same checks
/// let text = serde_json::to_string(&o).unwrap();
/// assert_eq!(serde_json::from_str::<PubOptions>(&text).unwrap(), o);
/// assert!(serde_json::from_str::<PubOptions>(r#"{"ttl": 5}"#).is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Value", into = "Value")]
#[non_exhaustive]
pub struct PubOptions {
    /// The job id (a live job with this id: "Duplicate job"); none: a new one.
    pub id: Option<String>,
    /// Create the job pending (status -1) for this many seconds.
    pub pending: Option<f64>,
    /// Search fields (what `signal_all` finds jobs by).
    pub search: Map<String, Value>,
    /// Markers (`-x` keys).
    pub marker: Map<String, Value>,
    /// The entity (MeshFlow's workflow entity name).
    pub entity: Option<String>,
    /// Seconds the job is kept after it completes (0 or less: never removed).
    pub expire: Option<f64>,
}

impl PubOptions {
    /// No options: a new job id, running at once, the graph's own expire.
    pub fn new() -> PubOptions {
        PubOptions::default()
    }

    /// The job id (a live job with this id: "Duplicate job").
    pub fn id(mut self, id: impl Into<String>) -> PubOptions {
        self.id = Some(id.into());
        self
    }

    /// Creates the job pending (status -1) for `d`: it starts when a signal wakes it.
    pub fn pending(mut self, d: std::time::Duration) -> PubOptions {
        self.pending = Some(d.as_secs_f64());
        self
    }

    /// Adds a search field.
    pub fn search(mut self, key: impl Into<String>, value: impl Into<Value>) -> PubOptions {
        self.search.insert(key.into(), value.into());
        self
    }

    /// Adds a marker (a `-x` key).
    pub fn marker(mut self, key: impl Into<String>, value: impl Into<Value>) -> PubOptions {
        self.marker.insert(key.into(), value.into());
        self
    }

    /// Sets the entity.
    pub fn entity(mut self, entity: impl Into<String>) -> PubOptions {
        self.entity = Some(entity.into());
        self
    }

    /// Keeps the job for `d` after it completes.
    pub fn expire(mut self, d: std::time::Duration) -> PubOptions {
        self.expire = Some(d.as_secs_f64());
        self
    }

    /// The option names, as errors list them.
    pub const NAMES: &'static str = "id, pending, search, marker, entity, expire";

    /// Reads and checks the options; an unknown name is refused.
    pub fn from_json(v: &Value) -> Result<PubOptions, OptionError> {
        let mut o = PubOptions::default();
        each_option(v, Self::NAMES, |k, v| {
            match k {
                "id" => match v {
                    Value::String(id) => o.id = Some(id.clone()),
                    Value::Null => {}
                    other => return bad("options.id", format!("must be a string, got {other}")),
                },
                "pending" => o.pending = Some(seconds("options.pending", v)?),
                "expire" => o.expire = Some(expire("options.expire", v)?),
                "entity" => o.entity = Some(text(v)),
                "search" => o.search = object("options.search", v)?.clone(),
                "marker" => {
                    o.marker = object("options.marker", v)?.clone();
                    if let Some(k) = o.marker.keys().find(|k| !k.starts_with('-')) {
                        return bad(
                            "options.marker",
                            format!("marker keys start with '-', got '{k}'"),
                        );
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(o)
    }

    /// The options as `hotmesh.pub` takes them (unset ones left out).
    ///
    /// ```
    /// use hotmesh_engine::options::PubOptions;
    /// assert_eq!(PubOptions::default().to_json(), serde_json::json!({}));
    /// ```
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        if let Some(v) = &self.id {
            o.insert("id".into(), v.clone().into());
        }
        if let Some(v) = self.pending {
            o.insert("pending".into(), v.into());
        }
        if !self.search.is_empty() {
            o.insert("search".into(), Value::Object(self.search.clone()));
        }
        if !self.marker.is_empty() {
            o.insert("marker".into(), Value::Object(self.marker.clone()));
        }
        if let Some(v) = &self.entity {
            o.insert("entity".into(), v.clone().into());
        }
        if let Some(v) = self.expire {
            o.insert("expire".into(), v.into());
        }
        Value::Object(o)
    }
}

/// How a job is interrupted (`hotmesh.interrupt`'s `options`).
///
/// ```
/// use hotmesh_engine::options::InterruptOptions;
/// let o = InterruptOptions::new().reason("cancelled").descend(true);
/// assert!(o.throw && o.code == 410);
/// assert_eq!(InterruptOptions::from_json(&o.to_json()).unwrap(), o);
/// let text = serde_json::to_string(&o).unwrap();
/// assert_eq!(serde_json::from_str::<InterruptOptions>(&text).unwrap(), o);
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Value", into = "Value")]
#[non_exhaustive]
pub struct InterruptOptions {
    /// The error's message.
    pub reason: Option<String>,
    /// Record an error on the job (the parent and waiters see it). Default true.
    pub throw: bool,
    /// The error's code, 100 to 999. Default 410.
    pub code: i64,
    /// Seconds to keep the job; none: its own expire.
    pub expire: Option<f64>,
    /// An already-ended job is not an error.
    pub suppress: bool,
    /// Interrupt its running child jobs too (the original parses but ignores this).
    pub descend: bool,
}

impl Default for InterruptOptions {
    fn default() -> Self {
        InterruptOptions {
            reason: None,
            throw: true,
            code: 410,
            expire: None,
            suppress: false,
            descend: false,
        }
    }
}

impl InterruptOptions {
    /// The defaults: an error (code 410) is recorded; an ended job is an error.
    pub fn new() -> InterruptOptions {
        InterruptOptions::default()
    }

    /// The error's message.
    pub fn reason(mut self, reason: impl Into<String>) -> InterruptOptions {
        self.reason = Some(reason.into());
        self
    }

    /// Whether an error is recorded on the job (default true).
    pub fn throw(mut self, throw: bool) -> InterruptOptions {
        self.throw = throw;
        self
    }

    /// The error's code, 100 to 999 (default 410).
    pub fn code(mut self, code: i64) -> InterruptOptions {
        self.code = code;
        self
    }

    /// Keeps the job for `d` (default: its own expire).
    pub fn expire(mut self, d: std::time::Duration) -> InterruptOptions {
        self.expire = Some(d.as_secs_f64());
        self
    }

    /// Whether an already-ended job is not an error.
    pub fn suppress(mut self, suppress: bool) -> InterruptOptions {
        self.suppress = suppress;
        self
    }

    /// Whether its running child jobs are interrupted too.
    pub fn descend(mut self, descend: bool) -> InterruptOptions {
        self.descend = descend;
        self
    }

    /// The option names, as errors list them.
    pub const NAMES: &'static str = "reason, throw, code, expire, suppress, descend";

    /// Reads and checks the options; an unknown name is refused.
    pub fn from_json(v: &Value) -> Result<InterruptOptions, OptionError> {
        let mut o = InterruptOptions::default();
        each_option(v, Self::NAMES, |k, v| {
            match k {
                "reason" => o.reason = Some(text(v)),
                "throw" => o.throw = boolean("options.throw", v)?,
                "code" => {
                    o.code = match v.as_i64().filter(|c| (100..=999).contains(c)) {
                        Some(c) => c,
                        None => {
                            return bad(
                                "options.code",
                                format!("must be a code between 100 and 999, got {v}"),
                            )
                        }
                    }
                }
                "expire" => o.expire = Some(expire("options.expire", v)?),
                "suppress" => o.suppress = boolean("options.suppress", v)?,
                "descend" => o.descend = boolean("options.descend", v)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(o)
    }

    /// The options as `hotmesh.interrupt` takes them (defaults left out).
    pub fn to_json(&self) -> Value {
        let d = InterruptOptions::default();
        let mut o = Map::new();
        if let Some(v) = &self.reason {
            o.insert("reason".into(), v.clone().into());
        }
        if self.throw != d.throw {
            o.insert("throw".into(), self.throw.into());
        }
        if self.code != d.code {
            o.insert("code".into(), self.code.into());
        }
        if let Some(v) = self.expire {
            o.insert("expire".into(), v.into());
        }
        if self.suppress != d.suppress {
            o.insert("suppress".into(), self.suppress.into());
        }
        if self.descend != d.descend {
            o.insert("descend".into(), self.descend.into());
        }
        Value::Object(o)
    }
}

impl From<InterruptOptions> for Value {
    fn from(o: InterruptOptions) -> Value {
        o.to_json()
    }
}

/// Options (de)serialize as the JSON the SQL functions take, read with the same checks.
impl TryFrom<Value> for InterruptOptions {
    type Error = OptionError;
    fn try_from(v: Value) -> Result<InterruptOptions, OptionError> {
        InterruptOptions::from_json(&v)
    }
}

impl From<PubOptions> for Value {
    fn from(o: PubOptions) -> Value {
        o.to_json()
    }
}

impl TryFrom<Value> for PubOptions {
    type Error = OptionError;
    fn try_from(v: Value) -> Result<PubOptions, OptionError> {
        PubOptions::from_json(&v)
    }
}

/// A report's question (the original's JobStatsInput): `data` resolves the key;
/// `range` (`30m`, `2h`, `7d`) with `end` (an ISO time or `NOW`) or `start`, or `start`
/// with `end`; `sparse` leaves the segments out; `scrub` (signals) removes what was read.
#[derive(Debug, Default)]
pub struct StatsQuery {
    pub data: Value,
    pub range: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub sparse: bool,
    pub scrub: bool,
}

impl StatsQuery {
    /// Reads a query; an unknown field is refused.
    pub fn from_json(v: &Value) -> Result<StatsQuery, OptionError> {
        let Value::Object(m) = v else {
            return bad("query", format!("must be a JSON object, got {v}"));
        };
        let text = |k: &str| -> Result<Option<String>, OptionError> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => bad("query", format!("{k} must be a string, got {other}")),
            }
        };
        for k in m.keys() {
            if !["data", "range", "start", "end", "sparse", "scrub"].contains(&k.as_str()) {
                return bad(
                    "query",
                    format!("unknown field '{k}' (known: data, range, start, end, sparse, scrub)"),
                );
            }
        }
        Ok(StatsQuery {
            data: m.get("data").cloned().unwrap_or_else(|| json!({})),
            range: text("range")?,
            start: text("start")?,
            end: text("end")?,
            sparse: m.get("sparse").and_then(Value::as_bool).unwrap_or(false),
            scrub: m.get("scrub").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// The query a `signal` activity's `resolver.maps` produce (`{data, range, start,
    /// end, scrub}`), its own `scrub` setting added.
    pub fn resolver(resolved: Option<Value>, scrub: bool) -> Result<StatsQuery, OptionError> {
        let mut m = match resolved {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        if scrub {
            m.insert("scrub".into(), true.into());
        }
        StatsQuery::from_json(&Value::Object(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pub_options_survive_the_trip_to_json_and_back() {
        let mut search = Map::new();
        search.insert("region".into(), "eu".into());
        let o = PubOptions {
            id: Some("a".into()),
            pending: Some(5.0),
            search,
            marker: [("-m".to_string(), json!(1))].into_iter().collect(),
            entity: Some("order".into()),
            expire: Some(-1.0),
        };
        assert_eq!(PubOptions::from_json(&o.to_json()).unwrap(), o);
    }

    #[test]
    fn an_unknown_pub_option_is_refused_with_the_known_names() {
        let e = PubOptions::from_json(&json!({"ttl": 5})).unwrap_err();
        assert_eq!(e.name, "options");
        assert!(e.problem.contains("'ttl'") && e.problem.contains(PubOptions::NAMES));
    }

    #[test]
    fn pub_option_values_are_checked_where_they_enter() {
        let err = |v| PubOptions::from_json(&v).unwrap_err().name;
        assert_eq!(err(json!({"id": 7})), "options.id");
        assert_eq!(err(json!({"pending": -1})), "options.pending");
        assert_eq!(err(json!({"expire": "soon"})), "options.expire");
        assert_eq!(err(json!({"search": [1]})), "options.search");
        assert_eq!(err(json!({"marker": {"m": 1}})), "options.marker");
        assert_eq!(err(json!([1])), "options");
        // a null id is no id; a number entity is taken as its text
        let o = PubOptions::from_json(&json!({"id": null, "entity": 5})).unwrap();
        assert_eq!((o.id, o.entity.as_deref()), (None, Some("5")));
    }

    #[test]
    fn interrupt_options_default_to_an_error_with_code_410_and_leave_defaults_unsent() {
        let d = InterruptOptions::from_json(&json!({})).unwrap();
        assert_eq!(d, InterruptOptions::default());
        assert_eq!(d.to_json(), json!({}));
        let o = InterruptOptions {
            throw: false,
            code: 499,
            suppress: true,
            descend: true,
            expire: Some(3.0),
            reason: Some("r".into()),
        };
        assert_eq!(InterruptOptions::from_json(&o.to_json()).unwrap(), o);
    }

    #[test]
    fn interrupt_option_values_are_checked() {
        let err = |v| InterruptOptions::from_json(&v).unwrap_err().name;
        assert_eq!(err(json!({"code": 1000})), "options.code");
        assert_eq!(err(json!({"throw": "yes"})), "options.throw");
        assert_eq!(err(json!({"descend": 1})), "options.descend");
        assert_eq!(err(json!({"force": true})), "options");
    }
}
