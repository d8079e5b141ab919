//! Job and activity state as the engine holds it during one transaction: loaded once
//! (the job row locked FOR UPDATE, which serializes every step of a job), changed in
//! memory, written back once by [`flush_jobs`] / [`flush_acts`].

use super::db;
use super::ring::{self, Part};
use crate::error::Raise;
use crate::json::JsonOut;
use hotmesh_engine::error::EngineError;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

pub use hotmesh_engine::activity::{Act, ActKey, ActStatus};
pub use hotmesh_engine::job::{Job, Parent};
pub use hotmesh_engine::store::{JobKeys, NewMessage, TryLoad};

/// The job columns [`load_job_by`] reads, then the job's part; `{jobs}` is the table
/// read ([`ring::sql`]: a partition, or the parent).
macro_rules! job_select {
    () => {
        "SELECT j.id, j.gid, j.app_id, j.version, j.topic, j.key, j.entity, j.status, j.data, j.search, j.marks, j.error,
                j.parent_job_id, j.parent_gid, j.parent_activity, j.parent_dad, j.severed, j.expire_seconds,
                (extract(epoch FROM j.created_at) * 1000)::int8, (extract(epoch FROM j.updated_at) * 1000)::int8, j.part
           FROM {jobs} j"
    };
}
pub(crate) use job_select;

/// How many columns `job_select!` reads (a statement's further columns follow them).
pub const JOB_COLUMNS: usize = 21;

/// A job as loaded, with the part of the ring it is in.
pub type Placed = (Job, Part);

/// Loads and locks a job. None when there is no such job or it is expired.
pub fn load_job(id: &str) -> Option<Placed> {
    static SQL: &str = concat!(
        job_select!(),
        " WHERE j.id = $1 AND (j.expired_at IS NULL OR j.expired_at > now()) FOR UPDATE OF j"
    );
    ring::locate(|part| load_job_by(ring::sql(SQL, part), id.into()))
}

/// Loads and locks a job without waiting: the engine worker's router takes a job only
/// when nobody else holds it, so it never waits in a lock queue behind (or in a cycle
/// with) a caller's transaction.
pub fn try_load_job(id: &str) -> (TryLoad, Option<Part>) {
    static SQL: &str = concat!(
        job_select!(),
        " WHERE j.id = $1 AND (j.expired_at IS NULL OR j.expired_at > now()) FOR UPDATE OF j SKIP LOCKED"
    );
    // no second look through the parent: this one does not wait for a lock
    let job = load_job_by(ring::sql(SQL, Some(ring::guess())), id.into())
        .or_else(|| load_job_by(ring::sql(SQL, None), id.into()));
    match job {
        Some((j, part)) => (TryLoad::Loaded(Box::new(j)), Some(part)),
        None if live_job_exists(id) => (TryLoad::Busy, None),
        None => (TryLoad::Gone, None),
    }
}

/// The job of worker message `$1`, locked (None when the message or its job is gone):
/// a statement of its own, or the first part of the answer's (`stream::take`).
macro_rules! job_of_message {
    () => {
        concat!(
            $crate::store::state::job_select!(),
            " WHERE j.id = (SELECT job_id FROM hotmesh.worker_stream WHERE id = $1 AND ",
            $crate::store::stream::not_dead_lettered!(),
            ") AND (j.expired_at IS NULL OR j.expired_at > now()) FOR UPDATE OF j"
        )
    };
}
pub(crate) use job_of_message;

/// Loads and locks the job of worker message `message_id`. None when the message or its
/// job is gone.
pub fn load_job_of_message(message_id: i64) -> Option<Placed> {
    static SQL: &str = job_of_message!();
    ring::locate(|part| load_job_by(ring::sql(SQL, part), message_id.into()))
}

/// Reads the one job row `sql` selects (the columns of [`load_job`]).
fn load_job_by(sql: &'static str, arg: pgrx::datum::DatumWithOid) -> Option<Placed> {
    db::query(sql, &[arg], |t| {
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok(Some((read_job(&r)?, read_part(&r)?)))
    })
}

