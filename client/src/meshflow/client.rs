//! Starting workflows and reaching them: [`Client`], [`StartOptions`],
//! [`WorkflowHandle`] (the original's `Durable.Client` and its `WorkflowHandle`).

use super::{ensure_app, NAMESPACE};
use crate::{Error, HotMesh, JobHandle, JobOutput, PubOptions};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;
use std::time::Duration;

/// Where MeshFlow, MeshCall and MeshData run: a database URL and a namespace (the app id
/// of their graph; none: each layer's default, `meshflow`, `meshcall` or `meshdata`).
/// Workers and clients of one namespace see each other's work.
///
/// ```
/// use hotmesh_client::meshflow::Connection;
/// let c = Connection::new("postgres://postgres@127.0.0.1:28815/hotmesh").namespace("billing");
/// assert_eq!(c.namespace.as_deref(), Some("billing"));
/// assert_eq!(c.namespace_or("meshflow"), "billing");
/// assert_eq!(Connection::new("postgres://h/db").namespace_or("meshflow"), "meshflow");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Connection {
    /// The database URL.
    pub url: String,
    /// The namespace (none: the layer's default).
    pub namespace: Option<String>,
    /// Connections per pool (default 4).
    pub pool_size: u32,
}

impl Connection {
    /// `url` in the default namespace.
    pub fn new(url: impl Into<String>) -> Connection {
        Connection {
            url: url.into(),
            namespace: None,
            pool_size: 4,
        }
    }

    /// Sets the namespace (letters, digits, `_` and `-`).
    pub fn namespace(mut self, ns: impl Into<String>) -> Connection {
        self.namespace = Some(ns.into());
        self
    }

    /// The namespace, or `default` when none was set.
    pub fn namespace_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(default)
    }

    /// Sets the pool size.
    pub fn pool_size(mut self, n: u32) -> Connection {
        self.pool_size = n;
        self
    }
}

/// Starts workflows and reaches running ones.
#[derive(Clone, Debug)]
pub struct Client {
    hm: HotMesh,
    ns: String,
}

/// What to start: the original's `client.workflow.start({taskQueue, workflowName, args,
/// workflowId, search, expire})`.
///
/// ```
/// use hotmesh_client::meshflow::StartOptions;
/// let o = StartOptions::new("orders", "order")
///     .args(serde_json::json!({"id": 7}))
///     .workflow_id("order-7")
///     .search("customer", "ann")
///     .expire(std::time::Duration::from_secs(3600));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StartOptions {
    /// The task queue whose workers run it.
    pub task_queue: String,
    /// The workflow function's name.
    pub workflow_name: String,
    /// Its input.
    pub args: Value,
    /// Its id (none: a new guid).
    pub workflow_id: Option<String>,
    /// Search fields it starts with (the job's `search` column).
    pub search: serde_json::Map<String, Value>,
    /// How long the job is kept after it ends (none: the engine's default).
    pub expire: Option<Duration>,
    /// Keep the job after it ends until it is scrubbed (MeshData's ttl "infinity").
    pub keep: bool,
    /// The entity it is a record of (MeshData): `hotmesh.jobs.entity`.
    pub entity: Option<String>,
    /// With an id a live workflow has: attach to it instead of failing with
    /// [`Error::Duplicate`].
    pub attach: bool,
}

impl StartOptions {
    /// Workflow `workflow_name` on task queue `task_queue`, no input.
    pub fn new(task_queue: impl Into<String>, workflow_name: impl Into<String>) -> StartOptions {
        StartOptions {
            task_queue: task_queue.into(),
            workflow_name: workflow_name.into(),
            args: Value::Null,
            workflow_id: None,
            search: Default::default(),
            expire: None,
            keep: false,
            entity: None,
            attach: false,
        }
    }

    /// Sets the input (anything that serializes).
    pub fn args(mut self, input: impl Serialize) -> StartOptions {
        self.args = serde_json::to_value(input).unwrap_or(Value::Null);
        self
    }

    /// Sets the workflow id.
    pub fn workflow_id(mut self, id: impl Into<String>) -> StartOptions {
        self.workflow_id = Some(id.into());
        self
    }

    /// Adds a search field.
    pub fn search(mut self, field: impl Into<String>, value: impl Into<Value>) -> StartOptions {
        self.search.insert(field.into(), value.into());
        self
    }

    /// Keeps the job this long after it ends.
    pub fn expire(mut self, d: Duration) -> StartOptions {
        self.expire = Some(d);
        self
    }

    /// Keeps the job after it ends until it is scrubbed.
    pub fn keep(mut self) -> StartOptions {
        self.keep = true;
        self
    }

