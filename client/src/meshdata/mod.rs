//! MeshData: workflows as searchable records (the original's MeshData). A record is a
//! MeshFlow workflow of an entity (`user`, `order`): its job row, with `entity` set and
//! its search fields in `hotmesh.jobs.search`, readable and searchable while it runs.
//! A search index declares an entity's fields (TAG, TEXT, NUMERIC; sortable or not): each
//! gets a real index, and [`MeshData::find_where`] is one parameterised query that uses
//! them (`hotmesh.find_where`). Records are plain rows: each entity's view
//! ([`records_view`], `hotmesh_records."user"`) has a typed column per declared field, and
//! [`MeshData::query`] runs SQL of your own over it with bound parameters.
//!
//! ```no_run
//! use hotmesh_client::meshdata::{Condition, ExecOptions, FindOptions, MeshData, SearchSchema};
//! use hotmesh_client::meshflow::{Connection, Context, WorkflowError};
//!
//! async fn user(ctx: Context, name: String) -> Result<String, WorkflowError> {
//!     ctx.search().set("active", "yes");          // searchable while the workflow runs
//!     Ok(format!("Welcome, {name}."))
//! }
//!
//! # async fn demo() -> Result<(), hotmesh_client::Error> {
//! let md = MeshData::new(Connection::new("postgres://postgres@127.0.0.1:28815/hotmesh")).await?;
//! md.create_search_index("user", &SearchSchema::new().tag("id").text("first").tag("active").numeric("created", true)).await?;
//! md.connect("user", user).await?;
//! let hi: String = md
//!     .exec("user", "James", ExecOptions::new().id("jim123").ttl_infinity().search("first", "James").search("created", 1700000000))
//!     .await?;
//! let fields = md.get("user", "jim123", &["first", "active"]).await?;
//! let active = md.find_where("user", FindOptions::new().when(Condition::eq("active", "yes")).limit(0, 100)).await?;
//! # Ok(()) }
//! ```

use crate::meshflow::{Connection, Context, RunningWorker, StartOptions, Worker, WorkflowError};
use crate::{Error, HotMesh};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The default namespace (the MeshFlow graph's app id for records).
pub const NAMESPACE: &str = "meshdata";

/// The SQL name of `entity`'s records view, quoted for a statement's text:
/// `hotmesh_records."user"`. [`MeshData::create_search_index`] creates the view: a row per
/// record, columns `id`, `status`, `created_at`, `updated_at`, `completed_at`, `search`,
/// then one per declared field (NUMERIC fields as numbers). Query it with
/// [`MeshData::query`], or with `sqlx` on [`MeshData::hotmesh`]'s pool.
///
/// ```
/// assert_eq!(hotmesh_client::meshdata::records_view("user"), r#"hotmesh_records."user""#);
/// assert_eq!(hotmesh_client::meshdata::records_view(r#"a"b"#), r#"hotmesh_records."a""b""#);
/// ```
pub fn records_view(entity: &str) -> String {
    format!("hotmesh_records.\"{}\"", entity.replace('"', "\"\""))
}

/// A field's type in a search index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FieldType {
    /// Exact values: `=`, `!=`, `in`, ranges, `prefix` (a btree index on the value).
    Tag,
    /// Words: `match` (full-text, a GIN index), and `=`/`!=` on the whole value.
    Text,
    /// Numbers: comparisons and ranges (a btree index on the value as a number).
    Numeric,
}

/// The fields of an entity's search index (the original's schema, `createSearchIndex`).
///
/// ```
/// use hotmesh_client::meshdata::SearchSchema;
/// let s = SearchSchema::new().tag("id").text("first").tag("active").numeric("created", true);
/// assert_eq!(s.to_json()["created"]["sortable"], true);
/// ```
#[derive(Clone, Debug, Default)]
pub struct SearchSchema {
    fields: Vec<(String, FieldType, bool)>,
}

impl SearchSchema {
    /// No fields yet.
    pub fn new() -> SearchSchema {
        SearchSchema::default()
    }

    /// Adds a field of type `kind`.
    pub fn field(
        mut self,
        name: impl Into<String>,
        kind: FieldType,
        sortable: bool,
    ) -> SearchSchema {
        self.fields.push((name.into(), kind, sortable));
        self
    }

