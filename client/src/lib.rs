#![deny(missing_docs)]
//! Rust client of the `hotmesh` PostgreSQL extension: the engine API (deploy, activate,
//! pub, pubsub, signals, queries), subscriptions (including wildcard patterns), workers
//! that never lose a message, and the quorum (roll call, throttles).
//!
//! The engine runs inside PostgreSQL; this crate talks to it over ordinary connections.
//! Every call is a SQL function of the extension, so anything this crate does can also
//! be done from `psql`.
//!
//! ```no_run
//! use hotmesh_client::{Config, HotMesh, Outcome, Worker};
//! use serde_json::json;
//! # async fn demo() -> Result<(), hotmesh_client::Error> {
//! let url = "postgres://postgres@127.0.0.1:28815/hotmesh";
//! let hm = HotMesh::init(
//!     Config::new("orders", url).worker(Worker::new("orders.charge", |m| async move {
//!         Outcome::success(json!({ "charged": m.data["amount"] }))
//!     })),
//! )
//! .await?;
//! let output = hm.pubsub("orders.start", json!({ "amount": 5 }), std::time::Duration::from_secs(5)).await?;
//! println!("{}", output.data);
//! hm.stop().await;
//! # Ok(()) }
//! ```

mod answers;
mod backoff;
mod bgworkers;
pub mod bridge;
pub mod bridge_set;
mod config;
mod deploy;
mod error;
mod handle;
mod hub;
mod jobs;
pub mod meshcall;
pub mod meshdata;
pub mod meshflow;
mod quorum;
mod retry;
mod subs;
mod workers;

pub use bgworkers::WorkerInfo;
pub use config::Config;
pub use error::Error;
pub use handle::JobHandle;
pub use jobs::{InterruptOptions, JobOutput, PubOptions, Status};
pub use quorum::{
    roll_call as roll_call_app, throttle as throttle_app, Activation, Profile, Throttle,
    CONFIRM_WITHIN, LIVE,
};
pub use retry::{RetryPolicy, WorkerError};
pub use subs::{pattern_matches, JobMessage};
#[doc(hidden)]
pub use workers::run_on_transport;
pub use workers::{Message, Outcome, Worker};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, OnceCell};
use tokio::task::JoinHandle;

/// A handle on one database where `CREATE EXTENSION hotmesh` was run. Cheap to clone;
/// the clones share the pools, the LISTEN connection and the workers.
#[derive(Clone)]
pub struct HotMesh {
    inner: Arc<Inner>,
}

struct Inner {
    app_id: String,
    guid: String,
    store: PgPool,
    stream: PgPool,
    /// Where the workers take their messages and answer when `stream_url` names Redis or
    /// NATS (then `stream` is the store's pool).
    transport: Option<Arc<hotmesh_transport::AnyTransport>>,
    /// Where `sub`, `psub` and the quorum listen when `sub_url` names Redis or NATS.
    sub_transport: Option<Arc<hotmesh_transport::AnyTransport>>,
    /// The hub on `sub_transport` (the quorum's channels as subjects); None: `hub`.
    notes: Option<hub::Hub>,
    /// Where LISTEN runs: `sub_url`, or `url` when `sub_url` is a transport (the waits for
    /// a job's completion and the workers on PostgreSQL stay there).
    sub_url: String,
    hub: OnceCell<hub::Hub>,
    /// true once `stop` ran: workers stop taking messages.
    stop: watch::Sender<bool>,
    stopped: AtomicBool,
    grace: Duration,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    subs: subs::Registry,
    quorum: quorum::State,
}

impl std::fmt::Debug for HotMesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotMesh")
            .field("app_id", &self.inner.app_id)
            .field("guid", &self.inner.guid)
            .finish()
    }
}

/// A new id in the original's format: `H` and 22 characters (time-ordered).
///
/// ```
/// let id = hotmesh_client::guid();
/// assert_eq!(id.len(), 23);
/// assert!(id.starts_with('H'));
/// ```
pub fn guid() -> String {
    hotmesh_engine::ids::guid()
}

/// Reads an app manifest from a file, with its `$ref: ./other.yaml` entries (anywhere,
/// with an optional `#/json/pointer`) replaced by what they point at, relative to the file
/// that names them, as the original's loader does. What [`HotMesh::deploy_file`] sends;
/// offline (no database), so a manifest can be checked before it is deployed.
///
/// ```no_run
/// let text = hotmesh_client::load_manifest("apps/orders.yaml")?;
/// # Ok::<(), hotmesh_client::Error>(())
/// ```
pub fn load_manifest(path: impl AsRef<std::path::Path>) -> Result<String, Error> {
    deploy::load(path.as_ref())
}

/// How long the first connection may take before the client gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

