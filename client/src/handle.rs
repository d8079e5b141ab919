//! A job handle: what `publish` returns and `HotMesh::job(id)` makes for a job started
//! elsewhere. It names the job and carries the client, so waiting for the job, reading
//! it, signalling and interrupting it need no SQL and no second argument.

use crate::hub::Event;
use crate::jobs::{InterruptOptions, JobOutput};
use crate::{Error, HotMesh};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How often a wait looks at the job even without a notification: LISTEN does not lose
/// notifications while its connection lives, and a reconnect is seen at once; this only
/// bounds what an unforeseen loss could cost.
const POLL: Duration = Duration::from_secs(5);

/// One job: started by [`HotMesh::publish`], or found with [`HotMesh::job`].
///
/// ```no_run
/// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
/// use std::time::Duration;
/// let job = hm.publish("orders.start", serde_json::json!({"amount": 5}), Default::default()).await?;
/// println!("started {}", job.id());
/// let out = job.result(Duration::from_secs(30)).await?;     // waits; Error::Job if it failed
/// let again = hm.job(job.id()).status().await?;              // from anywhere, by id
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct JobHandle {
    hm: HotMesh,
    id: String,
    /// The topic it was started with, when known (saves a read before an interrupt).
    topic: Option<String>,
}

impl std::fmt::Display for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id)
    }
}

impl From<JobHandle> for String {
    fn from(h: JobHandle) -> String {
        h.id
    }
}

impl HotMesh {
    /// A handle on job `id`, started anywhere (no round trip: a job that does not exist
    /// is found out by the first call, as a 404).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let out = hm.job("order-7").result(std::time::Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    pub fn job(&self, id: impl Into<String>) -> JobHandle {
        JobHandle {
            hm: self.clone(),
            id: id.into(),
            topic: None,
        }
    }

    pub(crate) fn started(&self, id: String, topic: &str) -> JobHandle {
        JobHandle {
            hm: self.clone(),
            id,
            topic: Some(topic.to_string()),
        }
    }
}

impl JobHandle {
    /// The job id.
    ///
    /// ```no_run
    /// # fn demo(hm: hotmesh_client::HotMesh) { assert_eq!(hm.job("a").id(), "a"); }
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits until the job ends and returns its output: a job that ended with an error
    /// (or was interrupted) is [`Error::Job`]; still running after `timeout` is
    /// [`Error::Timeout`] (the job runs on; wait again later). A job that ended already
    /// returns at once.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// match hm.job("order-7").result(std::time::Duration::from_secs(5)).await {
    ///     Ok(out) => println!("{}", out.data),
    ///     Err(e) if e.code() == 504 => println!("still running"),
    ///     Err(e) => println!("failed: {e}"),
    /// }
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self), fields(job = %self.id))]
    pub async fn result(&self, timeout: Duration) -> Result<JobOutput, Error> {
        let first = self.hm.get_state(&self.id).await?;
        if first.ended() {
            return first.into_result();
        }
        let m = &first.metadata;
        let of = m["app"].as_str().zip(m["vrs"].as_str());
        let topic = m["tpc"].as_str().unwrap_or_default();
        let channel = self.hm.completion_channel(topic, &self.id, of).await?;
        let hub = self.hm.hub().await?;
        let mut events = hub.subscribe();
        hub.listen(&channel).await?;
        // it may have ended between the first read and the LISTEN
        let r = match self.hm.get_state(&self.id).await {
            Ok(s) if s.ended() => s.into_result(),
            Ok(_) => self.hm.wait(&self.id, &channel, &mut events, timeout).await,
            Err(e) => Err(e),
        };
        hub.unlisten(&channel);
        r
    }

    /// [`result`](Self::result), with the output's data read as your type.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// #[derive(serde::Deserialize)]
    /// struct Receipt { total: i64 }
    /// let r: Receipt = hm.job("order-7").result_as(std::time::Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn result_as<T: serde::de::DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> Result<T, Error> {
        self.result(timeout).await?.data_as()
    }

    /// The job's status semaphore: 0 done, > 0 running, <= -100,000,000 interrupted.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let running = hm.job("order-7").status().await? > 0;
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<i64, Error> {
        self.hm.get_status(&self.id).await
    }

    /// The job's `{metadata, data}` now (running or not).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let s = hm.job("order-7").state().await?;
    /// # Ok(()) }
    /// ```
    pub async fn state(&self) -> Result<JobOutput, Error> {
        self.hm.get_state(&self.id).await
    }

    /// The job's search fields named in `fields`.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let v = hm.job("order-7").query_state(&["region"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn query_state(&self, fields: &[&str]) -> Result<Value, Error> {
        self.hm.get_query_state(&self.id, fields).await
    }

    /// The job with its activity timeline.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let timeline = hm.job("order-7").export().await?;
    /// # Ok(()) }
    /// ```
    pub async fn export(&self) -> Result<Value, Error> {
        self.hm.export(&self.id).await
    }

    /// Signals a hook of this job on `topic`. The data gets `id` = this job's id unless
    /// it names one: hooks are usually keyed on the job id (`{$self.hook.data.id}`
    /// matched against `{$job.metadata.jid}`). Returns the job reached, or None when no
    /// hook waits yet (the signal is kept for it).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// hm.job("order-7").signal("order.approve", serde_json::json!({"ok": true})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn signal(
        &self,
        topic: &str,
        data: impl serde::Serialize,
    ) -> Result<Option<String>, Error> {
        let mut data = crate::jobs::data_object(data)?;
        if let Value::Object(m) = &mut data {
            m.entry("id")
                .or_insert_with(|| Value::String(self.id.clone()));
        }
        self.hm.signal(topic, data).await
    }

    /// Interrupts the job (see [`HotMesh::interrupt`] for the options).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// use hotmesh_client::InterruptOptions;
    /// hm.job("order-7").interrupt(InterruptOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn interrupt(&self, options: impl Into<Value>) -> Result<bool, Error> {
        let options = options.into();
        InterruptOptions::from_json(&options)?;
        let topic = match &self.topic {
            Some(t) => t.clone(),
            None => {
                let s = self.hm.get_state(&self.id).await?;
                s.metadata["tpc"].as_str().unwrap_or_default().to_string()
            }
        };
        self.hm.interrupt(&topic, &self.id, options).await
    }

    /// Deletes the job and its rows now. False if there was none.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// hm.job("order-7").scrub().await?;
    /// # Ok(()) }
    /// ```
    pub async fn scrub(&self) -> Result<bool, Error> {
        self.hm.scrub(&self.id).await
    }
}

