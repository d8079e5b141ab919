//! The mapping language, compiled. A map (`input.maps`, `job.maps`, a transition's
//! `actual`, …) is compiled once at deploy into an [`Expr`] tree whose references are
//! split paths and whose `{@group.name}` functions are resolved to code; a step only
//! walks the tree.
//!
//! Evaluation follows the original's Pipe: row 0 of a `@pipe` is a list of cells; each
//! later row calls its first cell with the previous row's values and appends its other
//! cells; a nested `@pipe` row is evaluated on its own and queued, and the next plain row
//! takes the queue as its arguments (fan-in); `@reduce` folds the previous row's first
//! value with `{$input}` `{$output}` `{$item}` `{$key}` `{$index}`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{EvalError, ManifestError};
use crate::functions::{self, Func};
use crate::guard::tick;
use crate::js;
use crate::limits::{
    json_size, value_size, Excess, ENTRY_OVERHEAD, MAX_EVAL_BYTES, MAX_VALUE_BYTES, VALUE_OVERHEAD,
};
use crate::value::{array_index, Object, Value};
use crate::yaml::{Kind, Node, MAX_DEPTH};

/// A resolved `{@group.name}`.
#[derive(Clone)]
pub struct Callee {
    pub name: Box<str>,
    pub f: Func,
}

impl std::fmt::Debug for Callee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{@{}}}", self.name)
    }
}

