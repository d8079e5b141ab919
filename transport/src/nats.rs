//! The engine's traffic on NATS: worker messages and answers on JetStream (stored, at least
//! once), events on core subjects (at most once).
//!
//! # Work
//!
//! One stream `{PREFIX}_WORK` (the prefix uppercased, characters other than `[A-Za-z0-9_-]`
//! replaced by `_`) holds the subjects `{prefix}.work.>`, with WorkQueue retention and file
//! storage: a message stays until a consumer acknowledges it, then it is removed.
//! [`Transport::send_work`] publishes the JSON of a [`Work`] on `{prefix}.work.{topic}` and
//! returns once JetStream has acknowledged the publish (only then is the message stored). The
//! publish carries a `Nats-Msg-Id` made of the topic, the message id and the reservation, so
//! a send that is retried after a timeout (the first one stored after all) is not stored twice
//! within the stream's duplicate window: it is the same hand-out.
//!
//! A topic has one durable pull consumer, named from the topic (durable names cannot hold
//! dots: the topic's characters other than `[A-Za-z0-9]` become `_`, and a hash of the whole
//! topic is appended so that `a.b` and `a_b` stay apart), filtered on the topic's subject.
//! Every worker process of the topic pulls from that one consumer: that is how JetStream
//! shares a work queue (a WorkQueue stream accepts only one consumer per subject anyway). The
//! `consumer` argument of [`Transport::take_work`] (the process's name) is therefore not
//! needed and is ignored. The consumer acknowledges explicitly with `ack_wait` =
//! [`Options::claim_after`]: a delivery not acknowledged in time (its process died) is
//! delivered again, to any process, and JetStream hands out such redeliveries before new
//! messages. The consumer is created or updated at first use, so the latest process's
//! `claim_after` applies.
//!
//! A take first asks for what is there now (a `no_wait` pull of up to `max`); when nothing is,
//! it waits up to `wait` for one message (a pull of one that expires after `wait`) and
//! returns it at once. A pull request never outlives the call, so a message is
//! never handed to a request nobody listens to any more (it would stay unacknowledged for
//! `claim_after`).
//!
//! A [`Delivery`]'s tag is the message's reply subject (`$JS.ACK.…`): acknowledging is
//! publishing `+ACK` on it, from any connection. [`Transport::ack_work`] sends it as a request
//! (a "double ack"): JetStream answers once it has processed the ack, so a returned `Ok`
//! means the ack landed. `redelivered` is the delivery count in the reply subject, minus one.
//! A message that is not our JSON is acknowledged (removed) and skipped with a warning.
//!
//! # Answers
//!
//! The same over a stream `{PREFIX}_ANSWERS` on the one subject `{prefix}.answers`, with one
//! durable pull consumer `engine` that every bridge shares (the `consumer` argument is
//! ignored as for work). Answers carry no `Nats-Msg-Id`: a worker may answer one reservation
//! more than once (pending, then its result).
//!
//! # Events
//!
//! Core NATS: [`Transport::publish`] publishes on `{prefix}.events.{subject}` and flushes (the
//! event has left for the server); [`Transport::subscribe`] subscribes on
//! `{prefix}.events.{pattern}`, NATS matching the wildcards itself, and a task forwards what
//! arrives with the subject stripped of `{prefix}.events.`. Core NATS is at most once: an
//! event published while a subscriber is disconnected is lost for it, as a NOTIFY is.
//!
//! # Connection
//!
//! async-nats reconnects by itself (and resubscribes); a subscription survives a reconnect.
//! The first connection is not retried: [`Nats::connect`] fails with a
//! [`TransportError::Connection`] when the server is down. Every call checks that the client
//! is connected (failing at once with a Connection error otherwise) and is bounded by
//! timeouts, so a call while the server is down or unresponsive returns a Connection error
//! within seconds instead of waiting for the reconnect; a call in flight when the connection
//! breaks fails at once (the client's disconnect event ends it). Errors that a retry after a
//! reconnect may cure (timeouts, a broken connection, JetStream not answering) are Connection
//! errors; the others (a refused request, a deleted consumer) are Server errors.

use crate::subject::{check_pattern, check_subject};
use crate::{Answer, Delivery, Event, Options, Subscription, Transport, TransportError, Work};
use async_nats::connection::State;
use async_nats::jetstream;
use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::context::CreateStreamErrorKind;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use async_nats::{Client, ConnectOptions};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{timeout_at, Instant};

