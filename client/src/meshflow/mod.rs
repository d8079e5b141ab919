//! MeshFlow: durable workflow functions (the original's MeshFlow, later `Durable`),
//! Temporal-style, on the engine. A workflow is an `async fn(Context, I) -> Result<O,
//! WorkflowError>`; its activities, sleeps, signal waits and child workflows are durable:
//! a workflow survives its worker being killed, the server restarting and a new worker
//! version, sleeps for a week without a process waiting, and never runs an activity again
//! once its result is recorded.
//!
//! ```no_run
//! use hotmesh_client::meshflow::{Client, Connection, Context, StartOptions, Worker, WorkflowError};
//! use std::time::Duration;
//!
//! async fn greet(name: String) -> Result<String, hotmesh_client::WorkerError> {
//!     Ok(format!("Hello, {name}!"))
//! }
//!
//! async fn hello(ctx: Context, name: String) -> Result<String, WorkflowError> {
//!     let greeting: String = ctx.activity("greet", &name).await?;
//!     ctx.sleep_for("1 second").await?;
//!     Ok(greeting)
//! }
//!
//! # async fn demo() -> Result<(), hotmesh_client::Error> {
//! let connection = Connection::new("postgres://postgres@127.0.0.1:28815/hotmesh");
//! let worker = Worker::create(connection.clone(), "hello-world")
//!     .workflow("hello", hello)
//!     .activity("greet", greet)
//!     .run()
//!     .await?;
//! let client = Client::new(connection).await?;
//! let handle = client
//!     .workflow()
//!     .start(StartOptions::new("hello-world", "hello").args("ColdMush"))
//!     .await?;
//! let out: String = handle.result(Duration::from_secs(10)).await?;
//! assert_eq!(out, "Hello, ColdMush!");
//! worker.stop().await;
//! # Ok(()) }
//! ```
//!
//! How it runs (docs/meshflow.md): every workflow is a job of the graph in `app.yaml`,
//! which the client deploys. Each run of the function replays the job's recorded results
//! (its marks, [`journal`]) and answers with the next operations it needs; the engine
//! records each result in the same transaction that wakes the workflow.

mod client;
mod context;
mod duration;
mod join;
pub mod journal;
mod worker;

pub use client::{Client, Connection, JournalEntry, StartOptions, WorkflowClient, WorkflowHandle};
pub use context::{Activities, ActivityCall, ActivityOptions, ChildOptions, Context, Search};
pub use duration::{parse as parse_duration, Span};
pub use join::join_all;
pub use journal::NonDeterminism;
pub use worker::{RunningWorker, Worker};

use crate::{Error, HotMesh, Outcome};
use serde_json::{json, Value};

/// The graph's version: a client deploys it when the database's active version of its
/// namespace differs.
pub const APP_VERSION: &str = hotmesh_engine::apps::MESHFLOW_VERSION;

/// The default namespace (the app id of the graph).
pub const NAMESPACE: &str = hotmesh_engine::apps::MESHFLOW_NAMESPACE;

/// The graph's YAML for namespace `ns` (`hotmesh_engine::apps`).
pub fn app_yaml(ns: &str) -> String {
    hotmesh_engine::apps::meshflow(ns)
}

/// Deploys and activates the graph of namespace `ns` unless it is already active.
pub(crate) async fn ensure_app(hm: &HotMesh, ns: &str) -> Result<(), Error> {
    crate::deploy::ensure_app(hm, ns, APP_VERSION, &app_yaml(ns)).await
}

/// How a workflow function fails. Retryable errors run the workflow again (the
/// worker's workflow retry policy); others end it with their code and message. Any
/// `std::error::Error` converts (retryable, code 599), so `?` works; an
/// [`ActivityError`] converts with its own code (not retryable: its retries are spent).
///
/// ```
/// use hotmesh_client::meshflow::WorkflowError;
/// let e = WorkflowError::fatal("no such customer");
/// assert_eq!((e.code, e.retryable), (598, false));
/// let r: WorkflowError = "x".parse::<i32>().unwrap_err().into();
/// assert_eq!((r.code, r.retryable), (599, true));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WorkflowError {
    /// The code the workflow ends with (598 fatal, 599 retryable, or the activity's).
    pub code: i32,
    /// What went wrong.
    pub message: String,
    /// Whether the workflow runs again.
    pub retryable: bool,
    /// More about it (kept with the job's error).
    pub data: Value,
}

impl WorkflowError {
    /// An error that ends the workflow (code 598).
    pub fn fatal(message: impl Into<String>) -> WorkflowError {
        WorkflowError {
            code: 598,
            message: message.into(),
            retryable: false,
            data: Value::Null,
        }
    }

    /// An error after which the workflow runs again (code 599).
    pub fn retryable(message: impl Into<String>) -> WorkflowError {
        WorkflowError {
            code: 599,
            message: message.into(),
            retryable: true,
            data: Value::Null,
        }
    }

    /// The same with another code.
    pub fn with_code(mut self, code: i32) -> WorkflowError {
        self.code = code;
        self
    }

    pub(crate) fn into_outcome(self) -> Outcome {
        let mut data = json!({"message": self.message});
        if !self.data.is_null() {
            data["data"] = self.data;
        }
        if self.retryable {
            Outcome::error(self.code, data)
        } else {
            Outcome::fatal(self.code, data)
        }
    }
}

impl std::fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for WorkflowError {
    fn from(e: E) -> WorkflowError {
        WorkflowError::retryable(e.to_string())
    }
}

impl From<ActivityError> for WorkflowError {
    fn from(e: ActivityError) -> WorkflowError {
        WorkflowError {
            code: e.code,
            message: e.message,
            retryable: false,
            data: e.data,
        }
    }
}

/// An activity that failed for good, as the workflow sees it: its retries spent (597),
/// a fatal error (598, or the activity's own code), or its last attempt timed out (596).
/// The workflow may catch it and go on.
///
/// ```
/// use hotmesh_client::meshflow::ActivityError;
/// let e = ActivityError { code: 597, message: "down".into(), data: serde_json::Value::Null };
/// assert!(e.is_maxed());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityError {
    /// 596 timed out, 597 retries exhausted, 598 fatal, or the activity's own code.
    pub code: i32,
    /// The activity's last error message.
    pub message: String,
    /// Anything else the activity's error carried.
    pub data: Value,
}

impl ActivityError {
    pub(crate) fn from_json(name: &str, v: &Value) -> ActivityError {
        ActivityError {
            code: v.get("code").and_then(Value::as_i64).unwrap_or(598) as i32,
            message: v
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("activity {name} failed")),
            data: v.get("data").cloned().unwrap_or(Value::Null),
        }
    }

    /// Its retries were spent (597).
    pub fn is_maxed(&self) -> bool {
        self.code == 597
    }

    /// Its last attempt ran past the start-to-close timeout (596).
    pub fn is_timeout(&self) -> bool {
        self.code == 596
    }
}

impl std::fmt::Display for ActivityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}
