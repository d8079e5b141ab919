//! The quorum: this process's rows in `hotmesh.quorum` (role `engine`, and one per
//! worker), refreshed every heartbeat; the throttle each worker must obey, read back with
//! each beat and re-read at once when `hotmesh.throttle` announces a change; and the
//! activations of new versions, passed on to whoever listens.

use crate::hub::Event;
use crate::{Error, HotMesh};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// One live process, as `hotmesh.roll_call` lists it.
///
/// ```no_run
/// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
/// let busy: Vec<_> = hm.roll_call(std::time::Duration::from_secs(30)).await?
///     .into_iter()
///     .filter(|p| p.stream_depth.unwrap_or(0) > 100)
///     .collect();
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Profile {
    /// The process (engine role) or worker (worker role) id.
    pub guid: String,
    /// `engine` or `worker`.
    pub role: String,
    /// A worker's topic.
    pub topic: Option<String>,
    /// The client library's version.
    pub version: Option<String>,
    /// The process id.
    pub pid: Option<i32>,
    /// The host it runs on.
    pub host: Option<String>,
    /// When it joined the quorum.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat (a roll call lists those younger than its `max_age`).
    pub heartbeat_at: DateTime<Utc>,
    /// Messages a worker answered, and how many of those were errors.
    pub processed: i64,
    /// Of [`processed`](Self::processed), the error answers.
    pub errors: i64,
    /// -1 paused, 0 full speed, > 0 ms between messages.
    pub throttle: i32,
    /// Messages of the worker's topic not answered yet.
    pub stream_depth: Option<i64>,
    /// Anything else the process reported.
    pub details: Value,
}

/// Which workers a throttle applies to.
///
/// ```
/// let t = hotmesh_client::Throttle::pause().topic("orders.charge");
/// assert_eq!(t.throttle, -1);
/// ```
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Throttle {
    /// -1 pauses, 0 resumes, > 0 waits that many ms between messages.
    pub throttle: i32,
    /// Only the worker with this guid.
    pub guid: Option<String>,
    /// Only the workers of this topic.
    pub topic: Option<String>,
}

impl Throttle {
    /// Pauses the workers (throttle -1) until a [`resume`](Self::resume).
    ///
    /// ```
    /// use hotmesh_client::Throttle;
    /// assert_eq!(Throttle::pause().throttle, -1);
    /// assert_eq!(Throttle::resume().throttle, 0);
    /// let t = Throttle::delay(std::time::Duration::from_millis(250)).topic("orders.charge");
    /// assert_eq!((t.throttle, t.topic.as_deref()), (250, Some("orders.charge")));
    /// ```
    pub fn pause() -> Throttle {
        Throttle {
            throttle: -1,
            ..Default::default()
        }
    }

    /// Lets the workers run at full speed again (throttle 0; resuming everything clears
    /// the narrower throttles too).
    pub fn resume() -> Throttle {
        Throttle::default()
    }

    /// Makes the workers wait `between` messages (whole milliseconds, at least 1).
    pub fn delay(between: std::time::Duration) -> Throttle {
        let ms = between.as_millis().clamp(1, i32::MAX as u128) as i32;
        Throttle {
            throttle: ms,
            ..Default::default()
        }
    }

    /// Only the workers of `topic`.
    pub fn topic(mut self, topic: impl Into<String>) -> Throttle {
        self.topic = Some(topic.into());
        self.guid = None;
        self
    }

    /// Only the worker with this guid.
    pub fn guid(mut self, guid: impl Into<String>) -> Throttle {
        self.guid = Some(guid.into());
        self.topic = None;
        self
    }
}

/// A version was activated (`hotmesh.activate` announces it at commit).
///
/// ```
/// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
/// let mut rx = hm.activations().await?;
/// let a: hotmesh_client::Activation = rx.recv().await.unwrap();
/// println!("{} is at version {}", a.app_id, a.version);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Activation {
    /// The app.
    pub app_id: String,
    /// The version now active.
    pub version: String,
}

pub(crate) struct WorkerState {
    topic: String,
    pub throttle: watch::Sender<i32>,
    pub processed: AtomicU64,
    pub errors: AtomicU64,
}

#[derive(Default)]
pub(crate) struct State {
    workers: Mutex<HashMap<String, Arc<WorkerState>>>,
}