const TRANSPORT: &str = "nats";

/// How long one request to the server (a JetStream API call, a publish's ack, an ack's
/// confirmation, a flush) may take: past it, the server is taken for unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Deliveries a consumer may have unacknowledged at once. JetStream's default (1000) would
/// stall a topic whose many workers each hold a batch; this one is a guard, not a limit.
const MAX_ACK_PENDING: i64 = 100_000;

/// The most messages asked for in one pull.
const MAX_BATCH: usize = 10_000;

/// Events a subscription buffers before its forwarding task waits for the reader.
const EVENT_BUFFER: usize = 1024;

/// The longest part of a durable name taken from the topic (the hash keeps names unique).
const MAX_NAME_PART: usize = 64;

/// A connection to NATS with JetStream, see the module's documentation.
pub struct Nats {
    client: Client,
    js: jetstream::Context,
    prefix: String,
    work_stream: String,
    answers_stream: String,
    claim_after: Duration,
    /// Pull consumers by durable name, once created or updated on the server.
    consumers: Mutex<HashMap<String, PullConsumer>>,
    /// Whether the connection is up, as the client's events tell: a call in flight when it
    /// breaks fails at once instead of waiting for its timeout.
    link: watch::Receiver<bool>,
}

/// Why a call in flight was given up.
enum Interrupted {
    TimedOut(Duration),
    Broken,
}

impl From<Interrupted> for TransportError {
    fn from(i: Interrupted) -> TransportError {
        match i {
            Interrupted::TimedOut(limit) => {
                connection(format!("no answer from the server within {limit:?}"))
            }
            Interrupted::Broken => connection("the connection broke"),
        }
    }
}