    /// Adds a TAG field (sortable).
    pub fn tag(self, name: impl Into<String>) -> SearchSchema {
        self.field(name, FieldType::Tag, true)
    }

    /// Adds a TEXT field.
    pub fn text(self, name: impl Into<String>) -> SearchSchema {
        self.field(name, FieldType::Text, false)
    }

    /// Adds a NUMERIC field, sortable or not.
    pub fn numeric(self, name: impl Into<String>, sortable: bool) -> SearchSchema {
        self.field(name, FieldType::Numeric, sortable)
    }

    /// As `hotmesh.create_search_index` takes it.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (name, kind, sortable) in &self.fields {
            m.insert(name.clone(), json!({"type": kind, "sortable": sortable}));
        }
        Value::Object(m)
    }
}

/// One condition of a [`FindOptions`] query.
///
/// ```
/// use hotmesh_client::meshdata::Condition;
/// let c = Condition::range("created", 10, 20);
/// assert_eq!(c.to_json()["is"], "[]");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    field: String,
    is: &'static str,
    value: Value,
}

impl Condition {
    fn new(field: &str, is: &'static str, value: Value) -> Condition {
        Condition {
            field: field.to_string(),
            is,
            value,
        }
    }

    /// `field = value`.
    pub fn eq(field: &str, value: impl Into<Value>) -> Condition {
        Condition::new(field, "=", value.into())
    }

    /// `field != value`.
    pub fn ne(field: &str, value: impl Into<Value>) -> Condition {
        Condition::new(field, "!=", value.into())
    }

    /// `field < value`.
    pub fn lt(field: &str, value: impl Into<Value>) -> Condition {
        Condition::new(field, "<", value.into())
    }

    /// `field <= value`.
    pub fn le(field: &str, value: impl Into<Value>) -> Condition {
        Condition::new(field, "<=", value.into())
    }

    /// `field > value`.
    pub fn gt(field: &str, value: impl Into<Value>) -> Condition {
        Condition::new(field, ">", value.into())
    }

    /// `field >= value`.
    pub fn ge(field: &str, value: impl Into<Value>) -> Condition {
        Condition::new(field, ">=", value.into())
    }

    /// `low <= field <= high`.
    pub fn range(field: &str, low: impl Into<Value>, high: impl Into<Value>) -> Condition {
        Condition::new(field, "[]", json!([low.into(), high.into()]))
    }

    /// `field` is one of `values`.
    pub fn one_of(field: &str, values: Vec<Value>) -> Condition {
        Condition::new(field, "in", Value::Array(values))
    }

    /// A TAG field starting with `prefix`.
    pub fn prefix(field: &str, prefix: &str) -> Condition {
        Condition::new(field, "prefix", prefix.into())
    }

    /// A TEXT field containing every word of `words`.
    pub fn matches(field: &str, words: &str) -> Condition {
        Condition::new(field, "match", words.into())
    }

    /// As `hotmesh.find_where` takes it.
    pub fn to_json(&self) -> Value {
        json!({"field": self.field, "is": self.is, "value": self.value})
    }
}

/// A [`MeshData::find_where`] query: conditions (all must hold), paging, order and the
/// fields to return (the original's `{query, limit: {start, size}, return}`).
#[derive(Clone, Debug, Default)]
pub struct FindOptions {
    conditions: Vec<Condition>,
    limit: Option<(u64, u64)>,
    sort: Option<(String, bool)>,
    fields: Option<Vec<String>>,
}

impl FindOptions {
    /// Every record (the newest first, 100 at most).
    pub fn new() -> FindOptions {
        FindOptions::default()
    }

    /// Adds a condition.
    pub fn when(mut self, c: Condition) -> FindOptions {
        self.conditions.push(c);
        self
    }

    /// Records `start` to `start + size` (size at most 10,000).
    pub fn limit(mut self, start: u64, size: u64) -> FindOptions {
        self.limit = Some((start, size));
        self
    }

    /// Orders by a sortable field.
    pub fn sort(mut self, field: &str, ascending: bool) -> FindOptions {
        self.sort = Some((field.to_string(), ascending));
        self
    }