/// The part of the job in the current row (the last column of `job_select!`).
pub fn read_part(r: &pgrx::spi::SpiTupleTable) -> pgrx::spi::SpiResult<Part> {
    Ok(r.get::<i16>(JOB_COLUMNS)?.unwrap_or(0))
}

/// A job row's fields as `job_select!` reads them, before the app is attached.
struct Fields {
    id: String,
    gid: String,
    app_id: String,
    version: String,
    topic: String,
    key: Option<String>,
    entity: Option<String>,
    status: i64,
    data: Map<String, Value>,
    search: Map<String, Value>,
    marks: Map<String, Value>,
    error: Option<Value>,
    parent: Option<Parent>,
    severed: bool,
    expire: Option<f64>,
    created_ms: i64,
    updated_ms: i64,
}

impl Fields {
    /// The current row's first columns (those of `job_select!`).
    fn read(r: &pgrx::spi::SpiTupleTable) -> pgrx::spi::SpiResult<Fields> {
        let obj = |v: Option<crate::json::Json>| match v.map(|j| j.0) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let parent = match (
            r.get::<String>(13)?,
            r.get::<String>(14)?,
            r.get::<String>(15)?,
            r.get::<String>(16)?,
        ) {
            (Some(job_id), Some(gid), Some(activity_id), Some(dad)) => Some(Parent {
                job_id,
                gid,
                activity_id,
                dad,
            }),
            _ => None,
        };
        Ok(Fields {
            id: r.get::<String>(1)?.unwrap_or_default(),
            gid: r.get::<String>(2)?.unwrap_or_default(),
            app_id: r.get::<String>(3)?.unwrap_or_default(),
            version: r.get::<String>(4)?.unwrap_or_default(),
            topic: r.get::<String>(5)?.unwrap_or_default(),
            key: r.get::<String>(6)?,
            entity: r.get::<String>(7)?,
            status: r.get::<i32>(8)?.unwrap_or(0) as i64,
            data: obj(r.get::<crate::json::Json>(9)?),
            search: obj(r.get::<crate::json::Json>(10)?),
            marks: obj(r.get::<crate::json::Json>(11)?),
            error: db::json(r.get::<crate::json::Json>(12)?),
            parent,
            severed: r.get::<bool>(17)?.unwrap_or(false),
            expire: r.get::<f64>(18)?,
            created_ms: r.get::<i64>(19)?.unwrap_or(0),
            updated_ms: r.get::<i64>(20)?.unwrap_or(0),
        })
    }
}

/// The job in the current row's first columns (those of `job_select!`), with its app.
pub fn read_job(r: &pgrx::spi::SpiTupleTable) -> pgrx::spi::SpiResult<Job> {
    let f = Fields::read(r)?;
    Ok(Job {
        app: super::apps::get(&f.app_id, &f.version, None),
        id: f.id,
        gid: f.gid,
        app_id: f.app_id,
        version: f.version,
        topic: f.topic,
        key: f.key,
        entity: f.entity,
        status: f.status,
        data: f.data,
        search: f.search,
        marks: f.marks,
        error: f.error,
        parent: f.parent,
        severed: f.severed,
        expire: f.expire,
        created_ms: f.created_ms,
        updated_ms: f.updated_ms,
        completed: false,
        expire_in: None,
        dirty: false,
        fresh: false,
        chosen_id: true,
    })
}

/// A job's `{metadata, data}` (the original's JobOutput), expired or not, built by the
/// engine's one builder (`hotmesh_engine::job::Meta`) without loading its app. None:
/// no such row.
pub fn job_output(id: &str) -> Option<Value> {
    static SQL: &str = concat!(job_select!(), " WHERE j.id = $1");
    db::query(ring::sql(SQL, None), &[id.into()], |t| {
        if t.is_empty() {
            return Ok(None);
        }
        let f = Fields::read(&t.first())?;
        let meta = hotmesh_engine::job::Meta {
            id: &f.id,
            gid: &f.gid,
            app_id: &f.app_id,
            version: &f.version,
            topic: &f.topic,
            key: f.key.as_deref(),
            entity: f.entity.as_deref(),
            status: f.status,
            error: f.error.as_ref(),
            parent: f.parent.as_ref(),
            severed: f.severed,
            expire: f.expire,
            created_ms: f.created_ms,
            updated_ms: f.updated_ms,
        };
        Ok(Some(meta.output(f.data)))
    })
}

