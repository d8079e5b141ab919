//! Workers: `Worker::new(topic, callback)`. Each runs a loop that dequeues its topic's
//! messages (SKIP LOCKED, with a reservation) as slots of its concurrency free up, runs
//! the callback of each, keeps the reservation alive while it runs (heartbeat), and
//! answers with `hotmesh.respond_batch` (with the answers of its other callbacks that
//! finish meanwhile: `answers.rs`). An idle worker sleeps until the topic's NOTIFY (or a
//! poll interval, or a reconnect: notifications sent while the connection was down are
//! lost, so it looks). A worker that dies mid-message loses nothing: the reservation
//! lapses and another worker gets the message; the step applies once.
//!
//! A process whose `stream_url` names Redis or NATS runs the same workers on that
//! transport instead ([`run_transport`]): it takes its topic's messages with
//! `take_work` (as slots free up, under the same throttles), runs the callbacks the same
//! way ([`handle`] serves both), and answers each with `send_answer`, acknowledging the
//! delivery once the answer is stored. There are no heartbeats there: a delivery not
//! acknowledged within the transport's `claim_after` (the worker's reservation) is
//! delivered again, to this worker or another.

use crate::answers::Answers;
use crate::backoff::Backoff;
use crate::hub::Event;
use crate::quorum::WorkerState;
use crate::{Error, HotMesh, RetryPolicy, Status, WorkerError};
use hotmesh_engine::stream::{on_answer, Disposition};
use hotmesh_transport::{Answer, Delivery, Transport, TransportError, Work};
use serde_json::Value;
use sqlx::Row;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// A message a worker's callback gets.
///
/// ```
/// use hotmesh_client::{Message, Outcome};
/// fn answer(m: &Message) -> Outcome {
///     if m.deliveries > 1 {
///         tracing::warn!(job = %m.job_id, "handed out again: an earlier worker died");
///     }
///     Outcome::success(serde_json::json!({ "echo": m.data }))
/// }
/// ```
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// The stream message id (what `respond` answers).
    pub id: i64,
    /// The worker topic.
    pub topic: String,
    /// The job the message belongs to.
    pub job_id: String,
    /// The worker activity that sent it.
    pub activity_id: String,
    /// The activity's dimension.
    pub dad: String,
    /// The activity's mapped input.
    pub data: Value,
    /// Retries so far (0 on the first attempt).
    pub attempt: i32,
    /// How many times it was handed out (more than 1: an earlier worker did not answer).
    pub deliveries: i32,
    /// The message's metadata as the original's workers receive it: `{guid, jid, gid,
    /// dad, aid, topic, try}`, and `wfn` when the data names a `workflowName`.
    pub metadata: Value,
    /// This hand-out's token: the answer and heartbeats carry it, so once the message is
    /// handed out again (this reservation lapsed) they are refused instead of winning
    /// over the worker that holds it now.
    pub reservation: i64,
    /// The activity's own retry policy (its YAML `retry`), when it has one: it wins over
    /// the worker's. Also in `metadata.retry`.
    pub retry: Option<Value>,
}

/// What a callback returns.
///
/// ```
/// use hotmesh_client::Outcome;
/// use serde_json::json;
/// let ok = Outcome::success(json!({"done": true}));
/// let more = Outcome::pending(json!({"progress": 0.5}));   // 202: more answers follow
/// let bad = Outcome::error(422, json!({"message": "no such card"}));
/// assert!(matches!(bad, Outcome::Error { code: 422, .. }));
/// # let _ = (ok, more);
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Outcome {
    /// The activity's output (code 200).
    Success(Value),
    /// 202: an interim answer; the activity stays open and this worker answers again.
    Pending(Value),
    /// An error with its code; the retry policy (the activity's, else the worker's)
    /// decides whether it is tried again.
    Error {
        /// 100 to 999.
        code: i32,
        /// The error's data (`message` and anything else).
        data: Value,
    },
    /// An error no retry can mend: the activity hears it at once, whatever the policy.
    Fatal {
        /// 100 to 999.
        code: i32,
        /// The error's data (`message` and anything else).
        data: Value,
    },
    /// A success answer with a code of its own, for graphs whose transitions route on
    /// it (the original's Durable codes 588 to 595 are such answers: MeshFlow's workflow
    /// worker sends them).
    Coded {
        /// 100 to 999 (200: the same as [`Outcome::Success`]).
        code: i32,
        /// The activity's output.
        data: Value,
    },
    /// Ask for the message again after `delay` (the callback decided, with a policy of
    /// its own): `hotmesh.retry`. With no attempt left under the activity's policy the
    /// job hears code 597.
    Retry {
        /// How long until it is handed out again.
        delay: Duration,
        /// The error that made it ask (kept with the message).
        data: Value,
    },
}

impl Outcome {
    /// Success with `data` as the activity's output.
    ///
    /// ```
    /// let o = hotmesh_client::Outcome::success(serde_json::json!({"x": 1}));
    /// # assert!(matches!(o, hotmesh_client::Outcome::Success(_)));
    /// ```
    pub fn success(data: Value) -> Outcome {
        Outcome::Success(data)
    }

    /// A 202 answer: the activity stays open.
    ///
    /// ```
    /// let o = hotmesh_client::Outcome::pending(serde_json::json!({}));
    /// # assert!(matches!(o, hotmesh_client::Outcome::Pending(_)));
    /// ```
    pub fn pending(data: Value) -> Outcome {
        Outcome::Pending(data)
    }

    /// An error answer with `code` (100 to 999).
    ///
    /// ```
    /// let o = hotmesh_client::Outcome::error(500, serde_json::json!({"message": "down"}));
    /// # assert!(matches!(o, hotmesh_client::Outcome::Error { code: 500, .. }));
    /// ```
    pub fn error(code: i32, data: Value) -> Outcome {
        Outcome::Error { code, data }
    }

