//! Job and activity state as the engine holds it during one transaction: loaded once
//! (the job row locked FOR UPDATE, which serializes every step of a job), changed in
//! memory, written back once by [`flush_job`] / [`flush_act`].

use super::db;
use hotmesh_engine::ids;
use hotmesh_manifest::CompiledApp;
use pgrx::JsonB;
use serde_json::{json, Map, Value};
use std::rc::Rc;

#[derive(Debug, Clone)]
pub struct Parent {
    pub job_id: String,
    pub gid: String,
    pub activity_id: String,
    pub dad: String,
}

pub struct Job {
    pub id: String,
    pub gid: String,
    pub app_id: String,
    pub version: String,
    pub topic: String,
    pub key: Option<String>,
    pub entity: Option<String>,
    pub status: i64,
    pub data: Map<String, Value>,
    pub search: Map<String, Value>,
    pub marks: Map<String, Value>,
    pub error: Option<Value>,
    pub parent: Option<Parent>,
    pub severed: bool,
    pub expire: Option<f64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub app: Rc<CompiledApp>,
    /// Set by completion: write completed_at.
    pub completed: bool,
    /// Set expired_at this many seconds from now.
    pub expire_in: Option<f64>,
    pub dirty: bool,
}

impl Job {
    /// `{metadata, data}` as the original's JobOutput.
    pub fn output(&self) -> Value {
        json!({"metadata": self.metadata(), "data": Value::Object(self.data.clone())})
    }

    pub fn metadata(&self) -> Value {
        let mut m = json!({
            "jid": self.id,
            "gid": self.gid,
            "app": self.app_id,
            "vrs": self.version,
            "tpc": self.topic,
            "jc": ids::compact_time(self.created_ms),
            "ju": ids::compact_time(self.updated_ms),
            "js": self.status,
        });
        if let Some(k) = &self.key {
            m["key"] = k.clone().into();
        }
        if let Some(e) = &self.entity {
            m["entity"] = e.clone().into();
        }
        if let Some(err) = &self.error {
            // a JSON string, as the original stores it
            m["err"] = err.to_string().into();
        }
        if let Some(p) = &self.parent {
            m["pj"] = p.job_id.clone().into();
            m["pg"] = p.gid.clone().into();
            m["pa"] = p.activity_id.clone().into();
            m["pd"] = p.dad.clone().into();
            if self.severed {
                m["px"] = true.into();
            }
        }
        if let Some(e) = self.expire {
            m["expire"] = e.into();
        }
        m
    }

    /// The graph this job runs.
    pub fn graph(&self) -> &hotmesh_manifest::manifest::Graph {
        self.app
            .graph_for(&self.topic)
            .unwrap_or(&self.app.graphs[0])
    }
}

