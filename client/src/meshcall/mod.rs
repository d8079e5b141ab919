//! MeshCall: any function as an endpoint other services call, with a cache, and as an
//! idempotent cron (the original's MeshCall, later `Virtual`). A call is a job of a small
//! graph (`app.yaml`, deployed by the client) whose one worker runs the function linked
//! to its topic; the caller and the function may live in different processes.
//!
//! ```no_run
//! use hotmesh_client::meshcall::{CallOptions, CronOptions, MeshCall};
//! use hotmesh_client::meshflow::Connection;
//! use std::time::Duration;
//!
//! async fn greet(name: String) -> Result<String, hotmesh_client::WorkerError> {
//!     Ok(format!("Hello, {name}!"))
//! }
//!
//! # async fn demo() -> Result<(), hotmesh_client::Error> {
//! let conn = Connection::new("postgres://postgres@127.0.0.1:28815/hotmesh");
//! let mc = MeshCall::new(conn).await?;
//! mc.connect("greet", greet).await?;                                     // link the function
//! let hi: String = mc.exec("greet", "Ann", CallOptions::new()).await?;    // call it
//! let cached: String = mc
//!     .exec("greet", "Bo", CallOptions::new().id("bo").ttl("15 minutes")).await?; // cached
//! mc.flush("greet", "bo").await?;                                         // forget it
//! let started = mc.cron("greet", "nightly", "Carl", CronOptions::every("1 day")).await?;
//! mc.interrupt("greet", "nightly").await?;                                // stop the cron
//! mc.stop().await;
//! # Ok(()) }
//! ```

use crate::meshflow::{parse_duration, Connection};
use crate::workers::typed_fn;
use crate::{Config, Error, HotMesh, Outcome, PubOptions, WorkerError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The graphs' version: deployed when the database's active version of the namespace
/// differs.
pub const APP_VERSION: &str = hotmesh_engine::apps::MESHCALL_VERSION;

/// The default namespace (the graphs' app id).
pub const NAMESPACE: &str = hotmesh_engine::apps::MESHCALL_NAMESPACE;

/// The graphs' YAML for namespace `ns` (`hotmesh_engine::apps`).
pub fn app_yaml(ns: &str) -> String {
    hotmesh_engine::apps::meshcall(ns)
}

/// How long a call's result is kept: a duration (`"15 minutes"`, `"1 day"`, a
/// [`Duration`]) or `"infinity"` (until [`MeshCall::flush`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Ttl {
    /// Kept this long after the call ended.
    For(Duration),
    /// Kept until flushed.
    Infinity,
}

impl Ttl {
    fn read(text: &str) -> Result<Ttl, Error> {
        if text.trim().eq_ignore_ascii_case("infinity") {
            return Ok(Ttl::Infinity);
        }
        parse_duration(text)
            .map(Ttl::For)
            .map_err(|p| Error::Invalid {
                name: "ttl",
                problem: p,
            })
    }
}

/// Options of [`MeshCall::exec`]: an id (the call's job id) and a ttl make it cached.
///
/// ```
/// use hotmesh_client::meshcall::CallOptions;
/// let o = CallOptions::new().id("user-7").ttl("15 minutes").timeout(std::time::Duration::from_secs(5));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// The call's id: with a ttl, callers with the same id share one execution and its
    /// result until the ttl runs out.
    pub id: Option<String>,
    /// How long the result is kept (text as [`Ttl`] reads it); none: 1 second.
    pub ttl: Option<String>,
    /// How long to wait for the result (default 30 s).
    pub timeout: Option<Duration>,
}

impl CallOptions {
    /// No id, no cache.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// Sets the id.
    pub fn id(mut self, id: impl Into<String>) -> CallOptions {
        self.id = Some(id.into());
        self
    }

    /// Sets the ttl (`"15 minutes"`, `"1 day"`, `"infinity"`).
    pub fn ttl(mut self, ttl: impl Into<String>) -> CallOptions {
        self.ttl = Some(ttl.into());
        self
    }

    /// Sets how long to wait.
    pub fn timeout(mut self, d: Duration) -> CallOptions {
        self.timeout = Some(d);
        self
    }
}

/// How a cron runs: every interval (`"30 seconds"`, `"1 day"`) or on a cron expression
/// (`"0 0 * * *"`), up to `max_cycles` runs, the first after `delay` (default: one
/// interval, or the expression's next time).
///
/// ```
/// use hotmesh_client::meshcall::CronOptions;
/// let nightly = CronOptions::every("0 0 * * *").max_cycles(365);
/// let soon = CronOptions::every("10 seconds").delay(std::time::Duration::ZERO);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CronOptions {
    /// A human interval or a cron expression (5 or 6 fields).
    pub every: String,
    /// Runs at most (default 100,000, the original's).
    pub max_cycles: u64,
    /// Before the first run (default: one interval).
    pub delay: Option<Duration>,
}