/// True when a live (not expired) job has this id.
pub fn live_job_exists(id: &str) -> bool {
    job_exists(id).0
}

/// Whether a live (not expired) job has this id, and whether an expired one does (a new
/// job with this id replaces it).
pub fn job_exists(id: &str) -> (bool, bool) {
    db::query(
        "SELECT coalesce(bool_or(expired_at IS NULL OR expired_at > now()), false), count(*) > 0
           FROM hotmesh.jobs WHERE id = $1",
        &[id.into()],
        |t| {
            let r = t.first();
            let live = r.get::<bool>(1)?.unwrap_or(false);
            Ok((live, r.get::<bool>(2)?.unwrap_or(false) && !live))
        },
    )
}

/// Creates the job row in `part`. False when a job with this id is in the way: a live
/// one, or an expired one in another part than the one it had to be replaced in. An
/// expired one is replaced (deleting it deletes its activity rows, by the jobs_cascade
/// trigger); whether a live one exists was checked before (`live_job_exists`, under the
/// ring lock that [`ring::part_for_new_job`] took).
fn insert_job(j: &Job, part: Part, replaces_expired: bool) -> bool {
    if replaces_expired {
        // the expired one may be in another part, where the insert would not meet it
        db::exec(DELETE_EXPIRED, &[j.id.as_str().into()]);
    }
    if try_insert_job(j, part) {
        return true;
    }
    // the id is taken in this part: by an expired job it may be used again (only then a
    // second try)
    db::exec(DELETE_EXPIRED, &[j.id.as_str().into()]) >= 1 && try_insert_job(j, part)
}

/// The expired job with id `$1`, deleted. "Expired" said as a CASE, so that the planner
/// cannot match it to the partial index on `expired_at` (`jobs_expired`): planned on an
/// empty part, that index's range costs the same as the primary key's lookup, and with
/// the retention's millions of expired jobs kept it would read them all.
static DELETE_EXPIRED: &str =
    "DELETE FROM hotmesh.jobs WHERE id = $1 AND CASE WHEN expired_at <= now() THEN true ELSE false END";

/// A job's insert, without a conflict clause.
macro_rules! job_insert {
    () => {
        "INSERT INTO {jobs} (id, gid, app_id, version, topic, key, entity, status, data, search, marks, error,
                                   parent_job_id, parent_gid, parent_activity, parent_dad, severed, expire_seconds,
                                   completed_at, expired_at, part)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                 CASE WHEN $19 THEN now() END,
                 CASE WHEN $20::float8 IS NOT NULL THEN now() + make_interval(secs => $20::float8) END, $21)"
    };
}

/// Inserts the job row; false when a row with its id is in `part` already (only a
/// chosen id looks: a generated one is new).
fn try_insert_job(j: &Job, part: Part) -> bool {
    static LOOKING: &str = concat!(job_insert!(), " ON CONFLICT (id, part) DO NOTHING");
    static NEW: &str = job_insert!();
    let sql = if j.chosen_id { LOOKING } else { NEW };
    let p = j.parent.as_ref();
    db::exec(
        ring::sql(sql, Some(part)),
        &[
            j.id.as_str().into(),
            j.gid.as_str().into(),
            j.app_id.as_str().into(),
            j.version.as_str().into(),
            j.topic.as_str().into(),
            j.key.clone().into(),
            j.entity.clone().into(),
            status_i32(j.status).into(),
            storable_map("the job's data", &j.data).into(),
            storable_map("the job's search fields", &j.search).into(),
            JsonOut(&j.marks).into(),
            j.error.as_ref().map(JsonOut).into(),
            p.map(|p| p.job_id.clone()).into(),
            p.map(|p| p.gid.clone()).into(),
            p.map(|p| p.activity_id.clone()).into(),
            p.map(|p| p.dad.clone()).into(),
            j.severed.into(),
            j.expire.into(),
            j.completed.into(),
            j.expire_in.into(),
            part.into(),
        ],
    ) == 1
}

