//! Subscriptions to job completions. `sub(topic)` listens on a graph's `publishes`
//! channel. `psub(pattern)` takes `*` wildcards: the original cannot do this on
//! Postgres, which has no pattern LISTEN. Here the client listens on every publishes
//! channel of the active apps that the pattern can reach (the channel itself, or the
//! `<publishes>.<job id>` names under it), delivers the completions whose channel or
//! `<channel>.<job id>` matches, and looks again when a version is activated.
//!
//! When `sub_url` names Redis or NATS, both subscribe on the transport instead, where a
//! bridge publishes the completions ([`transport`]): `psub`'s pattern is then a NATS
//! subject (`orders.*` one token, `orders.>` the rest).

mod transport;

use crate::hub::Event;
use crate::jobs::JobOutput;
use crate::{Error, HotMesh};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// A completion heard by a subscription.
///
/// ```no_run
/// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
/// hm.sub("orders.done", |m: hotmesh_client::JobMessage| {
///     println!("{} on {}: {}", m.job.job_id(), m.topic, m.job.data);
/// })
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct JobMessage {
    /// The publishes topic it came on.
    pub topic: String,
    /// The job, as read when the notification came.
    pub job: JobOutput,
}

pub(crate) type Callback = Arc<dyn Fn(JobMessage) + Send + Sync>;

#[derive(Default)]
pub(crate) struct Registry {
    tasks: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl Registry {
    /// Ends every subscription (at stop: on PostgreSQL their callbacks could no longer
    /// read a job; on a transport they would go on).
    pub(crate) fn end_all(&self) {
        for (_, t) in self.tasks.lock().unwrap().drain() {
            t.abort();
        }
    }
}

/// Whether `text` matches `pattern` (`*`: any run of characters, `?`: one). With
/// `prefix`, whether some string that starts with `text` matches.
fn glob(pattern: &[u8], text: &[u8], prefix: bool) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (_, None) if prefix => true,
        (None, Some(_)) => false,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text, prefix)
                || (!text.is_empty() && glob(pattern, &text[1..], prefix))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..], prefix),
        (Some(p), Some(t)) => p == t && glob(&pattern[1..], &text[1..], prefix),
        (Some(_), None) => false,
    }
}

/// `pattern` matches `topic` (the original's psub patterns: `*` any run, `?` one).
///
/// ```
/// assert!(hotmesh_client::pattern_matches("orders.*", "orders.done"));
/// assert!(!hotmesh_client::pattern_matches("orders.*", "billing.done"));
/// ```
pub fn pattern_matches(pattern: &str, topic: &str) -> bool {
    glob(pattern.as_bytes(), topic.as_bytes(), false)
}

/// The job references a completion payload carries (`{type: 'job'}` or batched
/// `{type: 'jobs'}`): `{metadata: {jid, tpc, app, js}}` each, never job data.
fn jobs_of(payload: &str) -> Vec<Value> {
    let p: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
    match p["type"].as_str() {
        Some("job") => vec![p["job"].clone()],
        Some("jobs") => p["jobs"].as_array().cloned().unwrap_or_default(),
        _ => vec![],
    }
}

impl HotMesh {
    /// Calls `callback` with every completion (and emit) announced on the publishes
    /// `topic`. One subscription per topic: a second `sub` replaces the first. With a
    /// transport [`sub_url`](crate::Config::sub_url), `topic` is the subject a bridge
    /// publishes its completions on.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// hm.sub("orders.done", |m| println!("{} finished", m.job.job_id())).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self, callback))]
    pub async fn sub(
        &self,
        topic: &str,
        callback: impl Fn(JobMessage) + Send + Sync + 'static,
    ) -> Result<(), Error> {
        if topic.is_empty() {
            return Err(Error::Invalid {
                name: "topic",
                problem: "must not be empty".into(),
            });
        }
        self.subscribe_as(
            format!("sub:{topic}"),
            topic.to_string(),
            false,
            Arc::new(callback),
        )
        .await
    }

    /// Ends the subscription to `topic`.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) { hm.unsub("orders.done"); }
    /// ```
    #[tracing::instrument(skip(self))]
    pub fn unsub(&self, topic: &str) {
        self.unsubscribe_as(&format!("sub:{topic}"));
    }

    /// Calls `callback` with every completion whose publishes topic, or
    /// `<publishes>.<job id>`, matches `pattern` (`*` any run of characters, `?` one).
    ///
    /// With a transport [`sub_url`](crate::Config::sub_url), `pattern` is a NATS subject
    /// pattern instead, over the subjects a bridge publishes completions on (their
    /// publishes topics): `*` is one token and a last `>` one or more (`orders.*` takes
    /// `orders.done` but not `orders.eu.done`, `orders.>` both).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// hm.psub("orders.*", |m| println!("{} on {}", m.job.job_id(), m.topic)).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self, callback))]
    pub async fn psub(
        &self,
        pattern: &str,
        callback: impl Fn(JobMessage) + Send + Sync + 'static,
    ) -> Result<(), Error> {
        if pattern.is_empty() {
            return Err(Error::Invalid {
                name: "pattern",
                problem: "must not be empty".into(),
            });
        }
        self.subscribe_as(
            format!("psub:{pattern}"),
            pattern.to_string(),
            true,
            Arc::new(callback),
        )
        .await
    }

