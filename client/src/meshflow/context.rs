//! Inside a workflow function: the [`Context`] and its durable operations. Each call
//! takes the next index at once (when it is made, not when it is awaited, so operations
//! joined together keep their call order), then looks the index up in the journal: a
//! recorded result is returned at once; none yet registers a command and the future
//! stays pending, which ends the run (the worker answers with the commands); a different
//! recorded operation stops the workflow with a [`NonDeterminism`] error.

use super::duration::Span;
use super::journal::{Check, Command, Entry, Kind, NonDeterminism, Replay};
use super::{ActivityError, WorkflowError};
use crate::RetryPolicy;
use chrono::{DateTime, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a run stopped without an answer of its own.
#[derive(Clone, Debug)]
pub(crate) enum Stop {
    NonDeterminism(NonDeterminism),
    /// An operation's arguments were unusable (a duration that does not read, an input
    /// that does not serialize): the workflow fails with 598.
    Invalid(String),
}

pub(crate) struct State {
    pub workflow_id: String,
    pub workflow_name: String,
    pub task_queue: String,
    pub generation: u32,
    pub attempt: i32,
    pub counter: u32,
    pub replay: Replay,
    pub commands: Vec<Command>,
    pub stop: Option<Stop>,
    /// Marks this run writes itself (search operations).
    pub marks: Map<String, Value>,
    /// The job's search fields as this run sees them, and those it changed.
    pub search: Map<String, Value>,
    pub search_out: Map<String, Value>,
    pub started_ms: i64,
}

/// A workflow's view of itself and its durable operations. Cheap to clone; every clone
/// is the same run.
///
/// Everything a workflow does that is not a pure computation goes through it (or an
/// activity): the function runs again from the top after each result, and what it asks
/// for must come in the same order each time.
#[derive(Clone)]
pub struct Context {
    s: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.s.lock().unwrap();
        f.debug_struct("Context")
            .field("workflow_id", &s.workflow_id)
            .field("generation", &s.generation)
            .field("counter", &s.counter)
            .finish()
    }
}

/// How an activity runs: its retry policy, its start-to-close timeout and its task
/// queue (the original's `proxyActivities` options).
///
/// ```
/// use hotmesh_client::meshflow::ActivityOptions;
/// use hotmesh_client::RetryPolicy;
/// use std::time::Duration;
/// let o = ActivityOptions::new()
///     .retry(RetryPolicy::new(3).backoff_coefficient(2.0).maximum_interval(Duration::from_secs(10)))
///     .start_to_close(Duration::from_secs(30));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ActivityOptions {
    /// The retry policy; none: [`ActivityOptions::default_retry`].
    pub retry: Option<RetryPolicy>,
    /// The longest one attempt may run; an attempt past it counts as failed (code 596).
    pub start_to_close: Option<Duration>,
    /// The task queue whose workers run the activity (none: the workflow's).
    pub task_queue: Option<String>,
}

impl ActivityOptions {
    /// The defaults.
    pub fn new() -> ActivityOptions {
        ActivityOptions::default()
    }

    /// Sets the retry policy.
    pub fn retry(mut self, p: RetryPolicy) -> ActivityOptions {
        self.retry = Some(p);
        self
    }

    /// Sets the start-to-close timeout.
    pub fn start_to_close(mut self, d: Duration) -> ActivityOptions {
        self.start_to_close = Some(d);
        self
    }

    /// Runs the activity on another task queue's workers.
    pub fn task_queue(mut self, q: impl Into<String>) -> ActivityOptions {
        self.task_queue = Some(q.into());
        self
    }

    /// The original's Durable defaults: 50 attempts, coefficient 5, at most 120 s
    /// apart, 1 s initial interval: attempt `k` waits `min(1 s · 5^k, 120 s)`.
    ///
    /// ```
    /// use hotmesh_client::meshflow::ActivityOptions;
    /// use std::time::Duration;
    /// let p = ActivityOptions::default_retry();
    /// assert_eq!(p.delay_before(1), Some(Duration::from_secs(5)));
    /// assert_eq!(p.delay_before(3), Some(Duration::from_secs(120)));
    /// assert_eq!(p.delay_before(50), None);
    /// ```
    pub fn default_retry() -> RetryPolicy {
        RetryPolicy::new(50)
            .backoff_coefficient(5.0)
            .maximum_interval(Duration::from_secs(120))
            .initial_interval(Duration::from_secs(1))
    }
}