impl CronOptions {
    /// Every `every`: a human interval or a cron expression.
    pub fn every(every: impl Into<String>) -> CronOptions {
        CronOptions {
            every: every.into(),
            max_cycles: 100_000,
            delay: None,
        }
    }

    /// Sets the most runs.
    pub fn max_cycles(mut self, n: u64) -> CronOptions {
        self.max_cycles = n;
        self
    }

    /// Sets the delay before the first run.
    pub fn delay(mut self, d: Duration) -> CronOptions {
        self.delay = Some(d);
        self
    }

    /// `(interval seconds, cron expression)`: one of them.
    fn schedule(&self) -> Result<(f64, Option<String>), Error> {
        let e = self.every.trim();
        if hotmesh_manifest::cron::is_valid_cron(e) {
            return Ok((0.0, Some(e.to_string())));
        }
        match parse_duration(e) {
            Ok(d) if d >= Duration::from_millis(100) => Ok((d.as_secs_f64(), None)),
            Ok(_) => Err(Error::Invalid {
                name: "every",
                problem: format!("'{e}' is shorter than 100 ms"),
            }),
            Err(p) => Err(Error::Invalid {
                name: "every",
                problem: format!("{p}; or a cron expression (\"0 0 * * *\")"),
            }),
        }
    }
}

/// MeshCall on one database and namespace. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MeshCall {
    hm: HotMesh,
    url: String,
    ns: String,
    /// Worker processes started by [`connect`](Self::connect), one per topic.
    linked: Arc<Mutex<Vec<HotMesh>>>,
    /// Set once the call graph's completion channel is LISTENed (for good: a LISTEN per
    /// call would be a round trip and a commit on the LISTEN connection, and its UNLISTEN
    /// another, ahead of the next call's).
    listening: Arc<tokio::sync::OnceCell<()>>,
}

impl MeshCall {
    /// Connects, and deploys the graphs if the database lacks them.
    pub async fn new(connection: Connection) -> Result<MeshCall, Error> {
        let ns = connection.namespace_or(NAMESPACE).to_string();
        let hm = HotMesh::connect(&connection.url).await?;
        crate::deploy::ensure_app(&hm, &ns, APP_VERSION, &app_yaml(&ns)).await?;
        Ok(MeshCall {
            hm,
            url: connection.url,
            ns,
            linked: Arc::default(),
            listening: Arc::default(),
        })
    }

    /// Links `callback` to `topic`: calls and crons of the topic run it, in this process
    /// (any number of processes may link the same topic; each call runs once). The
    /// callback takes the call's arguments as a type of yours; its error is a
    /// [`WorkerError`] (or any std error: retryable).
    pub async fn connect<I, O, E, F, Fut>(&self, topic: &str, callback: F) -> Result<(), Error>
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        E: Into<WorkerError>,
        F: Fn(I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        let call = typed_fn(&format!("{topic}: "), callback);
        let worker = crate::Worker::new(topic, move |m| {
            let call = call.clone();
            async move {
                match call(m.data["args"].clone()).await {
                    Ok(v) => Outcome::success(json!({ "response": v })),
                    Err(e) => e.into_outcome(),
                }
            }
        })
        .concurrency(8);
        let hm = HotMesh::init(Config::new(&self.ns, &self.url).worker(worker)).await?;
        self.linked.lock().unwrap().push(hm);
        Ok(())
    }

    /// Calls the function linked to `topic` with `args` and returns its result. With an
    /// id and a ttl the result is cached: a call with that id answers from the cache until
    /// the ttl runs out; callers that come while it runs wait for the same execution.
    pub async fn exec<T: DeserializeOwned>(
        &self,
        topic: &str,
        args: impl Serialize,
        options: CallOptions,
    ) -> Result<T, Error> {
        let args = serde_json::to_value(args).map_err(|e| Error::Invalid {
            name: "args",
            problem: e.to_string(),
        })?;
        let ttl = match &options.ttl {
            Some(t) => Some(Ttl::read(t)?),
            None => None,
        };
        let timeout = options.timeout.unwrap_or(Duration::from_secs(30));
        let id = options.id.clone().unwrap_or_else(crate::guid);
        let cached = options.id.is_some() && ttl.is_some();
        if cached {
            if let Some(v) = self.fresh(&id).await? {
                return read(v);
            }
        }
        let mut data = json!({"topic": topic, "args": args});
        data["ttl"] = match &ttl {
            Some(Ttl::For(d)) => json!(d.as_secs_f64().max(1.0)),
            // never expires (the engine keeps it until flushed)
            Some(Ttl::Infinity) => json!(-1),
            None => json!(1),
        };
        let call_topic = format!("{}.call", self.ns);
        // the call graph publishes `<ns>.called`: every call's completion is announced on
        // that channel too (each payload names its jobs), LISTENed once before the first call
        let channel = hotmesh_engine::channel::name(&format!("{}.called", self.ns));
        self.listening
            .get_or_try_init(|| async { self.hm.hub().await?.listen(&channel).await })
            .await?;
        match self
            .hm
            .publish_and_wait(
                &call_topic,
                &channel,
                data,
                PubOptions::new().id(id.clone()),
                timeout,
            )
            .await
        {
            Ok(out) => read(out.data["response"].clone()),
            // another caller runs it now: wait for the same execution
            Err(e) if e.code() == 409 && cached => {
                read(self.hm.job(&id).result(timeout).await?.data["response"].clone())
            }
            Err(e) if e.code() == 409 => Err(Error::Duplicate { job_id: id }),
            Err(e) => Err(e),
        }
    }

