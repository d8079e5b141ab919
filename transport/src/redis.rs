//! The engine's traffic on Redis: Streams with consumer groups for worker messages and
//! answers, pub/sub for events.
//!
//! # Keys and names
//!
//! - Worker messages of topic `t`: the stream `{prefix}:work:{t}`, read by the consumer
//!   group `workers`. Every worker process reads as a consumer of its own name.
//! - Answers: the stream `{prefix}:answers`, read by the consumer group `engine`.
//! - Events on subject `s`: the pub/sub channel `{prefix}:{s}`.
//!
//! An entry has one field, `m`, holding the JSON of the [`Work`] or [`Answer`].
//!
//! # Delivery
//!
//! Sending is `XADD`: it returns once Redis has stored the entry (with `appendfsync always`
//! on the server, once it is on disk). A consumer group is created on first take with
//! `XGROUP CREATE … 0 MKSTREAM` — from id `0`, not `$`, so that work sent before any
//! consumer existed is delivered too.
//!
//! A take first claims (`XAUTOCLAIM`) entries that some consumer took but left
//! unacknowledged for longer than [`Options::claim_after`] (that consumer is taken for
//! dead), then reads new entries (`XREADGROUP … >`), waiting up to `wait` only when nothing
//! was claimed. [`Delivery::redelivered`] is 0 for a new entry; for a claimed one it is
//! Redis's delivery count minus one (`XPENDING` of the claimed ids, one pipelined round trip
//! only when something was claimed; 1 if that lookup fails). Acknowledging is `XACK` and
//! `XDEL` in one `MULTI`: an acknowledged entry leaves the stream, so streams do not grow
//! with the traffic, and it can never be half done (acknowledged but left in the stream).
//!
//! An entry that is not ours (no `m` field, not our JSON, work of another topic than its
//! stream's) is acknowledged, deleted and skipped with a warning: nobody could ever take it,
//! and left pending it would be claimed again and again.
//!
//! A take returns at most [`MAX_BATCH`] deliveries whatever its `max`.
//!
//! # Connections
//!
//! Commands go through one [`ConnectionManager`], which multiplexes the callers on one
//! connection and reconnects after the connection broke (the command that saw the break
//! fails with [`TransportError::Connection`]; the next ones use a new connection). A
//! blocking `XREADGROUP` would hold up every command behind it on a shared connection, so
//! blocking reads use connections of their own, one per read at a time, kept in a small pool
//! between reads. A pooled connection found broken (the server restarted) is replaced once
//! within the same take.
//!
//! # Events
//!
//! A subscription is a `PSUBSCRIBE` on a pub/sub connection of its own, driven by a task
//! that forwards events into the [`Subscription`]. A Redis glob's `*` also crosses dots, so
//! the task keeps only the subjects [`crate::subject::matches()`] accepts. If the connection drops
//! (or stops answering pings), the task reconnects with a backoff from 100 ms doubling to
//! 5 s and subscribes again, for as long as the subscription lives. Events published while
//! it was disconnected are lost: pub/sub delivers at most once, as PostgreSQL's `NOTIFY`
//! does; what must not be lost travels on the streams. Pub/sub channels are server-wide
//! (not per database number): the prefix is what separates deployments.
//!
//! # Errors
//!
//! I/O errors, refused or dropped connections, time-outs, and the server's "retry later"
//! answers (`LOADING` while it reads its append-only file after a restart, `TRYAGAIN`,
//! `MASTERDOWN`, `CLUSTERDOWN`) are [`TransportError::Connection`]; any other error is
//! [`TransportError::Server`].