    /// An error answer that is never retried.
    ///
    /// ```
    /// let o = hotmesh_client::Outcome::fatal(404, serde_json::json!({"message": "no such card"}));
    /// # assert!(matches!(o, hotmesh_client::Outcome::Fatal { code: 404, .. }));
    /// ```
    pub fn fatal(code: i32, data: Value) -> Outcome {
        Outcome::Fatal { code, data }
    }

    /// A success answer with `code` (see [`Outcome::Coded`]).
    ///
    /// ```
    /// let o = hotmesh_client::Outcome::coded(588, serde_json::json!({"duration": 5}));
    /// # assert!(matches!(o, hotmesh_client::Outcome::Coded { code: 588, .. }));
    /// ```
    pub fn coded(code: i32, data: Value) -> Outcome {
        Outcome::Coded { code, data }
    }

    /// Hand the message out again after `delay` (see [`Outcome::Retry`]).
    ///
    /// ```
    /// let o = hotmesh_client::Outcome::retry_after(std::time::Duration::from_secs(2), serde_json::json!({"message": "busy"}));
    /// # assert!(matches!(o, hotmesh_client::Outcome::Retry { .. }));
    /// ```
    pub fn retry_after(delay: Duration, data: Value) -> Outcome {
        Outcome::Retry { delay, data }
    }

    pub(crate) fn parts(&self) -> (&Value, Status, i32) {
        let (d, status, code) = match self {
            Outcome::Success(d) => (d, Status::Success, None),
            Outcome::Coded { code, data } => (data, Status::Success, Some(*code)),
            Outcome::Pending(d) => (d, Status::Pending, None),
            Outcome::Error { code, data } | Outcome::Fatal { code, data } => {
                (data, Status::Error, Some(*code))
            }
            Outcome::Retry { data, .. } => (data, Status::Error, None),
        };
        (d, status, code.unwrap_or(status.default_code() as i32))
    }
}

type Callback = Arc<dyn Fn(Message) -> Pin<Box<dyn Future<Output = Outcome> + Send>> + Send + Sync>;

/// A typed function over JSON: its input read as `I` (else a fatal 422 naming the type),
/// its output serialized, its error a [`WorkerError`]. `label` (may be empty) starts the
/// messages of those two failures. Typed workers and MeshFlow's activities share it.
pub(crate) type TypedFn = Arc<
    dyn Fn(Value) -> Pin<Box<dyn Future<Output = Result<Value, WorkerError>> + Send>> + Send + Sync,
>;

pub(crate) fn typed_fn<I, O, E, F, Fut>(label: &str, f: F) -> TypedFn
where
    I: serde::de::DeserializeOwned + Send + 'static,
    O: serde::Serialize,
    E: Into<WorkerError>,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
{
    let f = Arc::new(f);
    let label: Arc<str> = Arc::from(label);
    Arc::new(move |data: Value| {
        let (f, label) = (f.clone(), label.clone());
        Box::pin(async move {
            let input: I = serde_json::from_value(data).map_err(|e| {
                WorkerError::fatal(
                    422,
                    format!(
                        "{label}the input does not read as {}: {e}",
                        std::any::type_name::<I>()
                    ),
                )
            })?;
            let out = f(input).await.map_err(Into::into)?;
            serde_json::to_value(out).map_err(|e| {
                WorkerError::fatal(500, format!("{label}the output does not serialize: {e}"))
            })
        })
    })
}

/// A worker: a topic and the callback that answers its messages.
///
/// ```
/// use hotmesh_client::{Outcome, Worker};
/// let w = Worker::new("orders.charge", |m| async move {
///     Outcome::success(serde_json::json!({"charged": m.data["amount"]}))
/// })
/// .concurrency(8)
/// .reservation(std::time::Duration::from_secs(60));
/// assert_eq!(w.concurrency, 8);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Worker {
    /// The topic it answers.
    pub topic: String,
    callback: Callback,
    /// Callbacks running at once (default 1). Also the most messages one dequeue takes: a
    /// worker with fast callbacks runs faster at 8 to 32 (fuller batches, fewer commits per
    /// message) than several workers of concurrency 1.
    pub concurrency: usize,
    /// How long a message stays reserved without a heartbeat (default 30 s); heartbeats
    /// renew it every third of that while the callback runs.
    pub reservation: Duration,
    /// How often an idle worker looks even without a NOTIFY (default 5 s).
    pub poll: Duration,
    /// Its retry policy for activities whose YAML has none (default: the one given to
    /// [`Config::retry`](crate::Config::retry), else none: an error goes to the job at
    /// once, as in the original).
    pub retry: Option<RetryPolicy>,
}

