//! Reading jobs: status, state (the original's JobOutput), search fields, a raw dump,
//! and the activity timeline (export). These read expired jobs too, until the engine
//! worker deletes them after hotmesh.retention.

use super::db;
use crate::error::HotmeshError;
use hotmesh_engine::error::EngineError;
use serde_json::Value;

pub fn status(job_id: &str) -> Result<i64, HotmeshError> {
    db::one::<i32>(
        "SELECT status FROM hotmesh.jobs WHERE id = $1",
        &[job_id.into()],
    )
    .map(i64::from)
    .ok_or_else(|| HotmeshError::from(EngineError::JobNotFound(job_id.into())))
}

/// `{metadata, data}`; metadata as the original's (jid, gid, app, vrs, tpc, jc, ju, js,
/// err, parent links …).
pub fn state(job_id: &str) -> Result<Value, HotmeshError> {
    super::state::job_output(job_id).ok_or_else(|| HotmeshError::StateNotFound(job_id.into()))
}

/// The fields named in `fields` (see hotmesh.get_query_state): plain names are search
/// fields, quoted ones raw names (`:` the status, `_x` a search field, `-x` a marker,
/// else job data). Keyed by the name without quotes; a missing field is null.
pub fn query_state(job_id: &str, fields: Vec<String>) -> Result<Value, HotmeshError> {
    let row = db::query(
        "SELECT status, search, marks, data FROM hotmesh.jobs WHERE id = $1",
        &[job_id.into()],
        |t| {
            if t.is_empty() {
                return Ok(None);
            }
            let r = t.first();
            let obj = |v: Option<crate::json::Json>| v.map(|j| j.0).unwrap_or(Value::Null);
            Ok(Some((
                r.get::<i32>(1)?.unwrap_or(0),
                obj(r.get::<crate::json::Json>(2)?),
                obj(r.get::<crate::json::Json>(3)?),
                obj(r.get::<crate::json::Json>(4)?),
            )))
        },
    );
    let Some((status, search, marks, data)) = row else {
        return Err(EngineError::JobNotFound(job_id.into()).into());
    };
    let mut out = serde_json::Map::new();
    for f in fields {
        let quoted = f.len() >= 2 && f.starts_with('"') && f.ends_with('"');
        let (name, v) = if quoted {
            let raw = &f[1..f.len() - 1];
            let v = match raw {
                ":" => Value::String(status.to_string()),
                r if r.starts_with('_') => search[&r[1..]].clone(),
                r if r.starts_with('-') => marks[r].clone(),
                r => data[r].clone(),
            };
            (raw.to_string(), v)
        } else {
            let v = search[f.as_str()].clone();
            (f, v)
        };
        out.insert(name, v);
    }
    Ok(Value::Object(out))
}

/// Everything stored about a job: its row, activity rows, and pending messages.
pub fn raw(job_id: &str) -> Result<Value, HotmeshError> {
    db::one::<crate::json::Json>(
        "SELECT jsonb_build_object(
                  'job', to_jsonb(j),
                  'activities', coalesce((SELECT jsonb_agg(to_jsonb(a) ORDER BY a.created_at, a.dad, a.activity_id)
                                            FROM hotmesh.activities a WHERE a.job_id = j.id), '[]'),
                  'worker_messages', coalesce((SELECT jsonb_agg(to_jsonb(w) ORDER BY w.id) FROM hotmesh.worker_stream w WHERE w.job_id = j.id), '[]'),
                  'engine_messages', coalesce((SELECT jsonb_agg(to_jsonb(e) ORDER BY e.id) FROM hotmesh.engine_stream e WHERE e.job_id = j.id), '[]'),
                  'signal_hooks', coalesce((SELECT jsonb_agg(to_jsonb(h)) FROM hotmesh.signal_hooks h WHERE h.job_id = j.id), '[]'))
           FROM hotmesh.jobs j WHERE j.id = $1",
        &[job_id.into()],
    )
    .map(|j| j.0)
    .ok_or_else(|| HotmeshError::from(EngineError::JobNotFound(job_id.into())))
}

/// The activity timeline: `{job_id, status, data, error, marks, timeline: [{activity,
/// type, dimension, status, input, output, hook, error, created, updated, finished}]}`.
/// `marks` holds what a MeshFlow workflow recorded (its journal; docs/meshflow.md).
pub fn export(job_id: &str) -> Result<Value, HotmeshError> {
    db::one::<crate::json::Json>(
        "SELECT jsonb_build_object(
                  'job_id', j.id, 'app_id', j.app_id, 'version', j.version, 'topic', j.topic, 'status', j.status,
                  'data', j.data, 'error', j.error, 'created_at', j.created_at, 'completed_at', j.completed_at,
                  'marks', coalesce(j.marks, '{}'),
                  'timeline', coalesce((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                        'activity', a.activity_id, 'type', a.type, 'dimension', a.dad, 'status', a.status,
                        'input', a.input, 'output', a.output, 'hook', a.hook, 'error', a.error,
                        'created', a.created_at, 'updated', a.updated_at, 'finished', a.finished_at))
                        ORDER BY a.created_at, length(a.dad), a.dad, a.activity_id)
                      FROM hotmesh.activities a WHERE a.job_id = j.id), '[]'))
           FROM hotmesh.jobs j WHERE j.id = $1",
        &[job_id.into()],
    )
    .map(|j| j.0)
    .ok_or_else(|| HotmeshError::from(EngineError::JobNotFound(job_id.into())))
}

/// Deletes a job that has ended, its activity rows and its messages. False if there
/// was none; an error for a running job (its workers and timers would act on nothing).
pub fn scrub(job_id: &str) -> Result<bool, HotmeshError> {
    let status = db::one::<i32>(
        "SELECT status FROM hotmesh.jobs WHERE id = $1 FOR UPDATE",
        &[job_id.into()],
    );
    match status {
        None => return Ok(false),
        Some(s) if hotmesh_engine::status::running(s as i64) => {
            return Err(HotmeshError::JobRunning(job_id.into()))
        }
        Some(_) => {}
    }
    db::exec(
        "DELETE FROM hotmesh.worker_stream WHERE job_id = $1",
        &[job_id.into()],
    );
    db::exec(
        "DELETE FROM hotmesh.engine_stream WHERE job_id = $1",
        &[job_id.into()],
    );
    Ok(db::exec("DELETE FROM hotmesh.jobs WHERE id = $1", &[job_id.into()]) == 1)
}

/// Whether the job ended (completed, failed or interrupted): its state then.
pub fn ended(job_id: &str) -> Result<Option<Value>, HotmeshError> {
    match db::one::<bool>(
        "SELECT completed_at IS NOT NULL FROM hotmesh.jobs WHERE id = $1",
        &[job_id.into()],
    ) {
        None => Err(EngineError::JobNotFound(job_id.into()).into()),
        Some(false) => Ok(None),
        Some(true) => state(job_id).map(Some),
    }
}