use crate::subject::{check_pattern, check_subject, matches, redis_glob};
use crate::{Answer, Delivery, Event, Options, Subscription, Transport, TransportError, Work};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::aio::{PubSubSink, PubSubStream};
use redis::{AsyncConnectionConfig, Client, Cmd, ErrorKind, RedisError, ServerErrorKind, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const TRANSPORT: &str = "redis";

/// The consumer group of every worker topic's stream.
const WORK_GROUP: &str = "workers";
/// The consumer group of the answers' stream.
const ANSWER_GROUP: &str = "engine";
/// The field of a stream entry that holds the message's JSON.
const FIELD: &str = "m";

/// The most deliveries one take returns.
pub const MAX_BATCH: usize = 1000;
/// `XAUTOCLAIM` calls per take at most: each scans a bounded part of the pending entries
/// (Redis looks at up to ten times COUNT of them), the next take goes on from the oldest.
const CLAIM_ROUNDS: usize = 4;
/// Read rounds per take at most, when every entry read was malformed and time is left.
const READ_ROUNDS: usize = 4;

/// Establishing a connection (a refused one fails at once; this bounds a silent network).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A command's answer (not a blocking read's).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long past its BLOCK time a blocking read may take before its connection is given up.
const BLOCK_MARGIN: Duration = Duration::from_secs(2);
/// A consumer name idle this long with nothing pending is deleted when a client first takes
/// from its stream (a worker process that died without `leave`); a live consumer that was
/// merely idle is created again by its next read.
const STALE_CONSUMER: Duration = Duration::from_secs(3600);

/// Idle blocking-read connections kept between takes.
const POOL_SIZE: usize = 8;

/// Events a subscription buffers before its task waits for the subscriber.
const SUBSCRIPTION_BUFFER: usize = 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often an idle pub/sub connection is pinged (to notice a silently dead one), and how
/// long the answer may take.
const KEEPALIVE: Duration = Duration::from_secs(15);
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The engine's traffic on a Redis server (see the module's documentation). Cheap to clone:
/// clones share the connections.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    commands: ConnectionManager,
    /// Idle connections for blocking reads.
    pool: Mutex<Vec<MultiplexedConnection>>,
    /// Streams whose consumer group this client has created (or found).
    groups: Mutex<HashSet<String>>,
    options: Options,
}

/// One entry read from a stream: its id and what it holds, or why it is not ours.
struct Entry {
    id: String,
    payload: Result<Vec<u8>, String>,
}

impl Redis {
    /// Connects to the server at `url` (`redis://host:port/db`, `rediss://…` needs TLS
    /// support in the build); fails if it cannot be reached now.
    pub async fn connect(url: &str, options: Options) -> Result<Redis, TransportError> {
        check_prefix(&options.prefix)?;
        let client = Client::open(url).map_err(|e| TransportError::Invalid {
            what: "url",
            problem: e.to_string(),
        })?;
        // Few reconnection attempts with short delays: a caller learns soon that the server
        // is down (and retries itself); the manager tries again on its next command anyway.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1));
        let commands = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(error)?;
        Ok(Redis {
            inner: Arc::new(Inner {
                client,
                commands,
                pool: Mutex::new(Vec::new()),
                groups: Mutex::new(HashSet::new()),
                options,
            }),
        })
    }

    fn work_key(&self, topic: &str) -> String {
        format!("{}:work:{topic}", self.inner.options.prefix)
    }

    fn answers_key(&self) -> String {
        format!("{}:answers", self.inner.options.prefix)
    }

    /// A command on the shared connection.
    async fn query(&self, cmd: &Cmd) -> Result<Value, RedisError> {
        let mut con = self.inner.commands.clone();
        cmd.query_async::<Value>(&mut con).await
    }