impl PartialEq for Callee {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Serialize for Callee {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for Callee {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        let f = functions::lookup(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown function {name}")))?;
        Ok(Callee {
            name: name.into(),
            f,
        })
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json()
            .unwrap_or(serde_json::Value::Null)
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Value::from_json(&serde_json::Value::deserialize(d)?))
    }
}

/// The reduce variables a context cell can name.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CtxVar {
    Input,
    Output,
    Item,
    Key,
    Index,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expr {
    /// A literal: a number, boolean, null, or a string that is not a reference.
    Lit(Value),
    /// `{root.a.b}`: root is an activity id, `$self` or `$job`.
    Ref(Vec<Box<str>>),
    /// `{$item.a}` and the other reduce variables.
    Ctx(CtxVar, Vec<Box<str>>),
    /// `{@group.name}` in a cell: called with no arguments.
    Call(Callee),
    Pipe(Pipe),
    /// A mapping of maps.
    Obj(Vec<(String, Expr)>),
    /// A list of maps.
    Arr(Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipe {
    pub rows: Vec<Row>,
    /// A `@reduce` body: its first row is already a function row.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reduce_body: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Row {
    /// Row 0: the cells, resolved.
    Cells(Vec<Expr>),
    /// A later row: call the head with the previous row's values, append the rest.
    Call(Head, Vec<Expr>),
    /// A nested `@pipe`, queued for the next row.
    Sub(Pipe),
    /// `@reduce` over the previous row.
    Reduce(Pipe),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    Func(Callee),
    Ctx(CtxVar, Vec<Box<str>>),
}

// ---------------------------------------------------------------------------------------
// compile

fn err(path: &str, node: &Node, message: impl Into<String>) -> ManifestError {
    ManifestError::invalid(path, node.line, message)
}

/// Compiles a map value (`maps.x`, `job.maps.y`, a `stats.id`, …): mappings are walked,
/// `{'@pipe': …}` becomes a pipe, lists stay lists, scalars are cells.
pub fn compile(node: &Node, path: &str) -> Result<Expr, ManifestError> {
    compile_map(node, path.to_string(), 0, &mut vec![])
}

/// Where a `{reference}` was written: the YAML path of its cell and its line.
///
/// Paths name every step: a mapping key is `.key`, a list item or a pipe row and cell is
/// `[i]`, and `@pipe` / `@reduce` are keys like any other, so the second cell of row 1 of
/// the pipe under `job.maps.total` is `job.maps.total.@pipe[1][1]`, and a pipe nested as
/// row 2 of it is `job.maps.total.@pipe[2].@pipe`.
#[derive(Debug, Clone, PartialEq)]
pub struct RefSite {
    pub path: String,
    pub line: usize,
    pub parts: Vec<Box<str>>,
}

/// [`compile`], also returning where each reference of the expression was written (in
/// the order they appear).
pub fn compile_sites(node: &Node, path: &str) -> Result<(Expr, Vec<RefSite>), ManifestError> {
    let mut sites = vec![];
    let e = compile_map(node, path.to_string(), 0, &mut sites)?;
    Ok((e, sites))
}

fn compile_map(
    node: &Node,
    path: String,
    depth: usize,
    sites: &mut Vec<RefSite>,
) -> Result<Expr, ManifestError> {
    tick();
    if depth > MAX_DEPTH {
        return Err(err(
            &path,
            node,
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    match &node.kind {
        Kind::Map(m) => {
            if let Some(p) = node.get("@pipe") {
                return Ok(Expr::Pipe(compile_pipe(
                    p,
                    format!("{path}.@pipe"),
                    false,
                    depth + 1,
                    sites,
                )?));
            }
            let mut out = Vec::with_capacity(m.len());
            for (k, v) in m {
                out.push((k.clone(), compile_map(v, join(&path, k), depth + 1, sites)?));
            }
            Ok(Expr::Obj(out))
        }
        Kind::Seq(items) => Ok(Expr::Arr(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| compile_map(v, format!("{path}[{i}]"), depth + 1, sites))
                .collect::<Result<_, _>>()?,
        )),
        _ => compile_cell(node, &path, sites),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn literal(node: &Node) -> Value {
    Value::from_json(&node.to_json())
}

/// A cell: a string may be a function, a context variable or a reference; anything
/// else (and objects inside pipe rows) is a literal.
fn compile_cell(node: &Node, path: &str, sites: &mut Vec<RefSite>) -> Result<Expr, ManifestError> {
    let Kind::Str(s) = &node.kind else {
        return Ok(Expr::Lit(literal(node)));
    };
    if !(s.starts_with('{') && s.ends_with('}') && s.len() >= 2) {
        return Ok(Expr::Lit(literal(node)));
    }
    let inner = &s[1..s.len() - 1];
    if let Some(name) = inner.strip_prefix('@') {
        return Ok(Expr::Call(callee(name, node, path)?));
    }
    if let Some((var, rest)) = ctx_var(inner) {
        return Ok(Expr::Ctx(var, split_path(rest, node, path, s)?));
    }
    let parts = split_path(inner, node, path, s)?;
    if !parts.is_empty() {
        sites.push(RefSite {
            path: path.to_string(),
            line: node.line,
            parts: parts.clone(),
        });
    }
    Ok(Expr::Ref(parts))
}

fn callee(name: &str, node: &Node, path: &str) -> Result<Callee, ManifestError> {
    match functions::lookup(name) {
        Some(f) => Ok(Callee {
            name: name.into(),
            f,
        }),
        None => Err(err(
            path,
            node,
            format!("unknown @pipe function {{@{name}}}"),
        )),
    }
}

/// `$item.a.b` → (Item, "a.b"); the original recognises these by prefix.
fn ctx_var(inner: &str) -> Option<(CtxVar, &str)> {
    for (name, v) in [
        ("$item", CtxVar::Item),
        ("$key", CtxVar::Key),
        ("$index", CtxVar::Index),
        ("$input", CtxVar::Input),
        ("$output", CtxVar::Output),
    ] {
        if let Some(rest) = inner.strip_prefix(name) {
            if rest.is_empty() {
                return Some((v, ""));
            }
            if let Some(r) = rest.strip_prefix('.') {
                return Some((v, r));
            }
        }
    }
    None
}

fn split_path(
    inner: &str,
    node: &Node,
    path: &str,
    whole: &str,
) -> Result<Vec<Box<str>>, ManifestError> {
    if inner.is_empty() {
        return Ok(vec![]);
    }
    if inner.contains(['{', '}']) {
        return Err(err(path, node, format!("malformed reference {whole}: one cell holds one {{reference}}; there is no string interpolation")));
    }
    let parts: Vec<Box<str>> = inner.split('.').map(Into::into).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(err(
            path,
            node,
            format!("malformed reference {whole}: empty path segment"),
        ));
    }
    if parts.iter().any(|p| p.chars().any(char::is_whitespace)) {
        return Err(err(
            path,
            node,
            format!("malformed reference {whole}: a path has no spaces"),
        ));
    }
    Ok(parts)
}

fn compile_pipe(
    node: &Node,
    path: String,
    reduce_body: bool,
    depth: usize,
    sites: &mut Vec<RefSite>,
) -> Result<Pipe, ManifestError> {
    tick();
    if depth > MAX_DEPTH {
        return Err(err(
            &path,
            node,
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let Some(rows) = node.as_seq() else {
        return Err(err(
            &path,
            node,
            format!("@pipe takes a list of rows, not {}", node.type_name()),
        ));
    };
    if rows.is_empty() {
        return Err(err(&path, node, "@pipe needs at least one row"));
    }
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let rpath = format!("{path}[{i}]");
        if let Some(sub) = row.get("@pipe") {
            out.push(Row::Sub(compile_pipe(
                sub,
                format!("{rpath}.@pipe"),
                false,
                depth + 1,
                sites,
            )?));
            continue;
        }
        if let Some(body) = row.get("@reduce") {
            if i == 0 && !reduce_body {
                return Err(err(
                    &rpath,
                    row,
                    "@reduce needs a row before it (the collection and the initial value)",
                ));
            }
            out.push(Row::Reduce(compile_pipe(
                body,
                format!("{rpath}.@reduce"),
                true,
                depth + 1,
                sites,
            )?));
            continue;
        }
        let Some(cells) = row.as_seq() else {
            return Err(err(
                &rpath,
                row,
                format!(
                    "a @pipe row is a list of cells, a @pipe or a @reduce, not {}",
                    row.type_name()
                ),
            ));
        };
        let function_row = i > 0 || reduce_body;
        if !function_row {
            out.push(Row::Cells(
                cells
                    .iter()
                    .enumerate()
                    .map(|(c, n)| compile_cell(n, &format!("{rpath}[{c}]"), sites))
                    .collect::<Result<_, _>>()?,
            ));
            continue;
        }
        let Some(first) = cells.first() else {
            return Err(err(
                &rpath,
                row,
                "this row needs a {@function} (or a context variable) in its first cell",
            ));
        };
        let head = match compile_cell(first, &format!("{rpath}[0]"), sites)? {
            Expr::Call(c) => Head::Func(c),
            Expr::Ctx(v, p) => Head::Ctx(v, p),
            _ => {
                return Err(err(
                    &format!("{rpath}[0]"),
                    first,
                    format!("the first cell of row {i} must be a {{@function}} or a context variable, not {}", describe(first)),
                ))
            }
        };
        let rest = cells[1..]
            .iter()
            .enumerate()
            .map(|(c, n)| compile_cell(n, &format!("{rpath}[{}]", c + 1), sites))
            .collect::<Result<_, _>>()?;
        out.push(Row::Call(head, rest));
    }
    Ok(Pipe {
        rows: out,
        reduce_body,
    })
}

fn describe(n: &Node) -> String {
    match &n.kind {
        Kind::Str(s) => format!("'{s}'"),
        _ => n.type_name().to_string(),
    }
}

impl Expr {
    /// Every reference in the expression (for dependency analysis and validation).
    pub fn refs(&self) -> Vec<&[Box<str>]> {
        let mut out = vec![];
        self.visit_refs(&mut |r| out.push(r));
        out
    }

    fn visit_refs<'a>(&'a self, f: &mut dyn FnMut(&'a [Box<str>])) {
        // compiled expressions are at most MAX_DEPTH deep
        tick();
        match self {
            Expr::Ref(p) => f(p),
            Expr::Pipe(p) => p.visit_refs(f),
            Expr::Obj(m) => m.iter().for_each(|(_, e)| e.visit_refs(f)),
            Expr::Arr(a) => a.iter().for_each(|e| e.visit_refs(f)),
            _ => {}
        }
    }

    /// A literal `true`/number/string, known without a context.
    pub fn as_literal(&self) -> Option<&Value> {
        match self {
            Expr::Lit(v) => Some(v),
            _ => None,
        }
    }
}

impl Pipe {
    fn visit_refs<'a>(&'a self, f: &mut dyn FnMut(&'a [Box<str>])) {
        tick();
        for row in &self.rows {
            match row {
                Row::Cells(c) | Row::Call(_, c) => c.iter().for_each(|e| e.visit_refs(f)),
                Row::Sub(p) | Row::Reduce(p) => p.visit_refs(f),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// evaluate

enum Resolved<'a> {
    Json(&'a serde_json::Value),
    Length(usize),
    Missing,
}

/// What references resolve against: the job context (`{metadata, data, <activity>: …}`)
/// and, for `$self`, the id of the activity being run.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub job: &'a serde_json::Value,
    pub self_id: Option<&'a str>,
}

impl<'a> Env<'a> {
    pub fn new(job: &'a serde_json::Value) -> Self {
        Env { job, self_id: None }
    }

    /// Resolves a reference by walking own properties, as the original's
    /// getNestedProperty does: arrays have their indices and `length`, and anything
    /// missing is undefined.
    pub fn resolve(&self, path: &[Box<str>]) -> Value {
        if let [.., last] = path {
            if &**last == "length" {
                // `length` of an array is a number that JSON does not hold
                if let Some(serde_json::Value::Array(a)) =
                    self.resolve_json(&path[..path.len() - 1])
                {
                    return Value::Num(a.len() as f64);
                }
            }
        }
        // a value nested past MAX_VALUE_DEPTH is not copied (the copy would recurse
        // once per level): it reads as undefined here, and is an error in a map
        self.resolve_json(path)
            .filter(|j| json_size(j, usize::MAX).is_ok())
            .map(Value::from_json)
            .unwrap_or_default()
    }

    /// What a reference points at, without copying it.
    fn resolve_json_or_length(&self, path: &[Box<str>]) -> Resolved<'a> {
        if let [.., last] = path {
            if &**last == "length" {
                if let Some(serde_json::Value::Array(a)) =
                    self.resolve_json(&path[..path.len() - 1])
                {
                    return Resolved::Length(a.len());
                }
            }
        }
        match self.resolve_json(path) {
            Some(j) => Resolved::Json(j),
            None => Resolved::Missing,
        }
    }

    /// The JSON a reference points at, if any (`length` of an array is not JSON: see
    /// [`Env::resolve`]).
    pub fn resolve_json(&self, path: &[Box<str>]) -> Option<&'a serde_json::Value> {
        let (root, rest) = path.split_first()?;
        let start = match (&**root, self.self_id) {
            ("$self", Some(id)) => self.job.get(id),
            ("$job", _) => self.job.get("$job").or(Some(self.job)),
            (r, _) => self.job.get(r),
        };
        let mut cur = start?;
        for part in rest {
            cur = match cur {
                serde_json::Value::Object(m) => m.get(&**part)?,
                serde_json::Value::Array(a) => a.get(array_index(part)? as usize)?,
                _ => return None,
            };
        }
        Some(cur)
    }
}

/// The reduce variables of the current iteration. They borrow the collection and the
/// accumulator: copying them per item made a fold quadratic.
struct Scope<'s> {
    input: &'s Value,
    output: &'s Value,
    item: std::borrow::Cow<'s, Value>,
    key: String,
    index: usize,
}

impl Scope<'_> {
    fn get(&self, var: CtxVar, path: &[Box<str>], b: &mut Budget) -> Result<Held, EvalError> {
        let base: &Value = match var {
            CtxVar::Input => self.input,
            CtxVar::Output => self.output,
            CtxVar::Item => &self.item,
            // a key or an index has no properties to walk
            CtxVar::Key => {
                return b.hold_value(if path.is_empty() {
                    Value::Str(self.key.clone())
                } else {
                    Value::Undefined
                })
            }
            CtxVar::Index => {
                return b.hold_value(if path.is_empty() {
                    Value::Num(self.index as f64)
                } else {
                    Value::Undefined
                })
            }
        };
        match walk(base, path) {
            Walked::At(v) => b.hold_copy(v),
            Walked::Length(n) => b.hold_value(Value::Num(n as f64)),
            Walked::Missing => b.hold_value(Value::Undefined),
        }
    }
}

enum Walked<'v> {
    At(&'v Value),
    Length(usize),
    Missing,
}

/// getNestedProperty over a [`Value`]: own properties of objects and arrays only.
fn walk<'v>(v: &'v Value, path: &[Box<str>]) -> Walked<'v> {
    let mut cur = v;
    for part in path {
        cur = match cur {
            Value::Obj(o) => match o.get(part) {
                Some(x) => x,
                None => return Walked::Missing,
            },
            Value::Arr(a) => {
                if &**part == "length" {
                    return Walked::Length(a.len());
                }
                match array_index(part).and_then(|i| a.get(i as usize)) {
                    Some(x) => x,
                    None => return Walked::Missing,
                }
            }
            _ => return Walked::Missing,
        };
    }
    Walked::At(cur)
}

/// Deepest an evaluation recurses (expressions within expressions): compiled maps are
/// at most MAX_DEPTH deep, so this is only reached by a hand-built tree.
pub const MAX_EVAL_DEPTH: usize = 2 * MAX_DEPTH + 16;

/// A value the evaluation holds, with its size (see [`crate::limits`]).
type Held = (Value, usize);

/// What one evaluation may still hold and how deep it is: every value a row, a field
/// or a list item holds is counted while it is held ([`MAX_EVAL_BYTES`]), and every
/// copy is priced before it is made.
struct Budget {
    live: usize,
    depth: usize,
}

impl Budget {
    fn new() -> Self {
        Budget { live: 0, depth: 0 }
    }

    #[inline]
    fn enter(&mut self) -> Result<(), EvalError> {
        tick();
        self.depth += 1;
        if self.depth > MAX_EVAL_DEPTH {
            return Err(EvalError {
                message: format!("the map is nested too deep (more than {MAX_EVAL_DEPTH} levels)"),
            });
        }
        Ok(())
    }

    #[inline]
    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// What may still be held.
    #[inline]
    fn room(&self) -> usize {
        MAX_EVAL_BYTES.saturating_sub(self.live)
    }

    #[inline]
    fn charge(&mut self, n: usize) -> Result<(), EvalError> {
        if n > self.room() {
            return Err(EvalError {
                message: format!(
                    "the map holds too much at once (over {MAX_EVAL_BYTES} bytes; at most {MAX_EVAL_BYTES})"
                ),
            });
        }
        self.live += n;
        Ok(())
    }

    #[inline]
    fn release(&mut self, n: usize) {
        self.live = self.live.saturating_sub(n);
    }

    fn excess(&self, e: Excess) -> EvalError {
        match e {
            Excess::Bytes(_) => EvalError {
                message: format!(
                    "the map holds too much at once ({}; at most {MAX_EVAL_BYTES} bytes)",
                    e.message(self.room())
                ),
            },
            Excess::Depth => e.eval_error(0),
        }
    }

    /// A value built here (small: literals, numbers, results already measured).
    #[inline]
    fn hold_value(&mut self, v: Value) -> Result<Held, EvalError> {
        let n = value_size(&v, self.room()).map_err(|e| self.excess(e))?;
        Ok((v, n))
    }

    /// A copy of a value, priced (and its depth checked) before it is made.
    #[inline]
    fn hold_copy(&mut self, v: &Value) -> Result<Held, EvalError> {
        let n = value_size(v, self.room()).map_err(|e| self.excess(e))?;
        Ok((v.clone(), n))
    }

    /// A copy of job context JSON as a value, priced before it is made.
    #[inline]
    fn hold_json(&mut self, j: &serde_json::Value) -> Result<Held, EvalError> {
        let n = json_size(j, self.room()).map_err(|e| self.excess(e))?;
        Ok((Value::from_json(j), n))
    }
}

impl Expr {
    /// Evaluates against a job context.
    pub fn eval(&self, env: &Env) -> Result<Value, EvalError> {
        let mut b = Budget::new();
        Ok(self.eval_in(env, None, &mut b)?.0)
    }

    /// Evaluates and converts to JSON (None when the result is undefined). Mappings,
    /// lists and references are built as JSON directly, without the intermediate
    /// [`Value`]: this is the per-step path.
    pub fn eval_json(&self, env: &Env) -> Result<Option<serde_json::Value>, EvalError> {
        let mut b = Budget::new();
        Ok(self.eval_json_in(env, &mut b)?.0)
    }

    fn eval_json_in(
        &self,
        env: &Env,
        b: &mut Budget,
    ) -> Result<(Option<serde_json::Value>, usize), EvalError> {
        b.enter()?;
        let out = match self {
            Expr::Ref(p) => match env.resolve_json(p) {
                Some(v) => {
                    // priced (and its depth checked) before the copy
                    let n = json_size(v, b.room()).map_err(|e| b.excess(e))?;
                    (Some(v.clone()), n)
                }
                // only an array's `length` exists without being JSON
                None if p.last().is_some_and(|l| &**l == "length") => {
                    (env.resolve(p).to_json(), VALUE_OVERHEAD)
                }
                None => (None, 0),
            },
            Expr::Obj(m) => {
                let mut out = serde_json::Map::new();
                let mut held = 0;
                for (k, e) in m {
                    let (v, n) = e.eval_json_in(env, b)?;
                    b.charge(n)?;
                    held += n;
                    if let Some(v) = v {
                        held += ENTRY_OVERHEAD + k.len();
                        out.insert(k.clone(), v);
                    }
                }
                b.release(held);
                (Some(serde_json::Value::Object(out)), held + VALUE_OVERHEAD)
            }
            Expr::Arr(a) => {
                let mut out = Vec::with_capacity(a.len());
                let mut held = 0;
                for e in a {
                    let (v, n) = e.eval_json_in(env, b)?;
                    b.charge(n)?;
                    held += n;
                    out.push(v.unwrap_or(serde_json::Value::Null));
                }
                b.release(held);
                (Some(serde_json::Value::Array(out)), held + VALUE_OVERHEAD)
            }
            _ => {
                let (v, n) = self.eval_in(env, None, b)?;
                (v.to_json(), n)
            }
        };
        b.leave();
        Ok(out)
    }

    fn eval_in(&self, env: &Env, scope: Option<&Scope>, b: &mut Budget) -> Result<Held, EvalError> {
        b.enter()?;
        let out = match self {
            Expr::Lit(v) => b.hold_copy(v)?,
            Expr::Ref(p) => match env.resolve_json_or_length(p) {
                Resolved::Json(j) => b.hold_json(j)?,
                Resolved::Length(n) => (Value::Num(n as f64), VALUE_OVERHEAD),
                Resolved::Missing => (Value::Undefined, VALUE_OVERHEAD),
            },
            Expr::Ctx(var, p) => match scope {
                Some(s) => s.get(*var, p, b)?,
                None => (Value::Undefined, VALUE_OVERHEAD),
            },
            Expr::Call(c) => call(c, &[])?,
            Expr::Pipe(p) => p.process(env, scope, None, b)?,
            Expr::Obj(m) => {
                let mut o = Object::new();
                o.props.reserve(m.len());
                let mut held = 0;
                for (k, e) in m {
                    let (v, n) = e.eval_in(env, scope, b)?;
                    b.charge(n)?;
                    held += n + ENTRY_OVERHEAD + k.len();
                    o.props.insert(k.clone(), v);
                }
                b.release(held);
                (Value::Obj(o), held + VALUE_OVERHEAD)
            }
            Expr::Arr(a) => {
                let mut out = Vec::with_capacity(a.len());
                let mut held = 0;
                for e in a {
                    let (v, n) = e.eval_in(env, scope, b)?;
                    b.charge(n)?;
                    held += n;
                    out.push(v);
                }
                b.release(held);
                (Value::Arr(out), held + VALUE_OVERHEAD)
            }
        };
        b.leave();
        Ok(out)
    }
}

fn fn_error(c: &Callee, message: String) -> EvalError {
    EvalError {
        message: format!("{{@{}}}: {message}", c.name),
    }
}

/// Calls a catalog function. The functions that can build more than their arguments
/// hold check the size before they allocate; the result is measured here too, so no
/// function hands on a value over [`MAX_VALUE_BYTES`] or deeper than MAX_VALUE_DEPTH.
fn call(c: &Callee, args: &[Value]) -> Result<Held, EvalError> {
    tick();
    let v = (c.f)(args).map_err(|m| fn_error(c, m))?;
    let n = value_size(&v, MAX_VALUE_BYTES).map_err(|e| fn_error(c, e.message(MAX_VALUE_BYTES)))?;
    Ok((v, n))
}

/// The values of a pipe row, with what they hold.
#[derive(Default)]
struct RowValues<'s> {
    values: std::borrow::Cow<'s, [Value]>,
    held: usize,
}

impl Pipe {
    fn cells(
        cells: &[Expr],
        env: &Env,
        scope: Option<&Scope>,
        out: &mut Vec<Value>,
        held: &mut usize,
        b: &mut Budget,
    ) -> Result<(), EvalError> {
        for c in cells {
            let (v, n) = c.eval_in(env, scope, b)?;
            b.charge(n)?;
            *held += n;
            out.push(v);
        }
        Ok(())
    }

    fn row(
        cells: &[Expr],
        first: Option<Held>,
        env: &Env,
        scope: Option<&Scope>,
        b: &mut Budget,
    ) -> Result<RowValues<'static>, EvalError> {
        let mut v = Vec::with_capacity(cells.len() + 1);
        let mut held = 0;
        if let Some((f, n)) = first {
            b.charge(n)?;
            held += n;
            v.push(f);
        }
        Self::cells(cells, env, scope, &mut v, &mut held, b)?;
        Ok(RowValues {
            values: std::borrow::Cow::Owned(v),
            held,
        })
    }

    /// Runs the rows. `seed` stands for row 0 (a `@reduce` body gets the accumulator,
    /// borrowed and already counted by the fold).
    fn process(
        &self,
        env: &Env,
        scope: Option<&Scope>,
        seed: Option<&[Value]>,
        b: &mut Budget,
    ) -> Result<Held, EvalError> {
        b.enter()?;
        let mut resolved: Option<RowValues> = seed.map(|s| RowValues {
            values: std::borrow::Cow::Borrowed(s),
            held: 0,
        });
        let mut rows = self.rows.iter();
        if resolved.is_none() {
            if let Some(Row::Cells(c)) = self.rows.first() {
                resolved = Some(Self::row(c, None, env, scope, b)?);
                rows.next();
            }
        }
        let mut queue: Vec<Value> = Vec::new();
        let mut queued = 0;
        for row in rows {
            tick();
            match row {
                Row::Sub(p) => {
                    let (v, n) = p.process(env, scope, None, b)?;
                    b.charge(n)?;
                    queued += n;
                    queue.push(v);
                }
                Row::Reduce(body) => {
                    let Some(prior) = resolved.take() else {
                        return Err(EvalError {
                            message: "@reduce has no row before it to fold".into(),
                        });
                    };
                    let folded = body.reduce(env, &prior.values, b)?;
                    b.release(prior.held);
                    b.charge(folded.1)?;
                    resolved = Some(RowValues {
                        values: std::borrow::Cow::Owned(vec![folded.0]),
                        held: folded.1,
                    });
                }
                Row::Cells(c) => {
                    let next = Self::row(c, None, env, scope, b)?;
                    if let Some(old) = resolved.replace(next) {
                        b.release(old.held);
                    }
                }
                Row::Call(head, rest) => {
                    let (args, held) = if queue.is_empty() {
                        let r = resolved.take().unwrap_or_default();
                        (r.values, r.held)
                    } else {
                        let held = std::mem::take(&mut queued);
                        (std::borrow::Cow::Owned(std::mem::take(&mut queue)), held)
                    };
                    let first = match head {
                        Head::Func(c) => call(c, &args)?,
                        Head::Ctx(var, p) => match scope {
                            Some(s) => s.get(*var, p, b)?,
                            None => (Value::Undefined, VALUE_OVERHEAD),
                        },
                    };
                    drop(args);
                    b.release(held);
                    if let Some(old) = resolved.take() {
                        b.release(old.held);
                    }
                    resolved = Some(Self::row(rest, Some(first), env, scope, b)?);
                }
            }
        }
        b.release(queued);
        let out = match resolved {
            Some(r) => {
                b.release(r.held);
                let first = match r.values {
                    std::borrow::Cow::Owned(v) => v.into_iter().next(),
                    std::borrow::Cow::Borrowed(v) => v.first().cloned(),
                };
                let first = first.unwrap_or_default();
                // it was held (or is a copy of the borrowed seed): measure it alone
                let n = value_size(&first, MAX_EVAL_BYTES).map_err(|e| b.excess(e))?;
                (first, n)
            }
            None => {
                return Err(EvalError {
                    message: "the @pipe ends in a nested @pipe: nothing takes its result".into(),
                })
            }
        };
        b.leave();
        Ok(out)
    }

    /// `@reduce`: folds `prior[0]` (an array, or an object's keys in order, or a
    /// string's UTF-16 units) starting from `prior[1]` (null when absent).
    fn reduce(&self, env: &Env, prior: &[Value], b: &mut Budget) -> Result<Held, EvalError> {
        let collection = prior.first().unwrap_or(&Value::Undefined);
        let mut acc = match prior.get(1) {
            None | Some(Value::Undefined) => Value::Null,
            Some(v) => v.clone(),
        };
        let mut acc_held = value_size(&acc, b.room()).map_err(|e| b.excess(e))?;
        b.charge(acc_held)?;
        let step = |index: usize,
                    key: String,
                    item: std::borrow::Cow<'_, Value>,
                    acc: &mut Value,
                    acc_held: &mut usize,
                    b: &mut Budget|
         -> Result<(), EvalError> {
            tick();
            let scope = Scope {
                input: collection,
                output: acc,
                item,
                key,
                index,
            };
            let (next, n) = self.process(env, Some(&scope), Some(std::slice::from_ref(acc)), b)?;
            drop(scope);
            b.release(*acc_held);
            b.charge(n)?;
            *acc = next;
            *acc_held = n;
            Ok(())
        };
        match collection {
            Value::Arr(a) => {
                for (i, v) in a.iter().enumerate() {
                    step(
                        i,
                        i.to_string(),
                        std::borrow::Cow::Borrowed(v),
                        &mut acc,
                        &mut acc_held,
                        b,
                    )?;
                }
            }
            Value::Obj(o) => {
                for (i, k) in o.keys().into_iter().enumerate() {
                    let item = std::borrow::Cow::Borrowed(&o.props[k]);
                    step(i, k.clone(), item, &mut acc, &mut acc_held, b)?;
                }
            }
            Value::Str(s) => {
                for (i, u) in s.encode_utf16().enumerate() {
                    let item = std::borrow::Cow::Owned(Value::Str(js::from_utf16(&[u])));
                    step(i, i.to_string(), item, &mut acc, &mut acc_held, b)?;
                }
            }
            _ => {}
        }
        b.release(acc_held);
        Ok((acc, acc_held))
    }
}

/// hotmesh.map's entry point: compile and evaluate one expression against a context.
pub fn map_once(
    expression: &serde_json::Value,
    context: &serde_json::Value,
) -> Result<Option<serde_json::Value>, String> {
    let node = Node::from_json(expression).map_err(|e| e.to_string())?;
    let expr = compile(&node, "expression").map_err(|e| e.to_string())?;
    expr.eval_json(&Env::new(context))
        .map_err(|e| e.to_string())
}
