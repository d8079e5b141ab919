//! The engine's SQL functions, `hotmesh.<name>`: starting jobs, the worker protocol,
//! signals and interrupts, and reading jobs. Each is SECURITY DEFINER with a fixed
//! search_path; EXECUTE is revoked from PUBLIC (sql/finalize.sql), so the owner grants
//! them role by role (a worker role needs only dequeue/respond/retry/fail/heartbeat).

use pgrx::prelude::*;

#[pg_schema]
mod hotmesh {
    use crate::engine::grants::{self, Privilege};
    use crate::engine::step::{with_engine, Status};
    use crate::engine::{db, queries, stats, stream};
    use crate::error::{HotmeshError, OrRaise, Raise};
    use crate::json::Json;
    use hotmesh_engine::activities::trigger::Start;
    use hotmesh_engine::error::EngineError;
    use hotmesh_engine::options::{InterruptOptions, PubOptions};
    use pgrx::prelude::*;
    use pgrx::JsonB;
    use serde_json::{Map, Value};
    use std::time::{Duration, Instant};

    fn bad(name: &'static str, problem: impl Into<String>) -> ! {
        EngineError::InvalidArgument {
            name,
            problem: problem.into(),
        }
        .raise()
    }

    fn status_arg(s: &str) -> Status {
        Status::parse(s).unwrap_or_else(|p| bad("status", p))
    }

    /// An answer's code: given (100 to 999), or the status's default.
    fn code_arg(st: Status, code: Option<i32>) -> i64 {
        let code = code.map(i64::from).unwrap_or(st.default_code());
        if !(100..=999).contains(&code) {
            bad("code", format!("must be between 100 and 999, got {code}"));
        }
        code
    }

    /// The NOTIFY channel for `name` as `LISTEN` must spell it: the name itself, or for
    /// one over 63 bytes `hm:` and a hash (what the engine sends on).
    #[pg_extern(immutable, parallel_safe)]
    fn channel(name: &str) -> String {
        hotmesh_engine::channel::name(name)
    }

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