impl Worker {
    /// A worker of `topic` that answers with `callback`.
    ///
    /// ```
    /// let w = hotmesh_client::Worker::new("t", |_m| async { hotmesh_client::Outcome::success(serde_json::json!({})) });
    /// assert_eq!(w.topic, "t");
    /// ```
    pub fn new<F, Fut>(topic: impl Into<String>, callback: F) -> Worker
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        Worker {
            topic: topic.into(),
            callback: Arc::new(move |m| Box::pin(callback(m))),
            concurrency: 1,
            reservation: Duration::from_secs(30),
            poll: Duration::from_secs(5),
            retry: None,
        }
    }

    /// A worker whose callback takes its input as a type of yours and returns
    /// `Result<T, E>`: `Ok` is the activity's output (serialized), an `Err` is an error
    /// answer with the [`WorkerError`]'s code (retried by the policy when retryable).
    /// Any `std::error::Error` converts, so `?` works. An input that does not read as
    /// the type is a fatal error with code 422 (no retry can change it).
    ///
    /// ```
    /// use hotmesh_client::{Worker, WorkerError};
    /// #[derive(serde::Deserialize)]
    /// struct Charge { amount: i64 }
    /// #[derive(serde::Serialize)]
    /// struct Receipt { charged: i64 }
    ///
    /// async fn charge(c: Charge) -> Result<Receipt, WorkerError> {
    ///     if c.amount <= 0 {
    ///         return Err(WorkerError::fatal(422, "nothing to charge"));
    ///     }
    ///     let _n: u32 = "7".parse()?; // any std error: retryable, code 500
    ///     Ok(Receipt { charged: c.amount })
    /// }
    /// let w = Worker::typed("orders.charge", charge);
    /// # assert_eq!(w.topic, "orders.charge");
    /// ```
    pub fn typed<I, O, E, F, Fut>(topic: impl Into<String>, callback: F) -> Worker
    where
        I: serde::de::DeserializeOwned + Send + 'static,
        O: serde::Serialize,
        E: Into<WorkerError>,
        F: Fn(I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        let call = typed_fn("", callback);
        Worker::new(topic, move |m: Message| {
            let call = call.clone();
            async move {
                match call(m.data).await {
                    Ok(v) => Outcome::success(v),
                    Err(e) => e.into_outcome(),
                }
            }
        })
    }

    /// Sets the retry policy for activities whose YAML has none.
    ///
    /// ```
    /// # let w = hotmesh_client::Worker::new("t", |_m| async { hotmesh_client::Outcome::success(serde_json::json!({})) });
    /// let w = w.retry(hotmesh_client::RetryPolicy::new(5));
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Worker {
        self.retry = Some(policy);
        self
    }

    /// Sets how many callbacks run at once.
    ///
    /// ```
    /// # let w = hotmesh_client::Worker::new("t", |_m| async { hotmesh_client::Outcome::success(serde_json::json!({})) });
    /// assert_eq!(w.concurrency(4).concurrency, 4);
    /// ```
    pub fn concurrency(mut self, n: usize) -> Worker {
        self.concurrency = n;
        self
    }

    /// Sets the reservation (visibility timeout) of each message.
    ///
    /// ```
    /// # let w = hotmesh_client::Worker::new("t", |_m| async { hotmesh_client::Outcome::success(serde_json::json!({})) });
    /// let w = w.reservation(std::time::Duration::from_secs(5));
    /// ```
    pub fn reservation(mut self, d: Duration) -> Worker {
        self.reservation = d;
        self
    }

    /// Sets the idle poll interval.
    ///
    /// ```
    /// # let w = hotmesh_client::Worker::new("t", |_m| async { hotmesh_client::Outcome::success(serde_json::json!({})) });
    /// let w = w.poll(std::time::Duration::from_secs(1));
    /// ```
    pub fn poll(mut self, d: Duration) -> Worker {
        self.poll = d;
        self
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        let bad = |name, problem: &str| {
            Err(Error::Invalid {
                name,
                problem: problem.into(),
            })
        };
        if self.topic.is_empty() {
            return bad("topic", "must not be empty");
        }
        if !(1..=10_000).contains(&self.concurrency) {
            return bad("concurrency", "must be between 1 and 10000");
        }
        if self.reservation < Duration::from_millis(300)
            || self.reservation > Duration::from_secs(86_400)
        {
            return bad("reservation", "must be between 0.3 s and 1 day");
        }
        if self.poll < Duration::from_millis(10) {
            return bad("poll", "must be at least 10 ms");
        }
        if let Some(r) = &self.retry {
            r.check()?;
        }
        Ok(())
    }
}

/// Takes up to `n` messages of `topic` for `reservation`, as consumer `guid` (a worker's
/// and the bridge's hand-outs alike).
pub(crate) async fn dequeue(
    hm: &HotMesh,
    topic: &str,
    reservation: Duration,
    guid: &str,
    n: usize,
) -> Result<Vec<Message>, sqlx::Error> {
    // The hand-out commits without waiting for its WAL flush (synchronous_commit off for
    // this one statement's transaction): a reservation lost in a crash only means the
    // message is handed out again, which a crash while the callback runs means anyway;
    // and the answer's own (durable) commit flushes the hand-out's record first. One
    // fsync fewer between a message's commit and its callback.
    let rows = sqlx::query(
        "SELECT d.id, d.job_id, d.activity_id, d.dad, d.data, d.attempt, d.deliveries, d.metadata, d.reservation
           FROM pg_catalog.set_config('synchronous_commit', 'off', true) s,
                hotmesh.dequeue($1, $2, $3, $4) d",
    )
    .bind(topic)
    .bind(n as i32)
    .bind(reservation.as_secs_f64())
    .bind(guid)
    .fetch_all(hm.stream_pool())
    .await?;
    rows.iter()
        .map(|r| {
            let metadata: Value = r.try_get(7)?;
            Ok(Message {
                retry: metadata.get("retry").cloned(),
                metadata,
                id: r.try_get(0)?,
                topic: topic.to_string(),
                job_id: r.try_get(1)?,
                activity_id: r.try_get(2)?,
                dad: r.try_get(3)?,
                data: r.try_get(4)?,
                attempt: r.try_get(5)?,
                deliveries: r.try_get(6)?,
                reservation: r.try_get(8)?,
            })
        })
        .collect()
}