    /// A finished call's response if its ttl has not run out. An expired or failed one is
    /// removed, so the next call runs the function again.
    async fn fresh(&self, id: &str) -> Result<Option<Value>, Error> {
        let row: Option<(bool, bool, Value)> = sqlx::query_as(
            "SELECT completed_at IS NOT NULL,
                    coalesce(expired_at <= now(), false) OR error IS NOT NULL,
                    coalesce(data -> 'response', 'null')
               FROM hotmesh.jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.hm.pool())
        .await
        .map_err(Error::from_sqlx)?;
        match row {
            Some((true, false, v)) => Ok(Some(v)),
            Some((true, true, _)) => {
                // a concurrent caller may have removed it first
                let _ = self.hm.scrub(id).await;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Forgets call `id`'s cached result: the next call runs the function. A call still
    /// running cannot be flushed (error 55000: wait for it, then flush).
    pub async fn flush(&self, _topic: &str, id: &str) -> Result<bool, Error> {
        self.hm.scrub(id).await
    }

    /// Starts cron `id` on `topic` with `args`; false (nothing started) when a cron with
    /// that id runs already, so calling it at every start-up is safe.
    pub async fn cron(
        &self,
        topic: &str,
        id: &str,
        args: impl Serialize,
        options: CronOptions,
    ) -> Result<bool, Error> {
        let (interval, cron) = options.schedule()?;
        let args = serde_json::to_value(args).map_err(|e| Error::Invalid {
            name: "args",
            problem: e.to_string(),
        })?;
        if options.max_cycles == 0 {
            return Err(Error::Invalid {
                name: "max_cycles",
                problem: "must be at least 1".into(),
            });
        }
        let data = json!({
            "topic": topic,
            "args": args,
            "interval": interval,
            "cron": cron,
            "maxCycles": options.max_cycles,
            "delay": options.delay.map(|d| d.as_secs_f64()),
        });
        let cron_topic = format!("{}.cron", self.ns);
        for _ in 0..2 {
            match self
                .hm
                // the search field lists it in hotmesh.crons
                .publish(
                    &cron_topic,
                    data.clone(),
                    PubOptions::new().id(id).search("meshcall", "cron"),
                )
                .await
            {
                Ok(_) => return Ok(true),
                Err(e) if e.code() == 409 => {
                    // a cron that ended (its cycles done, or interrupted) keeps its id
                    // for a moment: it does not run, so it gives the id up
                    match self.hm.get_status(id).await {
                        Ok(s) if s > 0 => return Ok(false),
                        Ok(_) => {
                            let _ = self.hm.scrub(id).await;
                        }
                        Err(e) if e.code() == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Stops cron `id` (false: it was not running).
    pub async fn interrupt(&self, _topic: &str, id: &str) -> Result<bool, Error> {
        let topic = format!("{}.cron", self.ns);
        let o = json!({"reason": "cron stopped", "throw": false, "suppress": true});
        match self.hm.interrupt(&topic, id, o).await {
            Ok(b) => Ok(b),
            Err(e) if e.code() == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stops the functions this value linked (running calls finish in the grace period).
    pub async fn stop(&self) {
        let linked: Vec<HotMesh> = std::mem::take(&mut *self.linked.lock().unwrap());
        for hm in linked {
            hm.stop().await;
        }
    }

    /// The engine client underneath.
    pub fn hotmesh(&self) -> &HotMesh {
        &self.hm
    }
}

fn read<T: DeserializeOwned>(v: Value) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|e| Error::Invalid {
        name: "result",
        problem: format!(
            "the call's result does not read as {}: {e}",
            std::any::type_name::<T>()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_is_an_interval_or_a_cron_expression() {
        assert_eq!(
            CronOptions::every("1 day").schedule().unwrap(),
            (86_400.0, None)
        );
        assert_eq!(
            CronOptions::every("0 0 * * *").schedule().unwrap(),
            (0.0, Some("0 0 * * *".into()))
        );
        assert!(CronOptions::every("soon").schedule().is_err());
        assert!(CronOptions::every("10ms").schedule().is_err());
    }

    #[test]
    fn a_ttl_is_a_duration_or_infinity() {
        assert_eq!(Ttl::read("infinity").unwrap(), Ttl::Infinity);
        assert_eq!(
            Ttl::read("15 minutes").unwrap(),
            Ttl::For(Duration::from_secs(900))
        );
        assert!(Ttl::read("forever").is_err());
    }
}