/// `v` as jsonb to store, or an ERROR when it nests too deep to be read back (a mapping
/// can nest a value inside itself, one level per cycle): the step fails, cleanly, instead
/// of every later step that would read it.
fn storable<'a>(what: &str, v: &'a Value) -> JsonOut<'a, Value> {
    if hotmesh_engine::limits::json_too_deep(v, MAX_STORED_DEPTH) {
        too_deep(what)
    }
    JsonOut(v)
}

/// [`storable`] for an object's fields (a job's data and search fields).
fn storable_map<'a>(what: &str, m: &'a Map<String, Value>) -> JsonOut<'a, Map<String, Value>> {
    // the object is the first level: its fields may nest one level less
    if m.values()
        .any(|v| hotmesh_engine::limits::json_too_deep(v, MAX_STORED_DEPTH - 1))
    {
        too_deep(what)
    }
    JsonOut(m)
}

fn too_deep(what: &str) -> ! {
    crate::error::HotmeshError::TooDeep {
        what: what.into(),
        max: MAX_STORED_DEPTH,
    }
    .raise()
}

/// How deep stored JSON may nest: under what serde_json reads back
/// ([`hotmesh_engine::limits::MAX_JSON_DEPTH`]), with room for the few levels a row adds
/// around a value when the engine reads it.
const MAX_STORED_DEPTH: usize = 120;

fn status_i32(s: i64) -> i32 {
    s.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// Writes changed jobs back: a fresh job is inserted (with its state so far: one write,
/// not an insert and an update), a loaded one updated. The updates go in one statement
/// per part of the ring (almost always one): an answer batch changes a job per answer,
/// and a statement each was a tenth of an answer's time. One job alone takes a statement
/// without arrays (cheaper than arrays of one).
///
/// `places` holds each loaded job's part; a fresh job's part is chosen here and added.
/// `expired` holds the ids of fresh jobs that replace an expired job of the same id.
/// `inserted` gets the ids of the jobs inserted: none of their activity rows is in a
/// table yet (an expired job's went with it, by the jobs_cascade trigger).
pub fn flush_jobs(
    jobs: &mut [&mut Job],
    places: &mut HashMap<String, Part>,
    expired: &mut HashSet<String>,
    inserted: &mut HashSet<String>,
) {
    let mut changed: Vec<(Part, &Job)> = vec![];
    for j in jobs.iter_mut() {
        if j.fresh {
            let part = ring::part_for_new_job();
            if !insert_job(j, part, expired.remove(&j.id)) {
                // a job with this id started since start_in looked (a race of two pubs)
                EngineError::DuplicateJob(j.id.clone()).raise();
            }
            places.insert(j.id.clone(), part);
            inserted.insert(j.id.clone());
            j.fresh = false;
            continue;
        }
        let part = places
            .get(&j.id)
            .copied()
            .unwrap_or_else(|| ring::part_of(&j.id));
        changed.push((part, &**j));
    }
    let mut parts: Vec<Part> = changed.iter().map(|(p, _)| *p).collect();
    parts.sort_unstable();
    parts.dedup();
    for part in parts {
        let of_part: Vec<&Job> = changed
            .iter()
            .filter(|(p, _)| *p == part)
            .map(|(_, j)| *j)
            .collect();
        match of_part.as_slice() {
            [j] => update_job(j, part),
            many => update_jobs(many, part),
        }
    }
}

/// The columns a job's update sets, from its values as `v`.
macro_rules! job_update_set {
    () => {
        "status = v.status, data = v.data, search = v.search, marks = v.marks, error = v.error, entity = v.entity,
         updated_at = now(),
         completed_at = CASE WHEN v.completed THEN coalesce(completed_at, now()) ELSE completed_at END,
         expired_at = CASE WHEN v.expire_in IS NOT NULL THEN now() + make_interval(secs => v.expire_in) ELSE expired_at END"
    };
}

fn update_job(j: &Job, part: Part) {
    static SQL: &str = concat!(
        "UPDATE {jobs} SET ",
        job_update_set!(),
        " FROM (SELECT $2::int4 AS status, $3::jsonb AS data, $4::jsonb AS search, $5::jsonb AS marks, $6::jsonb AS error,
                       $7::text AS entity, $8::bool AS completed, $9::float8 AS expire_in) v
          WHERE id = $1"
    );
    db::exec(
        ring::sql(SQL, Some(part)),
        &[
            j.id.as_str().into(),
            status_i32(j.status).into(),
            storable_map("the job's data", &j.data).into(),
            storable_map("the job's search fields", &j.search).into(),
            JsonOut(&j.marks).into(),
            j.error.as_ref().map(JsonOut).into(),
            j.entity.clone().into(),
            j.completed.into(),
            j.expire_in.into(),
        ],
    );
}