async fn pool(url: &str, size: u32) -> Result<PgPool, Error> {
    let options: PgConnectOptions = url.parse().map_err(Error::Connect)?;
    // one connection first, by itself: a refused connection, a wrong password or a
    // missing database fails at once with the server's reason (the pool would retry it
    // until its timeout and say only that it timed out)
    let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
        .await
        .map_err(|_| Error::Connect(sqlx::Error::PoolTimedOut))?
        .map_err(Error::Connect)?;
    let _ = first.close().await;
    Ok(PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(CONNECT_TIMEOUT)
        // A connection idle for a while is pinged before use (one broken by a server
        // restart or a terminated backend is dropped and another taken); one in steady
        // use is not: the ping is a round trip on every call (0.3–0.5 ms of a MeshCall
        // exec's few, docs/benchmarks.md).
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options))
}

/// How long a pooled connection may sit idle before it is pinged before its next use.
const PING_WHEN_IDLE: Duration = Duration::from_millis(500);

/// Connects the transport `url` names for `workers`: a delivery is delivered again once
/// unacknowledged for the longest of their reservations (30 s without workers). One that
/// cannot be reached is an [`Error::Invalid`] naming `name` (the setting: `stream_url`,
/// `sub_url`), its password hidden.
async fn connect_transport(
    url: &str,
    workers: &[Worker],
    name: &'static str,
) -> Result<hotmesh_transport::AnyTransport, Error> {
    let defaults = hotmesh_transport::Options::default();
    let options = hotmesh_transport::Options {
        claim_after: workers
            .iter()
            .map(|w| w.reservation)
            .max()
            .unwrap_or(defaults.claim_after),
        ..defaults
    };
    hotmesh_transport::connect(url, options).await.map_err(|e| {
        // the client's words may quote the URL (NATS's do)
        let mut said = e.to_string();
        for one in url.split(',') {
            said = said.replace(one, &hotmesh_transport::redact(one));
        }
        Error::Invalid {
            name,
            problem: format!(
                "cannot connect to {}: {said}",
                hotmesh_transport::redact(url)
            ),
        }
    })
}

