//! What `HotMesh::init` needs: the app, where the database is, and the workers to run.

use crate::workers::Worker;
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
pub struct Config {
    /// The app this process works for (quorum rows and throttles are per app).
    pub app_id: String,
    /// The store: engine calls (pub, signal, queries, deploy).
    pub url: String,
    /// Where workers dequeue and answer (default: `url`).
    pub stream_url: Option<String>,
    /// Where LISTEN runs (default: `url`).
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
        }
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