    /// Returns only these fields.
    pub fn fields(mut self, fields: &[&str]) -> FindOptions {
        self.fields = Some(fields.iter().map(|f| f.to_string()).collect());
        self
    }

    fn to_json(&self) -> (Value, Value) {
        let q = Value::Array(self.conditions.iter().map(Condition::to_json).collect());
        let mut o = Map::new();
        if let Some((start, size)) = self.limit {
            o.insert("limit".into(), json!({"start": start, "size": size}));
        }
        if let Some((f, asc)) = &self.sort {
            o.insert(
                "sort".into(),
                json!({"field": f, "order": if *asc { "asc" } else { "desc" }}),
            );
        }
        if let Some(r) = &self.fields {
            o.insert("return".into(), json!(r));
        }
        (q, Value::Object(o))
    }
}

/// Options of [`MeshData::exec`]: the record's id, its ttl and its first search fields.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ExecOptions {
    /// The record's id (none: a new guid).
    pub id: Option<String>,
    /// How long the record is kept after its workflow ends (none: the engine's default).
    pub ttl: Option<Duration>,
    /// Kept until removed (the original's ttl "infinity").
    pub forever: bool,
    /// Search fields it starts with.
    pub search: Map<String, Value>,
    /// How long to wait for the workflow's result (default 30 s).
    pub timeout: Option<Duration>,
}

impl ExecOptions {
    /// No id, default ttl.
    pub fn new() -> ExecOptions {
        ExecOptions::default()
    }

    /// Sets the id.
    pub fn id(mut self, id: impl Into<String>) -> ExecOptions {
        self.id = Some(id.into());
        self
    }

    /// Keeps the record this long after its workflow ends.
    pub fn ttl(mut self, d: Duration) -> ExecOptions {
        self.ttl = Some(d);
        self
    }

    /// Keeps the record until it is removed.
    pub fn ttl_infinity(mut self) -> ExecOptions {
        self.forever = true;
        self
    }

    /// Adds a search field.
    pub fn search(mut self, field: &str, value: impl Into<Value>) -> ExecOptions {
        self.search.insert(field.to_string(), value.into());
        self
    }

    /// Sets how long to wait for the result.
    pub fn timeout(mut self, d: Duration) -> ExecOptions {
        self.timeout = Some(d);
        self
    }
}

/// MeshData on one database and namespace. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MeshData {
    hm: HotMesh,
    conn: Connection,
    client: crate::meshflow::Client,
    workers: Arc<Mutex<Vec<RunningWorker>>>,
}

impl MeshData {
    /// Connects (namespace `meshdata` unless the connection names another), and deploys
    /// the MeshFlow graph there if the database lacks it.
    pub async fn new(connection: Connection) -> Result<MeshData, Error> {
        let mut conn = connection;
        conn.namespace.get_or_insert_with(|| NAMESPACE.into());
        let client = crate::meshflow::Client::new(conn.clone()).await?;
        Ok(MeshData {
            hm: client.hotmesh().clone(),
            conn,
            client,
            workers: Arc::default(),
        })
    }

    /// Declares `entity`'s search fields and builds their indexes (idempotent: calling it
    /// at every start-up is fine). Returns each field with its type and index.
    pub async fn create_search_index(
        &self,
        entity: &str,
        schema: &SearchSchema,
    ) -> Result<Value, Error> {
        sqlx::query_scalar("SELECT hotmesh.create_search_index($1, $2)")
            .bind(entity)
            .bind(schema.to_json())
            .fetch_one(self.hm.pool())
            .await
            .map_err(Error::from_sqlx)
    }

