//! Every bound this crate puts on its input and on what a map may build, in one place.
//!
//! The crate runs inside a Postgres backend, where a stack overflow or a failed
//! allocation takes the whole server down, and where a statement must stay
//! cancellable. So nothing here recurses deeper than a constant, nothing allocates
//! more than a constant allows (sizes are computed before the allocation), and every
//! loop whose length depends on the input calls [`crate::guard::tick`]. Each bound is
//! far above what a real app or map needs; going over it is an error that names the
//! limit, never a crash.
//!
//! Sizes are approximate heap bytes: a string's length, plus [`VALUE_OVERHEAD`] per
//! value and [`ENTRY_OVERHEAD`] plus the key's length per object property.

use crate::error::EvalError;
use crate::value::Value;

// ---- YAML / JSON documents (yaml.rs) --------------------------------------------------

/// Deepest nesting of a manifest document (and of an expression given as JSON).
pub const MAX_DEPTH: usize = 100;
/// Most nodes a document may have once its aliases are expanded.
pub const MAX_NODES: usize = 1_000_000;
/// Most bytes (scalars and keys, plus [`VALUE_OVERHEAD`] per node) a document may have
/// once its aliases are expanded: a few kilobytes of anchors can otherwise stand for
/// gigabytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 << 20;

// ---- manifests (manifest.rs) ----------------------------------------------------------

/// Most graphs in one app.
pub const MAX_GRAPHS: usize = 10_000;
/// Most activities in one app (all graphs together).
pub const MAX_ACTIVITIES: usize = 100_000;
/// Most transitions in one app (all graphs together).
pub const MAX_TRANSITIONS: usize = 200_000;
/// Longest path of transitions from a graph's trigger. Every step reads one row per
/// ancestor, and every activity keeps the list of its ancestors, so depth costs on
/// every step and in the compiled app.
pub const MAX_GRAPH_DEPTH: usize = 1_000;
/// Most ancestor entries of all activities of an app together (the compiled app lists
/// each activity's ancestors: a long chain makes that quadratic).
pub const MAX_ANCESTOR_ENTRIES: usize = 2_000_000;
/// Longest activity id, in bytes.
pub const MAX_ACTIVITY_ID_BYTES: usize = 255;
/// Most warnings a deploy reports (the rest are counted in one last warning).
pub const MAX_WARNINGS: usize = 100;

// ---- evaluation (expr.rs and functions/) ----------------------------------------------

/// Largest value one function call may produce (a string, list or object).
pub const MAX_VALUE_BYTES: usize = 64 << 20;
/// Most bytes one evaluation of a map may hold at once (the values of its pending rows,
/// fields and list items, copies of the job context included).
pub const MAX_EVAL_BYTES: usize = 256 << 20;
/// Deepest nesting of a value a map reads from the job context or builds.
pub const MAX_VALUE_DEPTH: usize = 128;
/// Longest regular expression `{@string.search}` takes, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1_000;

/// What a value costs besides its string bytes.
pub const VALUE_OVERHEAD: usize = 32;
/// What an object property costs besides its key's bytes and its value.
pub const ENTRY_OVERHEAD: usize = 40;

/// The error for a value over [`MAX_VALUE_BYTES`] (or another byte limit).
pub fn too_large(bytes: usize, limit: usize) -> String {
    format!("value too large ({bytes} bytes; at most {limit})")
}

/// The error for a value nested over [`MAX_VALUE_DEPTH`].
pub fn too_deep() -> String {
    format!("value nested too deep (more than {MAX_VALUE_DEPTH} levels)")
}

/// Checks a size computed before allocating (`bytes` may be an estimate that rounds
/// up): over `MAX_VALUE_BYTES` is an error.
pub fn check_bytes(bytes: usize) -> Result<(), String> {
    if bytes > MAX_VALUE_BYTES {
        Err(too_large(bytes, MAX_VALUE_BYTES))
    } else {
        Ok(())
    }
}

/// Why a walked value is refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Excess {
    /// At least this many bytes (the walk stops at the first byte over the cap).
    Bytes(usize),
    Depth,
}