/// Jobs of one part updated in one statement: each row of the arrays finds its job by
/// the primary key ([`db::query_probes`]).
fn update_jobs(jobs: &[&Job], part: Part) {
    static SQL: &str = concat!(
        "UPDATE {jobs} SET ",
        job_update_set!(),
        " FROM (SELECT unnest($1::text[]) AS id, unnest($2::int4[]) AS status, unnest($3::jsonb[]) AS data,
                       unnest($4::jsonb[]) AS search, unnest($5::jsonb[]) AS marks, unnest($6::jsonb[]) AS error,
                       unnest($7::text[]) AS entity, unnest($8::bool[]) AS completed, unnest($9::float8[]) AS expire_in) v
          WHERE {jobs}.id = v.id"
    );
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    let statuses: Vec<i32> = jobs.iter().map(|j| status_i32(j.status)).collect();
    let data: Vec<JsonOut<Map<String, Value>>> = jobs
        .iter()
        .map(|j| storable_map("the job's data", &j.data))
        .collect();
    let search: Vec<JsonOut<Map<String, Value>>> = jobs
        .iter()
        .map(|j| storable_map("the job's search fields", &j.search))
        .collect();
    let marks: Vec<JsonOut<Map<String, Value>>> = jobs.iter().map(|j| JsonOut(&j.marks)).collect();
    let errors: Vec<Option<JsonOut<Value>>> =
        jobs.iter().map(|j| j.error.as_ref().map(JsonOut)).collect();
    let entities: Vec<Option<String>> = jobs.iter().map(|j| j.entity.clone()).collect();
    let completed: Vec<bool> = jobs.iter().map(|j| j.completed).collect();
    let expire_in: Vec<Option<f64>> = jobs.iter().map(|j| j.expire_in).collect();
    db::query_probes(
        ring::sql(SQL, Some(part)),
        &[
            ids.into(),
            statuses.into(),
            data.into(),
            search.into(),
            marks.into(),
            errors.into(),
            entities.into(),
            completed.into(),
            expire_in.into(),
        ],
        |t| Ok(t.len()),
    );
}