/// Loads and locks a job. None when there is no such job or it is expired.
pub fn load_job(id: &str) -> Option<Job> {
    let row = db::query(
        "SELECT j.gid, j.app_id, j.version, j.topic, j.key, j.entity, j.status, j.data, j.search, j.marks, j.error,
                j.parent_job_id, j.parent_gid, j.parent_activity, j.parent_dad, j.severed, j.expire_seconds,
                (extract(epoch FROM j.created_at) * 1000)::int8, (extract(epoch FROM j.updated_at) * 1000)::int8, v.digest
           FROM hotmesh.jobs j
           JOIN hotmesh.app_versions v ON v.app_id = j.app_id AND v.version = j.version
          WHERE j.id = $1 AND (j.expired_at IS NULL OR j.expired_at > now())
            FOR UPDATE OF j",
        &[id.into()],
        |t| {
            if t.is_empty() {
                return Ok(None);
            }
            let r = t.first();
            let obj = |v: Option<JsonB>| match v.map(|j| j.0) {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            let parent = match (r.get::<String>(12)?, r.get::<String>(13)?, r.get::<String>(14)?, r.get::<String>(15)?) {
                (Some(job_id), Some(gid), Some(activity_id), Some(dad)) => Some(Parent { job_id, gid, activity_id, dad }),
                _ => None,
            };
            Ok(Some((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<String>(4)?.unwrap_or_default(),
                r.get::<String>(5)?,
                r.get::<String>(6)?,
                r.get::<i32>(7)?.unwrap_or(0) as i64,
                obj(r.get::<JsonB>(8)?),
                obj(r.get::<JsonB>(9)?),
                obj(r.get::<JsonB>(10)?),
                db::json(r.get::<JsonB>(11)?),
                parent,
                r.get::<bool>(16)?.unwrap_or(false),
                r.get::<f64>(17)?,
                (r.get::<i64>(18)?.unwrap_or(0), r.get::<i64>(19)?.unwrap_or(0)),
                r.get::<String>(20)?.unwrap_or_default(),
            )))
        },
    )?;
    let (
        gid,
        app_id,
        version,
        topic,
        key,
        entity,
        status,
        data,
        search,
        marks,
        error,
        parent,
        severed,
        expire,
        (created_ms, updated_ms),
        digest,
    ) = row;
    let app = super::apps::get(&app_id, &version, &digest);
    Some(Job {
        id: id.to_string(),
        gid,
        app_id,
        version,
        topic,
        key,
        entity,
        status,
        data,
        search,
        marks,
        error,
        parent,
        severed,
        expire,
        created_ms,
        updated_ms,
        app,
        completed: false,
        expire_in: None,
        dirty: false,
    })
}

/// Creates the job row. False when a live job has this id (an expired one is replaced).
pub fn insert_job(j: &Job) -> bool {
    if try_insert_job(j) {
        return true;
    }
    // the id is taken: by an expired job it may be used again (only then a second try)
    db::exec(
        "DELETE FROM hotmesh.jobs WHERE id = $1 AND expired_at <= now()",
        &[j.id.as_str().into()],
    ) == 1
        && try_insert_job(j)
}

fn try_insert_job(j: &Job) -> bool {
    let p = j.parent.as_ref();
    db::exec(
        "INSERT INTO hotmesh.jobs (id, gid, app_id, version, topic, key, entity, status, data, search, marks,
                                   parent_job_id, parent_gid, parent_activity, parent_dad, severed, expire_seconds)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (id) DO NOTHING",
        &[
            j.id.as_str().into(),
            j.gid.as_str().into(),
            j.app_id.as_str().into(),
            j.version.as_str().into(),
            j.topic.as_str().into(),
            j.key.clone().into(),
            j.entity.clone().into(),
            (j.status as i32).into(),
            JsonB(Value::Object(j.data.clone())).into(),
            JsonB(Value::Object(j.search.clone())).into(),
            JsonB(Value::Object(j.marks.clone())).into(),
            p.map(|p| p.job_id.clone()).into(),
            p.map(|p| p.gid.clone()).into(),
            p.map(|p| p.activity_id.clone()).into(),
            p.map(|p| p.dad.clone()).into(),
            j.severed.into(),
            j.expire.into(),
        ],
    ) == 1
}

/// Writes a changed job back.
pub fn flush_job(j: &Job) {
    db::exec(
        "UPDATE hotmesh.jobs
            SET status = $2, data = $3, search = $4, marks = $5, error = $6, entity = $7, updated_at = now(),
                completed_at = CASE WHEN $8 THEN coalesce(completed_at, now()) ELSE completed_at END,
                expired_at = CASE WHEN $9::float8 IS NOT NULL THEN now() + make_interval(secs => $9::float8) ELSE expired_at END
          WHERE id = $1",
        &[
            j.id.as_str().into(),
            (j.status.clamp(i32::MIN as i64, i32::MAX as i64) as i32).into(),
            JsonB(Value::Object(j.data.clone())).into(),
            JsonB(Value::Object(j.search.clone())).into(),
            JsonB(Value::Object(j.marks.clone())).into(),
            j.error.clone().map(JsonB).into(),
            j.entity.clone().into(),
            j.completed.into(),
            j.expire_in.into(),
        ],
    );
}

/// An activity's state in one dimension.
#[derive(Debug, Clone)]
pub struct Act {
    pub kind: &'static str,
    pub status: String,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub hook: Option<Value>,
    pub error: Option<Value>,
    pub wait_token: Option<String>,
    pub iterations: i32,
    /// Results taken so far; the children of the k-th go under dimension k.
    pub answers: i32,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub dirty: bool,
}

impl Act {
    pub fn new(kind: &'static str, now_ms: i64) -> Act {
        Act {
            kind,
            status: "waiting".into(),
            input: None,
            output: None,
            hook: None,
            error: None,
            wait_token: None,
            iterations: 0,
            answers: 0,
            created_ms: now_ms,
            updated_ms: now_ms,
            dirty: true,
        }
    }