/// A child workflow to run: its workflow name, input, and optionally its id and task
/// queue (the original's `executeChild`/`startChild` options).
///
/// ```
/// use hotmesh_client::meshflow::ChildOptions;
/// let c = ChildOptions::new("ship").args(serde_json::json!({"order": 7})).workflow_id("ship-7");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChildOptions {
    /// The workflow function's name.
    pub workflow_name: String,
    /// Its input.
    pub args: Value,
    /// Its id (none: `<parent id>-<name>-<index>`, the same on every replay).
    pub workflow_id: Option<String>,
    /// Its task queue (none: the parent's).
    pub task_queue: Option<String>,
}

impl ChildOptions {
    /// A child running workflow `workflow_name` with no input.
    pub fn new(workflow_name: impl Into<String>) -> ChildOptions {
        ChildOptions {
            workflow_name: workflow_name.into(),
            args: Value::Null,
            workflow_id: None,
            task_queue: None,
        }
    }

    /// Sets its input (anything that serializes; one that does not fails the workflow).
    pub fn args(mut self, input: impl Serialize) -> ChildOptions {
        self.args = serde_json::to_value(input).unwrap_or(Value::Null);
        self
    }

    /// Sets its workflow id.
    pub fn workflow_id(mut self, id: impl Into<String>) -> ChildOptions {
        self.workflow_id = Some(id.into());
        self
    }

    /// Sets its task queue.
    pub fn task_queue(mut self, q: impl Into<String>) -> ChildOptions {
        self.task_queue = Some(q.into());
        self
    }
}

/// An activity call, ready to await (the original's proxied function call).
#[must_use = "an activity runs when awaited"]
pub struct ActivityCall<O> {
    ctx: Context,
    index: u32,
    name: String,
    input: Result<Value, String>,
    options: ActivityOptions,
    out: PhantomData<fn() -> O>,
}

impl<O> ActivityCall<O> {
    /// Sets its retry policy.
    pub fn retry(mut self, p: RetryPolicy) -> Self {
        self.options.retry = Some(p);
        self
    }

    /// Sets its start-to-close timeout.
    pub fn start_to_close(mut self, d: Duration) -> Self {
        self.options.start_to_close = Some(d);
        self
    }
}

impl<O: DeserializeOwned + Send + 'static> IntoFuture for ActivityCall<O> {
    type Output = Result<O, ActivityError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let ActivityCall {
                ctx,
                index,
                name,
                input,
                options,
                ..
            } = self;
            let arguments = match input {
                Ok(v) => v,
                Err(e) => return ctx.invalid(format!("activity {name}: {e}")).await,
            };
            let cmd = Command::Proxy {
                index,
                name: name.clone(),
                arguments,
                retry: options.retry.map(|p| p.to_json()).unwrap_or(Value::Null),
                start_to_close: options.start_to_close.map(|d| d.as_secs_f64()),
                task_queue: options.task_queue.unwrap_or_default(),
            };
            let e = ctx.op(index, Kind::Proxy, &name, cmd).await;
            if let Some(err) = e.error {
                return Err(ActivityError::from_json(&name, &err));
            }
            serde_json::from_value(e.data).map_err(|x| ActivityError {
                code: 598,
                message: format!(
                    "activity {name}: the result does not read as the type asked for: {x}"
                ),
                data: Value::Null,
            })
        })
    }
}

/// Activities with shared options (the original's `proxyActivities`).
///
/// ```no_run
/// # async fn demo(ctx: hotmesh_client::meshflow::Context) -> Result<(), hotmesh_client::meshflow::WorkflowError> {
/// use hotmesh_client::meshflow::ActivityOptions;
/// let acts = ctx.proxy_activities(ActivityOptions::new().start_to_close(std::time::Duration::from_secs(5)));
/// let total: i64 = acts.call("sum", (1, 2)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Activities {
    ctx: Context,
    options: ActivityOptions,
}

impl Activities {
    /// Calls activity `name` with `input`.
    pub fn call<O>(&self, name: &str, input: impl Serialize) -> ActivityCall<O> {
        let mut c = self.ctx.activity(name, input);
        c.options = self.options.clone();
        c
    }
}

/// The job's search fields, read and written from a workflow (the original's
/// `workflow.search()`): each call is recorded, so a replay neither writes twice nor reads
/// a later value. They are the job's `search` column: `SELECT search FROM hotmesh.jobs`.
#[derive(Clone, Debug)]
pub struct Search {
    ctx: Context,
}

impl Search {
    /// Sets `field` to `value`.
    pub fn set(&self, field: &str, value: impl Into<Value>) {
        let v = value.into();
        self.ctx.search_op(field, move |_| v);
    }

