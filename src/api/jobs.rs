//! Jobs: start one (`hotmesh.pub`), interrupt it, read it (status, state, search
//! fields, stats, a raw dump, the activity timeline), wait for it, and scrub it.
//!
//! Each function is SECURITY DEFINER with a fixed search_path (unless it reads nothing);
//! EXECUTE is revoked from PUBLIC (sql/finalize.sql), so the owner grants them role by
//! role (a worker role needs only dequeue/respond/retry/fail/heartbeat).

use pgrx::prelude::*;

#[pg_schema]
mod hotmesh {
    use super::super::bad;
    use crate::error::{HotmeshError, OrRaise, Raise};
    use crate::json::Json;
    use crate::store::grants::{self, Privilege};
    use crate::store::spi::with_engine;
    use crate::store::{queries, stats};
    use hotmesh_engine::activities::trigger::Start;
    use hotmesh_engine::error::EngineError;
    use hotmesh_engine::options::{InterruptOptions, PubOptions};
    use hotmesh_engine::store::Store;
    use pgrx::prelude::*;
    use pgrx::JsonB;
    use serde_json::Value;
    use std::time::{Duration, Instant};

    /// Starts a job of the active app whose graph subscribes to `topic`, in the caller's
    /// transaction (a rollback leaves no job and no message). Returns the job id.
    /// Options: `id`, `pending` (seconds), `search` (object), `marker` (object of `-x`
    /// keys), `entity`, `expire` (seconds).
    #[pg_extern(security_definer, name = "pub")]
    #[search_path(pg_catalog, pg_temp)]
    fn pub_job(
        topic: &str,
        data: default!(Json, "'{}'"),
        options: default!(Json, "'{}'"),
    ) -> String {
        grants::require_topic(topic, Privilege::Start);
        let s = Start {
            data: data.0,
            options: PubOptions::from_json(&options.0).or_raise(),
            ..Default::default()
        };
        with_engine(|e| e.start(topic, s).or_raise())
    }

