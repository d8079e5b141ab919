//! What `HotMesh::init` needs: the app, where the database is, and the workers to run.

use crate::workers::Worker;
use crate::RetryPolicy;
use std::time::Duration;

/// The configuration of one client process.
///
/// ```
/// use hotmesh_client::{Config, Worker, Outcome};
/// let config = Config::new("orders", "postgres://postgres@127.0.0.1:28815/hotmesh")
///     .worker(Worker::new("orders.charge", |m| async move { Outcome::success(m.data) }).concurrency(4));
/// assert_eq!(config.workers.len(), 1);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The app this process works for (quorum rows and throttles are per app).
    pub app_id: String,
    /// The store: engine calls (pub, signal, queries, deploy).
    pub url: String,
    /// Where workers dequeue and answer (default: `url`): another PostgreSQL URL, or a
    /// Redis (`redis://`, `rediss://`) or NATS (`nats://`, `tls://`) URL, which runs this
    /// process's workers on that transport. See [`Config::stream_url()`].
    pub stream_url: Option<String>,
    /// Where subscriptions and the quorum listen (default: `url`): another PostgreSQL URL,
    /// or a Redis or NATS URL, where a bridge relays completions and quorum messages. See
    /// [`Config::sub_url()`].
    pub sub_url: Option<String>,
    /// Connections per pool.
    pub pool_size: u32,
    /// How often this process beats in the quorum (default 5 s). Roll calls list a
    /// process while its last beat is younger than the roll call's `max_age`.
    pub heartbeat: Duration,
    /// Register this process in the quorum (as role `engine`, and one row per worker).
    pub quorum: bool,
    /// How long `stop` lets running callbacks finish before it releases their messages.
    pub grace: Duration,
    /// The workers this process runs.
    pub workers: Vec<Worker>,
    /// The retry policy of this process's workers that have none of their own (the
    /// original's engine-level `retry`). An activity's YAML `retry` wins over a worker's
    /// policy, which wins over this one.
    pub retry: Option<RetryPolicy>,
}

impl Config {
    /// A configuration with defaults: one URL for everything, 8 connections, quorum on.
    ///
    /// ```
    /// let c = hotmesh_client::Config::new("app", "postgres://localhost/db");
    /// assert_eq!(c.pool_size, 8);
    /// ```
    pub fn new(app_id: impl Into<String>, url: impl Into<String>) -> Config {
        Config {
            app_id: app_id.into(),
            url: url.into(),
            stream_url: None,
            sub_url: None,
            pool_size: 8,
            heartbeat: Duration::from_secs(5),
            quorum: true,
            grace: Duration::from_secs(10),
            workers: vec![],
            retry: None,
        }
    }

    /// Sets where workers dequeue and answer (default: the main URL).
    ///
    /// A PostgreSQL URL: the workers dequeue and answer on that database.
    ///
    /// A Redis (`redis://`, `rediss://`) or NATS (`nats://`, `tls://`, a list separated by
    /// commas) URL: the workers run on that transport, with the same callbacks (the
    /// original's `connections: { store: Postgres, stream: Redis | NATS }`). The engine and
    /// its state stay in PostgreSQL (`url`); a bridge (`hotmesh bridge`, or
    /// [`bridge`](crate::bridge) in a process of yours) moves the topics' messages to the
    /// transport and the answers back. [`HotMesh::init`](crate::HotMesh::init) connects the transport once
    /// for the process (a server it cannot reach is an [`Error::Invalid`](crate::Error::Invalid)
    /// naming `stream_url`); each worker takes its topic's messages there as slots free up
    /// (under the quorum's throttles, as on PostgreSQL), answers each on the transport's
    /// answer queue and acknowledges it once the answer is stored. What differs from
    /// workers on PostgreSQL:
    /// - no heartbeats: a message whose callback runs longer than the worker's
    ///   [`reservation`](crate::Worker::reservation) (the transport's `claim_after`, the
    ///   longest of the process's workers') is delivered again meanwhile, to this worker or
    ///   another (the engine applies one answer);
    /// - at [`stop`](crate::HotMesh::stop), the messages of callbacks still running after
    ///   the grace period are not released: they come again after the reservation;
    /// - an outcome is answered as it is: [`Outcome::Fatal`](crate::Outcome::Fatal) and
    ///   [`Outcome::Retry`](crate::Outcome::Retry) are error answers (with their code, and
    ///   500), which the activity's own retry policy may retry; the worker's
    ///   [`retry`](crate::Worker::retry) policy does not apply there;
    /// - the topics must be subjects (dot-separated tokens without whitespace or wildcards);
    /// - an idle worker waits on the transport (a second at a time), not for
    ///   [`poll`](crate::Worker::poll); its consumer name there is its guid (its quorum row).
    ///
    /// Subscriptions LISTEN on PostgreSQL unless [`sub_url`](Config::sub_url) names a
    /// transport too.
    ///
    /// ```
    /// use hotmesh_client::{Config, Outcome, Worker};
    /// // the store in PostgreSQL, the workers on Redis (or "nats://127.0.0.1:4222")
    /// let c = Config::new("orders", "postgres://postgres@127.0.0.1:28815/hotmesh")
    ///     .stream_url("redis://127.0.0.1:6379/")
    ///     .worker(Worker::new("orders.charge", |m| async move { Outcome::success(m.data) }));
    /// // another database for the workers' messages
    /// let c = Config::new("app", "postgres://a/db").stream_url("postgres://b/db");
    /// # let _ = c;
    /// ```
    pub fn stream_url(mut self, url: impl Into<String>) -> Config {
        self.stream_url = Some(url.into());
        self
    }