    /// `XADD key * m json`.
    async fn add(&self, key: &str, json: Vec<u8>) -> Result<(), TransportError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(key).arg("*").arg(FIELD).arg(json);
        self.query(&cmd).await.map(|_| ()).map_err(error)
    }

    /// `XACK` and `XDEL` of one entry, atomically.
    async fn ack(&self, key: &str, group: &str, id: &str) -> Result<(), RedisError> {
        let mut con = self.inner.commands.clone();
        redis::pipe()
            .atomic()
            .cmd("XACK")
            .arg(key)
            .arg(group)
            .arg(id)
            .ignore()
            .cmd("XDEL")
            .arg(key)
            .arg(id)
            .ignore()
            .query_async::<()>(&mut con)
            .await
    }

    /// Creates the consumer group of `key` unless this client already did.
    async fn ensure_group(&self, key: &str, group: &str) -> Result<(), RedisError> {
        if lock(&self.inner.groups).contains(key) {
            return Ok(());
        }
        let mut cmd = redis::cmd("XGROUP");
        // From `0`: entries sent before the group existed are delivered too.
        cmd.arg("CREATE")
            .arg(key)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM");
        match self.query(&cmd).await {
            Ok(_) => {}
            // Another client (or an earlier run) created it.
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
        lock(&self.inner.groups).insert(key.to_string());
        if let Err(e) = self.prune(key, group).await {
            tracing::debug!(error = %e, key, "hotmesh transport: cannot prune stale consumers");
        }
        Ok(())
    }

    /// Deletes the consumers of `key`'s group idle for [`STALE_CONSUMER`] with nothing
    /// pending: names of worker processes gone without `leave`.
    async fn prune(&self, key: &str, group: &str) -> Result<(), RedisError> {
        let mut cmd = redis::cmd("XINFO");
        cmd.arg("CONSUMERS").arg(key).arg(group);
        let consumers: Vec<HashMap<String, Value>> =
            redis::from_redis_value(self.query(&cmd).await?)?;
        for c in consumers {
            let int = |k: &str| {
                c.get(k)
                    .and_then(|v| redis::from_redis_value::<i64>(v.clone()).ok())
            };
            let name = c
                .get("name")
                .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok());
            let Some(name) = name else {
                continue;
            };
            if int("pending") == Some(0)
                && int("idle").unwrap_or(0) >= STALE_CONSUMER.as_millis() as i64
            {
                self.delete_consumer(key, group, &name).await?;
            }
        }
        Ok(())
    }

    /// `XGROUP DELCONSUMER`: its pending entries go with it, so only for one with none.
    async fn delete_consumer(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
    ) -> Result<(), RedisError> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("DELCONSUMER").arg(key).arg(group).arg(consumer);
        self.query(&cmd).await.map(|_| ())
    }

    /// Takes up to `max` entries of `key` for `consumer`; `parse` says what an entry holds
    /// (an error: not ours). The group is created if needed, and again once if it vanished
    /// (the stream was deleted).
    async fn take<T, F>(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
        parse: F,
    ) -> Result<Vec<Delivery<T>>, TransportError>
    where
        F: Fn(&[u8]) -> Result<T, String> + Sync,
        T: Send,
    {
        if consumer.is_empty() {
            return Err(TransportError::Invalid {
                what: "consumer",
                problem: "an empty consumer name".into(),
            });
        }
        let max = max.min(MAX_BATCH);
        if max == 0 {
            return Ok(Vec::new());
        }
        self.ensure_group(key, group).await.map_err(error)?;
        match self
            .take_once(key, group, consumer, max, wait, &parse)
            .await
        {
            Err(e) if e.code() == Some("NOGROUP") => {
                lock(&self.inner.groups).remove(key);
                self.ensure_group(key, group).await.map_err(error)?;
                self.take_once(key, group, consumer, max, wait, &parse)
                    .await
                    .map_err(error)
            }
            r => r.map_err(error),
        }
    }

    async fn take_once<T, F>(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
        parse: &F,
    ) -> Result<Vec<Delivery<T>>, RedisError>
    where
        F: Fn(&[u8]) -> Result<T, String> + Sync,
        T: Send,
    {
        let deadline = Instant::now() + wait;
        let claimed = self.claim(key, group, consumer, max).await?;
        let mut out = self.accept(key, group, claimed, parse).await;
        if !out.is_empty() {
            self.count_deliveries(key, group, &mut out).await;
        }
        for _ in 0..READ_ROUNDS {
            if out.len() >= max {
                break;
            }
            // Wait only for the first delivery: with some in hand, return them now.
            let left = deadline.saturating_duration_since(Instant::now());
            let block = if out.is_empty() && !left.is_zero() {
                Some(left)
            } else {
                None
            };
            let read = self
                .read(key, group, consumer, max - out.len(), block)
                .await?;
            let got = read.len();
            out.extend(self.accept(key, group, read, parse).await);
            // Nothing new, or something delivered, or no time left: done. Another round
            // only after a read of nothing but malformed entries.
            if got == 0 || !out.is_empty() || Instant::now() >= deadline {
                break;
            }
        }
        Ok(out)
    }

    /// `XAUTOCLAIM`s entries idle for longer than `claim_after`, up to `max`.
    async fn claim(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<Entry>, RedisError> {
        let idle = u64::try_from(self.inner.options.claim_after.as_millis()).unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let mut cursor = "0-0".to_string();
        for _ in 0..CLAIM_ROUNDS {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(key)
                .arg(group)
                .arg(consumer)
                .arg(idle)
                .arg(&cursor)
                .arg("COUNT")
                .arg(max.saturating_sub(out.len()).max(1));
            let reply = self.query(&cmd).await?;
            let mut parts = items(reply).into_iter();
            let next = parts.next().and_then(|v| text(&v));
            out.extend(parts.next().map(entries).unwrap_or_default());
            match next {
                Some(next) if next != "0-0" && out.len() < max => cursor = next,
                _ => break,
            }
        }
        Ok(out)
    }

    /// `XREADGROUP` of new entries, blocking up to `block` if given.
    async fn read(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>, RedisError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(block) = block {
            // BLOCK 0 would wait forever: at least 1 ms.
            let ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1);
            cmd.arg("BLOCK").arg(ms);
        }
        cmd.arg("STREAMS").arg(key).arg(">");
        let reply = match block {
            Some(block) => self.query_blocking(&cmd, block).await?,
            None => self.query(&cmd).await?,
        };
        // One stream asked: [[key, entries]] (RESP2) or {key: entries} (RESP3); nil when
        // nothing came.
        let streams = match reply {
            Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
            other => items(other)
                .into_iter()
                .filter_map(|s| items(s).into_iter().nth(1))
                .collect::<Vec<_>>(),
        };
        Ok(streams.into_iter().flat_map(entries).collect())
    }

    /// A blocking command on a connection of its own (from the pool, or a new one).
    async fn query_blocking(&self, cmd: &Cmd, block: Duration) -> Result<Value, RedisError> {
        // Two attempts: a pooled connection may have died with a server restart.
        for _ in 0..2 {
            let pooled = lock(&self.inner.pool).pop();
            let (mut con, was_pooled) = match pooled {
                Some(con) => (con, true),
                None => {
                    let config = AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(CONNECT_TIMEOUT))
                        // The read's own time-out below replaces the response time-out.
                        .set_response_timeout(None);
                    let con = self
                        .inner
                        .client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?;
                    (con, false)
                }
            };
            let reply =
                tokio::time::timeout(block + BLOCK_MARGIN, cmd.query_async::<Value>(&mut con))
                    .await;
            match reply {
                Ok(Ok(v)) => {
                    self.give_back(con);
                    return Ok(v);
                }
                Ok(Err(e)) if is_connection(&e) => {
                    // The others in the pool are likely dead as well (a restart).
                    lock(&self.inner.pool).clear();
                    if !was_pooled {
                        return Err(e);
                    }
                }
                Ok(Err(e)) => {
                    self.give_back(con);
                    return Err(e);
                }
                // No answer long after the BLOCK time: the connection is given up (dropped).
                Err(_) => return Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "blocking read: the connection broke twice",
        )
        .into())
    }

    fn give_back(&self, con: MultiplexedConnection) {
        let mut pool = lock(&self.inner.pool);
        if pool.len() < POOL_SIZE {
            pool.push(con);
        }
    }

    /// The deliveries of the entries that are ours; the others are acknowledged, deleted
    /// and logged.
    async fn accept<T, F>(
        &self,
        key: &str,
        group: &str,
        entries: Vec<Entry>,
        parse: &F,
    ) -> Vec<Delivery<T>>
    where
        F: Fn(&[u8]) -> Result<T, String> + Sync,
    {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            match entry.payload.and_then(|p| parse(&p)) {
                Ok(message) => out.push(Delivery {
                    message,
                    redelivered: 0,
                    tag: entry.id,
                }),
                Err(problem) => {
                    tracing::warn!(stream = key, id = %entry.id, %problem, "skipping a malformed entry");
                    // If this fails the entry stays pending and is claimed (and skipped)
                    // again later; the good ones are delivered now all the same.
                    if let Err(e) = self.ack(key, group, &entry.id).await {
                        tracing::warn!(stream = key, id = %entry.id, error = %e, "cannot acknowledge a malformed entry");
                    }
                }
            }
        }
        out
    }

    /// Sets the claimed deliveries' `redelivered` from Redis's delivery counts (`XPENDING`
    /// of each id, pipelined).
    async fn count_deliveries<T>(&self, key: &str, group: &str, out: &mut [Delivery<T>]) {
        let mut pipe = redis::pipe();
        for d in out.iter() {
            pipe.cmd("XPENDING")
                .arg(key)
                .arg(group)
                .arg(&d.tag)
                .arg(&d.tag)
                .arg(1);
        }
        let mut con = self.inner.commands.clone();
        let replies = match pipe.query_async::<Vec<Value>>(&mut con).await {
            Ok(replies) => replies,
            Err(e) => {
                tracing::debug!(stream = key, error = %e, "no delivery counts of claimed entries");
                Vec::new()
            }
        };
        let mut replies = replies.into_iter();
        for d in out.iter_mut() {
            // [[id, consumer, idle ms, deliveries]]; the count includes this delivery.
            let count = replies
                .next()
                .and_then(|r| items(r).into_iter().next())
                .and_then(|e| items(e).into_iter().nth(3))
                .and_then(|c| int(&c));
            d.redelivered = match count {
                Some(n) if n > 1 => (n - 1) as u64,
                _ => 1,
            };
        }
    }
}

