//! The worker protocol: `dequeue` hands out messages of a topic with a reservation;
//! `respond`, `respond_batch`, `retry`, `fail` and `heartbeat` answer or extend them.
//!
//! Each function is SECURITY DEFINER with a fixed search_path (unless it reads nothing);
//! EXECUTE is revoked from PUBLIC (sql/finalize.sql), so the owner grants them role by
//! role (a worker role needs only dequeue/respond/retry/fail/heartbeat).

use pgrx::prelude::*;

#[pg_schema]
mod hotmesh {
    use super::super::{bad, code_arg, status_arg};
    use crate::store::grants::{self};
    use crate::store::spi::Status;
    use crate::store::{db, stream};

    use crate::json::Json;

    use pgrx::prelude::*;
    use pgrx::JsonB;
    use serde_json::{Map, Value};

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
        // in the ready index's order, never sorted (db::query_in_order). A hand-out moves
        // its message's visible_at to the lapse: the messages held by workers are past
        // the due ones in the index (`visible_at <= now()` passes over them without
        // reading their rows), where at the front every read stepped over them, row by
        // row, to find the ones free (docs/benchmarks.md, "Answer batches in five
        // statements")
        let rows = db::query_in_order(
            "WITH c AS MATERIALIZED (
                 SELECT id FROM hotmesh.worker_stream
                  WHERE topic = $1 AND dead_lettered_at IS NULL AND visible_at <= now()
                    AND (reserved_until IS NULL OR reserved_until < now())
                    AND deliveries < greatest(max_attempts, $4)
                    AND ($6::text[] IS NULL OR app_id = ANY ($6))
                  ORDER BY priority DESC, visible_at, id
                  LIMIT $2 FOR UPDATE SKIP LOCKED)
             UPDATE hotmesh.worker_stream w
                SET reserved_until = now() + make_interval(secs => $3), visible_at = now() + make_interval(secs => $3),
                    reserved_by = $5, deliveries = w.deliveries + 1,
                    reservation = (('x' || replace(gen_random_uuid()::text, '-', ''))::bit(128))::bit(63)::int8
               FROM c WHERE w.id = c.id
             RETURNING w.id, w.job_id, w.activity_id, w.dad, w.data, w.attempt, w.deliveries,
                       jsonb_build_object('guid', w.id::text, 'jid', w.job_id, 'gid', w.gid, 'dad', w.dad,
                                          'aid', w.activity_id, 'topic', w.topic, 'try', w.attempt)
                       || CASE WHEN jsonb_typeof(w.data -> 'workflowName') = 'string'
                               THEN jsonb_build_object('wfn', w.data -> 'workflowName') ELSE '{}' END
                       -- the activity's own retry policy: it wins over a worker's default
                       || CASE WHEN w.retry_codes IS NOT NULL THEN jsonb_build_object('retry', w.retry_codes)
                               WHEN w.max_attempts > 1 THEN jsonb_build_object('retry', jsonb_build_object(
                                   'maximumAttempts', w.max_attempts, 'backoffCoefficient', w.backoff_coefficient,
                                   'maximumInterval', w.maximum_interval, 'initialInterval', w.initial_interval))
                               ELSE '{}' END,
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
                        r.get::<crate::json::Json>(5)?.map_or(JsonB(Value::Null), |j| JsonB(j.0)),
                        r.get::<i32>(6)?.unwrap_or(0),
                        r.get::<i32>(7)?.unwrap_or(0),
                        r.get::<crate::json::Json>(8)?.map_or(JsonB(Value::Null), |j| JsonB(j.0)),
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
            stream::respond_all(answers).into_iter().collect();
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
}
