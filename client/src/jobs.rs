//! Jobs through the engine API: deploy and activate apps, start jobs, wait for them,
//! signal and interrupt them, and read them. Each call is one SQL function of the extension.

use crate::{Error, HotMesh, JobHandle};
use serde_json::Value;
use std::time::Duration;

/// A job's `{metadata, data}`, as the original's JobOutput.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct JobOutput {
    /// `jid`, `gid`, `app`, `vrs`, `tpc`, `js` (the status), `jc`, `ju`, and `err` when
    /// the job failed.
    pub metadata: Value,
    /// The job's data (what its job maps wrote).
    pub data: Value,
}

impl JobOutput {
    /// Reads `{metadata, data}`.
    ///
    /// ```
    /// use serde_json::json;
    /// let o = hotmesh_client::JobOutput::from_value(json!({"metadata": {"jid": "a", "js": 0}, "data": {"x": 1}}));
    /// assert_eq!(o.job_id(), "a");
    /// assert_eq!(o.status(), 0);
    /// ```
    pub fn from_value(v: Value) -> JobOutput {
        JobOutput {
            metadata: v.get("metadata").cloned().unwrap_or(Value::Null),
            data: v.get("data").cloned().unwrap_or(Value::Null),
        }
    }

    /// Whether the job has ended (done, failed or interrupted), by its status (`js`).
    pub fn ended(&self) -> bool {
        self.metadata["js"]
            .as_i64()
            .is_some_and(hotmesh_engine::status::ended)
            || self.error().is_some()
    }

    /// The job id (`metadata.jid`).
    ///
    /// ```
    /// # let o = hotmesh_client::JobOutput::from_value(serde_json::json!({"metadata": {"jid": "a"}}));
    /// assert_eq!(o.job_id(), "a");
    /// ```
    pub fn job_id(&self) -> &str {
        self.metadata["jid"].as_str().unwrap_or_default()
    }

    /// The status semaphore (`metadata.js`): 0 done, > 0 running, -1 pending, <=
    /// -100,000,000 interrupted.
    ///
    /// ```
    /// # let o = hotmesh_client::JobOutput::from_value(serde_json::json!({"metadata": {"js": 2}}));
    /// assert_eq!(o.status(), 2);
    /// ```
    pub fn status(&self) -> i64 {
        self.metadata["js"].as_i64().unwrap_or_default()
    }

    /// The job's error (`metadata.err`, a JSON string in the original's format), parsed.
    ///
    /// ```
    /// # let o = hotmesh_client::JobOutput::from_value(serde_json::json!({"metadata": {"err": "{\"code\":410}"}}));
    /// assert_eq!(o.error().unwrap()["code"], 410);
    /// ```
    pub fn error(&self) -> Option<Value> {
        match &self.metadata["err"] {
            Value::String(s) => serde_json::from_str(s)
                .ok()
                .or(Some(Value::String(s.clone()))),
            Value::Null => None,
            other => Some(other.clone()),
        }
    }

    /// The job's data as a type of yours.
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Order { total: i64 }
    /// let o = hotmesh_client::JobOutput::from_value(serde_json::json!({"data": {"total": 7}}));
    /// assert_eq!(o.data_as::<Order>().unwrap().total, 7);
    /// ```
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_value(self.data.clone()).map_err(|e| Error::Invalid {
            name: "data",
            problem: format!("does not read as {}: {e}", std::any::type_name::<T>()),
        })
    }

    pub(crate) fn into_result(self) -> Result<JobOutput, Error> {
        match self.error() {
            Some(e) => Err(Error::Job {
                job_id: self.job_id().to_string(),
                code: e["code"].as_i64().unwrap_or(500),
                message: e["message"].as_str().unwrap_or_default().to_string(),
                error: e,
            }),
            None => Ok(self),
        }
    }
}

/// Options of [`HotMesh::publish`] (the `options` of `hotmesh.pub`): the extension
/// reads them with the same type.
pub use hotmesh_engine::options::PubOptions;

/// Options of [`HotMesh::interrupt`] (the `options` of `hotmesh.interrupt`).
pub use hotmesh_engine::options::InterruptOptions;

/// The status of a signal or a worker's answer: success, error or pending.
pub use hotmesh_engine::answer::Status;

impl From<hotmesh_engine::options::OptionError> for Error {
    fn from(e: hotmesh_engine::options::OptionError) -> Error {
        Error::Invalid {
            name: e.name,
            problem: e.problem,
        }
    }
}