impl Nats {
    /// Connects to `url` (`nats://host:port`, several separated by commas) and creates the
    /// work and answers streams when they do not exist.
    pub async fn connect(url: &str, options: Options) -> Result<Nats, TransportError> {
        check_subject(&options.prefix).map_err(|e| TransportError::Invalid {
            what: "prefix",
            problem: e.to_string(),
        })?;
        if options.claim_after.is_zero() {
            return Err(TransportError::Invalid {
                what: "claim_after",
                problem: "must be more than zero".into(),
            });
        }
        let (link_tx, link) = watch::channel(true);
        let link_tx = Arc::new(link_tx);
        let client = ConnectOptions::new()
            .name(format!("hotmesh-transport ({})", options.prefix))
            .connection_timeout(REQUEST_TIMEOUT)
            .request_timeout(Some(REQUEST_TIMEOUT))
            // Back to the server quickly after a restart (default: up to 4 s between tries);
            // one try a second against a server that stays down costs nothing.
            .reconnect_delay_callback(|attempts| {
                if attempts <= 1 {
                    Duration::ZERO
                } else {
                    let exp = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(8);
                    Duration::from_millis(50u64 << exp).min(Duration::from_secs(1))
                }
            })
            .event_callback(move |event| {
                let link_tx = link_tx.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            link_tx.send_replace(true);
                            tracing::info!("nats: {event}");
                        }
                        async_nats::Event::Disconnected => {
                            link_tx.send_replace(false);
                            tracing::warn!("nats: {event}");
                        }
                        _ => tracing::warn!("nats: {event}"),
                    }
                }
            })
            // A cluster's servers separated by commas, as other NATS clients take them.
            .connect(url.split(',').map(str::trim).collect::<Vec<_>>())
            .await
            .map_err(|e| connection(format!("cannot connect to {}: {e}", crate::redact(url))))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .ack_timeout(REQUEST_TIMEOUT)
            .build(client.clone());
        let nats = Nats {
            client,
            js,
            work_stream: stream_name(&options.prefix, "WORK"),
            answers_stream: stream_name(&options.prefix, "ANSWERS"),
            prefix: options.prefix,
            claim_after: options.claim_after,
            consumers: Mutex::new(HashMap::new()),
            link,
        };
        nats.ensure_streams().await?;
        Ok(nats)
    }

    /// Creates the two streams if they do not exist. An existing stream is left as it is (an
    /// operator may have set its replicas or limits).
    async fn ensure_streams(&self) -> Result<(), TransportError> {
        let streams = [
            (&self.work_stream, format!("{}.work.>", self.prefix)),
            (&self.answers_stream, format!("{}.answers", self.prefix)),
        ];
        for (name, subject) in streams {
            let config = stream::Config {
                name: name.clone(),
                subjects: vec![subject],
                retention: RetentionPolicy::WorkQueue,
                storage: StorageType::File,
                ..Default::default()
            };
            self.bounded(REQUEST_TIMEOUT * 2, self.js.get_or_create_stream(config))
                .await?
                .map_err(|e| {
                    let retry = matches!(
                        e.kind(),
                        CreateStreamErrorKind::TimedOut
                            | CreateStreamErrorKind::JetStreamUnavailable
                    );
                    self.error(retry, format!("stream {name}: {e}"))
                })?;
        }
        Ok(())
    }

    /// The pull consumer `durable` on `stream`, filtered on `filter`: created or updated on
    /// the server at its first use by this client.
    async fn consumer(
        &self,
        stream: &str,
        durable: &str,
        filter: &str,
    ) -> Result<PullConsumer, TransportError> {
        if let Some(c) = self.cached(durable) {
            return Ok(c);
        }
        let config = pull::Config {
            durable_name: Some(durable.to_string()),
            filter_subject: filter.to_string(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.claim_after,
            max_ack_pending: MAX_ACK_PENDING,
            ..Default::default()
        };
        let mut created = self.create_consumer(stream, config.clone()).await;
        if matches!(created, Err(TransportError::Server { .. })) {
            // The stream may have been deleted since connect: create it again, once.
            self.ensure_streams().await?;
            created = self.create_consumer(stream, config).await;
        }
        let consumer = created?;
        lock(&self.consumers).insert(durable.to_string(), consumer.clone());
        Ok(consumer)
    }

    async fn create_consumer(
        &self,
        stream: &str,
        config: pull::Config,
    ) -> Result<PullConsumer, TransportError> {
        let durable = config.durable_name.clone().unwrap_or_default();
        self.bounded(
            REQUEST_TIMEOUT * 2,
            self.js.create_consumer_on_stream(config, stream),
        )
        .await?
        .map_err(|e| {
            // Request: no responders (JetStream unavailable) or the request failed.
            let retry = matches!(
                e.kind(),
                ConsumerErrorKind::TimedOut | ConsumerErrorKind::Request
            );
            self.error(retry, format!("consumer {durable} on {stream}: {e}"))
        })
    }

    fn cached(&self, durable: &str) -> Option<PullConsumer> {
        lock(&self.consumers).get(durable).cloned()
    }

    /// Forgets a consumer after an error pulling from it: the next take creates it again
    /// (it may have been deleted).
    fn forget(&self, durable: &str) {
        lock(&self.consumers).remove(durable);
    }

    /// `f`, or a Connection error when it has not finished within `limit` or the connection
    /// broke meanwhile.
    async fn bounded<F: Future>(&self, limit: Duration, f: F) -> Result<F::Output, TransportError> {
        Ok(self.race(Instant::now() + limit, f).await?)
    }

    /// `f`, unless `deadline` passes or the connection breaks first.
    async fn race<F: Future>(&self, deadline: Instant, f: F) -> Result<F::Output, Interrupted> {
        let started = Instant::now();
        tokio::select! {
            out = timeout_at(deadline, f) => {
                out.map_err(|_| Interrupted::TimedOut(deadline.saturating_duration_since(started)))
            }
            () = self.broken() => Err(Interrupted::Broken),
        }
    }

    /// Returns once the connection is down. An event saying so may be stale (the client
    /// reconnected, its event not yet seen): the client's own state decides.
    async fn broken(&self) {
        let mut link = self.link.clone();
        loop {
            let down = !*link.borrow_and_update();
            if down && self.client.connection_state() != State::Connected {
                return;
            }
            if link.changed().await.is_err() {
                // The client is gone; its calls end by themselves.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Fails at once when the client is not connected now (it is reconnecting).
    fn connected(&self) -> Result<(), TransportError> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            state => Err(connection(format!("not connected to the server ({state})"))),
        }
    }

    /// An error of the server or of the connection: a Connection error when `retry` (the
    /// kind of error a reconnect may cure) or when the client is not connected any more.
    fn error(&self, retry: bool, message: impl Display) -> TransportError {
        if retry || self.client.connection_state() != State::Connected {
            connection(message)
        } else {
            TransportError::Server {
                transport: TRANSPORT,
                message: message.to_string(),
            }
        }
    }

    /// Publishes `payload` on a stream's `subject` and waits for JetStream's ack.
    async fn store(
        &self,
        subject: String,
        payload: Vec<u8>,
        msg_id: Option<String>,
    ) -> Result<(), TransportError> {
        self.connected()?;
        let mut message = jetstream::message::PublishMessage::build().payload(payload.into());
        if let Some(id) = msg_id {
            message = message.message_id(id);
        }
        let mut retried = false;
        loop {
            let publish = async {
                self.js
                    .send_publish(subject.clone(), message.clone())
                    .await?
                    .await
            };
            let e = match self
                .bounded(REQUEST_TIMEOUT * 2 + Duration::from_secs(1), publish)
                .await?
            {
                Ok(_ack) => return Ok(()),
                Err(e) => e,
            };
            // No stream took the message: it may have been deleted since connect. Create it
            // again and publish once more.
            if e.kind() == PublishErrorKind::StreamNotFound && !retried {
                retried = true;
                self.ensure_streams().await?;
                continue;
            }
            let retry = matches!(
                e.kind(),
                PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe
            );
            return Err(self.error(retry, format!("publish on {subject}: {e}")));
        }
    }

    /// Takes up to `max` messages of a consumer, waiting up to `wait` for the first.
    async fn take<T: DeserializeOwned>(
        &self,
        stream: &str,
        durable: &str,
        filter: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery<T>>, TransportError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.connected()?;
        let consumer = self.consumer(stream, durable, filter).await?;
        let result = self.pull(&consumer, max.min(MAX_BATCH), wait).await;
        let messages = match result {
            Ok(m) => m,
            Err(e) => {
                if !e.is_connection() {
                    self.forget(durable);
                }
                return Err(e);
            }
        };
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            if let Some(d) = self.decode(m).await {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// What the consumer has now, up to `max`; or, when it has nothing, the first message
    /// within `wait`.
    async fn pull(
        &self,
        consumer: &PullConsumer,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<jetstream::Message>, TransportError> {
        let now = self.pull_now(consumer, max).await?;
        if !now.is_empty() || wait < Duration::from_millis(1) {
            return Ok(now);
        }
        // The first message after a wait goes at once: asking for more would put one more
        // round trip between its arrival and its callback (or, on the answers' queue, its
        // step). Under load the next take finds the rest with its `no_wait` pull.
        self.pull_waiting(consumer, wait).await
    }

    /// A `no_wait` pull: the server delivers what it has, up to `max`, and ends the request.
    async fn pull_now(
        &self,
        consumer: &PullConsumer,
        max: usize,
    ) -> Result<Vec<jetstream::Message>, TransportError> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let batch = self
            .race(deadline, consumer.fetch().max_messages(max).messages())
            .await?
            .map_err(|e| self.error(false, format!("pull request: {e}")))?;
        self.collect(batch, max, deadline).await
    }

    /// A pull of one message that the server keeps for `wait`, then ends (408).
    async fn pull_waiting(
        &self,
        consumer: &PullConsumer,
        wait: Duration,
    ) -> Result<Vec<jetstream::Message>, TransportError> {
        let deadline = Instant::now() + wait + REQUEST_TIMEOUT;
        let batch = self
            .race(
                deadline,
                consumer.batch().max_messages(1).expires(wait).messages(),
            )
            .await?
            .map_err(|e| self.error(false, format!("pull request: {e}")))?;
        self.collect(batch, 1, deadline).await
    }

    /// The messages of a pull, until the server ends it, `max` came, `deadline` passed or the
    /// connection broke. What came is returned even then: it is ours until `claim_after`.
    async fn collect(
        &self,
        mut batch: pull::Batch,
        max: usize,
        deadline: Instant,
    ) -> Result<Vec<jetstream::Message>, TransportError> {
        let mut got = Vec::new();
        while got.len() < max {
            match self.race(deadline, batch.next()).await {
                Ok(Some(Ok(m))) => got.push(m),
                // The server ended the request (no more messages, or it expired).
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    if got.is_empty() {
                        return Err(self.error(false, format!("pull: {e}")));
                    }
                    tracing::warn!("nats: pull ended with: {e}");
                    break;
                }
                Err(i) => {
                    if got.is_empty() {
                        return Err(i.into());
                    }
                    break;
                }
            }
        }
        // A pull that ended without messages because the connection broke is not "nothing
        // there": say so, so the caller backs off.
        if got.is_empty() {
            self.connected()?;
        }
        Ok(got)
    }

    /// A delivery of a message, or None (after acknowledging it) when it is not ours.
    async fn decode<T: DeserializeOwned>(&self, m: jetstream::Message) -> Option<Delivery<T>> {
        let Some(reply) = m.message.reply.as_ref().map(|r| r.to_string()) else {
            // Cannot happen on a pull consumer; without a reply subject it cannot be acked.
            tracing::warn!("nats: a message on {} without a reply subject", m.subject);
            return None;
        };
        let redelivered = match m.info() {
            Ok(info) => u64::try_from(info.delivered.saturating_sub(1)).unwrap_or(0),
            Err(e) => {
                tracing::warn!("nats: unreadable delivery info '{reply}': {e}");
                0
            }
        };
        match serde_json::from_slice::<T>(&m.message.payload) {
            Ok(message) => Some(Delivery {
                message,
                redelivered,
                tag: reply,
            }),
            Err(e) => {
                let err = TransportError::Malformed {
                    transport: TRANSPORT,
                    message: format!("on {}: {e}", m.subject),
                };
                tracing::warn!("{err}; acknowledged and skipped");
                // Should this ack fail, the message comes again and is skipped again.
                if let Err(e) = self.ack(&reply).await {
                    tracing::warn!("nats: acknowledging a malformed message: {e}");
                }
                None
            }
        }
    }

    /// Acknowledges a delivery by its reply subject and waits for JetStream's confirmation.
    async fn ack(&self, tag: &str) -> Result<(), TransportError> {
        if !tag.starts_with("$JS.ACK.") {
            return Err(TransportError::Invalid {
                what: "delivery",
                problem: format!("'{tag}' is not a JetStream delivery"),
            });
        }
        self.connected()?;
        let request = self.client.request(tag.to_string(), "+ACK".into());
        self.bounded(REQUEST_TIMEOUT + Duration::from_secs(1), request)
            .await?
            .map(|_| ())
            .map_err(|e| {
                use async_nats::client::RequestErrorKind as K;
                // No responders: the consumer is gone (deleted); not a connection matter.
                let retry = matches!(e.kind(), K::TimedOut | K::Other);
                self.error(retry, format!("ack: {e}"))
            })
    }

    fn work_subject(&self, topic: &str) -> String {
        format!("{}.work.{topic}", self.prefix)
    }

    fn answers_subject(&self) -> String {
        format!("{}.answers", self.prefix)
    }

    fn events_prefix(&self) -> String {
        format!("{}.events.", self.prefix)
    }
}

impl Transport for Nats {
    async fn leave(&self, topic: &str, _consumer: &str) -> Result<bool, TransportError> {
        // all processes of a topic share one durable consumer, named from the topic
        check_subject(topic)?;
        Ok(false)
    }

    async fn send_work(&self, work: &Work) -> Result<(), TransportError> {
        check_subject(&work.topic)?;
        let payload = serde_json::to_vec(work).map_err(|e| TransportError::Invalid {
            what: "work",
            problem: e.to_string(),
        })?;
        let msg_id = format!("{}:{}:{}", work.topic, work.id, work.reservation);
        self.store(self.work_subject(&work.topic), payload, Some(msg_id))
            .await
    }

    async fn take_work(
        &self,
        topic: &str,
        _consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery<Work>>, TransportError> {
        check_subject(topic)?;
        let durable = durable_name("work", topic);
        self.take(
            &self.work_stream,
            &durable,
            &self.work_subject(topic),
            max,
            wait,
        )
        .await
    }

    async fn ack_work(&self, delivery: &Delivery<Work>) -> Result<(), TransportError> {
        self.ack(&delivery.tag).await
    }

    async fn send_answer(&self, answer: &Answer) -> Result<(), TransportError> {
        let payload = serde_json::to_vec(answer).map_err(|e| TransportError::Invalid {
            what: "answer",
            problem: e.to_string(),
        })?;
        self.store(self.answers_subject(), payload, None).await
    }

    async fn take_answers(
        &self,
        _consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery<Answer>>, TransportError> {
        self.take(
            &self.answers_stream,
            "engine",
            &self.answers_subject(),
            max,
            wait,
        )
        .await
    }

    async fn ack_answer(&self, delivery: &Delivery<Answer>) -> Result<(), TransportError> {
        self.ack(&delivery.tag).await
    }

    async fn publish(&self, subject: &str, payload: &[u8]) -> Result<(), TransportError> {
        check_subject(subject)?;
        self.connected()?;
        let full = format!("{}{subject}", self.events_prefix());
        let sent = async {
            self.client
                .publish(full.clone(), payload.to_vec().into())
                .await
                .map_err(|e| self.error(false, format!("publish on {full}: {e}")))?;
            // Flushed: the event has left for the server (a PONG came back after it).
            self.client
                .flush()
                .await
                .map_err(|e| self.error(true, format!("flush after {full}: {e}")))
        };
        self.bounded(REQUEST_TIMEOUT, sent).await?
    }

    async fn subscribe(&self, pattern: &str) -> Result<Subscription, TransportError> {
        check_pattern(pattern)?;
        self.connected()?;
        let prefix = self.events_prefix();
        let full = format!("{prefix}{pattern}");
        let subscribed = async {
            let sub = self
                .client
                .subscribe(full.clone())
                .await
                .map_err(|e| self.error(false, format!("subscribe to {full}: {e}")))?;
            // Flushed: the server has the subscription, so an event published after this
            // returns reaches it.
            self.client
                .flush()
                .await
                .map_err(|e| self.error(true, format!("flush after subscribing to {full}: {e}")))?;
            Ok::<_, TransportError>(sub)
        };
        let mut sub = self.bounded(REQUEST_TIMEOUT, subscribed).await??;
        let (tx, rx) = tokio::sync::mpsc::channel(EVENT_BUFFER);
        // Ends when the subscription is dropped (the task is aborted, the subscriber with it:
        // unsubscribed) or when the client closes (the subscriber ends).
        let task = tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let subject = m.subject.as_str();
                let event = Event {
                    subject: subject.strip_prefix(&prefix).unwrap_or(subject).to_string(),
                    payload: m.payload.to_vec(),
                };
                if tx.send(event).await.is_err() {
                    break;
                }
            }
        });
        Ok(Subscription::new(rx, Some(task)))
    }
}

fn connection(message: impl Display) -> TransportError {
    TransportError::Connection {
        transport: TRANSPORT,
        message: message.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The map stays consistent whatever panicked while holding it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `{PREFIX}_{kind}`: stream names cannot hold dots, wildcards or whitespace.
fn stream_name(prefix: &str, kind: &str) -> String {
    let p: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{p}_{kind}")
}

/// The durable consumer of a topic: `{kind}_{topic's alphanumerics, others as _}_{hash}`.
/// The same topic gives the same name in every process and every version (FNV-1a, not the
/// standard library's hasher, whose output may change); the hash tells apart topics that
/// differ only in replaced characters or beyond the name's length limit.
fn durable_name(kind: &str, topic: &str) -> String {
    let readable: String = topic
        .chars()
        .take(MAX_NAME_PART)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{kind}_{readable}_{:016x}", fnv1a(topic.as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_uppercase_and_dotless() {
        assert_eq!(stream_name("hotmesh", "WORK"), "HOTMESH_WORK");
        assert_eq!(stream_name("my-app.v1", "ANSWERS"), "MY-APP_V1_ANSWERS");
    }

    #[test]
    fn durable_names_are_stable_and_tell_topics_apart() {
        let ab = durable_name("work", "a.b");
        assert!(ab.starts_with("work_a_b_"), "{ab}");
        assert_eq!(ab, durable_name("work", "a.b"));
        assert_ne!(ab, durable_name("work", "a_b"));
        assert!(ab.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        let long = "x".repeat(200);
        assert!(durable_name("work", &long).len() < MAX_NAME_PART + 30);
        assert_ne!(
            durable_name("work", &long),
            durable_name("work", &format!("{long}y"))
        );
    }
}