impl State {
    pub fn add_worker(&self, guid: &str, topic: &str) -> Arc<WorkerState> {
        let (throttle, _) = watch::channel(0);
        let w = Arc::new(WorkerState {
            topic: topic.to_string(),
            throttle,
            processed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        self.workers
            .lock()
            .unwrap()
            .insert(guid.to_string(), w.clone());
        w
    }

    fn all(&self) -> Vec<(String, Arc<WorkerState>)> {
        self.workers
            .lock()
            .unwrap()
            .iter()
            .map(|(g, w)| (g.clone(), w.clone()))
            .collect()
    }
}

fn host() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// One beat for this process and each of its workers; updates the workers' throttles.
pub(crate) async fn beat(hm: &HotMesh) -> Result<(), Error> {
    let app = hm.app_id();
    let version: Option<String> =
        sqlx::query_scalar("SELECT active_version FROM hotmesh.apps WHERE app_id = $1")
            .bind(app)
            .fetch_optional(hm.pool())
            .await
            .map_err(Error::from_sqlx)?
            .flatten();
    let (pid, host) = (std::process::id() as i32, host());
    let beat = "SELECT hotmesh.quorum_beat($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    sqlx::query_scalar::<_, i32>(beat)
        .bind(hm.process_guid())
        .bind(app)
        .bind("engine")
        .bind(None::<String>)
        .bind(&version)
        .bind(pid)
        .bind(&host)
        .bind(0i64)
        .bind(0i64)
        .bind(json!({}))
        .fetch_one(hm.pool())
        .await
        .map_err(Error::from_sqlx)?;
    for (g, w) in hm.inner.quorum.all() {
        let t: i32 = sqlx::query_scalar(beat)
            .bind(&g)
            .bind(app)
            .bind("worker")
            .bind(&w.topic)
            .bind(&version)
            .bind(pid)
            .bind(&host)
            .bind(w.processed.load(Ordering::Relaxed) as i64)
            .bind(w.errors.load(Ordering::Relaxed) as i64)
            .bind(json!({}))
            .fetch_one(hm.pool())
            .await
            .map_err(Error::from_sqlx)?;
        w.throttle
            .send_if_modified(|v| std::mem::replace(v, t) != t);
    }
    Ok(())
}

/// Beats every `every`, and at once when a throttle is announced; ends at `stop`. The
/// announcements are heard where `sub_url` says: PostgreSQL's LISTEN, or the transport a
/// bridge relays the app's quorum to (the beats themselves always go to PostgreSQL).
pub(crate) async fn run(hm: HotMesh, every: Duration) {
    let channel = hotmesh_engine::channel::quorum(hm.app_id());
    let Ok(hub) = hm.notes().await else { return };
    let mut events = hub.subscribe();
    let mut listening = listen(hub, &channel).await;
    let mut stop = hm.stopping();
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if !listening {
                    listening = listen(hub, &channel).await;
                }
            }
            ev = events.recv() => match ev {
                // a throttle or a roll call wants a beat now; a user's message does not
                Ok(Event::Note { channel: ch, payload }) if ch == channel && wants_beat(&payload) => {}
                Ok(Event::Reconnected) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Ok(_) => continue,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        }
        if let Err(e) = beat(&hm).await {
            tracing::warn!(error = %e, "hotmesh: quorum heartbeat failed; retrying");
        }
    }
}

/// Listens for the quorum's announcements; false (tried again at the next beat) when the
/// source cannot be reached: until then throttles are read with each beat only.
async fn listen(hub: &crate::hub::Hub, channel: &str) -> bool {
    match hub.listen(channel).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "hotmesh: cannot listen for throttles; retrying at the next beat");
            false
        }
    }
}

/// Whether a quorum message asks for a beat: the engine's own (a throttle, a roll
/// call), or one that does not say what it is.
fn wants_beat(payload: &str) -> bool {
    let v: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
    !matches!(v["type"].as_str(), Some(t) if t != "throttle" && t != "rollcall")
}

/// Removes this process's rows (at stop).
pub(crate) async fn leave(hm: &HotMesh) {
    if hm.app_id().is_empty() {
        return;
    }
    let mut guids = vec![hm.process_guid().to_string()];
    guids.extend(hm.inner.quorum.all().into_iter().map(|(g, _)| g));
    for g in guids {
        let _ = sqlx::query("SELECT hotmesh.quorum_leave($1)")
            .bind(g)
            .execute(hm.pool())
            .await;
    }
}

impl HotMesh {
    /// The live processes of this app (a heartbeat within `max_age`): engines and
    /// workers, with their counts, errors, throttle and stream depth.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// for p in hm.roll_call(std::time::Duration::from_secs(30)).await? {
    ///     println!("{} {} {:?} processed={}", p.guid, p.role, p.topic, p.processed);
    /// }
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn roll_call(&self, max_age: Duration) -> Result<Vec<Profile>, Error> {
        roll_call(self.conn()?, self.app_id(), max_age).await
    }

