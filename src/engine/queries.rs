//! Reading jobs: status, state (the original's JobOutput), search fields, a raw dump,
//! and the activity timeline (export). These read expired jobs too, until the engine
//! worker deletes them after hotmesh.retention.

use super::db;
use crate::error::HotmeshError;
use pgrx::JsonB;
use serde_json::Value;

pub fn status(job_id: &str) -> Result<i64, HotmeshError> {
    db::one::<i32>(
        "SELECT status FROM hotmesh.jobs WHERE id = $1",
        &[job_id.into()],
    )
    .map(i64::from)
    .ok_or_else(|| HotmeshError::JobNotFound(job_id.into()))
}

/// `{metadata, data}`; metadata as the original's (jid, gid, app, vrs, tpc, jc, ju, js,
/// err, parent links …).
pub fn state(job_id: &str) -> Result<Value, HotmeshError> {
    db::one::<JsonB>(
        "SELECT jsonb_build_object(
                  'metadata', jsonb_strip_nulls(jsonb_build_object(
                      'jid', id, 'gid', gid, 'app', app_id, 'vrs', version, 'tpc', topic, 'key', key, 'entity', entity,
                      'jc', to_char(created_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS.MS'),
                      'ju', to_char(updated_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS.MS'),
                      'js', status, 'err', error::text, 'pj', parent_job_id, 'pg', parent_gid, 'pa', parent_activity,
                      'pd', parent_dad, 'px', CASE WHEN severed THEN true END, 'expire', expire_seconds)),
                  'data', data)
           FROM hotmesh.jobs WHERE id = $1",
        &[job_id.into()],
    )
    .map(|j| j.0)
    .ok_or_else(|| HotmeshError::StateNotFound(job_id.into()))
}

/// The job's search fields named in `fields` (a missing one is absent).
pub fn query_state(job_id: &str, fields: Vec<String>) -> Result<Value, HotmeshError> {
    db::one::<JsonB>(
        "SELECT coalesce(jsonb_object_agg(f, search -> f) FILTER (WHERE search ? f), '{}')
           FROM hotmesh.jobs, unnest($2::text[]) f WHERE id = $1 GROUP BY id",
        &[job_id.into(), fields.into()],
    )
    .map(|j| j.0)
    .ok_or_else(|| HotmeshError::JobNotFound(job_id.into()))
}

/// Everything stored about a job: its row, activity rows, and pending messages.
pub fn raw(job_id: &str) -> Result<Value, HotmeshError> {
    db::one::<JsonB>(
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
    .ok_or_else(|| HotmeshError::JobNotFound(job_id.into()))
}

/// The activity timeline: `{job_id, status, data, error, timeline: [{activity, type,
/// dimension, status, input, output, hook, error, created, updated, finished}]}`.
pub fn export(job_id: &str) -> Result<Value, HotmeshError> {
    db::one::<JsonB>(
        "SELECT jsonb_build_object(
                  'job_id', j.id, 'app_id', j.app_id, 'version', j.version, 'topic', j.topic, 'status', j.status,
                  'data', j.data, 'error', j.error, 'created_at', j.created_at, 'completed_at', j.completed_at,
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
    .ok_or_else(|| HotmeshError::JobNotFound(job_id.into()))
}

/// Deletes a job, its activity rows and its messages. False if there was none.
pub fn scrub(job_id: &str) -> bool {
    db::exec(
        "DELETE FROM hotmesh.worker_stream WHERE job_id = $1",
        &[job_id.into()],
    );
    db::exec(
        "DELETE FROM hotmesh.engine_stream WHERE job_id = $1",
        &[job_id.into()],
    );
    db::exec("DELETE FROM hotmesh.jobs WHERE id = $1", &[job_id.into()]) == 1
}

/// Whether the job ended (completed, failed or interrupted): its state then.
pub fn ended(job_id: &str) -> Result<Option<Value>, HotmeshError> {
    match db::one::<bool>(
        "SELECT completed_at IS NOT NULL FROM hotmesh.jobs WHERE id = $1",
        &[job_id.into()],
    ) {
        None => Err(HotmeshError::JobNotFound(job_id.into())),
        Some(false) => Ok(None),
        Some(true) => state(job_id).map(Some),
    }
}