/// Writes worker messages, all in one statement; returns each one's `(job, activity,
/// dimension, id)`.
pub fn insert_messages(messages: Vec<NewMessage>) -> Vec<(String, String, String, i64)> {
    match messages.len() {
        0 => return vec![],
        // a start or a single answer: the plain statement (cheaper than arrays of one)
        1 => {
            let m = &messages[0];
            let id = db::one::<i64>(
                "INSERT INTO hotmesh.worker_stream (topic, app_id, job_id, gid, activity_id, dad, data, max_attempts,
                                                    backoff_coefficient, maximum_interval, initial_interval, retry_codes)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
                &[
                    m.topic.as_str().into(),
                    m.app_id.as_str().into(),
                    m.job_id.as_str().into(),
                    m.gid.as_str().into(),
                    m.activity_id.as_str().into(),
                    m.dad.as_str().into(),
                    JsonOut(&m.data).into(),
                    m.policy.max_attempts.into(),
                    m.policy.backoff_coefficient.into(),
                    m.policy.maximum_interval.into(),
                    m.policy.initial_interval.into(),
                    m.policy.codes.as_ref().map(JsonOut).into(),
                ],
            )
            .unwrap_or(0);
            return vec![(m.job_id.clone(), m.activity_id.clone(), m.dad.clone(), id)];
        }
        _ => {}
    }
    let text =
        |f: &dyn Fn(&NewMessage) -> String| -> Vec<String> { messages.iter().map(f).collect() };
    let floats = |f: &dyn Fn(&NewMessage) -> f64| -> Vec<f64> { messages.iter().map(f).collect() };
    let data: Vec<JsonOut<Value>> = messages.iter().map(|m| JsonOut(&m.data)).collect();
    let attempts: Vec<i32> = messages.iter().map(|m| m.policy.max_attempts).collect();
    let codes: Vec<Option<JsonOut<Map<String, Value>>>> = messages
        .iter()
        .map(|m| m.policy.codes.as_ref().map(JsonOut))
        .collect();
    db::query(
        // unnested in the target list (a ProjectSet, no tuplestore), in the order given
        "INSERT INTO hotmesh.worker_stream (topic, app_id, job_id, gid, activity_id, dad, data, max_attempts,
                                            backoff_coefficient, maximum_interval, initial_interval, retry_codes)
         SELECT unnest($1::text[]), unnest($2::text[]), unnest($3::text[]), unnest($4::text[]), unnest($5::text[]),
                unnest($6::text[]), unnest($7::jsonb[]), unnest($8::int4[]), unnest($9::float8[]), unnest($10::float8[]),
                unnest($11::float8[]), unnest($12::jsonb[])
         RETURNING job_id, activity_id, dad, id",
        &[
            text(&|m| m.topic.clone()).into(),
            text(&|m| m.app_id.clone()).into(),
            text(&|m| m.job_id.clone()).into(),
            text(&|m| m.gid.clone()).into(),
            text(&|m| m.activity_id.clone()).into(),
            text(&|m| m.dad.clone()).into(),
            data.into(),
            attempts.into(),
            floats(&|m| m.policy.backoff_coefficient).into(),
            floats(&|m| m.policy.maximum_interval).into(),
            floats(&|m| m.policy.initial_interval).into(),
            codes.into(),
        ],
        |t| {
            let mut ids = Vec::with_capacity(t.len());
            for r in t {
                ids.push((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?.unwrap_or_default(),
                    r.get::<String>(3)?.unwrap_or_default(),
                    r.get::<i64>(4)?.unwrap_or(0),
                ));
            }
            Ok(ids)
        },
    )
}

fn kind_name(s: &str) -> &'static str {
    use hotmesh_manifest::model::ActivityKind as K;
    K::parse(s).map(K::name).unwrap_or("hook")
}

/// The activity columns [`read_act`] reads, from `a`.
macro_rules! act_columns {
    () => {
        "a.activity_id, a.dad, a.type, a.status, a.input, a.output, a.hook, a.error, a.wait_token, a.iterations, a.answers,
         (extract(epoch FROM a.created_at) * 1000)::int8, (extract(epoch FROM a.updated_at) * 1000)::int8"
    };
}

/// Loads the activity rows `(activity, dad)` of a job that exist; `part` is the job's
/// (None: not known, the statement reads through the parent).
pub fn load_acts(
    job_id: &str,
    part: Option<Part>,
    keys: &[(String, String)],
) -> Vec<(String, String, Act)> {
    static SQL: &str = concat!(
        "SELECT ",
        act_columns!(),
        " FROM {acts} a
          WHERE a.job_id = $1 AND a.activity_id = ANY ($2::text[]) AND a.dad = ANY ($3::text[])"
    );
    let aids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
    let dads: Vec<String> = keys.iter().map(|k| k.1.clone()).collect();
    db::query_generic(
        ring::sql(SQL, part),
        &[job_id.into(), aids.into(), dads.into()],
        |t| {
            let mut out = vec![];
            for r in t {
                let (aid, dad, act) = read_act(&r, 0)?;
                // the query matches each id with each dad: keep the pairs asked for
                if keys.iter().any(|(a, d)| *a == aid && *d == dad) {
                    out.push((aid, dad, act));
                }
            }
            Ok(out)
        },
    )
}