/// Runs one message, on PostgreSQL or a transport alike: the callback in a task of its own
/// (its panic is an error answer, code 500), with heartbeats on `heartbeat` while it runs
/// (PostgreSQL's reservation; none on a transport), then `answer` with the outcome. The
/// callback's slot (`slot`) is free once the callback returns: the answer's round trip
/// and commit hold no slot, so the next messages run while it is on its way.
async fn handle<A, F>(
    w: Worker,
    m: Message,
    stats: Arc<WorkerState>,
    slot: OwnedSemaphorePermit,
    heartbeat: Option<HotMesh>,
    answer: A,
) where
    A: FnOnce(Outcome) -> F,
    F: Future<Output = Result<(), String>>,
{
    let id = m.id;
    let span =
        tracing::info_span!("hotmesh.worker", topic = %w.topic, message = id, job = %m.job_id);
    async move {
        let outcome = call(&w, m, heartbeat.as_ref()).await;
        drop(slot);
        if matches!(outcome, Outcome::Error { .. } | Outcome::Fatal { .. }) {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        stats.processed.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = answer(outcome).await {
            // PostgreSQL: the reservation lapses and the message is handed out again; a
            // transport: the delivery is not acknowledged and comes again after claim_after
            tracing::warn!(error = %e, message = id, "hotmesh: answer failed");
        }
    }
    .instrument(span)
    .await
}

/// The callback's outcome for `m` (a panic: an error, code 500), with a heartbeat every
/// third of the reservation on `heartbeat`'s stream pool while it runs. Dropped (its
/// task aborted at the end of a stop's grace period), it aborts the callback.
async fn call(w: &Worker, m: Message, heartbeat: Option<&HotMesh>) -> Outcome {
    let (id, token) = (m.id, m.reservation);
    let cb = w.callback.clone();
    let mut run = Aborting(tokio::spawn(async move { cb(m).await }));
    let run = &mut run.0;
    let Some(hm) = heartbeat else {
        return failed(run.await);
    };
    let mut beat = tokio::time::interval(w.reservation / 3);
    beat.tick().await;
    loop {
        tokio::select! {
            r = &mut *run => return failed(r),
            _ = beat.tick() => {
                let _ = sqlx::query("SELECT hotmesh.heartbeat($1, $2, $3)")
                    .bind(id)
                    .bind(w.reservation.as_secs_f64())
                    .bind(token)
                    .execute(hm.stream_pool())
                    .await;
            }
        }
    }
}

/// A task that is aborted when its handle is dropped.
struct Aborting<T>(JoinHandle<T>);

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A callback's task as an outcome: its panic (or abort) is an error answer, code 500.
fn failed(r: Result<Outcome, tokio::task::JoinError>) -> Outcome {
    r.unwrap_or_else(|e| {
        Outcome::error(
            500,
            serde_json::json!({"message": format!("the callback failed: {e}")}),
        )
    })
}

/// The answer step on PostgreSQL: the outcome as [`settle`] decides, an answer in the
/// worker's batches (`answers`) or a call of its own (a retry, a fatal error).
async fn answer_postgres(
    hm: HotMesh,
    w: Worker,
    answers: Answers,
    (id, token, attempt, own_retry): (i64, i64, i32, bool),
    outcome: Outcome,
) -> Result<(), String> {
    let sent = match settle(&w, attempt, own_retry, outcome) {
        // with the answers of the worker's other callbacks that finish meanwhile: one commit
        Settle::Answer(outcome) => answers.answer(id, token, outcome).await,
        Settle::Retry { delay, error } => {
            single(
                &hm,
                sqlx::query_scalar("SELECT hotmesh.retry($1, $2, $3, $4)")
                    .bind(id)
                    .bind(delay.as_secs_f64())
                    .bind(error)
                    .bind(token),
            )
            .await
        }
        Settle::Fail { code, error } => {
            single(
                &hm,
                sqlx::query_scalar("SELECT hotmesh.fail($1, $2, $3, $4)")
                    .bind(id)
                    .bind(error)
                    .bind(code)
                    .bind(token),
            )
            .await
        }
    };
    sent.map(|_| ())
}

/// What becomes of a callback's outcome.
#[derive(Debug, PartialEq)]
enum Settle {
    /// Answered as it is (in a batch).
    Answer(Outcome),
    /// An error the worker's own policy retries: the message comes back after `delay`.
    Retry { delay: Duration, error: Value },
    /// An error never retried (`Outcome::Fatal`).
    Fail { code: i32, error: Value },
}

/// Decides with the engine's own rule ([`on_answer`]) when the worker's policy applies:
/// an error answer to a message whose activity has no policy of its own (that one, when
/// there, is applied by the extension as the answer arrives).
fn settle(w: &Worker, attempt: i32, own_retry: bool, outcome: Outcome) -> Settle {
    match outcome {
        Outcome::Fatal { code, data } => Settle::Fail { code, error: data },
        Outcome::Retry { delay, data } => Settle::Retry { delay, error: data },
        Outcome::Error { code, data } if !own_retry => {
            let Some(policy) = &w.retry else {
                return Settle::Answer(Outcome::Error { code, data });
            };
            match on_answer(Status::Error, code as i64, attempt, policy.policy()) {
                Disposition::Requeue { delay } => Settle::Retry {
                    delay: Duration::from_secs_f64(delay),
                    error: data,
                },
                _ => Settle::Answer(Outcome::Error { code, data }),
            }
        }
        other => Settle::Answer(other),
    }
}

/// One call of its own for an answer that is not batched (a retry, a fatal error).
pub(crate) async fn single<'q>(
    hm: &HotMesh,
    q: sqlx::query::QueryScalar<'q, sqlx::Postgres, bool, sqlx::postgres::PgArguments>,
) -> Result<bool, String> {
    q.fetch_one(hm.stream_pool())
        .await
        .map_err(|e| e.to_string())
}

/// The slot of the next message taken: the one already held, then free ones as they come;
/// None once the slots are closed.
async fn slot(
    held: &mut Option<OwnedSemaphorePermit>,
    slots: &Arc<Semaphore>,
) -> Option<OwnedSemaphorePermit> {
    match held.take() {
        Some(p) => Some(p),
        None => slots.clone().acquire_owned().await.ok(),
    }
}

/// How long a busy worker waits for more free slots before it dequeues.
const LINGER: Duration = Duration::from_millis(1);

/// The callbacks running: message id -> (the message's reservation, the task).
type Running = Arc<Mutex<HashMap<i64, (i64, JoinHandle<()>)>>>;