impl HotMesh {
    /// The one-time channel job `id`'s completion is announced on: the `publishes`
    /// topic of the graph that subscribes to `topic` (of app version `of`, when known)
    /// and the id.
    pub(crate) async fn completion_channel(
        &self,
        topic: &str,
        id: &str,
        of: Option<(&str, &str)>,
    ) -> Result<String, Error> {
        let (app, version) = of.unzip();
        let publishes: Option<String> = sqlx::query_scalar(
            "SELECT publishes FROM hotmesh.graphs
              WHERE subscribes = $1 AND ($2::text IS NULL OR (app_id = $2 AND version = $3))
              LIMIT 1",
        )
        .bind(topic)
        .bind(app)
        .bind(version)
        .fetch_optional(self.conn()?)
        .await
        .map_err(Error::from_sqlx)?
        .flatten();
        Ok(hotmesh_engine::channel::job(publishes.as_deref(), id))
    }

    /// Waits for job `id`'s completion on `channel` (LISTENed already), reading the job
    /// when it is announced, after a reconnect, and every [`POLL`].
    pub(crate) async fn wait(
        &self,
        id: &str,
        channel: &str,
        events: &mut tokio::sync::broadcast::Receiver<Event>,
        timeout: Duration,
    ) -> Result<JobOutput, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    job_id: id.to_string(),
                    ms: timeout.as_millis() as u64,
                });
            }
            let announced = match tokio::time::timeout(left.min(POLL), events.recv()).await {
                // A payload names the job, nothing more (and anyone may NOTIFY): the
                // result is what the job's row says, read with our privileges, once the
                // row says the job ended (an emit, or a forged NOTIFY, does not end the
                // wait).
                Ok(Ok(Event::Note {
                    channel: ch,
                    payload,
                })) if ch == channel && names_job(&payload, id) => true,
                Ok(Ok(Event::Note { .. })) => continue,
                // notifications may have been missed (a reconnect, a lagging reader, the
                // poll): look at the job itself
                Ok(Ok(Event::Reconnected))
                | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_)))
                | Err(_) => false,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                    tokio::time::sleep(left.min(POLL)).await;
                    false
                }
            };
            match self.get_state(id).await {
                Ok(s) if s.ended() => return s.into_result(),
                Ok(_) => {}
                Err(e) if announced => return Err(e),
                // a look of our own that failed (the connection is back soon): next time
                Err(_) => {}
            }
        }
    }
}

/// Whether a completion payload may be about job `id`: it names it, or names no job at all
/// (an id-less reference, a payload of another shape: the job is read to know). A graph's
/// shared channel (`<publishes>`) announces many jobs; a job's own channel only that one.
fn names_job(payload: &str, id: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(payload) else {
        return true;
    };
    // a reference without a readable id may be this job's
    let may_be = |r: &serde_json::Value| {
        r.pointer("/metadata/jid")
            .and_then(|j| j.as_str())
            .is_none_or(|j| j == id)
    };
    match (v.get("job"), v.get("jobs").and_then(|j| j.as_array())) {
        (Some(r), _) if !r.is_null() => may_be(r),
        (_, Some(rs)) => rs.iter().any(may_be),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::names_job;
    use hotmesh_engine::channel::{job_ref, jobs_payloads};

    #[test]
    fn a_completion_payload_names_the_jobs_it_announces_and_nothing_else() {
        let one = jobs_payloads("t", &[job_ref("a", "t", "app", 0)]);
        assert!(names_job(&one[0], "a"));
        assert!(!names_job(&one[0], "b"));
        let many = jobs_payloads(
            "t",
            &[job_ref("a", "t", "app", 0), job_ref("c", "t", "app", 0)],
        );
        assert!(many.iter().any(|p| names_job(p, "c")));
        assert!(!many.iter().any(|p| names_job(p, "b")));
        // no id to go by: read the job
        assert!(names_job(r#"{"type": "job", "job": null}"#, "b"));
        assert!(names_job("", "b"));
    }
}