impl Excess {
    pub fn message(self, cap: usize) -> String {
        match self {
            Excess::Bytes(n) => format!("value too large (at least {n} bytes; at most {cap})"),
            Excess::Depth => too_deep(),
        }
    }

    pub fn eval_error(self, cap: usize) -> EvalError {
        EvalError {
            message: self.message(cap),
        }
    }
}

/// A value's size, walked without recursion; stops (with an error) as soon as the size
/// passes `cap` or the nesting passes [`MAX_VALUE_DEPTH`], so its cost is bounded by
/// `cap` whatever the value.
#[inline]
pub fn value_size(v: &Value, cap: usize) -> Result<usize, Excess> {
    // most values a map handles are scalars: no walk (this runs per step)
    match v {
        Value::Arr(_) | Value::Obj(_) => walk_size(v, cap),
        _ => scalar_size(v.own_bytes(), cap),
    }
}

/// [`value_size`] for JSON (the job context a reference reads).
#[inline]
pub fn json_size(v: &serde_json::Value, cap: usize) -> Result<usize, Excess> {
    match v {
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => walk_size(v, cap),
        _ => scalar_size(v.own_bytes(), cap),
    }
}

fn scalar_size(own: usize, cap: usize) -> Result<usize, Excess> {
    let n = VALUE_OVERHEAD + own;
    if n > cap {
        Err(Excess::Bytes(n))
    } else {
        Ok(n)
    }
}

/// A tree that can be priced: the crate's [`Value`] and JSON, walked the same way.
trait Priced: Sized {
    /// Bytes of its own (a string's length), besides [`VALUE_OVERHEAD`].
    fn own_bytes(&self) -> usize;
    /// Pushes its children with `depth`; returns what their keys cost.
    fn push_children<'a>(&'a self, stack: &mut Vec<(&'a Self, usize)>, depth: usize) -> usize;
}

impl Priced for Value {
    fn own_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            _ => 0,
        }
    }

    fn push_children<'a>(&'a self, stack: &mut Vec<(&'a Self, usize)>, depth: usize) -> usize {
        match self {
            Value::Arr(a) => {
                stack.extend(a.iter().map(|e| (e, depth)));
                0
            }
            Value::Obj(o) => o
                .props
                .iter()
                .map(|(k, e)| {
                    stack.push((e, depth));
                    ENTRY_OVERHEAD + k.len()
                })
                .sum(),
            _ => 0,
        }
    }
}

impl Priced for serde_json::Value {
    fn own_bytes(&self) -> usize {
        match self {
            serde_json::Value::String(s) => s.len(),
            _ => 0,
        }
    }

    fn push_children<'a>(&'a self, stack: &mut Vec<(&'a Self, usize)>, depth: usize) -> usize {
        match self {
            serde_json::Value::Array(a) => {
                stack.extend(a.iter().map(|e| (e, depth)));
                0
            }
            serde_json::Value::Object(o) => o
                .iter()
                .map(|(k, e)| {
                    stack.push((e, depth));
                    ENTRY_OVERHEAD + k.len()
                })
                .sum(),
            _ => 0,
        }
    }
}

fn walk_size<T: Priced>(v: &T, cap: usize) -> Result<usize, Excess> {
    let mut total = 0usize;
    let mut stack: Vec<(&T, usize)> = vec![(v, 0)];
    let mut steps = 0usize;
    while let Some((v, depth)) = stack.pop() {
        steps += 1;
        if steps.is_multiple_of(1024) {
            crate::guard::tick();
        }
        if depth > MAX_VALUE_DEPTH {
            return Err(Excess::Depth);
        }
        total += VALUE_OVERHEAD + v.own_bytes() + v.push_children(&mut stack, depth + 1);
        if total > cap {
            return Err(Excess::Bytes(total));
        }
    }
    Ok(total)
}

/// Takes a value apart without recursion: dropping a deep tree the ordinary way
/// recurses once per level. Values this crate builds are never deep enough for that to
/// matter; this is for the ones it refuses and for tests.
pub fn drop_json(v: serde_json::Value) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Array(a) => stack.extend(a),
            serde_json::Value::Object(o) => stack.extend(o.into_iter().map(|(_, e)| e)),
            _ => {}
        }
    }
}