/// Loads the activity rows of several jobs of one part in one statement: each
/// `(job, activity, dad)` asked for finds its row by the primary key. Returns those that
/// exist, with their job.
pub fn load_acts_of_jobs(part: Part, wanted: &[JobKeys]) -> Vec<(String, String, String, Act)> {
    static SQL: &str = concat!(
        "SELECT k.job_id, ",
        act_columns!(),
        " FROM (SELECT unnest($1::text[]) AS job_id, unnest($2::text[]) AS activity_id, unnest($3::text[]) AS dad) k
          JOIN {acts} a ON a.job_id = k.job_id AND a.activity_id = k.activity_id AND a.dad = k.dad"
    );
    let pairs = wanted
        .iter()
        .flat_map(|(job, keys)| keys.iter().map(move |(a, d)| (job, a, d)));
    let jobs: Vec<String> = pairs.clone().map(|(j, _, _)| j.clone()).collect();
    let aids: Vec<String> = pairs.clone().map(|(_, a, _)| a.clone()).collect();
    let dads: Vec<String> = pairs.map(|(_, _, d)| d.clone()).collect();
    db::query_probes(
        ring::sql(SQL, Some(part)),
        &[jobs.into(), aids.into(), dads.into()],
        |t| {
            let mut out = vec![];
            for r in t {
                let job = r.get::<String>(1)?.unwrap_or_default();
                let (aid, dad, act) = read_act(&r, 1)?;
                out.push((job, aid, dad, act));
            }
            Ok(out)
        },
    )
}

/// An activity row in the current row's columns after the first `at` (those of
/// `act_columns!`): its activity, dad and state.
fn read_act(
    r: &pgrx::spi::SpiHeapTupleData,
    at: usize,
) -> pgrx::spi::SpiResult<(String, String, Act)> {
    let text = |i: usize| -> pgrx::spi::SpiResult<String> {
        Ok(r.get::<String>(at + i)?.unwrap_or_default())
    };
    Ok((
        text(1)?,
        text(2)?,
        Act {
            kind: kind_name(&text(3)?),
            status: ActStatus::parse(&text(4)?),
            input: db::json(r.get::<crate::json::Json>(at + 5)?),
            output: db::json(r.get::<crate::json::Json>(at + 6)?),
            hook: db::json(r.get::<crate::json::Json>(at + 7)?),
            error: db::json(r.get::<crate::json::Json>(at + 8)?),
            wait_token: r.get::<String>(at + 9)?,
            iterations: r.get::<i32>(at + 10)?.unwrap_or(0),
            answers: r.get::<i32>(at + 11)?.unwrap_or(0),
            created_ms: r.get::<i64>(at + 12)?.unwrap_or(0),
            updated_ms: r.get::<i64>(at + 13)?.unwrap_or(0),
            dirty: false,
        },
    ))
}

/// Writes activity rows (each inserted or updated), one statement per part of the ring
/// their jobs are in (`places`: almost always one). The rows of jobs in `new_jobs`
/// (inserted in this transaction: they have no rows in the table) are inserted without
/// the upsert's look for a row in the way, an index probe per row.
pub fn flush_acts(
    rows: &[(&ActKey, &Act)],
    places: &HashMap<String, Part>,
    new_jobs: &HashSet<String>,
) {
    let part_of = |job_id: &str| {
        places
            .get(job_id)
            .copied()
            .unwrap_or_else(|| ring::part_of(job_id))
    };
    // each row with the statement it goes in: its part, and whether it is new
    type Statement = (Part, bool);
    let placed: Vec<(Statement, (&ActKey, &Act))> = rows
        .iter()
        .map(|&(k, a)| ((part_of(&k.0), new_jobs.contains(&k.0)), (k, a)))
        .collect();
    let mut statements: Vec<Statement> = placed.iter().map(|(s, _)| *s).collect();
    statements.sort_unstable();
    statements.dedup();
    for (part, new) in statements {
        let of_statement: Vec<(&ActKey, &Act)> = placed
            .iter()
            .filter(|(s, _)| *s == (part, new))
            .map(|(_, r)| *r)
            .collect();
        write_acts(&of_statement, part, new);
    }
}