    /// Ends the pattern subscription `pattern`.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) { hm.punsub("orders.*"); }
    /// ```
    #[tracing::instrument(skip(self))]
    pub fn punsub(&self, pattern: &str) {
        self.unsubscribe_as(&format!("psub:{pattern}"));
    }

    pub(crate) fn unsubscribe_as(&self, key: &str) {
        if let Some(t) = self.inner.subs.tasks.lock().unwrap().remove(key) {
            t.abort();
        }
    }

    /// The publishes topics of the active apps that `pattern` can reach.
    async fn reachable(&self, pattern: &str) -> Result<Vec<String>, Error> {
        let topics: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT topic FROM hotmesh.topics WHERE kind = 'publishes' ORDER BY 1",
        )
        .fetch_all(self.conn()?)
        .await
        .map_err(Error::from_sqlx)?;
        Ok(topics
            .into_iter()
            .filter(|t| {
                glob(pattern.as_bytes(), t.as_bytes(), false)
                    || glob(pattern.as_bytes(), format!("{t}.").as_bytes(), true)
            })
            .collect())
    }

    async fn subscribe_as(
        &self,
        key: String,
        what: String,
        pattern: bool,
        callback: Callback,
    ) -> Result<(), Error> {
        self.conn()?;
        if let Some(t) = self.sub_transport() {
            return self
                .subscribe_on_transport(t, key, what, pattern, callback)
                .await;
        }
        self.subscribe_on_postgres(key, what, pattern, callback)
            .await
    }

    /// `psub` on PostgreSQL whatever `sub_url` says: what a bridge relays to a transport
    /// comes from there.
    pub(crate) async fn psub_on_postgres(
        &self,
        pattern: &str,
        callback: impl Fn(JobMessage) + Send + Sync + 'static,
    ) -> Result<(), Error> {
        self.conn()?;
        self.subscribe_on_postgres(
            format!("psub:{pattern}"),
            pattern.to_string(),
            true,
            Arc::new(callback),
        )
        .await
    }

    async fn subscribe_on_postgres(
        &self,
        key: String,
        what: String,
        pattern: bool,
        callback: Callback,
    ) -> Result<(), Error> {
        let hub = self.hub().await?;
        let mut events = hub.subscribe();
        let mut channels: HashMap<String, String> = HashMap::new(); // channel -> topic
        let topics = if pattern {
            self.reachable(&what).await?
        } else {
            vec![what.clone()]
        };
        for t in topics {
            let ch = hotmesh_engine::channel::name(&t);
            hub.listen(&ch).await?;
            channels.insert(ch, t);
        }
        if pattern {
            hub.listen("hotmesh_activated").await?;
        }
        let hm = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let ev = match events.recv().await {
                    Ok(ev) => ev,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "hotmesh: a subscription fell behind");
                        continue;
                    }
                    Err(_) => return,
                };
                let Event::Note { channel, payload } = ev else {
                    continue;
                };
                if pattern && channel == "hotmesh_activated" {
                    // a new version may publish on topics the pattern reaches
                    if let Ok(topics) = hm.reachable(&what).await {
                        if let Ok(hub) = hm.hub().await {
                            for t in topics {
                                let ch = hotmesh_engine::channel::name(&t);
                                if !channels.contains_key(&ch) && hub.listen(&ch).await.is_ok() {
                                    channels.insert(ch, t);
                                }
                            }
                        }
                    }
                    continue;
                }
                let Some(topic) = channels.get(&channel) else {
                    continue;
                };
                for reference in jobs_of(&payload) {
                    // A payload only names jobs (anyone may NOTIFY): each is read from
                    // the database, with this client's privileges, before it is trusted.
                    let Some(jid) = reference["metadata"]["jid"].as_str() else {
                        continue;
                    };
                    let Ok(job) = hm.get_state(jid).await else {
                        continue;
                    };
                    let deliver = !pattern
                        || pattern_matches(&what, topic)
                        || pattern_matches(&what, &format!("{topic}.{}", job.job_id()));
                    if deliver {
                        callback(JobMessage {
                            topic: topic.clone(),
                            job,
                        });
                    }
                }
            }
        });
        self.keep_subscription(key, task);
        Ok(())
    }

    /// Keeps a subscription's task under `key`; one it replaces ends.
    pub(crate) fn keep_subscription(&self, key: String, task: JoinHandle<()>) {
        if let Some(old) = self.inner.subs.tasks.lock().unwrap().insert(key, task) {
            old.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(pattern_matches("a.*", "a.b"));
        assert!(pattern_matches("a.*.done", "a.x.done"));
        assert!(pattern_matches("a.?", "a.b"));
        assert!(!pattern_matches("a.?", "a.bc"));
        assert!(!pattern_matches("a.*", "b.a"));
        assert!(pattern_matches("*", ""));
    }

    #[test]
    fn a_pattern_reaches_job_channels_under_a_topic() {
        // "orders.done.*" reaches the channel orders.done (its job ids follow it)
        assert!(glob(b"orders.done.*", b"orders.done.", true));
        assert!(!glob(b"billing.*", b"orders.done.", true));
        assert!(glob(b"*.H123", b"orders.done.", true));
    }

    #[test]
    fn batched_payloads_carry_every_job() {
        assert_eq!(
            jobs_of(r#"{"type":"job","job":{"metadata":{"jid":"a"}}}"#).len(),
            1
        );
        assert_eq!(jobs_of(r#"{"type":"jobs","jobs":[{},{}]}"#).len(), 2);
        assert!(jobs_of("not json").is_empty());
    }
}