impl Transport for Redis {
    async fn leave(&self, topic: &str, consumer: &str) -> Result<bool, TransportError> {
        check_subject(topic)?;
        let key = self.work_key(topic);
        // nothing pending for it (it stopped: nothing new can be delivered to it meanwhile)
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(&key)
            .arg(WORK_GROUP)
            .arg("-")
            .arg("+")
            .arg(1)
            .arg(consumer);
        let pending = match self.query(&cmd).await {
            Ok(Value::Array(entries)) => entries.len(),
            Ok(_) => 0,
            // no stream or no group: there is nothing to forget
            Err(e) if e.code() == Some("NOGROUP") => return Ok(false),
            Err(e) => return Err(error(e)),
        };
        if pending > 0 {
            return Ok(false);
        }
        self.delete_consumer(&key, WORK_GROUP, consumer)
            .await
            .map_err(error)?;
        Ok(true)
    }

    async fn send_work(&self, work: &Work) -> Result<(), TransportError> {
        check_subject(&work.topic)?;
        let json = serde_json::to_vec(work).map_err(|e| TransportError::Invalid {
            what: "work",
            problem: e.to_string(),
        })?;
        self.add(&self.work_key(&work.topic), json).await
    }

    async fn take_work(
        &self,
        topic: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery<Work>>, TransportError> {
        check_subject(topic)?;
        let parse = |p: &[u8]| {
            let work: Work = serde_json::from_slice(p).map_err(|e| e.to_string())?;
            // A work of another topic on this stream was not put there by send_work, and
            // acknowledging it would look for it on its own topic's stream.
            if work.topic != topic {
                return Err(format!("work of topic '{}' on '{topic}'", work.topic));
            }
            Ok(work)
        };
        self.take(
            &self.work_key(topic),
            WORK_GROUP,
            consumer,
            max,
            wait,
            parse,
        )
        .await
    }

    async fn ack_work(&self, delivery: &Delivery<Work>) -> Result<(), TransportError> {
        let key = self.work_key(&delivery.message.topic);
        self.ack(&key, WORK_GROUP, &delivery.tag)
            .await
            .map_err(error)
    }

    async fn send_answer(&self, answer: &Answer) -> Result<(), TransportError> {
        let json = serde_json::to_vec(answer).map_err(|e| TransportError::Invalid {
            what: "answer",
            problem: e.to_string(),
        })?;
        self.add(&self.answers_key(), json).await
    }

    async fn take_answers(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery<Answer>>, TransportError> {
        let parse = |p: &[u8]| serde_json::from_slice::<Answer>(p).map_err(|e| e.to_string());
        self.take(
            &self.answers_key(),
            ANSWER_GROUP,
            consumer,
            max,
            wait,
            parse,
        )
        .await
    }

    async fn ack_answer(&self, delivery: &Delivery<Answer>) -> Result<(), TransportError> {
        self.ack(&self.answers_key(), ANSWER_GROUP, &delivery.tag)
            .await
            .map_err(error)
    }

    async fn publish(&self, subject: &str, payload: &[u8]) -> Result<(), TransportError> {
        check_subject(subject)?;
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(format!("{}:{subject}", self.inner.options.prefix))
            .arg(payload);
        self.query(&cmd).await.map(|_| ()).map_err(error)
    }

    async fn subscribe(&self, pattern: &str) -> Result<Subscription, TransportError> {
        check_pattern(pattern)?;
        let prefix = format!("{}:", self.inner.options.prefix);
        let glob = format!("{}{}", escape_glob(&prefix), redis_glob(pattern));
        // Subscribed before this returns: what is published afterwards is seen.
        let (sink, stream) = open_pubsub(&self.inner.client, &glob)
            .await
            .map_err(error)?;
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let forward = Forward {
            client: self.inner.client.clone(),
            glob,
            prefix,
            pattern: pattern.to_string(),
            tx,
        };
        let task = tokio::spawn(forward.run(sink, stream));
        Ok(Subscription::new(rx, Some(task)))
    }
}

/// A subscription's task: forwards the events it matches, reconnects when its connection
/// is lost. It ends when the subscription is dropped (the task is aborted, the channel
/// closed), so its loops last as long as the subscription and no longer.
struct Forward {
    client: Client,
    glob: String,
    /// `{prefix}:`, taken off a channel's name to give the subject.
    prefix: String,
    pattern: String,
    tx: mpsc::Sender<Event>,
}

impl Forward {
    async fn run(self, sink: PubSubSink, stream: PubSubStream) {
        let (mut sink, mut stream) = (sink, stream);
        loop {
            if !self.pump(&mut sink, &mut stream).await {
                return;
            }
            tracing::warn!(pattern = %self.glob, "pub/sub connection lost; events published until it is back are lost");
            match self.reconnect().await {
                Some((s, st)) => (sink, stream) = (s, st),
                None => return,
            }
        }
    }

    /// Forwards events until the connection is lost (true) or the subscription is gone
    /// (false).
    async fn pump(&self, sink: &mut PubSubSink, stream: &mut PubSubStream) -> bool {
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        keepalive.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else { return true };
                    if let Some(event) = self.event(&msg) {
                        if self.tx.send(event).await.is_err() {
                            return false;
                        }
                    }
                }
                _ = keepalive.tick() => {
                    let pong = tokio::time::timeout(PING_TIMEOUT, sink.ping::<Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        return true;
                    }
                }
                _ = self.tx.closed() => return false,
            }
        }
    }

    /// The event of a message, if its subject is one the pattern names (the glob may have
    /// matched more).
    fn event(&self, msg: &redis::Msg) -> Option<Event> {
        let subject = msg.get_channel_name().strip_prefix(&self.prefix)?;
        if !matches(&self.pattern, subject) {
            return None;
        }
        Some(Event {
            subject: subject.to_string(),
            payload: msg.get_payload_bytes().to_vec(),
        })
    }

    /// A new subscribed connection, trying with a growing delay; None once the
    /// subscription is gone.
    async fn reconnect(&self) -> Option<(PubSubSink, PubSubStream)> {
        let mut delay = BACKOFF_MIN;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.tx.closed() => return None,
            }
            match open_pubsub(&self.client, &self.glob).await {
                Ok(c) => {
                    tracing::info!(pattern = %self.glob, "pub/sub connection back");
                    return Some(c);
                }
                Err(e) => {
                    tracing::debug!(pattern = %self.glob, error = %e, "pub/sub reconnection failed")
                }
            }
            delay = (delay * 2).min(BACKOFF_MAX);
        }
    }
}

