#![deny(missing_docs)]
//! The engine's traffic on other transports than PostgreSQL (docs/transports.md): worker
//! messages (a queue per worker topic), the workers' answers (one queue back to the
//! engine), and events (completions, emits, quorum messages) on subjects with NATS-style
//! wildcards. [`Transport`] is the one interface; [`redis::Redis`] (Streams with consumer
//! groups, pub/sub) and [`nats::Nats`] (JetStream with durable consumers, core subjects)
//! implement it. The extension's bridge moves messages between PostgreSQL and a transport;
//! the client crate's workers and subscribers use the same interface on the other side.
//!
//! Delivery is at least once, as on PostgreSQL: a message stays on its queue until it is
//! acknowledged ([`Transport::ack_work`], [`Transport::ack_answer`]), and one taken but not
//! acknowledged within [`Options::claim_after`] (its consumer died) is delivered again. What
//! makes an answer apply once is the engine's reservation token, which every [`Work`]
//! carries and every [`Answer`] returns.

pub mod any;
pub mod nats;
pub mod redis;
pub mod subject;

pub use any::{connect, redact, AnyTransport, Kind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

/// A worker message on its way to a worker: what `hotmesh.dequeue` handed the bridge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// The message's id in `hotmesh.worker_stream` (the metadata's `guid`).
    pub id: i64,
    /// The hand-out's token: the answer must carry it back.
    pub reservation: i64,
    /// The worker topic.
    pub topic: String,
    /// The job the message belongs to.
    pub job_id: String,
    /// The worker activity.
    pub activity_id: String,
    /// The activity's dimensional address (which loop iteration or stream answer).
    pub dad: String,
    /// The activity's input.
    pub data: Value,
    /// The retry attempt (0 first).
    pub attempt: i32,
    /// How often PostgreSQL has handed it out.
    pub deliveries: i32,
    /// `{guid, jid, gid, dad, aid, topic, try, …}` as workers receive it.
    pub metadata: Value,
}

/// How a worker answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The activity's output.
    Success,
    /// An error, with its code: retried if the activity's policy says so.
    Error,
    /// A 202: the activity stays open for more answers.
    Pending,
}

/// A worker's answer to a [`Work`], on its way back to the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The message answered.
    pub id: i64,
    /// The reservation the work carried.
    pub reservation: i64,
    /// How the worker answered.
    pub status: Status,
    /// The error's code (with [`Status::Error`]), or a 2xx for the others.
    pub code: Option<i32>,
    /// The activity's output, or the error.
    pub data: Value,
    /// With [`Status::Error`]: never retried, whatever the activity's policy (a worker's
    /// fatal error). Absent: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fatal: bool,
    /// With [`Status::Error`]: hand the message out again after this many seconds instead
    /// of answering (the worker's own retry policy, or a retry it asked for). Absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<f64>,
}

/// One delivery of a message: the message, and what acknowledges it on its transport.
#[derive(Clone, Debug)]
pub struct Delivery<T> {
    /// The message delivered.
    pub message: T,
    /// Deliveries of this message by the transport before this one (0: the first).
    pub redelivered: u64,
    /// The transport's handle on the delivery (a stream entry id, a JetStream reply subject).
    pub(crate) tag: String,
}

/// An event seen by a subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The subject it was published on.
    pub subject: String,
    /// What was published.
    pub payload: Vec<u8>,
}

/// Events of a subscription, as they come. Dropped: unsubscribed.
pub struct Subscription {
    rx: tokio::sync::mpsc::Receiver<Event>,
    _task: Option<tokio::task::JoinHandle<()>>,
}

impl Subscription {
    /// The next event; None once the subscription ended (the transport closed it).
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    pub(crate) fn new(
        rx: tokio::sync::mpsc::Receiver<Event>,
        task: Option<tokio::task::JoinHandle<()>>,
    ) -> Subscription {
        Subscription { rx, _task: task }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(t) = &self._task {
            t.abort();
        }
    }
}