    /// Interrupts a running job of the graph `topic`. Options: `reason`, `throw`
    /// (default true: the job ends with an error), `code` (410), `expire` (seconds),
    /// `suppress` (an ended job is not an error), `descend` (its child jobs too).
    #[pg_extern(security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn interrupt(topic: &str, job_id: &str, options: default!(Json, "'{}'")) -> bool {
        grants::require_job(job_id, Privilege::Start);
        let o = InterruptOptions::from_json(&options.0).or_raise();
        with_engine(|e| {
            if !e.lock(job_id, None) {
                EngineError::JobNotFound(job_id.into()).raise();
            }
            if e.jobs[job_id].topic != topic {
                bad(
                    "topic",
                    format!(
                        "job {job_id} runs topic '{}', not '{topic}'",
                        e.jobs[job_id].topic
                    ),
                );
            }
            e.interrupt_job(job_id, &o).or_raise()
        })
    }

    /// The job's status semaphore: > 0 running, 0 done, -1 pending, <= -100000000
    /// interrupted.
    #[pg_extern(stable, security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn get_status(job_id: &str) -> i64 {
        grants::require_job(job_id, Privilege::Read);
        queries::status(job_id).unwrap_or_else(|e| e.raise())
    }

    /// The job's `{metadata, data}` (the original's JobOutput; `metadata.js` is the
    /// status). `topic` may be NULL.
    #[pg_extern(stable, security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn get_state(topic: Option<&str>, job_id: &str) -> JsonB {
        grants::require_job(job_id, Privilege::Read);
        let s = queries::state(job_id).unwrap_or_else(|e| e.raise());
        if let Some(t) = topic {
            if s["metadata"]["tpc"].as_str() != Some(t) {
                HotmeshError::StateNotFound(job_id.into()).raise();
            }
        }
        JsonB(s)
    }

    /// The fields named in `fields`, as the original's getQueryState: a plain name is a
    /// search field; a quoted one (`'"x"'`) is read by its raw name: `":"` the status
    /// (as text, as the original stores it), `"_x"` a search field, `"-x"` a marker,
    /// anything else a job data field. A field the job lacks is null.
    #[pg_extern(stable, security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn get_query_state(job_id: &str, fields: Vec<String>) -> JsonB {
        grants::require_job(job_id, Privilege::Read);
        JsonB(queries::query_state(job_id, fields).unwrap_or_else(|e| e.raise()))
    }

    /// The active app version whose graph `topic` starts.
    fn app_of(topic: &str) -> std::rc::Rc<hotmesh_manifest::CompiledApp> {
        let Some((app, version, digest)) = crate::store::apps::for_topic(topic) else {
            EngineError::UnknownTopic(topic.into()).raise()
        };
        crate::store::apps::get(&app, &version, Some(&digest))
    }

    /// What the jobs of graph `topic` recorded (its trigger's `stats.measures`), as the
    /// original's getStats: `query` is `{data, range, start, end, sparse}`: `data`
    /// resolves the trigger's `stats.key`, the times pick the buckets (granularity
    /// infinity needs none). Returns `{key, granularity, count, measures, segments}`.
    #[pg_extern(stable, security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn get_stats(topic: &str, query: default!(Json, "'{}'")) -> JsonB {
        grants::require_topic(topic, Privilege::Read);
        let (q, scope) = stats_scope(topic, &query.0);
        JsonB(stats::report(&scope, &q))
    }

    /// A stats query of graph `topic` and the rows it reads, or an ERROR naming what is
    /// wrong with it.
    fn stats_scope(topic: &str, query: &Value) -> (stats::Query, stats::Scope) {
        let q = stats::Query::from_json(query).or_raise();
        let now = crate::store::spi::SpiStore::default().now_ms();
        let scope = stats::scope(&app_of(topic), topic, &q, now).unwrap_or_else(|e| e.raise());
        (q, scope)
    }

    /// The ids of the jobs of graph `topic` indexed under `facets` (`path:value`, an
    /// `index` measure's; none: those of its count measures), as the original's getIds.
    #[pg_extern(stable, security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn get_ids(
        topic: &str,
        query: default!(Json, "'{}'"),
        facets: default!(Vec<String>, "'{}'"),
    ) -> JsonB {
        grants::require_topic(topic, Privilege::Read);
        let (q, scope) = stats_scope(topic, &query.0);
        JsonB(stats::ids_report(&scope, &q, facets))
    }

    /// Everything stored about a job, for debugging.
    #[pg_extern(stable, security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn get_raw(job_id: &str) -> JsonB {
        grants::require_job(job_id, Privilege::Read);
        JsonB(queries::raw(job_id).unwrap_or_else(|e| e.raise()))
    }

    /// The job with its activity timeline.
    #[pg_extern(stable, security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn export(job_id: &str) -> JsonB {
        grants::require_job(job_id, Privilege::Read);
        JsonB(queries::export(job_id).unwrap_or_else(|e| e.raise()))
    }

    /// Deletes a job that has ended, with its activity rows and messages, now. A running
    /// job is refused (interrupt it first). False if there was none.
    #[pg_extern(security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn scrub(job_id: &str) -> bool {
        grants::require_job(job_id, Privilege::Deploy);
        queries::scrub(job_id).unwrap_or_else(|e| e.raise())
    }

    /// Raises a clear error inside a transaction block: `what` (a procedure that must
    /// commit, like hotmesh.pubsub) cannot run there.
    #[pg_extern(volatile)]
    fn _outside_transaction_block(what: &str) {
        if unsafe { pg_sys::IsTransactionBlock() } {
            HotmeshError::InTransactionBlock(what.into()).raise();
        }
    }

    /// Blocks until the job ends (completes, fails or is interrupted) or `timeout_ms`
    /// pass; returns its `{metadata, data}`. A timeout is an error (code 504). Each check
    /// sees what committed since the last, so this works on a job another session runs.
    #[pg_extern(volatile, security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn wait_for_job(job_id: &str, timeout_ms: default!(i32, 10000)) -> JsonB {
        if !(0..=3_600_000).contains(&timeout_ms) {
            bad(
                "timeout_ms",
                format!("must be between 0 and 3600000, got {timeout_ms}"),
            );
        }
        grants::require_job(job_id, Privilege::Read);
        let deadline = Instant::now() + Duration::from_millis(timeout_ms as u64);
        let mut nap = 1;
        loop {
            if let Some(s) = queries::ended(job_id).unwrap_or_else(|e| e.raise()) {
                return JsonB(s);
            }
            if Instant::now() >= deadline {
                HotmeshError::Timeout {
                    job_id: job_id.into(),
                    ms: timeout_ms as i64,
                }
                .raise();
            }
            unsafe {
                pg_sys::WaitLatch(
                    pg_sys::MyLatch,
                    (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH)
                        as i32,
                    nap,
                    pg_sys::PG_WAIT_EXTENSION,
                );
                pg_sys::ResetLatch(pg_sys::MyLatch);
            }
            pgrx::check_for_interrupts!();
            nap = (nap * 2).min(20);
        }
    }
}