impl HotMesh {
    /// Connects a plain handle (no app, no workers, no quorum row): for engine calls and
    /// subscriptions. `url` is a libpq-style URL (`postgres://user@host:port/db`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), hotmesh_client::Error> {
    /// let hm = hotmesh_client::HotMesh::connect("postgres://postgres@127.0.0.1:28815/hotmesh").await?;
    /// println!("engine version {}", hm.version().await?);
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip_all)]
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let mut c = Config::new("", url);
        c.quorum = false;
        Self::init(c).await
    }

    /// Starts a client process: connects its pools, registers it in the quorum, and runs
    /// its workers. See [`Config`].
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), hotmesh_client::Error> {
    /// use hotmesh_client::{Config, HotMesh};
    /// let hm = HotMesh::init(Config::new("orders", "postgres://postgres@127.0.0.1:28815/hotmesh")).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip_all, fields(app = %config.app_id))]
    pub async fn init(mut config: Config) -> Result<Self, Error> {
        if config.quorum && config.app_id.is_empty() {
            return Err(Error::Invalid {
                name: "app_id",
                problem: "must not be empty (the quorum and throttles are per app)".into(),
            });
        }
        if config.pool_size == 0 {
            return Err(Error::Invalid {
                name: "pool_size",
                problem: "must be at least 1".into(),
            });
        }
        if let Some(r) = &config.retry {
            r.check()?;
            for w in &mut config.workers {
                w.retry.get_or_insert_with(|| r.clone());
            }
        }
        for w in &config.workers {
            w.check()?;
        }
        // Workers on Redis or NATS: the transport is connected first (one for the process,
        // shared by its workers), so one that cannot be reached fails init at once.
        let transport = match &config.stream_url {
            Some(u) if config::is_transport(u) => {
                for w in &config.workers {
                    workers::check_transport_topic(&w.topic)?;
                }
                Some(Arc::new(
                    connect_transport(u, &config.workers, "stream_url").await?,
                ))
            }
            _ => None,
        };
        // Subscriptions and the quorum on Redis or NATS: the workers' connection when it is
        // the same server, else one of their own.
        let sub_transport = match (&config.sub_url, &config.stream_url, &transport) {
            (Some(s), Some(w), Some(t)) if s == w => Some(t.clone()),
            (Some(s), _, _) if config::is_transport(s) => {
                Some(Arc::new(connect_transport(s, &[], "sub_url").await?))
            }
            _ => None,
        };
        let store = pool(&config.url, config.pool_size).await?;
        if config.quorum || !config.workers.is_empty() {
            // a client process needs the engine: say so now, not with the first call's
            // missing relation
            let installed: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'hotmesh')",
            )
            .fetch_one(&store)
            .await
            .map_err(Error::from_sqlx)?;
            if !installed {
                return Err(Error::NotInstalled);
            }
        }
        let stream = match &config.stream_url {
            Some(u) if transport.is_none() && u != &config.url => pool(u, config.pool_size).await?,
            // the same database, or workers on a transport: the store serves the rest
            _ => store.clone(),
        };
        let (stop, _) = watch::channel(false);
        let notes = sub_transport
            .as_ref()
            .map(|t| hub::Hub::on_transport(t.clone(), &config.app_id));
        let sub_url = match &config.sub_url {
            Some(u) if sub_transport.is_none() => u.clone(),
            _ => config.url.clone(),
        };
        let hm = HotMesh {
            inner: Arc::new(Inner {
                app_id: config.app_id.clone(),
                guid: guid(),
                store,
                stream,
                transport,
                sub_transport,
                notes,
                sub_url,
                hub: OnceCell::new(),
                stop,
                stopped: AtomicBool::new(false),
                grace: config.grace,
                tasks: Mutex::new(vec![]),
                subs: subs::Registry::default(),
                quorum: quorum::State::default(),
            }),
        };
        // the LISTEN connection now (a refused one fails init), when something needs it
        // from the start: workers on PostgreSQL, or the quorum listening there
        let pg_workers = !config.workers.is_empty() && hm.inner.transport.is_none();
        if pg_workers || (config.quorum && hm.inner.notes.is_none()) {
            hm.hub().await?;
        }
        let workers: Vec<_> = config
            .workers
            .into_iter()
            .map(|w| {
                let g = guid();
                let state = hm.inner.quorum.add_worker(&g, &w.topic);
                (w, g, state)
            })
            .collect();
        if config.quorum {
            // the first beat comes before the first dequeue: a worker obeys a persisted
            // throttle from the start
            quorum::beat(&hm).await?;
            let task = tokio::spawn(quorum::run(hm.clone(), config.heartbeat));
            hm.inner.tasks.lock().unwrap().push(task);
        }
        for (w, g, state) in workers {
            let task = match &hm.inner.transport {
                // its consumer name on the transport: the worker's guid (its quorum row)
                Some(t) => tokio::spawn(workers::run_transport(
                    t.clone(),
                    w,
                    g,
                    state,
                    hm.stopping(),
                    hm.grace(),
                )),
                None => tokio::spawn(workers::run(hm.clone(), w, g, state)),
            };
            hm.inner.tasks.lock().unwrap().push(task);
        }
        Ok(hm)
    }

    /// Wraps an existing pool (no LISTEN until a call needs it; the URL for that is
    /// taken from the pool's options).
    ///
    /// ```no_run
    /// # async fn demo(pool: sqlx::PgPool) {
    /// let hm = hotmesh_client::HotMesh::from_pool(pool, "postgres://postgres@127.0.0.1:28815/hotmesh");
    /// # }
    /// ```
    pub fn from_pool(pool: PgPool, url: &str) -> Self {
        let (stop, _) = watch::channel(false);
        HotMesh {
            inner: Arc::new(Inner {
                app_id: String::new(),
                guid: guid(),
                store: pool.clone(),
                stream: pool,
                transport: None,
                sub_transport: None,
                notes: None,
                sub_url: url.to_string(),
                hub: OnceCell::new(),
                stop,
                stopped: AtomicBool::new(false),
                grace: Duration::from_secs(10),
                tasks: Mutex::new(vec![]),
                subs: subs::Registry::default(),
                quorum: quorum::State::default(),
            }),
        }
    }

    /// The pool, for queries of your own against the engine's tables and views.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), sqlx::Error> {
    /// let n: i64 = sqlx::query_scalar("SELECT count(*) FROM hotmesh.jobs").fetch_one(hm.pool()).await?;
    /// # Ok(()) }
    /// ```
    pub fn pool(&self) -> &PgPool {
        &self.inner.store
    }

    /// A new id in the original's format (`HotMesh.guid()`): `H` and 22 characters,
    /// time-ordered. The same as [`guid()`](crate::guid).
    ///
    /// ```
    /// let id = hotmesh_client::HotMesh::guid();
    /// assert_eq!(id.len(), 23);
    /// ```
    pub fn guid() -> String {
        guid()
    }

    /// This process's guid (its quorum row as role `engine`).
    ///
    /// ```no_run
    /// # fn demo(hm: hotmesh_client::HotMesh) { println!("{}", hm.process_guid()); }
    /// ```
    pub fn process_guid(&self) -> &str {
        &self.inner.guid
    }

    /// The app this process works for (empty for a plain `connect`).
    ///
    /// ```no_run
    /// # fn demo(hm: hotmesh_client::HotMesh) { println!("{}", hm.app_id()); }
    /// ```
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }

    /// The installed engine version (`hotmesh.version()`).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// assert!(!hm.version().await?.is_empty());
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn version(&self) -> Result<String, Error> {
        let v: String = sqlx::query_scalar("SELECT hotmesh.version()")
            .fetch_one(self.conn()?)
            .await
            .map_err(Error::from_sqlx)?;
        Ok(v)
    }

    /// Stops the process: workers take no new message; running callbacks get the grace
    /// period to finish, then their messages are released for another worker;
    /// subscriptions end; the quorum rows are removed. Idempotent. Calls made after it
    /// began fail with [`Error::Stopped`] (the pool from [`pool`](Self::pool) stays
    /// usable).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) { hm.stop().await; }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn stop(&self) {
        if self.inner.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.inner.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.inner.tasks.lock().unwrap());
        for t in tasks {
            // workers end after their grace period; the quorum loop ends at once
            let _ = tokio::time::timeout(self.inner.grace + Duration::from_secs(5), t).await;
        }
        self.inner.subs.end_all();
        quorum::leave(self).await;
    }

    /// The pool for the client's own calls: refused once [`stop`](Self::stop) began, so
    /// a call after it fails with [`Error::Stopped`] instead of running on a client that
    /// is shutting down. (Workers finishing their grace period answer on the stream pool;
    /// [`pool`](Self::pool) stays open for the caller's own queries.)
    pub(crate) fn conn(&self) -> Result<&PgPool, Error> {
        if self.inner.stopped.load(Ordering::SeqCst) {
            return Err(Error::Stopped);
        }
        Ok(&self.inner.store)
    }

    pub(crate) async fn hub(&self) -> Result<&hub::Hub, Error> {
        self.inner
            .hub
            .get_or_try_init(|| hub::Hub::start(&self.inner.sub_url))
            .await
    }

    /// Where the quorum and activations are heard: the transport of `sub_url` when it
    /// names one, else PostgreSQL's LISTEN ([`hub`](Self::hub)).
    pub(crate) async fn notes(&self) -> Result<&hub::Hub, Error> {
        match &self.inner.notes {
            Some(h) => Ok(h),
            None => self.hub().await,
        }
    }

    /// The transport `sub_url` names, if it names one.
    pub(crate) fn sub_transport(&self) -> Option<&Arc<hotmesh_transport::AnyTransport>> {
        self.inner.sub_transport.as_ref()
    }

    pub(crate) fn stream_pool(&self) -> &PgPool {
        &self.inner.stream
    }

    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stop.subscribe()
    }

    pub(crate) fn grace(&self) -> Duration {
        self.inner.grace
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{de::DeserializeOwned, Serialize};
    use serde_json::json;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: T) {
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<T>(&text).unwrap(), v, "{text}");
    }

    #[test]
    fn the_public_types_serialize_and_read_back() {
        round_trip(JobOutput::from_value(
            json!({"metadata": {"jid": "a", "js": 0}, "data": {"x": 1}}),
        ));
        round_trip(Outcome::fatal(422, json!({"message": "no"})));
        round_trip(Outcome::success(json!({"ok": true})));
        round_trip(WorkerError::fatal(404, "gone").with("id", "a"));
        round_trip(
            RetryPolicy::new(4)
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(30)),
        );
        round_trip(Status::Pending);
        round_trip(PubOptions::new().id("a").search("region", "eu"));
        round_trip(InterruptOptions::new().reason("stop").descend(true));
        round_trip(Activation {
            app_id: "orders".into(),
            version: "2".into(),
        });
        let now = chrono::Utc::now();
        round_trip(Profile {
            guid: "g".into(),
            role: "worker".into(),
            topic: Some("t".into()),
            version: Some("1".into()),
            pid: Some(7),
            host: None,
            started_at: now,
            heartbeat_at: now,
            processed: 3,
            errors: 1,
            throttle: 0,
            stream_depth: Some(0),
            details: json!({}),
        });
        let text = serde_json::to_string(&Throttle::pause().topic("t")).unwrap();
        let t: Throttle = serde_json::from_str(&text).unwrap();
        assert_eq!((t.throttle, t.topic.as_deref()), (-1, Some("t")));
    }

    #[test]
    fn options_that_the_extension_would_refuse_do_not_deserialize() {
        assert!(serde_json::from_value::<PubOptions>(json!({"ttl": 5})).is_err());
        assert!(serde_json::from_value::<RetryPolicy>(json!({"maximumAttempts": 0})).is_err());
        assert_eq!(serde_json::to_value(Status::Success).unwrap(), "success");
    }
}