    /// Sets where subscriptions and the quorum listen (default: the main URL).
    ///
    /// A PostgreSQL URL: LISTEN runs on that database.
    ///
    /// A Redis (`redis://`, `rediss://`) or NATS (`nats://`, `tls://`) URL: what a bridge
    /// relays there is heard there (docs/transports.md). [`HotMesh::init`](crate::HotMesh::init)
    /// connects it (one that cannot be reached is an [`Error::Invalid`](crate::Error::Invalid)
    /// naming `sub_url`; the workers' connection is shared when `stream_url` is the same
    /// URL). Then:
    /// - [`sub(topic)`](crate::HotMesh::sub) subscribes to the subject `topic`, and
    ///   [`psub(pattern)`](crate::HotMesh::psub) to `pattern` as a NATS subject: `*` is one
    ///   token, a last `>` one or more (`orders.*` takes `orders.done`, not
    ///   `orders.eu.done`; `orders.>` takes both), unlike PostgreSQL's globs, where `*` is
    ///   any run of characters. The callbacks get the [`JobMessage`](crate::JobMessage)s a
    ///   bridge publishes for the publishes topics of its
    ///   [`events`](crate::bridge::BridgeOptions::events): completions and emits, the job
    ///   as the bridge read it. `unsub`/`punsub` end them.
    /// - The quorum's announcements (throttles, roll calls), [`sub_quorum`](crate::HotMesh::sub_quorum)
    ///   and [`activations`](crate::HotMesh::activations) are heard on the subjects a bridge
    ///   with [`quorum`](crate::bridge::BridgeOptions::quorum) naming the app relays them
    ///   on (`_quorum.<app>`, `_activated.<app>`). The heartbeats, throttles and roll calls
    ///   themselves are written to PostgreSQL, as are `pub_quorum`'s messages.
    /// - The store stays PostgreSQL (`url`), and so do the waits for one job's end
    ///   ([`pubsub`](crate::HotMesh::pubsub), [`JobHandle::result`](crate::JobHandle::result)),
    ///   which need every job's notification, not only those a bridge relays, and the
    ///   wake-ups of workers on PostgreSQL.
    /// - At most once, as NOTIFY is: what is published while the transport is unreachable
    ///   is lost (the quorum's heartbeat still reads the throttle every beat).
    ///
    /// ```
    /// use hotmesh_client::Config;
    /// // the store in PostgreSQL; subscriptions and the quorum on NATS, through a bridge
    /// let c = Config::new("orders", "postgres://postgres@127.0.0.1:28815/hotmesh")
    ///     .sub_url("nats://127.0.0.1:4222");
    /// // another database for LISTEN
    /// let c = Config::new("app", "postgres://a/db").sub_url("postgres://b/db");
    /// # let _ = c;
    /// ```
    pub fn sub_url(mut self, url: impl Into<String>) -> Config {
        self.sub_url = Some(url.into());
        self
    }

    /// Sets the connections per pool (at least 1).
    ///
    /// ```
    /// let c = hotmesh_client::Config::new("app", "postgres://a/db").pool_size(16);
    /// ```
    pub fn pool_size(mut self, n: u32) -> Config {
        self.pool_size = n;
        self
    }

    /// Sets how often this process beats in the quorum.
    ///
    /// ```
    /// let c = hotmesh_client::Config::new("app", "postgres://a/db").heartbeat(std::time::Duration::from_secs(2));
    /// ```
    pub fn heartbeat(mut self, every: Duration) -> Config {
        self.heartbeat = every;
        self
    }

    /// Sets whether this process joins the quorum.
    ///
    /// ```
    /// let c = hotmesh_client::Config::new("app", "postgres://a/db").quorum(false);
    /// ```
    pub fn quorum(mut self, on: bool) -> Config {
        self.quorum = on;
        self
    }

    /// Sets how long `stop` lets running callbacks finish.
    ///
    /// ```
    /// let c = hotmesh_client::Config::new("app", "postgres://a/db").grace(std::time::Duration::from_secs(30));
    /// ```
    pub fn grace(mut self, d: Duration) -> Config {
        self.grace = d;
        self
    }

    /// Sets the retry policy of the workers that have none of their own.
    ///
    /// ```
    /// use hotmesh_client::{Config, RetryPolicy};
    /// let c = Config::new("app", "postgres://localhost/db").retry(RetryPolicy::new(4));
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Config {
        self.retry = Some(policy);
        self
    }

    /// Adds a worker.
    ///
    /// ```
    /// use hotmesh_client::{Config, Worker, Outcome};
    /// let c = Config::new("app", "postgres://localhost/db")
    ///     .worker(Worker::new("a.topic", |_m| async { Outcome::success(serde_json::json!({})) }));
    /// assert_eq!(c.workers[0].topic, "a.topic");
    /// ```
    pub fn worker(mut self, w: Worker) -> Config {
        self.workers.push(w);
        self
    }
}

/// Whether `url` names a transport (Redis or NATS) rather than PostgreSQL.
pub(crate) fn is_transport(url: &str) -> bool {
    hotmesh_transport::Kind::of(url).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_and_nats_urls_are_transports_and_postgres_ones_are_not() {
        assert!(is_transport("redis://127.0.0.1:6379/"));
        assert!(is_transport("rediss://h/"));
        assert!(is_transport("nats://a:4222,nats://b:4222"));
        assert!(is_transport("tls://a:4222"));
        assert!(!is_transport("postgres://postgres@127.0.0.1/db"));
        assert!(!is_transport("postgresql://h/db"));
        assert!(!is_transport("host=/tmp dbname=x"));
    }
}
