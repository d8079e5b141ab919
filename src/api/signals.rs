//! Signals: `hotmesh.signal` reaches one hook by its key; `hotmesh.signal_all` every
//! job waiting on a topic that is indexed or searchable under a field's value.
//!
//! Each function is SECURITY DEFINER with a fixed search_path (unless it reads nothing);
//! EXECUTE is revoked from PUBLIC (sql/finalize.sql), so the owner grants them role by
//! role (a worker role needs only dequeue/respond/retry/fail/heartbeat).

use pgrx::prelude::*;

#[pg_schema]
mod hotmesh {
    use super::super::{bad, status_arg};
    use crate::store::grants::{self};
    use crate::store::spi::{with_engine, Status};

    use crate::error::OrRaise;
    use crate::json::Json;

    use pgrx::prelude::*;

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
}