/// A pub/sub connection subscribed to `glob`.
async fn open_pubsub(
    client: &Client,
    glob: &str,
) -> Result<(PubSubSink, PubSubStream), RedisError> {
    let timed_out = || RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
    let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| timed_out())??;
    let (mut sink, stream) = pubsub.split();
    tokio::time::timeout(RESPONSE_TIMEOUT, sink.psubscribe(glob))
        .await
        .map_err(|_| timed_out())??;
    Ok((sink, stream))
}

/// A prefix is plain text in names: no whitespace or control characters (they would not
/// survive as a key in logs and tools), not empty.
fn check_prefix(prefix: &str) -> Result<(), TransportError> {
    if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TransportError::Invalid {
            what: "prefix",
            problem: format!("'{prefix}': not empty, no whitespace or control characters"),
        });
    }
    Ok(())
}

/// `s` as a glob matching exactly itself (as [`redis_glob`] escapes literal tokens).
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The elements of an array (or set) reply; nothing for any other reply.
fn items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        _ => Vec::new(),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

/// The entries of a list of `[id, [field, value, …]]`. An entry without an id is left out
/// (it cannot be acknowledged; Redis never sends one); one without our field is kept with
/// the problem, to be acknowledged and skipped.
fn entries(list: Value) -> Vec<Entry> {
    let mut out = Vec::new();
    for e in items(list) {
        let Value::Array(parts) = e else {
            // Redis 6.2's XAUTOCLAIM answers nil for a pending entry deleted from the stream.
            tracing::debug!("a stream entry that is not an array: {e:?}");
            continue;
        };
        let mut parts = parts.into_iter();
        let Some(id) = parts.next().as_ref().and_then(text) else {
            tracing::warn!("a stream entry without an id");
            continue;
        };
        let payload = match parts.next() {
            Some(Value::Map(pairs)) => field(pairs),
            Some(Value::Array(flat)) => {
                let mut pairs = Vec::with_capacity(flat.len() / 2);
                let mut it = flat.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                field(pairs)
            }
            // A pending entry deleted from the stream.
            _ => Err("no fields (a deleted entry)".into()),
        };
        out.push(Entry { id, payload });
    }
    out
}

