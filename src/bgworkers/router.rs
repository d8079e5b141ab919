//! The router, the engine worker's first duty each loop iteration: it applies due
//! engine-stream messages in batches, one transaction for the batch and a
//! subtransaction per message (an ERROR undoes only that message, which is tried again
//! later and dead-lettered after a few failures). The time scout (`scout.rs`) and
//! housekeeping (`housekeeping.rs`) are the others.

use crate::store::spi::{Kind, Status, Work};
use crate::store::{db, notify};
use serde_json::Value;

/// Messages per router transaction.
pub const BATCH: i64 = 200;
/// Failed tries before an engine message is dead-lettered.
const MAX_ENGINE_ATTEMPTS: i32 = 5;

struct Row {
    id: i64,
    work: Work,
}

/// What one router pass did.
pub struct Routed {
    /// Messages taken (applied, dropped as stale, or failed).
    pub taken: usize,
    /// Messages left for the next pass: their job was held by another transaction.
    pub deferred: usize,
}

/// Applies up to [`BATCH`] due engine messages. A message whose job another
/// transaction holds is left for the next pass instead of waited for: the router then
/// never waits behind a caller (a signal, an answer, an interrupt) nor deadlocks with
/// one, whatever order that caller takes its locks in.
pub fn route() -> Routed {
    // in the ready index's order, never sorted (db::query_in_order)
    let rows: Vec<Row> = db::query_in_order(
        "SELECT id, type, job_id, gid, activity_id, dad, token, data, status, code
           FROM hotmesh.engine_stream
          WHERE dead_lettered_at IS NULL AND visible_at <= now()
          ORDER BY priority DESC, visible_at, id
          LIMIT $1 FOR UPDATE SKIP LOCKED",
        &[BATCH.into()],
        |t| {
            let mut v = vec![];
            for r in t {
                let id = r.get::<i64>(1)?.unwrap_or(0);
                let Some(kind) = Kind::parse(&r.get::<String>(2)?.unwrap_or_default()) else {
                    continue;
                };
                let token = if kind == Kind::Timer {
                    Some(id.to_string())
                } else {
                    r.get::<String>(7)?
                };
                v.push(Row {
                    id,
                    work: Work {
                        kind,
                        job_id: r.get::<String>(3)?.unwrap_or_default(),
                        gid: r.get::<String>(4)?.unwrap_or_default(),
                        aid: r.get::<String>(5)?.unwrap_or_default(),
                        dad: r.get::<String>(6)?.unwrap_or_default(),
                        token,
                        data: db::json(r.get::<crate::json::Json>(8)?).unwrap_or(Value::Null),
                        status: Status::parse(&r.get::<String>(9)?.unwrap_or_default())
                            .unwrap_or(Status::Success),
                        code: r.get::<i32>(10)?.unwrap_or(200) as i64,
                    },
                });
            }
            Ok(v)
        },
    );
    let mut routed = Routed {
        taken: 0,
        deferred: 0,
    };
    for Row { id, work } in rows {
        let mark = notify::mark();
        let r = crate::store::spi::apply_unless_busy(work.job_id.clone(), move |e| {
            db::exec(
                "DELETE FROM hotmesh.engine_stream WHERE id = $1",
                &[id.into()],
            );
            e.push(work);
        });
        let msg = match r {
            Ok(true) => {
                routed.taken += 1;
                continue;
            }
            Ok(false) => {
                routed.deferred += 1;
                continue;
            }
            Err(msg) => msg,
        };
        routed.taken += 1;
        notify::rollback_to(mark);
        pgrx::warning!("hotmesh router: message {id}: {msg}");
        db::exec(
            "UPDATE hotmesh.engine_stream
                SET attempts = attempts + 1, last_error = $2,
                    visible_at = now() + make_interval(secs => power(2, attempts)),
                    dead_lettered_at = CASE WHEN attempts + 1 >= $3 THEN now() END
              WHERE id = $1",
            &[id.into(), msg.into(), MAX_ENGINE_ATTEMPTS.into()],
        );
    }
    routed
}