/// An insert of activity rows from arrays, without a conflict clause.
macro_rules! acts_insert {
    () => {
        "INSERT INTO {acts} AS a (job_id, activity_id, dad, type, status, input, output, hook, error, wait_token, iterations, answers, finished_at, part)
         SELECT r.job_id, r.activity_id, r.dad, r.type, r.status, r.input, r.output, r.hook, r.error, r.wait_token, r.iterations, r.answers,
                CASE WHEN r.finished THEN now() END, $14
           FROM (SELECT unnest($1::text[]) AS job_id, unnest($2::text[]) AS activity_id, unnest($3::text[]) AS dad,
                        unnest($4::text[]) AS type, unnest($5::text[]) AS status, unnest($6::jsonb[]) AS input,
                        unnest($7::jsonb[]) AS output, unnest($8::jsonb[]) AS hook, unnest($9::jsonb[]) AS error,
                        unnest($10::text[]) AS wait_token, unnest($11::int4[]) AS iterations, unnest($12::int4[]) AS answers,
                        unnest($13::bool[]) AS finished) r"
    };
}

/// Writes `rows` of one part: inserted, or with `new` false inserted or updated.
fn write_acts(rows: &[(&ActKey, &Act)], part: Part, new: bool) {
    static UPSERT: &str = concat!(
        acts_insert!(),
        "
         ON CONFLICT (job_id, activity_id, dad, part) DO UPDATE
            SET status = excluded.status, input = excluded.input, output = excluded.output, hook = excluded.hook,
                error = excluded.error, wait_token = excluded.wait_token, iterations = excluded.iterations, answers = excluded.answers,
                updated_at = now(), finished_at = coalesce(a.finished_at, excluded.finished_at)"
    );
    static INSERT: &str = acts_insert!();
    let sql = if new { INSERT } else { UPSERT };
    let col = |f: &dyn Fn(&Act) -> Option<&Value>| -> Vec<Option<JsonOut<Value>>> {
        rows.iter()
            .map(|(_, a)| f(a).map(|v| storable("an activity's state", v)))
            .collect()
    };
    let text = |f: &dyn Fn(&ActKey, &Act) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(|(k, a)| f(k, a)).collect()
    };
    let ints = |f: &dyn Fn(&Act) -> i32| -> Vec<i32> { rows.iter().map(|(_, a)| f(a)).collect() };
    let finished: Vec<bool> = rows.iter().map(|(_, a)| a.status.is_finished()).collect();
    // the arrays are unnested in the target list (a ProjectSet), not in FROM: a
    // function scan would build a tuplestore for every flush
    db::exec(
        ring::sql(sql, Some(part)),
        &[
            text(&|k, _| Some(k.0.clone())).into(),
            text(&|k, _| Some(k.1.clone())).into(),
            text(&|k, _| Some(k.2.clone())).into(),
            text(&|_, a| Some(a.kind.to_string())).into(),
            text(&|_, a| Some(a.status.name().to_string())).into(),
            col(&|a| a.input.as_ref()).into(),
            col(&|a| a.output.as_ref()).into(),
            col(&|a| a.hook.as_ref()).into(),
            col(&|a| a.error.as_ref()).into(),
            text(&|_, a| a.wait_token.clone()).into(),
            ints(&|a| a.iterations).into(),
            ints(&|a| a.answers).into(),
            finished.into(),
            part.into(),
        ],
    );
}