    /// The value of `field` (null if unset).
    pub fn get(&self, field: &str) -> Value {
        self.ctx.search_read(field)
    }

    /// Multiplies `field` (unset: 0) by `by` and returns the product.
    pub fn mult(&self, field: &str, by: f64) -> f64 {
        self.arith(field, move |n| n * by)
    }

    /// Clears `field` (it reads as null).
    pub fn del(&self, field: &str) {
        self.ctx.search_op(field, |_| Value::Null);
    }

    /// Adds `by` to `field` (unset: 0) and returns the sum.
    pub fn incr(&self, field: &str, by: f64) -> f64 {
        self.arith(field, move |n| n + by)
    }

    /// Sets `field` to `f` of its number (unset or not a number: 0); returns it.
    fn arith(&self, field: &str, f: impl FnOnce(f64) -> f64) -> f64 {
        let v = self.ctx.search_op(field, move |old| {
            let n = old.and_then(|o| match o {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            });
            let r = f(n.unwrap_or(0.0));
            // whole numbers stay integers: `3`, not `3.0`, in the job's search column
            if r.fract() == 0.0 && r.abs() < 9e15 {
                json!(r as i64)
            } else {
                json!(r)
            }
        });
        v.as_f64().unwrap_or(0.0)
    }
}

impl Context {
    pub(crate) fn new(state: State) -> Context {
        Context {
            s: Arc::new(Mutex::new(state)),
        }
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.s.lock().unwrap())
    }

    /// This workflow's id (its job id).
    pub fn workflow_id(&self) -> String {
        self.with(|s| s.workflow_id.clone())
    }

    /// This workflow's name.
    pub fn workflow_name(&self) -> String {
        self.with(|s| s.workflow_name.clone())
    }

    /// Its task queue.
    pub fn task_queue(&self) -> String {
        self.with(|s| s.task_queue.clone())
    }

    /// How many times it continued as new (0 for the first run).
    pub fn generation(&self) -> u32 {
        self.with(|s| s.generation)
    }

    /// How many results this generation has recorded: when it grows large (thousands),
    /// [`continue_as_new`](Self::continue_as_new) starts a fresh journal (each run replays
    /// the whole of it).
    pub fn history_len(&self) -> usize {
        self.with(|s| s.replay.len())
    }

    /// Whether this run is replaying recorded results (false once it is past the last).
    pub fn replaying(&self) -> bool {
        self.with(|s| s.counter < s.replay.last_index())
    }

    fn claim(&self) -> u32 {
        self.with(|s| {
            s.counter += 1;
            s.counter
        })
    }

    /// Calls activity `name` with `input` under the default options; see
    /// [`ActivityCall`] and [`proxy_activities`](Self::proxy_activities). The result is
    /// recorded once; a replay returns it without running the activity again.
    ///
    /// ```no_run
    /// # async fn demo(ctx: hotmesh_client::meshflow::Context) -> Result<(), hotmesh_client::meshflow::WorkflowError> {
    /// let receipt: serde_json::Value = ctx.activity("charge", serde_json::json!({"amount": 5})).await?;
    /// # Ok(()) }
    /// ```
    pub fn activity<O>(&self, name: &str, input: impl Serialize) -> ActivityCall<O> {
        ActivityCall {
            index: self.claim(),
            ctx: self.clone(),
            name: name.to_string(),
            input: serde_json::to_value(input).map_err(|e| e.to_string()),
            options: ActivityOptions::default(),
            out: PhantomData,
        }
    }

    /// Activities sharing `options`.
    pub fn proxy_activities(&self, options: ActivityOptions) -> Activities {
        Activities {
            ctx: self.clone(),
            options,
        }
    }

    /// Sleeps for `d`: a [`Duration`] or a human string (`"1 week"`, `"2 hours"`). The
    /// timer is the engine's: no process waits meanwhile.
    ///
    /// ```no_run
    /// # async fn demo(ctx: hotmesh_client::meshflow::Context) -> Result<(), hotmesh_client::meshflow::WorkflowError> {
    /// ctx.sleep_for("30 minutes").await?;
    /// ctx.sleep_for(std::time::Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    pub fn sleep_for(
        &self,
        d: impl Into<Span>,
    ) -> impl Future<Output = Result<(), WorkflowError>> + Send + 'static {
        let (index, ctx, span) = (self.claim(), self.clone(), d.into());
        async move {
            let seconds = match span.seconds() {
                Ok(s) => s,
                Err(e) => return ctx.invalid(e).await,
            };
            let cmd = Command::Sleep { index, seconds };
            ctx.op(index, Kind::Sleep, "", cmd).await;
            Ok(())
        }
    }

    /// Waits for signal `signal` ([`Client::signal`](super::Client::signal)) and returns
    /// its data. A signal sent before the wait began is kept (10 minutes) and delivered
    /// when it begins.
    ///
    /// ```no_run
    /// # async fn demo(ctx: hotmesh_client::meshflow::Context) -> Result<(), hotmesh_client::meshflow::WorkflowError> {
    /// #[derive(serde::Deserialize)]
    /// struct Approval { by: String }
    /// let a: Approval = ctx.wait_for("approve-order-7").await?;
    /// # Ok(()) }
    /// ```
    pub fn wait_for<T: DeserializeOwned>(
        &self,
        signal: &str,
    ) -> impl Future<Output = Result<T, WorkflowError>> + Send + 'static {
        let fut = self.wait(signal, None);
        async move {
            let e = fut.await?;
            read(&e.data, "signal")
        }
    }

    /// Waits for signal `signal` for at most `timeout`: `None` if the time ran out
    /// first (the first of the two wins; the engine settles it in one transaction).
    ///
    /// ```no_run
    /// # async fn demo(ctx: hotmesh_client::meshflow::Context) -> Result<(), hotmesh_client::meshflow::WorkflowError> {
    /// let ok: Option<bool> = ctx.wait_for_timeout("approve-7", "2 days").await?;
    /// # Ok(()) }
    /// ```
    pub fn wait_for_timeout<T: DeserializeOwned>(
        &self,
        signal: &str,
        timeout: impl Into<Span>,
    ) -> impl Future<Output = Result<Option<T>, WorkflowError>> + Send + 'static {
        let fut = self.wait(signal, Some(timeout.into()));
        async move {
            let e = fut.await?;
            if e.timed_out {
                return Ok(None);
            }
            read(&e.data, "signal").map(Some)
        }
    }

    fn wait(
        &self,
        signal: &str,
        timeout: Option<Span>,
    ) -> impl Future<Output = Result<Entry, WorkflowError>> + Send + 'static {
        let (index, ctx, signal) = (self.claim(), self.clone(), signal.to_string());
        async move {
            let timeout = match timeout.map(|t| t.seconds()).transpose() {
                Ok(t) => t,
                Err(e) => return ctx.invalid(e).await,
            };
            let cmd = Command::Wait {
                index,
                signal: signal.clone(),
                timeout,
            };
            Ok(ctx.op(index, Kind::Wait, &signal, cmd).await)
        }
    }

    /// Runs a child workflow and returns its result. A child that fails fails this
    /// workflow with the child's error (code and message).
    ///
    /// ```no_run
    /// # async fn demo(ctx: hotmesh_client::meshflow::Context) -> Result<(), hotmesh_client::meshflow::WorkflowError> {
    /// use hotmesh_client::meshflow::ChildOptions;
    /// let shipped: String = ctx.execute_child(ChildOptions::new("ship").args(7)).await?;
    /// # Ok(()) }
    /// ```
    pub fn execute_child<O: DeserializeOwned>(
        &self,
        options: ChildOptions,
    ) -> impl Future<Output = Result<O, WorkflowError>> + Send + 'static {
        let fut = self.child(options, true);
        async move {
            let e = fut.await?;
            read(&e.data, "child result")
        }
    }

    /// Starts a child workflow without waiting for it; returns its workflow id.
    pub fn start_child(
        &self,
        options: ChildOptions,
    ) -> impl Future<Output = Result<String, WorkflowError>> + Send + 'static {
        let fut = self.child(options, false);
        async move {
            let e = fut.await?;
            Ok(e.child.unwrap_or_default())
        }
    }

    fn child(
        &self,
        o: ChildOptions,
        wait: bool,
    ) -> impl Future<Output = Result<Entry, WorkflowError>> + Send + 'static {
        let (index, ctx) = (self.claim(), self.clone());
        async move {
            let (parent, generation) = ctx.with(|s| (s.workflow_id.clone(), s.generation));
            let id = o.workflow_id.clone().unwrap_or_else(|| {
                let g = if generation == 0 {
                    String::new()
                } else {
                    format!("${generation}")
                };
                format!("{parent}-{}{g}-{index}", o.workflow_name)
            });
            let cmd = Command::Child {
                index,
                id,
                workflow_name: o.workflow_name.clone(),
                task_queue: o.task_queue.clone().unwrap_or_default(),
                arguments: o.args,
                wait,
            };
            let kind = if wait { Kind::Child } else { Kind::Start };
            Ok(ctx.op(index, kind, &o.workflow_name, cmd).await)
        }
    }

    /// Ends this run and starts the workflow again with `input`, as a new generation
    /// with an empty journal (same workflow id, same job). Never returns: `return
    /// ctx.continue_as_new(next).await;`.
    pub fn continue_as_new<T>(
        &self,
        input: impl Serialize,
    ) -> impl Future<Output = T> + Send + 'static {
        let ctx = self.clone();
        let arguments = serde_json::to_value(input).map_err(|e| e.to_string());
        async move {
            match arguments {
                Ok(arguments) => {
                    ctx.with(|s| s.commands.push(Command::ContinueAsNew { arguments }))
                }
                Err(e) => ctx.with(|s| {
                    s.stop
                        .get_or_insert(Stop::Invalid(format!("continue_as_new: {e}")));
                }),
            }
            std::future::pending::<T>().await
        }
    }

    /// The workflow's clock: when the latest result before this point was recorded (or
    /// when the workflow started). The same on every replay.
    pub fn now(&self) -> DateTime<Utc> {
        let ms = self.with(|s| {
            s.replay
                .time_before(s.counter + 1)
                .unwrap_or(s.started_ms)
                .max(s.started_ms)
        });
        Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
    }

    /// A number in [0, 1): different per workflow and per call, the same on replay.
    pub fn random(&self) -> f64 {
        let index = self.claim();
        let x = self.seed(index);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A version-4 UUID: different per workflow and per call, the same on replay.
    pub fn uuid(&self) -> String {
        let index = self.claim();
        let (a, b) = (self.seed(index), splitmix(self.seed(index) ^ 0x5bd1e995));
        let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000; // version 4
        let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000; // variant 10
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    fn seed(&self, index: u32) -> u64 {
        let (id, generation) = self.with(|s| (s.workflow_id.clone(), s.generation));
        // FNV-1a over the workflow id, then the generation and index mixed in
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in id.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        splitmix(h ^ ((generation as u64) << 32 | index as u64))
    }

    /// The job's search fields.
    pub fn search(&self) -> Search {
        Search { ctx: self.clone() }
    }

    /// The attempt of this run (0 the first; a run that failed retryably runs again).
    pub fn attempt(&self) -> i32 {
        self.with(|s| s.attempt)
    }

    fn search_op(&self, field: &str, f: impl FnOnce(Option<&Value>) -> Value) -> Value {
        self.search_step(field, Some(f))
    }

    fn search_read(&self, field: &str) -> Value {
        self.search_step(field, None::<fn(Option<&Value>) -> Value>)
    }

    /// A search operation: recorded (the value it saw or wrote) so a replay returns the
    /// same and writes nothing; `change` computes a new value from the current one.
    fn search_step(
        &self,
        field: &str,
        change: Option<impl FnOnce(Option<&Value>) -> Value>,
    ) -> Value {
        let index = self.claim();
        self.with(|s| match s.replay.check(index, Kind::Search, field) {
            Check::Hit(e) => e.data.clone(),
            Check::Mismatch(nd) => {
                s.stop.get_or_insert(Stop::NonDeterminism(nd));
                Value::Null
            }
            Check::Miss => {
                let current = s.search.get(field);
                let v = match change {
                    Some(f) => {
                        let v = f(current);
                        s.search.insert(field.to_string(), v.clone());
                        s.search_out.insert(format!("_{field}"), v.clone());
                        v
                    }
                    None => current.cloned().unwrap_or(Value::Null),
                };
                let key = super::journal::key("search", s.generation, index);
                s.marks
                    .insert(key, json!({"k": "search", "n": field, "d": v.clone()}));
                v
            }
        })
    }

    /// Looks up operation `index`: its entry when recorded; else registers `cmd` (or the
    /// mismatch) and never resolves.
    async fn op(&self, index: u32, kind: Kind, name: &str, cmd: Command) -> Entry {
        let found = self.with(|s| match s.replay.check(index, kind, name) {
            Check::Hit(e) => Some(e.clone()),
            Check::Mismatch(nd) => {
                s.stop.get_or_insert(Stop::NonDeterminism(nd));
                None
            }
            Check::Miss => {
                s.commands.push(cmd);
                None
            }
        });
        match found {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }

    async fn invalid<T>(&self, why: String) -> T {
        self.with(|s| {
            s.stop.get_or_insert(Stop::Invalid(why));
        });
        std::future::pending().await
    }
}

fn read<T: DeserializeOwned>(v: &Value, what: &str) -> Result<T, WorkflowError> {
    serde_json::from_value(v.clone()).map_err(|e| {
        WorkflowError::fatal(format!(
            "the {what} does not read as {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