    /// `{input: {data}, output: {data, metadata}, hook: {data}}`, what maps read.
    pub fn context(&self, aid: &str, dad: &str, subtype: Option<&str>) -> Value {
        let mut meta = json!({
            "aid": aid,
            "atp": self.kind,
            "dad": dad,
            "ac": ids::compact_time(self.created_ms),
            "au": ids::compact_time(self.updated_ms),
        });
        if let Some(s) = subtype {
            meta["stp"] = s.into();
        }
        if let Some(e) = &self.error {
            meta["err"] = e.to_string().into();
            meta["$error"] = e.clone();
        }
        let mut out = json!({"output": {"metadata": meta}});
        if let Some(d) = &self.output {
            out["output"]["data"] = d.clone();
        }
        if let Some(d) = &self.input {
            out["input"] = json!({ "data": d });
        }
        if let Some(d) = &self.hook {
            out["hook"] = json!({ "data": d });
        }
        out
    }
}

const STATUS_NAMES: [&str; 5] = ["waiting", "pending", "done", "error", "cancelled"];

fn kind_name(s: &str) -> &'static str {
    use hotmesh_manifest::manifest::ActivityKind as K;
    K::parse(s).map(K::name).unwrap_or("hook")
}

/// Loads the activity rows `(activity, dad)` of a job that exist.
pub fn load_acts(job_id: &str, keys: &[(String, String)]) -> Vec<(String, String, Act)> {
    let aids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
    let dads: Vec<String> = keys.iter().map(|k| k.1.clone()).collect();
    db::query(
        "SELECT a.activity_id, a.dad, a.type, a.status, a.input, a.output, a.hook, a.error, a.wait_token, a.iterations, a.answers,
                (extract(epoch FROM a.created_at) * 1000)::int8, (extract(epoch FROM a.updated_at) * 1000)::int8
           FROM unnest($2::text[], $3::text[]) k(aid, dad)
           JOIN hotmesh.activities a ON a.job_id = $1 AND a.activity_id = k.aid AND a.dad = k.dad",
        &[job_id.into(), aids.into(), dads.into()],
        |t| {
            let mut out = vec![];
            for r in t {
                let status = r.get::<String>(4)?.unwrap_or_default();
                out.push((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?.unwrap_or_default(),
                    Act {
                        kind: kind_name(&r.get::<String>(3)?.unwrap_or_default()),
                        status: STATUS_NAMES.iter().find(|s| **s == status).map(|s| s.to_string()).unwrap_or(status),
                        input: db::json(r.get::<JsonB>(5)?),
                        output: db::json(r.get::<JsonB>(6)?),
                        hook: db::json(r.get::<JsonB>(7)?),
                        error: db::json(r.get::<JsonB>(8)?),
                        wait_token: r.get::<String>(9)?,
                        iterations: r.get::<i32>(10)?.unwrap_or(0),
                        answers: r.get::<i32>(11)?.unwrap_or(0),
                        created_ms: r.get::<i64>(12)?.unwrap_or(0),
                        updated_ms: r.get::<i64>(13)?.unwrap_or(0),
                        dirty: false,
                    },
                ));
            }
            Ok(out)
        },
    )
}

/// Writes an activity row (insert or update).
pub fn flush_act(job_id: &str, aid: &str, dad: &str, a: &Act) {
    let finished = matches!(a.status.as_str(), "done" | "error" | "cancelled");
    db::exec(
        "INSERT INTO hotmesh.activities AS a (job_id, activity_id, dad, type, status, input, output, hook, error, wait_token, iterations, answers, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $13, CASE WHEN $12 THEN now() END)
         ON CONFLICT (job_id, activity_id, dad) DO UPDATE
            SET status = excluded.status, input = excluded.input, output = excluded.output, hook = excluded.hook,
                error = excluded.error, wait_token = excluded.wait_token, iterations = excluded.iterations, answers = excluded.answers,
                updated_at = now(), finished_at = coalesce(a.finished_at, excluded.finished_at)",
        &[
            job_id.into(),
            aid.into(),
            dad.into(),
            a.kind.into(),
            a.status.as_str().into(),
            a.input.clone().map(JsonB).into(),
            a.output.clone().map(JsonB).into(),
            a.hook.clone().map(JsonB).into(),
            a.error.clone().map(JsonB).into(),
            a.wait_token.clone().into(),
            a.iterations.into(),
            finished.into(),
            a.answers.into(),
        ],
    );
}