    /// Makes the workflow a record of `entity` (MeshData).
    pub fn entity(mut self, entity: impl Into<String>) -> StartOptions {
        self.entity = Some(entity.into());
        self
    }

    /// Attaches to a live workflow with the same id instead of failing.
    pub fn attach_if_running(mut self) -> StartOptions {
        self.attach = true;
        self
    }
}

impl Client {
    /// Connects, and deploys the graph if the database lacks it.
    pub async fn new(connection: Connection) -> Result<Client, Error> {
        let hm = HotMesh::connect(&connection.url).await?;
        let ns = connection.namespace_or(NAMESPACE).to_string();
        ensure_app(&hm, &ns).await?;
        Ok(Client { hm, ns })
    }

    /// The workflow calls (the original's `client.workflow`).
    pub fn workflow(&self) -> WorkflowClient<'_> {
        WorkflowClient { c: self }
    }

    /// Sends signal `signal_id` with `data` to the workflow waiting for it
    /// (`ctx.wait_for(signal_id)`); kept 10 minutes for one that waits later. Returns
    /// the workflow reached now, if one was waiting.
    pub async fn signal(
        &self,
        signal_id: &str,
        data: impl Serialize,
    ) -> Result<Option<String>, Error> {
        let data = serde_json::to_value(data).map_err(|e| Error::Invalid {
            name: "data",
            problem: e.to_string(),
        })?;
        self.hm
            .signal(
                &format!("{}.wfs.wait", self.ns),
                json!({"id": signal_id, "data": data}),
            )
            .await
    }

    /// The engine client underneath.
    pub fn hotmesh(&self) -> &HotMesh {
        &self.hm
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.ns
    }
}

/// The workflow calls of a [`Client`].
#[derive(Clone, Copy, Debug)]
pub struct WorkflowClient<'a> {
    c: &'a Client,
}