/// What a transport's client is told at connection.
#[derive(Clone, Debug)]
pub struct Options {
    /// A delivery not acknowledged for this long is delivered again (to any consumer):
    /// its consumer is taken for dead. Longer than the slowest callback (default 30 s, as
    /// `hotmesh.dequeue`'s reservation).
    pub claim_after: Duration,
    /// Prefix of every key, stream and subject name (default `hotmesh`): several
    /// databases may share one server.
    pub prefix: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            claim_after: Duration::from_secs(30),
            prefix: "hotmesh".into(),
        }
    }
}

/// What went wrong on a transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The server cannot be reached or the connection broke: retry later.
    #[error("{transport}: connection: {message}")]
    Connection {
        /// `redis` or `nats`.
        transport: &'static str,
        /// The client's or the server's words.
        message: String,
    },
    /// The server refused the request.
    #[error("{transport}: {message}")]
    Server {
        /// `redis` or `nats`.
        transport: &'static str,
        /// The server's words.
        message: String,
    },
    /// A message on the transport is not one of ours (it is acknowledged and skipped).
    #[error("{transport}: a malformed message: {message}")]
    Malformed {
        /// `redis` or `nats`.
        transport: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A name (topic, subject, pattern) the transport cannot carry.
    #[error("invalid {what}: {problem}")]
    Invalid {
        /// What was checked (`topic`, `subject`, `pattern`, …).
        what: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl TransportError {
    /// Whether retrying after a reconnect may succeed.
    pub fn is_connection(&self) -> bool {
        matches!(self, TransportError::Connection { .. })
    }
}

/// The engine's traffic on one transport. Every method is safe to call from many tasks
/// at once.
pub trait Transport: Send + Sync + 'static {
    /// Puts `work` on its topic's queue; returns once the server has stored it (the
    /// bridge's outbox step: only then is the message the transport's to deliver).
    fn send_work(&self, work: &Work) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Takes up to `max` messages of `topic` as consumer `consumer` (a name per worker
    /// process: Redis tracks each consumer's pending entries by it; NATS shares one durable
    /// consumer per topic among all processes and needs no name), waiting up to `wait` for
    /// the first. Deliveries left unacknowledged for [`Options::claim_after`] come first.
    fn take_work(
        &self,
        topic: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery<Work>>, TransportError>> + Send;

    /// Acknowledges a delivery of work (after its answer was sent): it is not delivered
    /// again.
    fn ack_work(
        &self,
        delivery: &Delivery<Work>,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Puts an answer on the answers' queue; returns once the server has stored it.
    fn send_answer(
        &self,
        answer: &Answer,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Takes up to `max` answers as consumer `consumer` (the bridge), waiting up to `wait`
    /// for the first; unacknowledged ones older than [`Options::claim_after`] come first.
    fn take_answers(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery<Answer>>, TransportError>> + Send;

    /// Acknowledges an answer (after the engine applied it and committed).
    fn ack_answer(
        &self,
        delivery: &Delivery<Answer>,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Consumer `consumer` of `topic` stops for good (a worker process that stops): the
    /// transport forgets its name if nothing is pending for it. Redis keeps every consumer
    /// name of a group until it is deleted; without this, each worker start would leave one.
    /// A name with pending entries is kept: another consumer claims them first. Returns
    /// whether the name was forgotten (NATS: consumers have no names, always false).
    fn leave(
        &self,
        topic: &str,
        consumer: &str,
    ) -> impl Future<Output = Result<bool, TransportError>> + Send;

    /// Publishes an event on `subject` (tokens separated by dots, no wildcards).
    fn publish(
        &self,
        subject: &str,
        payload: &[u8],
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Events on the subjects `pattern` matches: NATS wildcards, `*` one token, `>` (last)
    /// one or more tokens ([`subject::matches`]).
    fn subscribe(
        &self,
        pattern: &str,
    ) -> impl Future<Output = Result<Subscription, TransportError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_without_fatal_or_retry_after_reads_as_a_plain_one_and_writes_none() {
        let a: Answer = serde_json::from_str(
            r#"{"id": 1, "reservation": 2, "status": "error", "code": 500, "data": {}}"#,
        )
        .unwrap();
        assert!(!a.fatal);
        assert_eq!(a.retry_after, None);
        let back = serde_json::to_value(&a).unwrap();
        assert!(back.get("fatal").is_none() && back.get("retry_after").is_none());
    }
}