    /// Links `target`, the workflow function that runs each record of `entity`, in this
    /// process (its task queue and workflow name are the entity).
    pub async fn connect<I, O, F, Fut>(&self, entity: &str, target: F) -> Result<(), Error>
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(Context, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, WorkflowError>> + Send + 'static,
    {
        let w = Worker::create(self.conn.clone(), entity)
            .workflow(entity, target)
            .run()
            .await?;
        self.workers.lock().unwrap().push(w);
        Ok(())
    }

    /// Creates record `options.id` of `entity` (runs its workflow with `args`) and waits
    /// for the workflow's result. A live record with that id: [`Error::Duplicate`].
    pub async fn exec<T: DeserializeOwned>(
        &self,
        entity: &str,
        args: impl Serialize,
        options: ExecOptions,
    ) -> Result<T, Error> {
        let mut o = StartOptions::new(entity, entity).args(args).entity(entity);
        if let Some(id) = &options.id {
            o = o.workflow_id(id.clone());
        }
        if let Some(t) = options.ttl {
            o = o.expire(t);
        }
        if options.forever {
            o = o.keep();
        }
        for (k, v) in options.search {
            o = o.search(k, v);
        }
        let timeout = options.timeout.unwrap_or(Duration::from_secs(30));
        self.client.workflow().execute(o, timeout).await
    }

    /// The search fields `fields` of record `id` (a missing field is null).
    pub async fn get(&self, _entity: &str, id: &str, fields: &[&str]) -> Result<Value, Error> {
        self.hm.get_query_state(id, fields).await
    }

    /// The records of `entity` that match: `(id, fields)` each.
    pub async fn find_where(
        &self,
        entity: &str,
        options: FindOptions,
    ) -> Result<Vec<(String, Value)>, Error> {
        let (q, o) = options.to_json();
        sqlx::query_as("SELECT id, fields FROM hotmesh.find_where($1, $2, $3)")
            .bind(entity)
            .bind(q)
            .bind(o)
            .fetch_all(self.hm.pool())
            .await
            .map_err(Error::from_sqlx)
    }

    /// Runs a query of your own over records: `statement` is one `SELECT` (no trailing
    /// `;`) over the entities' views ([`records_view`]) or `hotmesh.jobs`, with `$1`,
    /// `$2`, … bound to `params` in order, never pasted into the text. Each row comes back
    /// as one JSON object of its columns. A JSON string binds as `text`, an integer as
    /// `bigint`, another number as `double precision`, a boolean as `boolean`, null as a
    /// null `text`, an array or object as `jsonb`; cast in the statement where another
    /// type is wanted (`$1::numeric` keeps a NUMERIC field's index in use for a fraction).
    ///
    /// ```no_run
    /// # async fn demo(md: hotmesh_client::meshdata::MeshData) -> Result<(), hotmesh_client::Error> {
    /// use hotmesh_client::meshdata::records_view;
    /// let sql = format!("SELECT id, first FROM {} WHERE active = $1 AND created > $2 ORDER BY created", records_view("user"));
    /// let rows = md.query(&sql, &["yes".into(), 1700000000.into()]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn query(&self, statement: &str, params: &[Value]) -> Result<Vec<Value>, Error> {
        if statement.trim_end().ends_with(';') {
            return Err(Error::Invalid {
                name: "statement",
                problem: "one SELECT, without a trailing ;".into(),
            });
        }
        let wrapped = format!("SELECT pg_catalog.to_jsonb(r) FROM ({statement}\n) r");
        let mut q = sqlx::query_scalar::<_, Value>(&wrapped);
        for p in params {
            q = match p {
                Value::String(t) => q.bind(t.clone()),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => q.bind(i),
                    None => q.bind(n.as_f64()),
                },
                Value::Bool(b) => q.bind(*b),
                Value::Null => q.bind(None::<String>),
                other => q.bind(other.clone()),
            };
        }
        q.fetch_all(self.hm.pool()).await.map_err(Error::from_sqlx)
    }

    /// Removes record `id` (its workflow must have ended).
    pub async fn delete(&self, _entity: &str, id: &str) -> Result<bool, Error> {
        self.hm.scrub(id).await
    }

    /// Stops the workers [`connect`](Self::connect) started.
    pub async fn stop(&self) {
        let ws: Vec<RunningWorker> = std::mem::take(&mut *self.workers.lock().unwrap());
        for w in ws {
            w.stop().await;
        }
    }

    /// The engine client underneath (for raw SQL: `sqlx::query(..).bind(..)` on its pool).
    pub fn hotmesh(&self) -> &HotMesh {
        &self.hm
    }
}
