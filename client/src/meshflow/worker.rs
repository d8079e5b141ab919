//! The MeshFlow worker of a task queue: `Worker::create(connection, queue)`, its
//! workflow functions and activities, then `run()`. It runs two engine workers: the
//! workflow worker (topic `<queue>`), which replays a workflow function and answers with
//! its next operations, and the activity worker (topic `<queue>-activity`), which runs
//! activities under their retry policy and timeout.

use super::context::{Context, State, Stop};
use super::journal::{self, Answer, Replay, NON_DETERMINISM};
use super::{ensure_app, ActivityOptions, Connection, WorkflowError};
use crate::workers::{typed_fn, TypedFn};
use crate::{Config, Error, HotMesh, Message, Outcome, RetryPolicy, Status, WorkerError};
use hotmesh_engine::stream::{on_answer, Disposition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sqlx::Row;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

type WorkflowFn = Arc<
    dyn Fn(Context, Value) -> Pin<Box<dyn Future<Output = Result<Value, WorkflowError>> + Send>>
        + Send
        + Sync,
>;
type ActivityFn = TypedFn;

/// The workers of one task queue, being set up.
///
/// ```no_run
/// use hotmesh_client::meshflow::{Connection, Context, Worker, WorkflowError};
/// async fn order(ctx: Context, id: u64) -> Result<u64, WorkflowError> { Ok(id) }
/// async fn charge(amount: i64) -> Result<i64, hotmesh_client::WorkerError> { Ok(amount) }
/// # async fn demo() -> Result<(), hotmesh_client::Error> {
/// let w = Worker::create(Connection::new("postgres://postgres@127.0.0.1:28815/hotmesh"), "orders")
///     .workflow("order", order)
///     .activity("charge", charge)
///     .run()
///     .await?;
/// w.stop().await; // running calls finish first (the grace period)
/// # Ok(()) }
/// ```
#[must_use = "a worker does nothing until run()"]
pub struct Worker {
    connection: Connection,
    task_queue: String,
    workflows: HashMap<String, WorkflowFn>,
    activities: HashMap<String, ActivityFn>,
    concurrency: usize,
    reservation: Duration,
    workflow_retry: RetryPolicy,
}

impl Worker {
    /// The workers of task queue `task_queue` on `connection` (the original's
    /// `Worker.create({connection, taskQueue, workflow})`; add functions with
    /// [`workflow`](Self::workflow) and [`activity`](Self::activity)).
    pub fn create(connection: Connection, task_queue: impl Into<String>) -> Worker {
        Worker {
            connection,
            task_queue: task_queue.into(),
            workflows: HashMap::new(),
            activities: HashMap::new(),
            concurrency: 8,
            reservation: Duration::from_secs(30),
            // the original's graph's fallbacks: 5 attempts, coefficient 10, at most 120 s
            workflow_retry: RetryPolicy::new(5)
                .backoff_coefficient(10.0)
                .maximum_interval(Duration::from_secs(120)),
        }
    }

    /// Adds workflow function `name`: `async fn(Context, I) -> Result<O, WorkflowError>`.
    pub fn workflow<I, O, F, Fut>(mut self, name: impl Into<String>, f: F) -> Worker
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(Context, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, WorkflowError>> + Send + 'static,
    {
        let f = Arc::new(f);
        let name = name.into();
        let label = name.clone();
        self.workflows.insert(
            name,
            Arc::new(move |ctx, input| {
                let f = f.clone();
                let label = label.clone();
                Box::pin(async move {
                    let input: I = serde_json::from_value(input).map_err(|e| {
                        WorkflowError::fatal(format!(
                            "workflow {label}: the input does not read as {}: {e}",
                            std::any::type_name::<I>()
                        ))
                        .with_code(422)
                    })?;
                    let out = f(ctx, input).await?;
                    serde_json::to_value(out).map_err(|e| {
                        WorkflowError::fatal(format!(
                            "workflow {label}: the result does not serialize: {e}"
                        ))
                    })
                })
            }),
        );
        self
    }

    /// Adds activity `name`: `async fn(I) -> Result<O, E>` with `E` a [`WorkerError`]
    /// or any `std::error::Error` (retryable). Called from a workflow with
    /// `ctx.activity(name, input)`.
    pub fn activity<I, O, E, F, Fut>(mut self, name: impl Into<String>, f: F) -> Worker
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        E: Into<WorkerError>,
        F: Fn(I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        let name = name.into();
        let call = typed_fn(&format!("activity {name}: "), f);
        self.activities.insert(name, call);
        self
    }

    /// How many workflow runs and how many activities run at once (each; default 8).
    pub fn concurrency(mut self, n: usize) -> Worker {
        self.concurrency = n;
        self
    }

    /// How long a run or an activity stays reserved without a heartbeat (default 30 s):
    /// after a worker dies, its work goes to another one once this lapses. Heartbeats
    /// renew it while an activity runs, so a long activity needs no long reservation.
    pub fn reservation(mut self, d: Duration) -> Worker {
        self.reservation = d;
        self
    }

    /// The retry policy of workflow runs that fail retryably (a panic, a
    /// [`WorkflowError::retryable`]); default 5 attempts, coefficient 10, at most 120 s.
    pub fn workflow_retry(mut self, p: RetryPolicy) -> Worker {
        self.workflow_retry = p;
        self
    }

    /// Deploys the graph if the database lacks it, then starts the workers.
    pub async fn run(self) -> Result<RunningWorker, Error> {
        if self.task_queue.is_empty() {
            return Err(Error::Invalid {
                name: "task_queue",
                problem: "must not be empty".into(),
            });
        }
        let ns = self.connection.namespace_or(super::NAMESPACE).to_string();
        let plain = HotMesh::connect(&self.connection.url).await?;
        ensure_app(&plain, &ns).await?;
        let shared = Arc::new(Shared {
            // the workflow runs read their journal with it
            pool: plain.pool().clone(),
            task_queue: self.task_queue.clone(),
            workflows: self.workflows,
            activities: self.activities,
        });
        let mut config = Config::new(ns, &self.connection.url).pool_size(self.connection.pool_size);
        let s = shared.clone();
        config = config.worker(
            crate::Worker::new(self.task_queue.clone(), move |m| run_workflow(s.clone(), m))
                .concurrency(self.concurrency)
                .reservation(self.reservation)
                .retry(self.workflow_retry.clone()),
        );
        let s = shared.clone();
        config = config.worker(
            crate::Worker::new(journal::activity_topic("", &self.task_queue), move |m| {
                run_activity(s.clone(), m)
            })
            .concurrency(self.concurrency)
            .reservation(self.reservation)
            // only "no activity of that name here" answers an error (599): another build's
            // worker of the queue may have it
            .retry(self.workflow_retry.clone()),
        );
        let hm = HotMesh::init(config).await?;
        Ok(RunningWorker { hm })
    }
}

struct Shared {
    pool: sqlx::PgPool,
    task_queue: String,
    workflows: HashMap<String, WorkflowFn>,
    activities: HashMap<String, ActivityFn>,
}

/// A running MeshFlow worker.
#[derive(Clone, Debug)]
pub struct RunningWorker {
    hm: HotMesh,
}

impl RunningWorker {
    /// Stops taking work: running runs and activities get the grace period to finish,
    /// then their messages are released for another worker; nothing is lost.
    pub async fn stop(&self) {
        self.hm.stop().await;
    }

    /// The engine client underneath (its quorum, throttles, roll call).
    pub fn hotmesh(&self) -> &HotMesh {
        &self.hm
    }
}

/// One run of a workflow function: replay the journal, then answer with the result, the
/// next operations, or the error.
async fn run_workflow(s: Arc<Shared>, m: Message) -> Outcome {
    let input = &m.data;
    let name = input["workflowName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(f) = s.workflows.get(&name).cloned() else {
        // a worker of another build may know it: retry (the worker's policy)
        return Outcome::error(
            599,
            json!({"message": format!("no workflow named '{name}' on task queue {}", s.task_queue)}),
        );
    };
    let generation = input["generation"].as_u64().unwrap_or(0) as u32;
    let row = sqlx::query(
        "SELECT coalesce(marks, '{}'), coalesce(search, '{}'), (extract(epoch FROM created_at) * 1000)::int8 FROM hotmesh.jobs WHERE id = $1",
    )
    .bind(&m.job_id)
    .fetch_optional(&s.pool)
    .await;
    let (marks, search, created): (Value, Value, i64) = match row {
        Ok(Some(r)) => (
            r.try_get(0).unwrap_or_default(),
            r.try_get(1).unwrap_or_default(),
            r.try_get(2).unwrap_or_default(),
        ),
        Ok(None) => {
            return Outcome::fatal(
                404,
                json!({"message": format!("job {} not found", m.job_id)}),
            )
        }
        Err(e) => {
            return Outcome::error(599, json!({"message": format!("reading the journal: {e}")}))
        }
    };
    let ctx = Context::new(State {
        workflow_id: input["workflowId"]
            .as_str()
            .unwrap_or(&m.job_id)
            .to_string(),
        workflow_name: name,
        task_queue: s.task_queue.clone(),
        generation,
        attempt: m.attempt,
        counter: 0,
        replay: Replay::read(&marks, generation),
        commands: vec![],
        stop: None,
        marks: Map::new(),
        search: search.as_object().cloned().unwrap_or_default(),
        search_out: Map::new(),
        started_ms: created,
    });
    let fut = f(ctx.clone(), input["arguments"].clone());
    let end = drive(fut, &ctx).await;
    settle(&s, &ctx, end)
}

/// What a run came to.
enum End {
    Returned(Result<Value, WorkflowError>),
    Suspended,
    Stuck,
}

/// Polls the run until it returns, or until every branch waits on a durable operation
/// (those registered commands; the run ends there). A run that waits on anything else
/// is stuck: workflow code must not wait on timers, sockets or tasks of its own.
async fn drive(
    mut fut: Pin<Box<dyn Future<Output = Result<Value, WorkflowError>> + Send>>,
    ctx: &Context,
) -> End {
    // a few polls: a `yield_now` or a ready channel in workflow code resolves on the next
    for _ in 0..64 {
        let polled = {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            fut.as_mut().poll(&mut cx)
        };
        if let Poll::Ready(r) = polled {
            return End::Returned(r);
        }
        if ctx.with(|s| !s.commands.is_empty() || s.stop.is_some()) {
            return End::Suspended;
        }
        tokio::task::yield_now().await;
    }
    End::Stuck
}

fn settle(s: &Shared, ctx: &Context, end: End) -> Outcome {
    ctx.with(|st| {
        if let Some(stop) = st.stop.take() {
            return match stop {
                Stop::NonDeterminism(nd) => Outcome::fatal(
                    NON_DETERMINISM,
                    json!({"message": nd.to_string(), "index": nd.index,
                           "recorded": nd.recorded, "current": nd.current}),
                ),
                Stop::Invalid(why) => WorkflowError::fatal(why).into_outcome(),
            };
        }
        let mut extra = Map::new();
        if !st.marks.is_empty() {
            extra.insert("marks".into(), Value::Object(std::mem::take(&mut st.marks)));
        }
        if !st.search_out.is_empty() {
            extra.insert(
                "search".into(),
                Value::Object(std::mem::take(&mut st.search_out)),
            );
        }
        match end {
            End::Returned(Ok(v)) => {
                extra.insert("response".into(), v);
                extra.insert("done".into(), true.into());
                Outcome::success(Value::Object(extra))
            }
            End::Returned(Err(e)) => e.into_outcome(),
            End::Suspended => {
                let Answer { code, data } =
                    journal::suspend(&st.commands, st.generation, &s.task_queue, extra);
                Outcome::coded(code, data)
            }
            End::Stuck => WorkflowError::fatal(
                "the workflow waited on something that is not a durable operation (use ctx's sleep_for, wait_for, activities and children; no timers, tasks or I/O of its own)",
            )
            .into_outcome(),
        }
    })
}

/// One attempt of an activity: its answer, a retry after the policy's delay, or (its
/// attempts spent, or a fatal error) an error result the workflow reads as an
/// [`ActivityError`](super::ActivityError).
async fn run_activity(s: Arc<Shared>, m: Message) -> Outcome {
    let d = &m.data;
    let name = d["activityName"].as_str().unwrap_or_default().to_string();
    let Some(f) = s.activities.get(&name).cloned() else {
        return Outcome::error(
            599,
            json!({"message": format!("no activity named '{name}' on task queue {}", s.task_queue)}),
        );
    };
    let policy = match &d["retry"] {
        Value::Null => ActivityOptions::default_retry(),
        v => RetryPolicy::from_json(v).unwrap_or_else(|_| ActivityOptions::default_retry()),
    };
    let limit = d["startToClose"]
        .as_f64()
        .filter(|t| *t > 0.0)
        .and_then(|t| Duration::try_from_secs_f64(t).ok());
    let run = f(d["arguments"].clone());
    let result = match limit {
        Some(t) => match tokio::time::timeout(t, run).await {
            Ok(r) => r,
            Err(_) => Err(WorkerError::retryable(format!(
                "activity {name} ran past its start-to-close timeout ({} s)",
                t.as_secs_f64()
            ))
            .with_code(596)),
        },
        None => run.await,
    };
    match result {
        Ok(v) => Outcome::success(json!({ "response": v })),
        Err(e) if !e.retryable => Outcome::success(json!({"error": error_json(&e, e.code)})),
        Err(e) => match on_answer(Status::Error, e.code as i64, m.attempt, policy.policy()) {
            Disposition::Requeue { delay } => Outcome::retry_after(
                Duration::from_secs_f64(delay),
                json!({"message": e.message, "code": e.code}),
            ),
            _ => {
                let code = if e.code == 596 { 596 } else { 597 };
                Outcome::success(json!({"error": error_json(&e, code)}))
            }
        },
    }
}

fn error_json(e: &WorkerError, code: i32) -> Value {
    let mut v = json!({"code": code, "message": e.message});
    if !e.data.is_empty() {
        v["data"] = Value::Object(e.data.clone());
    }
    v
}