/// The value of our field among an entry's fields.
fn field(pairs: Vec<(Value, Value)>) -> Result<Vec<u8>, String> {
    for (k, v) in pairs {
        if text(&k).as_deref() == Some(FIELD) {
            return match v {
                Value::BulkString(b) => Ok(b),
                Value::SimpleString(s) => Ok(s.into_bytes()),
                _ => Err(format!("field '{FIELD}' is not a string")),
            };
        }
    }
    Err(format!("no field '{FIELD}'"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded data (a pool, a set of names) stays consistent even if a holder panicked.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether retrying after a reconnect may succeed.
fn is_connection(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
            )
        )
}

fn error(e: RedisError) -> TransportError {
    if is_connection(&e) {
        TransportError::Connection {
            transport: TRANSPORT,
            message: e.to_string(),
        }
    } else {
        TransportError::Server {
            transport: TRANSPORT,
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn entries_are_read_with_our_field_or_the_problem() {
        let list = Value::Array(vec![
            Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("m"), bulk("{}")])]),
            Value::Array(vec![bulk("2-0"), Value::Array(vec![bulk("x"), bulk("y")])]),
            Value::Array(vec![bulk("3-0"), Value::Nil]),
            Value::Nil,
        ]);
        let got = entries(list);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].id, "1-0");
        assert_eq!(got[0].payload.as_deref().ok(), Some(&b"{}"[..]));
        assert!(got[1].payload.is_err());
        assert!(got[2].payload.is_err());
    }

    #[test]
    fn a_prefix_is_escaped_in_a_glob() {
        assert_eq!(escape_glob("a*b:"), "a\\*b:");
        assert!(check_prefix("hot mesh").is_err());
        assert!(check_prefix("").is_err());
        assert!(check_prefix("hotmesh").is_ok());
    }
}