    /// Throttles this app's workers (all, one topic's, or one worker's): -1 pauses, 0
    /// resumes, > 0 waits that many ms between messages. Persisted: a worker that starts
    /// later obeys it too. In force when this returns: it waits until every live worker
    /// it names has read it (their quorum rows beat after the change; a worker reads it
    /// before its next dequeue), for at most [`CONFIRM_WITHIN`]. Callbacks already
    /// running finish. Returns how many workers confirmed; one that did not (a process
    /// that hangs, or died less than [`LIVE`] ago) obeys at its next heartbeat.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// use hotmesh_client::Throttle;
    /// let confirmed = hm.throttle(Throttle::pause().topic("orders.charge")).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn throttle(&self, t: Throttle) -> Result<usize, Error> {
        throttle(self.conn()?, self.app_id(), &t).await
    }

    /// Sends `message` to every process of this app (the original's `pubQuorum`): a
    /// JSON object, usually with a `type` (`"user"` for your own) and at most 7,500
    /// bytes (a NOTIFY payload). Sent when this call's transaction commits, to the
    /// processes listening at that moment (nothing is kept for later ones).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// hm.pub_quorum(serde_json::json!({"type": "user", "topic": "cache.flush"})).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self, message))]
    pub async fn pub_quorum(&self, message: impl serde::Serialize) -> Result<(), Error> {
        let app = self.quorum_app()?;
        let message = crate::jobs::data_object(message).map_err(|e| match e {
            Error::Invalid { problem, .. } => Error::Invalid {
                name: "message",
                problem,
            },
            other => other,
        })?;
        let text = message.to_string();
        if text.len() > hotmesh_engine::channel::MAX_PAYLOAD {
            return Err(Error::Invalid {
                name: "message",
                problem: format!(
                    "is {} bytes; a quorum message carries at most {} (send a reference, not the data)",
                    text.len(),
                    hotmesh_engine::channel::MAX_PAYLOAD
                ),
            });
        }
        sqlx::query("SELECT pg_notify(hotmesh.quorum_channel($1), $2)")
            .bind(app)
            .bind(text)
            .execute(self.conn()?)
            .await
            .map_err(Error::from_sqlx)?;
        Ok(())
    }

    /// Calls `callback` with every message to this app's quorum (the original's
    /// `subQuorum`): [`pub_quorum`](Self::pub_quorum)'s, and the engine's own (`throttle`,
    /// `rollcall`). One subscription per client: a second replaces the first. With a
    /// transport [`sub_url`](crate::Config::sub_url), heard on the subject a bridge relays
    /// the app's quorum on (a message that crossed a bridge carries `"_bridge": <its
    /// name>`).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// hm.sub_quorum(|m| if m["type"] == "user" { println!("{m}") }).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self, callback))]
    pub async fn sub_quorum(
        &self,
        callback: impl Fn(Value) + Send + Sync + 'static,
    ) -> Result<(), Error> {
        let channel = hotmesh_engine::channel::quorum(self.quorum_app()?);
        self.conn()?;
        let hub = self.notes().await?;
        let mut events = hub.subscribe();
        hub.listen(&channel).await?;
        let task = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::Note {
                        channel: ch,
                        payload,
                    }) if ch == channel => {
                        callback(serde_json::from_str(&payload).unwrap_or(Value::String(payload)))
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        });
        self.keep_subscription("quorum".into(), task);
        Ok(())
    }

    /// Ends the [`sub_quorum`](Self::sub_quorum) subscription (the original's
    /// `unsubQuorum`).
    ///
    /// ```no_run
    /// # fn demo(hm: hotmesh_client::HotMesh) { hm.unsub_quorum(); }
    /// ```
    pub fn unsub_quorum(&self) {
        self.unsubscribe_as("quorum");
    }

    fn quorum_app(&self) -> Result<&str, Error> {
        if self.app_id().is_empty() {
            return Err(Error::Invalid {
                name: "app_id",
                problem: "this client has no app (HotMesh::connect): the quorum is per app".into(),
            });
        }
        Ok(self.app_id())
    }

    /// Activations of new versions, as they are announced. Clients that cache anything
    /// about an app refresh on these. With a transport [`sub_url`](crate::Config::sub_url),
    /// those of the apps whose quorum a bridge relays.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let mut rx = hm.activations().await?;
    /// while let Some(a) = rx.recv().await { println!("{} is now at {}", a.app_id, a.version); }
    /// # Ok(()) }
    /// ```
    pub async fn activations(&self) -> Result<tokio::sync::mpsc::Receiver<Activation>, Error> {
        self.conn()?;
        let hub = self.notes().await?;
        let mut events = hub.subscribe();
        hub.listen(crate::hub::ACTIVATED).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::Note { channel, payload }) if channel == crate::hub::ACTIVATED => {
                        let v: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
                        let a = Activation {
                            app_id: v["app_id"].as_str().unwrap_or_default().to_string(),
                            version: v["version"].as_str().unwrap_or_default().to_string(),
                        };
                        if tx.send(a).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        });
        Ok(rx)
    }
}