/// What a worker's loop does next ([`next`]).
enum Next {
    /// Take up to `n` messages: `first` is the first one's slot, `throttle` the throttle
    /// in force (0, or the milliseconds between messages).
    Take {
        first: OwnedSemaphorePermit,
        n: usize,
        throttle: i32,
    },
    /// Look again (a throttle changed, or stop).
    Again,
    /// The slots are gone: the loop ends.
    End,
}

/// Whether a worker's loop ends: its process stops (or nobody is left to say so).
fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// What both loops wait for before they take messages: a resume while paused (throttle
/// -1), then a free slot, then (while callbacks run) a moment for more slots.
async fn next(
    w: &Worker,
    slots: &Arc<Semaphore>,
    throttle: &mut watch::Receiver<i32>,
    stop: &mut watch::Receiver<bool>,
) -> Next {
    let t = *throttle.borrow_and_update();
    if t < 0 {
        // paused: wait for a resume (or stop)
        tokio::select! {
            _ = throttle.changed() => {}
            _ = stop.changed() => {}
        }
        return Next::Again;
    }
    // wait for a free slot (or stop)
    let first = tokio::select! {
        p = slots.clone().acquire_owned() => match p {
            Ok(p) => p,
            Err(_) => return Next::End,
        },
        _ = stop.changed() => return Next::Again,
    };
    // While callbacks run, wait a moment for half the slots before dequeuing: a slot
    // freed one at a time would make every dequeue (and every answer batch) carry one
    // message, and each is a round trip and a commit. Measured with no-op callbacks:
    // (f) in docs/benchmarks.md. An idle worker dequeues at once.
    if t == 0 && slots.available_permits() + 1 < w.concurrency.div_ceil(2) {
        tokio::select! {
            _ = tokio::time::sleep(LINGER) => {}
            _ = stop.changed() => {}
        }
    }
    let n = if t > 0 {
        1
    } else {
        slots.available_permits() + 1
    };
    Next::Take {
        first,
        n,
        throttle: t,
    }
}

/// A throttled worker's pause between messages (`throttle` ms), cut short by stop.
async fn pace(throttle: i32, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(throttle as u64)) => {}
        _ = stop.changed() => {}
    }
}

/// Runs `task` as one of `running` (under `key`, with the value `value` makes of its
/// handle) until it ends: until then a stop waits for it (or gives up on it).
fn track<K, V, T>(
    running: &Arc<Mutex<HashMap<K, V>>>,
    key: K,
    task: T,
    value: impl FnOnce(JoinHandle<()>) -> V,
) where
    K: Eq + Hash + Clone + Send + 'static,
    V: Send + 'static,
    T: Future<Output = ()> + Send + 'static,
{
    // held until the task is in: a task that ends at once removes itself after that
    let mut r = running.lock().unwrap();
    let (r2, k2) = (running.clone(), key.clone());
    let handle = tokio::spawn(async move {
        task.await;
        r2.lock().unwrap().remove(&k2);
    });
    r.insert(key, value(handle));
}

/// Waits up to `grace` for the running tasks to end; returns those still running.
async fn wait_for<K: Eq + Hash, V>(running: &Mutex<HashMap<K, V>>, grace: Duration) -> Vec<(K, V)> {
    let deadline = tokio::time::Instant::now() + grace;
    while !running.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.lock().unwrap().drain().collect()
}