/// `data` as the JSON object a job's data must be (any `Serialize` type: a struct, a
/// map, or `serde_json::Value`).
pub(crate) fn data_object(data: impl serde::Serialize) -> Result<Value, Error> {
    let v = serde_json::to_value(data).map_err(|e| Error::Invalid {
        name: "data",
        problem: format!("does not serialize to JSON: {e}"),
    })?;
    object("data", &v)?;
    Ok(v)
}

fn object(name: &'static str, v: &Value) -> Result<(), Error> {
    if v.is_object() {
        Ok(())
    } else {
        Err(Error::Invalid {
            name,
            problem: format!("must be a JSON object, got {v}"),
        })
    }
}

impl HotMesh {
    async fn fetch<'q, T>(
        &self,
        q: sqlx::query::QueryScalar<'q, sqlx::Postgres, T, sqlx::postgres::PgArguments>,
    ) -> Result<T, Error>
    where
        T: Send + Unpin,
        (T,): for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        q.fetch_one(self.conn()?).await.map_err(Error::from_sqlx)
    }

    /// Deploys an app from its YAML (or JSON) text. Returns what `hotmesh.deploy` says
    /// (`{app_id, version, status, ...}`). A bad manifest fails with the path and line.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// hm.deploy("app: { id: demo, version: '1', graphs: [ { subscribes: demo.start, activities: { t: { type: trigger } } } ] }").await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip_all)]
    pub async fn deploy(&self, manifest: &str) -> Result<Value, Error> {
        self.fetch(sqlx::query_scalar("SELECT hotmesh.deploy($1)").bind(manifest))
            .await
    }

    /// Deploys an app from a file; `$ref: ./other.yaml` entries (anywhere, with an
    /// optional `#/json/pointer`) are replaced by what they point at, relative to the
    /// file that names them, as the original's loader does.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// hm.deploy_file("apps/orders.yaml").await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn deploy_file(
        &self,
        path: impl AsRef<std::path::Path> + std::fmt::Debug,
    ) -> Result<Value, Error> {
        let text = crate::deploy::load(path.as_ref())?;
        self.deploy(&text).await
    }

    /// Makes `version` the active version of this client's app (the original's
    /// `hotMesh.activate(version)`): engines and workers switch at once, and the app's
    /// quorum hears it. [`Error::Invalid`] on a client without an app (see
    /// [`activate_app`](Self::activate_app)).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), hotmesh_client::Error> {
    /// use hotmesh_client::{Config, HotMesh};
    /// let hm = HotMesh::init(Config::new("demo", "postgres://postgres@127.0.0.1:28815/hotmesh")).await?;
    /// hm.activate("2").await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn activate(&self, version: &str) -> Result<bool, Error> {
        if self.app_id().is_empty() {
            return Err(Error::Invalid {
                name: "app_id",
                problem:
                    "this client has no app (HotMesh::connect): use activate_app(app, version)"
                        .into(),
            });
        }
        self.activate_app(self.app_id(), version).await
    }

    /// Makes `version` the active version of any app `app_id`.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// hm.activate_app("demo", "1").await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn activate_app(&self, app_id: &str, version: &str) -> Result<bool, Error> {
        self.fetch(
            sqlx::query_scalar("SELECT hotmesh.activate($1, $2)")
                .bind(app_id)
                .bind(version),
        )
        .await
    }

    /// Starts a job of the graph that subscribes to `topic` (`hotmesh.pub`), in its own
    /// transaction. Returns the job's handle (its id, and the calls that wait for it, read
    /// it, signal and interrupt it). The original's `pub`.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let job = hm.publish("demo.start", serde_json::json!({"n": 1}), Default::default()).await?;
    /// let out = job.result(std::time::Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    #[doc(alias = "pub")]
    #[tracing::instrument(skip(self, data, options))]
    pub async fn publish(
        &self,
        topic: &str,
        data: impl serde::Serialize,
        options: PubOptions,
    ) -> Result<JobHandle, Error> {
        let data = data_object(data)?;
        // checked here with the extension's own rules: a wrong value fails before a round trip
        let options = options.to_json();
        PubOptions::from_json(&options)?;
        let id: String = self
            .fetch(
                sqlx::query_scalar("SELECT hotmesh.pub($1, $2, $3)")
                    .bind(topic)
                    .bind(data)
                    .bind(options),
            )
            .await?;
        Ok(self.started(id, topic))
    }

    /// Starts a job and waits for its output, listening on its one-time channel. A job
    /// that ends with an error is [`Error::Job`]; no answer within `timeout` is
    /// [`Error::Timeout`] (code 504; the job runs on).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let out = hm.pubsub("demo.start", serde_json::json!({"n": 1}), std::time::Duration::from_secs(5)).await?;
    /// println!("{}", out.data);
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self, data))]
    pub async fn pubsub(
        &self,
        topic: &str,
        data: impl serde::Serialize,
        timeout: Duration,
    ) -> Result<JobOutput, Error> {
        self.pubsub_with(topic, data, PubOptions::default(), timeout)
            .await
    }

    /// [`pubsub`](Self::pubsub) with options (a given `id` is used as the job id).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let o = hotmesh_client::PubOptions::new().id("order-7");
    /// hm.pubsub_with("demo.start", serde_json::json!({}), o, std::time::Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self, data, options))]
    pub async fn pubsub_with(
        &self,
        topic: &str,
        data: impl serde::Serialize,
        mut options: PubOptions,
        timeout: Duration,
    ) -> Result<JobOutput, Error> {
        let id = options.id.get_or_insert_with(crate::guid).clone();
        let channel = self.completion_channel(topic, &id, None).await?;
        self.pubsub_on(topic, &channel, data, options, timeout)
            .await
    }

    /// [`pubsub_with`](Self::pubsub_with) when the caller knows the job's completion
    /// channel (its graph's `publishes` and the id in `options`): no look-up first.
    pub(crate) async fn pubsub_on(
        &self,
        topic: &str,
        channel: &str,
        data: impl serde::Serialize,
        options: PubOptions,
        timeout: Duration,
    ) -> Result<JobOutput, Error> {
        let hub = self.hub().await?;
        // listen first: the job may end in the transaction that starts it
        hub.listen(channel).await?;
        let result = self
            .publish_and_wait(topic, channel, data, options, timeout)
            .await;
        hub.unlisten(channel);
        result
    }

    /// [`pubsub_on`](Self::pubsub_on) on a channel LISTENed already (and kept): a graph's
    /// shared completion channel, where each payload names the jobs it announces.
    pub(crate) async fn publish_and_wait(
        &self,
        topic: &str,
        channel: &str,
        data: impl serde::Serialize,
        options: PubOptions,
        timeout: Duration,
    ) -> Result<JobOutput, Error> {
        let data = data_object(data)?;
        let id = options.id.clone().unwrap_or_default();
        let mut events = self.hub().await?.subscribe();
        self.publish(topic, data, options).await?;
        self.wait(&id, channel, &mut events, timeout).await
    }

    /// The job's status semaphore (`hotmesh.get_status`); a missing job is a
    /// [`Error::Database`] with code 404.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let st = hm.get_status("order-7").await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn get_status(&self, job_id: &str) -> Result<i64, Error> {
        self.fetch(sqlx::query_scalar("SELECT hotmesh.get_status($1)").bind(job_id))
            .await
    }

    /// The job's `{metadata, data}` (`hotmesh.get_state`).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let s = hm.get_state("order-7").await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn get_state(&self, job_id: &str) -> Result<JobOutput, Error> {
        let v: Value = self
            .fetch(sqlx::query_scalar("SELECT hotmesh.get_state(NULL, $1)").bind(job_id))
            .await?;
        Ok(JobOutput::from_value(v))
    }

    /// The job's search fields named in `fields` (`hotmesh.get_query_state`).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let v = hm.get_query_state("order-7", &["region"]).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn get_query_state(&self, job_id: &str, fields: &[&str]) -> Result<Value, Error> {
        let fields: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        self.fetch(
            sqlx::query_scalar("SELECT hotmesh.get_query_state($1, $2)")
                .bind(job_id)
                .bind(fields),
        )
        .await
    }

    /// What the jobs of graph `topic` recorded (its trigger's `stats.measures`), as the
    /// original's `getStats`: `query` is `{data, range, start, end, sparse}`. Returns
    /// `{key, granularity, count, measures, segments}`.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let s = hm.get_stats("orders.start", serde_json::json!({"data": {"region": "eu"}, "range": "1h"})).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self, query))]
    pub async fn get_stats(&self, topic: &str, query: Value) -> Result<Value, Error> {
        self.fetch(
            sqlx::query_scalar("SELECT hotmesh.get_stats($1, $2)")
                .bind(topic)
                .bind(query),
        )
        .await
    }

    /// The ids of the jobs of graph `topic` indexed under `facets` (`path:value`), as the
    /// original's `getIds`.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let ids = hm.get_ids("orders.start", serde_json::json!({"range": "1h"}), &["region:eu"]).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self, query))]
    pub async fn get_ids(
        &self,
        topic: &str,
        query: Value,
        facets: &[&str],
    ) -> Result<Value, Error> {
        let facets: Vec<String> = facets.iter().map(|s| s.to_string()).collect();
        self.fetch(
            sqlx::query_scalar("SELECT hotmesh.get_ids($1, $2, $3)")
                .bind(topic)
                .bind(query)
                .bind(facets),
        )
        .await
    }

    /// Everything stored about the job (`hotmesh.get_raw`), for debugging.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let raw = hm.get_raw("order-7").await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn get_raw(&self, job_id: &str) -> Result<Value, Error> {
        self.fetch(sqlx::query_scalar("SELECT hotmesh.get_raw($1)").bind(job_id))
            .await
    }

    /// The job with its activity timeline (`hotmesh.export`).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let e = hm.export("order-7").await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn export(&self, job_id: &str) -> Result<Value, Error> {
        self.fetch(sqlx::query_scalar("SELECT hotmesh.export($1)").bind(job_id))
            .await
    }

    /// Deletes the job and its rows now (`hotmesh.scrub`). False if there was none.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// hm.scrub("order-7").await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self))]
    pub async fn scrub(&self, job_id: &str) -> Result<bool, Error> {
        self.fetch(sqlx::query_scalar("SELECT hotmesh.scrub($1)").bind(job_id))
            .await
    }

    /// Sends a signal to the hook waiting on `topic` whose key the data resolves to
    /// (status success, code 200). Returns the job reached, or None when no hook waits
    /// yet (the signal is kept for it).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// hm.signal("order.approve", serde_json::json!({"id": "order-7", "ok": true})).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self, data))]
    pub async fn signal(&self, topic: &str, data: Value) -> Result<Option<String>, Error> {
        self.signal_with(topic, data, Status::Success, None).await
    }

    /// The original's name for [`signal`](Self::signal) (`hotMesh.hook(topic, data)`).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// hm.hook("order.approve", serde_json::json!({"id": "order-7"})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn hook(&self, topic: &str, data: Value) -> Result<Option<String>, Error> {
        self.signal(topic, data).await
    }

    /// [`signal`](Self::signal) with a status (pending, code 202 unless given, keeps the
    /// hook open) and a code (none: the status's default).
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// use hotmesh_client::Status;
    /// hm.signal_with("order.progress", serde_json::json!({"id": "order-7"}), Status::Pending, None).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self, data))]
    pub async fn signal_with(
        &self,
        topic: &str,
        data: Value,
        status: Status,
        code: Option<i32>,
    ) -> Result<Option<String>, Error> {
        object("data", &data)?;
        self.fetch(
            sqlx::query_scalar("SELECT hotmesh.signal($1, $2, $3, $4)")
                .bind(topic)
                .bind(data)
                .bind(status.name())
                .bind(code),
        )
        .await
    }

    /// Signals every hook on `topic` whose job has the search field `key_name` equal to
    /// `key_value` (each job's signal data gets `id`). Returns the jobs reached.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// let ids = hm.signal_all("order.approve", serde_json::json!({"ok": true}), "region", "eu").await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self, data))]
    pub async fn signal_all(
        &self,
        topic: &str,
        data: Value,
        key_name: &str,
        key_value: &str,
    ) -> Result<Vec<String>, Error> {
        object("data", &data)?;
        self.fetch(
            sqlx::query_scalar("SELECT hotmesh.signal_all($1, $2, $3, $4)")
                .bind(topic)
                .bind(data)
                .bind(key_name)
                .bind(key_value),
        )
        .await
    }

    /// Interrupts a job (`hotmesh.interrupt`). The options are an [`InterruptOptions`] or
    /// the same as JSON: `reason`, `throw` (default true), `code` (default 410), `expire`,
    /// `descend`, `suppress` (no error for a job that already ended). They are checked
    /// before anything is sent, with the extension's rules.
    ///
    /// ```no_run
    /// # async fn demo(hm: hotmesh_client::HotMesh) -> Result<(), hotmesh_client::Error> {
    /// use hotmesh_client::InterruptOptions;
    /// let why = InterruptOptions::new().reason("cancelled");
    /// hm.interrupt("order.start", "order-7", why).await?;
    /// hm.interrupt("order.start", "order-8", serde_json::json!({"suppress": true})).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip(self, options))]
    pub async fn interrupt(
        &self,
        topic: &str,
        job_id: &str,
        options: impl Into<Value>,
    ) -> Result<bool, Error> {
        let options = options.into();
        InterruptOptions::from_json(&options)?;
        self.fetch(
            sqlx::query_scalar("SELECT hotmesh.interrupt($1, $2, $3)")
                .bind(topic)
                .bind(job_id)
                .bind(options),
        )
        .await
    }
}