/// A worker (or process) counts as live for a throttle's confirmation while its last
/// beat is younger than this (three default heartbeats).
pub const LIVE: Duration = Duration::from_secs(15);

/// The longest a throttle or a roll call waits for the quorum's answers.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(3);

/// `hotmesh.roll_call` for any `app` on `pool` (what the command line uses): live
/// counts. It asks every process of the app to beat at once (a NOTIFY on the app's
/// quorum channel, as a throttle does) and waits until each listed has, for at most
/// [`CONFIRM_WITHIN`]; `heartbeat_at` says when each row was written, and a process
/// that did not answer shows its last beat.
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) -> Result<(), hotmesh_client::Error> {
/// let live = hotmesh_client::roll_call_app(&pool, "orders", std::time::Duration::from_secs(30)).await?;
/// # Ok(()) }
/// ```
pub async fn roll_call(
    pool: &sqlx::PgPool,
    app: &str,
    max_age: Duration,
) -> Result<Vec<Profile>, Error> {
    let since: DateTime<Utc> = sqlx::query_scalar(
        "SELECT statement_timestamp() FROM pg_notify(hotmesh.quorum_channel($1), '{\"type\":\"rollcall\"}')",
    )
    .bind(app)
    .fetch_one(pool)
    .await
    .map_err(Error::from_sqlx)?;
    let (profiles, _) = answered(pool, app, max_age, since, |_| true).await?;
    Ok(profiles)
}

/// Reads the roll call until every listed row that `wanted` picks has beaten at or
/// after `since`, or [`CONFIRM_WITHIN`] passed. Returns the rows and how many of the
/// picked ones beat since.
async fn answered(
    pool: &sqlx::PgPool,
    app: &str,
    max_age: Duration,
    since: DateTime<Utc>,
    wanted: impl Fn(&Profile) -> bool,
) -> Result<(Vec<Profile>, usize), Error> {
    let deadline = tokio::time::Instant::now() + CONFIRM_WITHIN;
    loop {
        let rows = read_roll_call(pool, app, max_age).await?;
        let picked: Vec<&Profile> = rows.iter().filter(|p| wanted(p)).collect();
        let fresh = picked.iter().filter(|p| p.heartbeat_at >= since).count();
        if fresh == picked.len() || tokio::time::Instant::now() >= deadline {
            return Ok((rows, fresh));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn read_roll_call(
    pool: &sqlx::PgPool,
    app: &str,
    max_age: Duration,
) -> Result<Vec<Profile>, Error> {
    let rows = sqlx::query("SELECT * FROM hotmesh.roll_call($1, $2)")
        .bind(app)
        .bind(max_age.as_secs_f64())
        .fetch_all(pool)
        .await
        .map_err(Error::from_sqlx)?;
    rows.iter()
        .map(|r| {
            Ok(Profile {
                guid: r.try_get("guid")?,
                role: r.try_get("role")?,
                topic: r.try_get("topic")?,
                version: r.try_get("version")?,
                pid: r.try_get("pid")?,
                host: r.try_get("host")?,
                started_at: r.try_get("started_at")?,
                heartbeat_at: r.try_get("heartbeat_at")?,
                processed: r.try_get("processed")?,
                errors: r.try_get("errors")?,
                throttle: r.try_get("throttle")?,
                stream_depth: r.try_get("stream_depth")?,
                details: r.try_get("details")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Error::Sql)
}

/// `hotmesh.throttle` for any `app` on `pool` (what the command line uses), in force
/// when it returns as [`HotMesh::throttle`] says. Returns how many workers confirmed.
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) -> Result<(), hotmesh_client::Error> {
/// hotmesh_client::throttle_app(&pool, "orders", &hotmesh_client::Throttle::resume()).await?;
/// # Ok(()) }
/// ```
pub async fn throttle(pool: &sqlx::PgPool, app: &str, t: &Throttle) -> Result<usize, Error> {
    // the clock as the throttle is written, just before its commit: a beat that starts
    // later (the announcement's, at commit) is younger and reads it
    let since: DateTime<Utc> =
        sqlx::query_scalar("SELECT clock_timestamp() FROM hotmesh.throttle($1, $2, $3, $4)")
            .bind(app)
            .bind(t.throttle)
            .bind(&t.guid)
            .bind(&t.topic)
            .fetch_one(pool)
            .await
            .map_err(Error::from_sqlx)?;
    let named = |p: &Profile| {
        p.role == "worker"
            && t.topic.as_ref().is_none_or(|x| p.topic.as_ref() == Some(x))
            && t.guid.as_ref().is_none_or(|g| &p.guid == g)
    };
    let (_, confirmed) = answered(pool, app, LIVE, since, named).await?;
    Ok(confirmed)
}