/// The worker's loop, until `stop`; then running callbacks get the grace period, and
/// the messages of those still running are released.
pub(crate) async fn run(hm: HotMesh, w: Worker, guid: String, stats: Arc<WorkerState>) {
    let channel = hotmesh_engine::channel::work(&w.topic);
    let mut events = loop {
        match hm.hub().await {
            Ok(hub) => {
                let ev = hub.subscribe();
                match hub.listen(&channel).await {
                    Ok(()) => break ev,
                    Err(e) => {
                        tracing::warn!(error = %e, topic = %w.topic, "hotmesh: cannot LISTEN; retrying")
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "hotmesh: no LISTEN connection; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let mut stop = hm.stopping();
    let mut throttle = stats.throttle.subscribe();
    let slots = Arc::new(Semaphore::new(w.concurrency));
    let running: Running = Arc::default();
    let answers = Answers::start(hm.clone(), w.reservation);
    let mut backoff = Backoff::new();
    while !stopped(&stop) {
        let (first, n, t) = match next(&w, &slots, &mut throttle, &mut stop).await {
            Next::Take { first, n, throttle } => (first, n, throttle),
            Next::Again => continue,
            Next::End => break,
        };
        let msgs = match dequeue(&hm, &w.topic, w.reservation, &guid, n).await {
            Ok(m) => {
                backoff.reset();
                m
            }
            Err(e) => {
                drop(first);
                tracing::warn!(error = %e, topic = %w.topic, "hotmesh: dequeue failed; retrying");
                backoff.wait(&mut stop).await;
                continue;
            }
        };
        let idle = msgs.is_empty();
        let mut permit = Some(first);
        for m in msgs {
            let Some(p) = slot(&mut permit, &slots).await else {
                break;
            };
            let (id, token) = (m.id, m.reservation);
            let step = (id, token, m.attempt, m.retry.is_some());
            let (hm2, w2, s2, a2) = (hm.clone(), w.clone(), stats.clone(), answers.clone());
            let answer = {
                let (hm2, w2) = (hm2.clone(), w2.clone());
                move |o| answer_postgres(hm2, w2, a2, step, o)
            };
            // until its answer is applied, a message counts as running: a stop waits for
            // it (or releases it)
            let task = handle(w2, m, s2, p, Some(hm2), answer);
            track(&running, id, task, |task| (token, task));
        }
        drop(permit);
        if idle {
            // sleep until the topic has work, a reconnect, a throttle change, the poll, or stop
            let wait = async {
                loop {
                    match events.recv().await {
                        Ok(Event::Note { channel: ch, .. }) if ch == channel => return,
                        Ok(Event::Note { .. }) => {}
                        _ => return,
                    }
                }
            };
            tokio::select! {
                _ = wait => {}
                _ = tokio::time::sleep(w.poll) => {}
                _ = throttle.changed() => {}
                _ = stop.changed() => {}
            }
        } else if t > 0 {
            pace(t, &mut stop).await;
        }
    }
    shutdown(&hm, running).await;
}

async fn shutdown(hm: &HotMesh, running: Running) {
    for (id, (token, task)) in wait_for(&running, hm.grace()).await {
        task.abort();
        // another worker takes it now, not when the reservation lapses
        let _ = sqlx::query("SELECT hotmesh.release($1, $2)")
            .bind(id)
            .bind(token)
            .execute(hm.stream_pool())
            .await;
    }
}

/// How long a worker on a transport waits for a first message per take: a stop or a
/// throttle is noticed within it.
const TAKE_WAIT: Duration = Duration::from_secs(1);

/// The worker's loop on a transport ([`Config::stream_url`](crate::Config::stream_url)
/// names Redis or NATS), until `stop`: as slots free up (under the throttles, as on
/// PostgreSQL), takes messages with `take_work` as consumer `consumer`, runs each with
/// [`handle`], answers it with `send_answer` and acknowledges the delivery once the answer
/// is stored. No heartbeats: a callback that runs longer than the transport's
/// `claim_after` has its message delivered again meanwhile (the engine applies one answer).
/// At stop, running callbacks get `grace`; the deliveries of those still running then stay
/// unacknowledged and come again after `claim_after`.
pub(crate) async fn run_transport<T: Transport>(
    transport: Arc<T>,
    w: Worker,
    consumer: String,
    stats: Arc<WorkerState>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut throttle = stats.throttle.subscribe();
    let slots = Arc::new(Semaphore::new(w.concurrency));
    // the tasks by a number of their own: a message delivered again while its first
    // delivery's callback still runs is another task
    let running: Arc<Mutex<HashMap<u64, JoinHandle<()>>>> = Arc::default();
    let mut seq = 0u64;
    let mut backoff = Backoff::new();
    while !stopped(&stop) {
        let (first, n, t) = match next(&w, &slots, &mut throttle, &mut stop).await {
            Next::Take { first, n, throttle } => (first, n, throttle),
            Next::Again => continue,
            Next::End => break,
        };
        // waits up to TAKE_WAIT for a first message: an idle worker's sleep
        let deliveries = match transport.take_work(&w.topic, &consumer, n, TAKE_WAIT).await {
            Ok(d) => {
                backoff.reset();
                d
            }
            Err(e) => {
                drop(first);
                tracing::warn!(error = %e, topic = %w.topic, "hotmesh: taking work from the transport failed; retrying");
                backoff.wait(&mut stop).await;
                continue;
            }
        };
        if *throttle.borrow() < 0 && !deliveries.is_empty() {
            // paused while the take waited: no callback runs once a pause is in force, so
            // these stay unacknowledged and come again after claim_after (once resumed)
            tracing::info!(topic = %w.topic, messages = deliveries.len(), "hotmesh: paused; work taken meanwhile comes again");
            continue;
        }
        let idle = deliveries.is_empty();
        let mut permit = Some(first);
        for d in deliveries {
            let Some(p) = slot(&mut permit, &slots).await else {
                break;
            };
            let m = Message::of_work(&d.message, d.redelivered);
            let step = (m.attempt, m.retry.is_some());
            let (t2, w2, patience) = (transport.clone(), w.clone(), w.reservation);
            let answer = move |o| answer_transport(t2, w2, step, d, o, patience);
            let task = handle(w.clone(), m, stats.clone(), p, None, answer);
            seq += 1;
            track(&running, seq, task, |task| task);
        }
        drop(permit);
        if !idle && t > 0 {
            pace(t, &mut stop).await;
        }
    }
    for (_, task) in wait_for(&running, grace).await {
        // its delivery is not acknowledged: the transport delivers it again
        task.abort();
    }
    // the consumer's name goes with it, unless messages are pending for it (Redis keeps
    // every name it saw: each start would leave one)
    if let Err(e) = transport.leave(&w.topic, &consumer).await {
        tracing::debug!(error = %e, topic = %w.topic, "hotmesh: leaving the transport's consumer group");
    }
}

/// The answer step on a transport: the outcome as it is ([`answer_of`]) on the answers'
/// queue, then the delivery acknowledged; each retried while the transport is unreachable,
/// for up to `patience` (the reservation: after it, the message comes again anyway).
async fn answer_transport<T: Transport>(
    transport: Arc<T>,
    w: Worker,
    (attempt, own_retry): (i32, bool),
    delivery: Delivery<Work>,
    outcome: Outcome,
    patience: Duration,
) -> Result<(), String> {
    let (id, reservation) = (delivery.message.id, delivery.message.reservation);
    // settled as on PostgreSQL: the worker's own retry policy, a retry it asked for and a
    // fatal error travel with the answer, and the bridge calls retry or fail for them
    let answer = match settle(&w, attempt, own_retry, outcome) {
        Settle::Answer(o) => answer_of(id, reservation, &o),
        Settle::Retry { delay, error } => Answer {
            retry_after: Some(delay.as_secs_f64()),
            ..answer_of(
                id,
                reservation,
                &Outcome::Error {
                    code: 500,
                    data: error,
                },
            )
        },
        Settle::Fail { code, error } => Answer {
            fatal: true,
            ..answer_of(id, reservation, &Outcome::Error { code, data: error })
        },
    };
    let deadline = tokio::time::Instant::now() + patience;
    persist(deadline, || transport.send_answer(&answer))
        .await
        .map_err(|e| format!("the answer was not sent: {e}"))?;
    persist(deadline, || transport.ack_work(&delivery))
        .await
        .map_err(|e| {
            format!("the answer was sent, its delivery not acknowledged (it comes again): {e}")
        })
}

/// `f` until it succeeds, fails for another reason than the connection, or `deadline`
/// passes (100 ms between tries, doubling to 5 s).
async fn persist<F, Fut>(deadline: tokio::time::Instant, mut f: F) -> Result<(), TransportError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), TransportError>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match f().await {
            Err(e) if e.is_connection() && tokio::time::Instant::now() + backoff < deadline => {
                tracing::warn!(error = %e, "hotmesh: the transport is unreachable; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            r => return r,
        }
    }
}

impl Message {
    /// The message a transport delivered (`redelivered` times before): the work's fields
    /// (its reservation the one the answer returns), and its deliveries counting the
    /// transport's own redeliveries (an earlier worker there did not answer).
    pub(crate) fn of_work(w: &Work, redelivered: u64) -> Message {
        let redelivered = i32::try_from(redelivered).unwrap_or(i32::MAX);
        Message {
            id: w.id,
            topic: w.topic.clone(),
            job_id: w.job_id.clone(),
            activity_id: w.activity_id.clone(),
            dad: w.dad.clone(),
            data: w.data.clone(),
            attempt: w.attempt,
            deliveries: w.deliveries.saturating_add(redelivered),
            metadata: w.metadata.clone(),
            reservation: w.reservation,
            retry: w.metadata.get("retry").cloned(),
        }
    }
}

impl Message {
    /// The message as it travels on a transport (the bridge sends it).
    pub(crate) fn into_work(self) -> Work {
        let m = self;
        Work {
            id: m.id,
            reservation: m.reservation,
            topic: m.topic,
            job_id: m.job_id,
            activity_id: m.activity_id,
            dad: m.dad,
            data: m.data,
            attempt: m.attempt,
            deliveries: m.deliveries,
            metadata: m.metadata,
        }
    }
}

/// What a transport's answer asks the engine to apply.
pub(crate) fn outcome_of(a: &Answer) -> Outcome {
    let data = a.data.clone();
    match (a.status, a.code) {
        (hotmesh_transport::Status::Success, None | Some(200)) => Outcome::Success(data),
        (hotmesh_transport::Status::Success, Some(code)) => Outcome::Coded { code, data },
        (hotmesh_transport::Status::Pending, _) => Outcome::Pending(data),
        (hotmesh_transport::Status::Error, code) => Outcome::Error {
            code: code.unwrap_or(500),
            data,
        },
    }
}

/// The answer to message `id` (held by `reservation`) a transport carries for `outcome`:
/// its status and code as PostgreSQL's answer would have them ([`Outcome::parts`]). A
/// [`Outcome::Fatal`] is an error answer with its code, an [`Outcome::Retry`] one with
/// code 500 (`answer_transport` settles them first: `fatal`, `retry_after`).
pub(crate) fn answer_of(id: i64, reservation: i64, outcome: &Outcome) -> Answer {
    let (data, status, code) = outcome.parts();
    Answer {
        id,
        reservation,
        status: match status {
            Status::Success => hotmesh_transport::Status::Success,
            Status::Error => hotmesh_transport::Status::Error,
            Status::Pending => hotmesh_transport::Status::Pending,
        },
        code: Some(code),
        data: data.clone(),
        fatal: false,
        retry_after: None,
    }
}

/// Checks that `topic` can be a topic on a transport (a subject: dot-separated tokens,
/// no whitespace, no wildcards).
pub(crate) fn check_transport_topic(topic: &str) -> Result<(), Error> {
    hotmesh_transport::subject::check_subject(topic).map_err(|e| Error::Invalid {
        name: "topic",
        problem: format!("a worker on a transport needs a topic that is a subject: {e}"),
    })
}

/// Runs `worker` on `transport` until `stop` holds true (or its sender is dropped): the
/// loop [`HotMesh::init`] starts for each worker when
/// [`Config::stream_url`](crate::Config::stream_url) names Redis or NATS, here without
/// PostgreSQL: `stop` and `grace` stand for [`HotMesh::stop`] and
/// [`Config::grace`](crate::Config::grace), and `throttle` (when given) for the quorum's
/// throttles (-1 paused, 0 full speed, > 0 ms between messages). `consumer` is its name on
/// the transport. For tests; not a stable API.
#[doc(hidden)]
pub async fn run_on_transport<T: Transport>(
    transport: Arc<T>,
    worker: Worker,
    consumer: impl Into<String>,
    stop: watch::Receiver<bool>,
    grace: Duration,
    throttle: Option<watch::Receiver<i32>>,
) -> Result<(), Error> {
    worker.check()?;
    check_transport_topic(&worker.topic)?;
    let consumer = consumer.into();
    let stats = crate::quorum::State::default().add_worker(&consumer, &worker.topic);
    // what the quorum's beats do: the worker's throttle follows the given one
    let follow = throttle.map(|mut rx| {
        let stats = stats.clone();
        tokio::spawn(async move {
            loop {
                stats.throttle.send_replace(*rx.borrow_and_update());
                if rx.changed().await.is_err() {
                    break;
                }
            }
        })
    });
    run_transport(transport, worker, consumer, stats, stop, grace).await;
    if let Some(f) = follow {
        f.abort();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn worker(retry: Option<RetryPolicy>) -> Worker {
        let w = Worker::new("t", |_m| async { Outcome::success(json!({})) });
        match retry {
            Some(r) => w.retry(r),
            None => w,
        }
    }

    fn error() -> Outcome {
        Outcome::error(503, json!({"message": "busy"}))
    }

    #[test]
    fn an_error_is_answered_as_it_is_when_no_policy_of_the_worker_applies() {
        assert_eq!(
            settle(&worker(None), 0, false, error()),
            Settle::Answer(error())
        );
        // the activity's own policy is the extension's to apply
        let w = worker(Some(RetryPolicy::new(3)));
        assert_eq!(settle(&w, 0, true, error()), Settle::Answer(error()));
    }

    #[test]
    fn the_workers_policy_retries_an_error_until_its_attempts_run_out() {
        let w = worker(Some(
            RetryPolicy::new(3)
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0),
        ));
        assert_eq!(
            settle(&w, 0, false, error()),
            Settle::Retry {
                delay: Duration::from_secs(2),
                error: json!({"message": "busy"})
            }
        );
        assert!(matches!(
            settle(&w, 1, false, error()),
            Settle::Retry { .. }
        ));
        assert_eq!(settle(&w, 2, false, error()), Settle::Answer(error()));
    }

    #[test]
    fn a_fatal_error_fails_at_once_and_a_success_is_answered() {
        let w = worker(Some(RetryPolicy::new(9)));
        let fatal = Outcome::fatal(422, json!({"message": "bad"}));
        assert_eq!(
            settle(&w, 0, false, fatal),
            Settle::Fail {
                code: 422,
                error: json!({"message": "bad"})
            }
        );
        let ok = Outcome::success(json!({"x": 1}));
        assert_eq!(settle(&w, 0, false, ok.clone()), Settle::Answer(ok));
    }

    fn work() -> Work {
        Work {
            id: 7,
            reservation: 1007,
            topic: "orders.charge".into(),
            job_id: "job-7".into(),
            activity_id: "a1".into(),
            dad: ",0".into(),
            data: json!({"amount": 5}),
            attempt: 2,
            deliveries: 1,
            metadata: json!({"guid": 7, "topic": "orders.charge", "retry": {"maximumAttempts": 3}}),
        }
    }

    #[test]
    fn a_delivered_work_is_the_message_its_callback_gets() {
        let m = Message::of_work(&work(), 0);
        assert_eq!((m.id, m.reservation, m.attempt), (7, 1007, 2));
        assert_eq!(
            (&*m.topic, &*m.job_id, &*m.activity_id, &*m.dad),
            ("orders.charge", "job-7", "a1", ",0")
        );
        assert_eq!(m.data, json!({"amount": 5}));
        assert_eq!(m.metadata, work().metadata);
        // the activity's own policy, as a dequeued message has it
        assert_eq!(m.retry, Some(json!({"maximumAttempts": 3})));
        assert_eq!(m.deliveries, 1);
    }

    #[test]
    fn a_transports_redeliveries_count_as_deliveries() {
        let mut w = work();
        w.metadata = json!({"guid": 7});
        let m = Message::of_work(&w, 2);
        assert_eq!(m.deliveries, 3);
        assert_eq!(m.retry, None);
    }

    #[test]
    fn an_outcome_is_the_answer_postgres_would_get() {
        use hotmesh_transport::Status as S;
        let cases = [
            (Outcome::success(json!({"x": 1})), S::Success, 200),
            (Outcome::coded(588, json!({"x": 1})), S::Success, 588),
            (Outcome::pending(json!({"x": 1})), S::Pending, 202),
            (Outcome::error(503, json!({"x": 1})), S::Error, 503),
            (Outcome::fatal(422, json!({"x": 1})), S::Error, 422),
            (
                Outcome::retry_after(Duration::from_secs(3), json!({"x": 1})),
                S::Error,
                500,
            ),
        ];
        for (outcome, status, code) in cases {
            let a = answer_of(7, 1007, &outcome);
            assert_eq!(
                a,
                Answer {
                    id: 7,
                    reservation: 1007,
                    status,
                    code: Some(code),
                    data: json!({"x": 1}),
                    fatal: false,
                    retry_after: None,
                },
                "{outcome:?}"
            );
            // the same status and code as the answer on PostgreSQL
            let (_, pg, pg_code) = outcome.parts();
            assert_eq!((pg.name(), pg_code), (status_name(status), code));
        }
    }

    fn status_name(s: hotmesh_transport::Status) -> &'static str {
        match s {
            hotmesh_transport::Status::Success => "success",
            hotmesh_transport::Status::Error => "error",
            hotmesh_transport::Status::Pending => "pending",
        }
    }

    #[test]
    fn a_topic_on_a_transport_must_be_a_subject() {
        assert!(check_transport_topic("orders.charge").is_ok());
        for bad in ["", "orders charge", "orders.*", "orders..x"] {
            let e = check_transport_topic(bad).unwrap_err();
            assert!(
                matches!(e, Error::Invalid { name: "topic", .. }),
                "{bad}: {e}"
            );
        }
    }

    #[tokio::test]
    async fn a_panicking_callback_is_an_error_answer_with_code_500() {
        let w = Worker::new("t", |_m| async { panic!("boom") });
        let o = call(&w, Message::of_work(&work(), 0), None).await;
        let Outcome::Error { code: 500, data } = o else {
            panic!("{o:?}")
        };
        assert!(
            data["message"]
                .as_str()
                .unwrap()
                .starts_with("the callback failed"),
            "{data}"
        );
    }

    fn answer(status: hotmesh_transport::Status, code: Option<i32>) -> Answer {
        Answer {
            id: 1,
            reservation: 2,
            status,
            code,
            data: json!({"x": 1}),
            fatal: false,
            retry_after: None,
        }
    }

    #[test]
    fn an_answer_becomes_the_outcome_a_worker_would_have_sent() {
        use hotmesh_transport::Status as T;
        for (a, want) in [
            (answer(T::Success, None), ("success", 200)),
            (answer(T::Success, Some(200)), ("success", 200)),
            (answer(T::Success, Some(590)), ("success", 590)),
            (answer(T::Pending, None), ("pending", 202)),
            (answer(T::Error, Some(404)), ("error", 404)),
            (answer(T::Error, None), ("error", 500)),
        ] {
            let o = outcome_of(&a);
            let (data, status, code) = o.parts();
            assert_eq!(data, &json!({"x": 1}));
            assert_eq!((status.name(), code), want, "{a:?}");
        }
    }
}