impl WorkflowClient<'_> {
    /// Starts a workflow; returns at once with its handle. A live workflow with the same
    /// id is [`Error::Duplicate`] (or its handle, with
    /// [`attach_if_running`](StartOptions::attach_if_running)).
    pub async fn start(&self, o: StartOptions) -> Result<WorkflowHandle, Error> {
        let id = o.workflow_id.clone().unwrap_or_else(crate::guid);
        let mut data = json!({
            "workflowId": id,
            "workflowName": o.workflow_name,
            "taskQueue": o.task_queue,
            "arguments": o.args,
        });
        if let Some(e) = o.expire {
            data["expire"] = json!(e.as_secs_f64());
        }
        if o.keep {
            // 0 or less: never expires
            data["expire"] = json!(-1);
        }
        let mut options = PubOptions::new().id(id.clone());
        if let Some(e) = &o.entity {
            options = options.entity(e.clone());
        }
        for (k, v) in &o.search {
            options = options.search(k.clone(), v.clone());
        }
        let topic = format!("{}.execute", self.c.ns);
        match self.c.hm.publish(&topic, data, options).await {
            Ok(job) => Ok(self.handle(job, &o.task_queue, &o.workflow_name)),
            Err(e) if e.code() == 409 => {
                if o.attach {
                    let job = self.c.hm.job(id);
                    Ok(self.handle(job, &o.task_queue, &o.workflow_name))
                } else {
                    Err(Error::Duplicate { job_id: id })
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Starts a workflow and waits (at most `timeout`) for its result.
    pub async fn execute<O: DeserializeOwned>(
        &self,
        o: StartOptions,
        timeout: Duration,
    ) -> Result<O, Error> {
        self.start(o).await?.result(timeout).await
    }

    /// A handle on workflow `workflow_id` (no round trip).
    pub fn get_handle(
        &self,
        task_queue: &str,
        workflow_name: &str,
        workflow_id: &str,
    ) -> WorkflowHandle {
        let job = self.c.hm.job(workflow_id);
        self.handle(job, task_queue, workflow_name)
    }

    fn handle(&self, job: JobHandle, task_queue: &str, workflow_name: &str) -> WorkflowHandle {
        WorkflowHandle {
            job,
            task_queue: task_queue.to_string(),
            workflow_name: workflow_name.to_string(),
            hm: self.c.hm.clone(),
        }
    }
}

/// A workflow, started here or anywhere.
#[derive(Clone, Debug)]
pub struct WorkflowHandle {
    job: JobHandle,
    task_queue: String,
    workflow_name: String,
    hm: HotMesh,
}

impl WorkflowHandle {
    /// The workflow id (its job id).
    pub fn workflow_id(&self) -> &str {
        self.job.id()
    }

    /// Its task queue.
    pub fn task_queue(&self) -> &str {
        &self.task_queue
    }

    /// Its workflow name.
    pub fn workflow_name(&self) -> &str {
        &self.workflow_name
    }

    /// Waits (at most `timeout`) for its result, read as `O`. A failed workflow is
    /// [`Error::Job`] with its code and message ([`Error::NonDeterminism`] for code
    /// 593); still running is [`Error::Timeout`].
    pub async fn result<O: DeserializeOwned>(&self, timeout: Duration) -> Result<O, Error> {
        let out = self.job.result(timeout).await.map_err(typed)?;
        let response = out.data.get("response").cloned().unwrap_or(Value::Null);
        serde_json::from_value(response).map_err(|e| Error::Invalid {
            name: "result",
            problem: format!(
                "the workflow's result does not read as {}: {e}",
                std::any::type_name::<O>()
            ),
        })
    }

    /// Its status semaphore (0 done, > 0 running, very negative interrupted).
    pub async fn status(&self) -> Result<i64, Error> {
        self.job.status().await
    }

    /// Its state: job data (`response`, `done`) and metadata.
    pub async fn state(&self) -> Result<JobOutput, Error> {
        self.job.state().await
    }

    /// Its search fields and data by name (see [`HotMesh::get_query_state`]).
    pub async fn query_state(&self, fields: &[&str]) -> Result<Value, Error> {
        self.job.query_state(fields).await
    }

    /// Interrupts it (code 410 unless the options say otherwise).
    pub async fn interrupt(&self, options: impl Into<Value>) -> Result<bool, Error> {
        self.job.interrupt(options).await
    }

    /// Its journal: one entry per recorded operation, in order (the view
    /// `hotmesh.journal`; a continued workflow's earlier generations first).
    pub async fn journal(&self) -> Result<Vec<JournalEntry>, Error> {
        let rows = sqlx::query(
            "SELECT generation, index, kind, name, result, error, recorded_at, mark
               FROM hotmesh.journal WHERE job_id = $1 ORDER BY generation, index",
        )
        .bind(self.job.id())
        .fetch_all(self.hm.pool())
        .await
        .map_err(Error::from_sqlx)?;
        rows.iter()
            .map(|r| {
                Ok(JournalEntry {
                    generation: r.try_get::<i32, _>(0)? as u32,
                    index: r.try_get::<i32, _>(1)? as u32,
                    kind: r.try_get(2)?,
                    name: r.try_get(3)?,
                    result: r.try_get::<Option<Value>, _>(4)?.unwrap_or(Value::Null),
                    error: r.try_get(5)?,
                    recorded_at: r.try_get(6)?,
                    mark: r.try_get(7)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Error::from_sqlx)
    }

    /// Its marks as stored: `{key: mark}` (`-proxy-1-`, …), the same as `SELECT marks FROM
    /// hotmesh.jobs WHERE id = …`.
    pub async fn marks(&self) -> Result<Value, Error> {
        let v: Option<Value> =
            sqlx::query_scalar("SELECT coalesce(marks, '{}') FROM hotmesh.jobs WHERE id = $1")
                .bind(self.job.id())
                .fetch_optional(self.hm.pool())
                .await
                .map_err(Error::from_sqlx)?;
        v.ok_or_else(|| Error::Database {
            sqlstate: hotmesh_engine::error::sqlstate::NO_DATA_FOUND.into(),
            message: format!("{} Not Found", self.job.id()),
        })
    }

    /// The engine's export: the job and its activity timeline.
    pub async fn export(&self) -> Result<Value, Error> {
        self.job.export().await
    }

    /// The job's handle (scrub, signal, completion waits).
    pub fn job(&self) -> &JobHandle {
        &self.job
    }
}

/// One recorded operation of a workflow (a row of `hotmesh.journal`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct JournalEntry {
    /// The generation (0, then one more per continue-as-new).
    pub generation: u32,
    /// The operation's index in its generation's runs (1 is the first).
    pub index: u32,
    /// `proxy`, `sleep`, `wait`, `child`, `start` or `search`.
    pub kind: String,
    /// The activity, signal, workflow or search field.
    pub name: Option<String>,
    /// Its result.
    pub result: Value,
    /// Its error (`{code, message}`), if it failed.
    pub error: Option<Value>,
    /// When the engine recorded it.
    pub recorded_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its mark's key in the job's marks.
    pub mark: String,
}

/// A job error of code 593 as [`Error::NonDeterminism`].
fn typed(e: Error) -> Error {
    match e {
        Error::Job {
            job_id,
            code: 593,
            message,
            error,
        } => Error::NonDeterminism {
            job_id,
            index: error["index"].as_u64().unwrap_or(0) as u32,
            recorded: error["recorded"].as_str().unwrap_or_default().to_string(),
            current: error["current"].as_str().unwrap_or_default().to_string(),
            message,
        },
        other => other,
    }
}