    /// Reserves up to `batch` messages of worker topic `topic` for
    /// `reservation_seconds` (then they are handed out again unless answered). Each row
    /// carries `metadata` as the original's workers receive it: `{guid, jid, gid, dad,
    /// aid, topic, try}`, and `wfn` when the message's data names a `workflowName`, and
    /// `reservation`: this hand-out's token (random). An answer or heartbeat that carries
    /// it is refused (false) once the message was handed out again, so a worker whose
    /// reservation lapsed cannot overwrite the one that holds it now.
    #[pg_extern(security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    #[allow(clippy::type_complexity)]
    fn dequeue(
        topic: &str,
        batch: default!(i32, 1),
        reservation_seconds: default!(f64, 30.0),
        consumer: default!(Option<String>, "NULL"),
    ) -> TableIterator<
        'static,
        (
            name!(id, i64),
            name!(job_id, String),
            name!(activity_id, String),
            name!(dad, String),
            name!(data, JsonB),
            name!(attempt, i32),
            name!(deliveries, i32),
            name!(metadata, JsonB),
            name!(reservation, i64),
        ),
    > {
        if !(1..=1000).contains(&batch) {
            bad("batch", format!("must be between 1 and 1000, got {batch}"));
        }
        if !(reservation_seconds.is_finite() && (0.1..=86400.0).contains(&reservation_seconds)) {
            bad(
                "reservation_seconds",
                format!("must be between 0.1 and 86400, got {reservation_seconds}"),
            );
        }
        // a role that may work on some apps only sees their messages (None: all)
        let apps = grants::work_apps(topic);
        let rows = db::query(
            "WITH c AS MATERIALIZED (
                 SELECT id FROM hotmesh.worker_stream
                  WHERE topic = $1 AND dead_lettered_at IS NULL AND visible_at <= now()
                    AND (reserved_until IS NULL OR reserved_until < now())
                    AND deliveries < greatest(max_attempts, $4)
                    AND ($6::text[] IS NULL OR app_id = ANY ($6))
                  ORDER BY priority DESC, visible_at, id
                  LIMIT $2 FOR UPDATE SKIP LOCKED)
             UPDATE hotmesh.worker_stream w
                SET reserved_until = now() + make_interval(secs => $3), reserved_by = $5, deliveries = w.deliveries + 1,
                    reservation = (('x' || replace(gen_random_uuid()::text, '-', ''))::bit(128))::bit(63)::int8
               FROM c WHERE w.id = c.id
             RETURNING w.id, w.job_id, w.activity_id, w.dad, w.data, w.attempt, w.deliveries,
                       jsonb_build_object('guid', w.id::text, 'jid', w.job_id, 'gid', w.gid, 'dad', w.dad,
                                          'aid', w.activity_id, 'topic', w.topic, 'try', w.attempt)
                       || CASE WHEN jsonb_typeof(w.data -> 'workflowName') = 'string'
                               THEN jsonb_build_object('wfn', w.data -> 'workflowName') ELSE '{}' END,
                       w.reservation",
            &[topic.into(), (batch as i64).into(), reservation_seconds.into(), hotmesh_engine::retry::POISON_DELIVERIES.into(), consumer.into(), apps.into()],
            |t| {
                let mut v = vec![];
                for r in t {
                    v.push((
                        r.get::<i64>(1)?.unwrap_or(0),
                        r.get::<String>(2)?.unwrap_or_default(),
                        r.get::<String>(3)?.unwrap_or_default(),
                        r.get::<String>(4)?.unwrap_or_default(),
                        r.get::<JsonB>(5)?.unwrap_or(JsonB(Value::Null)),
                        r.get::<i32>(6)?.unwrap_or(0),
                        r.get::<i32>(7)?.unwrap_or(0),
                        r.get::<JsonB>(8)?.unwrap_or(JsonB(Value::Null)),
                        r.get::<i64>(9)?.unwrap_or(0),
                    ));
                }
                Ok(v)
            },
        );
        let mut rows = rows;
        rows.sort_by_key(|r| r.0);
        if !rows.is_empty() {
            // the time scout must see these reservations lapse (redelivery, poison)
            crate::wake::engine_due_at_commit(
                crate::shared::now_ms() + (reservation_seconds * 1000.0) as i64,
            );
        }
        TableIterator::new(rows)
    }

    /// A worker's answer to message `message_id`: `success` (the activity's output),
    /// `error` (with `code`; retried if its policy says so) or `pending` (202: the
    /// activity stays open for more answers). Applied in this transaction. False when the
    /// message is gone (already answered, or its job ended), or when `reservation` (from
    /// dequeue) is not its current hand-out: a late answer never wins over the worker
    /// that holds the message now. Workers pass it; NULL answers unfenced (by hand).
    #[pg_extern(security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn respond(
        message_id: i64,
        data: default!(Json, "'{}'"),
        status: default!(&str, "'success'"),
        code: default!(Option<i32>, "NULL"),
        reservation: default!(Option<i64>, "NULL"),
    ) -> bool {
        let st = status_arg(status);
        grants::require_message(message_id);
        stream::respond(message_id, reservation, data.0, st, code_arg(st, code))
    }

    /// Many answers in one call (one round trip, one commit): message `message_ids[i]`
    /// gets `data[i]` with `statuses[i]` and `codes[i]` (NULL arrays: success, default
    /// code; `reservations[i]` as respond's `reservation`). Each answer is applied as
    /// `respond` applies it. Returns the ids that were applied; the others were gone
    /// (answered already, their job ended, or handed out again).
    #[pg_extern(security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn respond_batch(
        message_ids: Option<Vec<Option<i64>>>,
        data: default!(Option<Vec<Option<Json>>>, "NULL"),
        statuses: default!(Option<Vec<Option<String>>>, "NULL"),
        codes: default!(Option<Vec<Option<i32>>>, "NULL"),
        reservations: default!(Option<Vec<Option<i64>>>, "NULL"),
    ) -> Vec<i64> {
        let message_ids = message_ids.unwrap_or_else(|| bad("message_ids", "must not be NULL"));
        let n = message_ids.len();
        let message_ids: Vec<i64> = message_ids
            .into_iter()
            .map(|id| id.unwrap_or_else(|| bad("message_ids", "must not contain NULL")))
            .collect();
        let same_length = |name: &'static str, len: Option<usize>| {
            if let Some(l) = len.filter(|l| *l != n) {
                bad(name, format!("has {l} elements; message_ids has {n}"));
            }
        };
        same_length("data", data.as_ref().map(Vec::len));
        same_length("statuses", statuses.as_ref().map(Vec::len));
        same_length("codes", codes.as_ref().map(Vec::len));
        same_length("reservations", reservations.as_ref().map(Vec::len));
        // every argument is checked before the first answer is applied
        let answers: Vec<(i64, Option<i64>, Value, Status, i64)> = (0..n)
            .map(|i| {
                let st = statuses
                    .as_ref()
                    .and_then(|s| s[i].as_deref())
                    .map(status_arg)
                    .unwrap_or(Status::Success);
                let code = code_arg(st, codes.as_ref().and_then(|c| c[i]));
                let d = data
                    .as_ref()
                    .and_then(|d| d[i].as_ref())
                    .map(|j| j.0.clone())
                    .unwrap_or_else(|| Value::Object(Map::new()));
                let r = reservations.as_ref().and_then(|r| r[i]);
                (message_ids[i], r, d, st, code)
            })
            .collect();
        for id in &message_ids {
            grants::require_message(*id);
        }
        let applied: std::collections::HashSet<i64> =
            stream::respond_all(stream::in_job_order(answers, |a| a.0))
                .into_iter()
                .collect();
        // in the order given, once each (a repeated id is applied once)
        let mut seen = std::collections::HashSet::new();
        message_ids
            .into_iter()
            .filter(|id| applied.contains(id) && seen.insert(*id))
            .collect()
    }

    /// Asks for another attempt of a message, after `delay_seconds` (default: its retry
    /// policy). With no attempt left it becomes an error answer (code 597).
    #[pg_extern(security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn retry(
        message_id: i64,
        delay_seconds: default!(Option<f64>, "NULL"),
        error: default!(Json, "'{}'"),
        reservation: default!(Option<i64>, "NULL"),
    ) -> bool {
        if let Some(d) = delay_seconds {
            if !(d.is_finite() && (0.0..=31_536_000.0).contains(&d)) {
                bad(
                    "delay_seconds",
                    format!("must be between 0 and 31536000, got {d}"),
                );
            }
        }
        grants::require_message(message_id);
        stream::retry(message_id, reservation, delay_seconds, error.0)
    }

    /// Fails a message now, without retries: the activity gets the error with `code`.
    #[pg_extern(security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn fail(
        message_id: i64,
        error: default!(Json, "'{}'"),
        code: default!(i32, 500),
        reservation: default!(Option<i64>, "NULL"),
    ) -> bool {
        if !(100..=999).contains(&code) {
            bad("code", format!("must be between 100 and 999, got {code}"));
        }
        grants::require_message(message_id);
        // no retry, whatever the policy says
        stream::respond_final(message_id, reservation, error.0, code as i64)
    }

    /// Extends the reservation of a message whose callback still runs.
    #[pg_extern(security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn heartbeat(
        message_id: i64,
        reservation_seconds: default!(f64, 30.0),
        reservation: default!(Option<i64>, "NULL"),
    ) -> bool {
        if !(reservation_seconds.is_finite() && (0.1..=86400.0).contains(&reservation_seconds)) {
            bad(
                "reservation_seconds",
                format!("must be between 0.1 and 86400, got {reservation_seconds}"),
            );
        }
        grants::require_message(message_id);
        stream::heartbeat(message_id, reservation, reservation_seconds)
    }

    /// Sends a signal to the hook waiting on `topic` whose key the signal's data
    /// resolves to. Returns the job it reached; NULL when no hook waits yet (the signal
    /// is kept for 600 s, or `$expire` seconds, and delivered when one registers).
    #[pg_extern(security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn signal(
        topic: &str,
        data: default!(Json, "'{}'"),
        status: default!(&str, "'success'"),
        code: default!(Option<i32>, "NULL"),
    ) -> Option<String> {
        let st = status_arg(status);
        let code = code
            .map(i64::from)
            .unwrap_or(if st == Status::Pending { 202 } else { 200 });
        if !(100..=999).contains(&code) {
            bad("code", format!("must be between 100 and 999, got {code}"));
        }
        grants::require_signal(topic);
        with_engine(|e| e.signal(topic, data.0, st, code).or_raise())
    }

    /// Signals every job waiting on `topic` that is indexed under `key_name:key_value`
    /// (a trigger's `index` measure) or whose search field `key_name` is `key_value`;
    /// each gets `data` with `id`: its job id. Returns the job ids.
    #[pg_extern(security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn signal_all(topic: &str, data: Json, key_name: &str, key_value: &str) -> Vec<String> {
        if !data.0.is_object() {
            bad("data", "must be a JSON object");
        }
        grants::require_signal(topic);
        with_engine(|e| {
            e.signal_indexed(topic, &data.0, key_name, key_value, None)
                .or_raise()
        })
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
        let Some((app, version, digest)) = crate::engine::apps::for_topic(topic) else {
            EngineError::UnknownTopic(topic.into()).raise()
        };
        crate::engine::apps::get(&app, &version, Some(&digest))
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
        let now = hotmesh_engine::store::Store::now_ms(&crate::engine::store::SpiStore);
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
