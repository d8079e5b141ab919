//! SPI with plans prepared once per backend: the step path runs the same few
//! statements over and over, so each is parsed and planned only on first use.

use crate::error::Raise;
use hotmesh_engine::error::EngineError;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    // keyed by the literal's address and length: a step looks plans up a dozen times,
    // and hashing two words is cheaper than hashing a few hundred bytes of SQL (two equal
    // literals at two places at worst get a plan each)
    static PLANS: RefCell<HashMap<(usize, usize), Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

fn plan(
    client: &SpiClient,
    sql: &'static str,
    args: &[DatumWithOid],
) -> SpiResult<Rc<OwnedPreparedStatement>> {
    let key = (sql.as_ptr() as usize, sql.len());
    if let Some(p) = PLANS.with(|m| m.borrow().get(&key).cloned()) {
        return Ok(p);
    }
    let oids: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
    let p = Rc::new(client.prepare_mut(sql, &oids)?.keep());
    PLANS.with(|m| m.borrow_mut().insert(key, p.clone()));
    Ok(p)
}

/// [`query`] with a generic plan, always. Left to choose, the plan cache builds a custom
/// plan at every execution of a statement whose generic plan looks costlier than the
/// custom ones, as for `activity_id = ANY ($2)` (the activity rows a step reads), where
/// planning was a tenth of an answer's time. Only for statements whose generic plan is
/// the right one whatever the values: `LIMIT $n` is not (the generic plan of `dequeue`
/// guesses a tenth of the stream and hash-joins it).
pub fn query_generic<R>(
    sql: &'static str,
    args: &[DatumWithOid],
    read: impl FnOnce(SpiTupleTable) -> SpiResult<R>,
) -> R {
    let forced = pg_sys::PlanCacheMode::PLAN_CACHE_MODE_FORCE_GENERIC_PLAN as std::ffi::c_int;
    let _forced = Setting::new(std::ptr::addr_of_mut!(pg_sys::plan_cache_mode), forced);
    query(sql, args, read)
}

/// [`query`] for a read of a queue in its index's order (`ORDER BY … LIMIT n FOR UPDATE
/// SKIP LOCKED`): planned without a sort as well, so the only plan left is the ready
/// index read in order, which stops after `n` rows. Planned on a queue that looked
/// empty, a sort costs nothing and wins a tie with the ordered read; it stays in the
/// cached plan, and with a backlog of 100,000 messages it reads and sorts them all at
/// every take.
pub fn query_in_order<R>(
    sql: &'static str,
    args: &[DatumWithOid],
    read: impl FnOnce(SpiTupleTable) -> SpiResult<R>,
) -> R {
    let _sorts = Setting::new(std::ptr::addr_of_mut!(pg_sys::enable_sort), false);
    query(sql, args, read)
}

/// [`query`] for a statement that joins arrays of keys (`unnest($1)`) to a table: planned
/// with nested loops only, so each key probes the table's index. Left to choose, the
/// planner hash-joins the arrays to a whole scan of the table when it looks small, and
/// the plan is cached for when it is not. With the generic plan, always
/// ([`query_generic`]): probes by key are the one plan whatever the arrays hold, and left
/// to choose, the plan cache planned a custom plan at every batch (the take of a batch
/// of answers spent a third of its time in the planner).
pub fn query_probes<R>(
    sql: &'static str,
    args: &[DatumWithOid],
    read: impl FnOnce(SpiTupleTable) -> SpiResult<R>,
) -> R {
    let _hash = Setting::new(std::ptr::addr_of_mut!(pg_sys::enable_hashjoin), false);
    let _merge = Setting::new(std::ptr::addr_of_mut!(pg_sys::enable_mergejoin), false);
    query_generic(sql, args, read)
}

/// A planner setting (a GUC's C variable: `plan_cache_mode`, `enable_seqscan`,
/// `enable_sort`, `enable_hashjoin`, `enable_mergejoin`, `jit`) changed while it lives; the caller's value comes back when it
/// drops, on an ERROR too (pgrx unwinds through it). Set on the C variable, not through
/// the GUC machinery: two stores, and nothing a user's own queries see.
struct Setting<T: Copy>(*mut T, T);

impl<T: Copy> Setting<T> {
    fn new(variable: *mut T, value: T) -> Setting<T> {
        // SAFETY: a backend's GUC variable, read and written by this thread only
        Setting(variable, unsafe {
            std::mem::replace(&mut *variable, value)
        })
    }
}

impl<T: Copy> Drop for Setting<T> {
    fn drop(&mut self) {
        // SAFETY: as above
        unsafe { *self.0 = self.1 };
    }
}

/// Runs `sql` (prepared once) with `args`, and reads the result with `read`.
///
/// Planned without sequential scans. The queue tables (`worker_stream`,
/// `engine_stream`) are empty at every quiet moment, and a plan made then (a new
/// session's first statement, or a replan after autovacuum saw the queue empty) finds a
/// sequential scan cheapest for a lookup by id; the plan is cached, and when a backlog
/// arrives every lookup reads the whole queue (seen: `respond_batch`'s lookup of its
/// messages hash-joining 2,190 of them to find 10). With the switch off, a statement
/// that has an index for its condition always uses it; one that has none still scans.
/// And without JIT: a scan left to a statement that has no index costs 10^10 with the
/// switch off, far past `jit_above_cost`, and compiling it took 60 ms at every run of
/// a one-row read (the engine's statements are all small: JIT never pays for them).
pub fn query<R>(
    sql: &'static str,
    args: &[DatumWithOid],
    read: impl FnOnce(SpiTupleTable) -> SpiResult<R>,
) -> R {
    let _scans = Setting::new(std::ptr::addr_of_mut!(pg_sys::enable_seqscan), false);
    let _jit = Setting::new(std::ptr::addr_of_mut!(pg_sys::jit_enabled), false);
    // A hot standby assigns no transaction ids, and `update` asks for one first (which
    // fails there with an internal error): on a standby, statements run without it, so
    // reads work and a write fails as Postgres fails any write there (25006).
    let standby = unsafe { pg_sys::RecoveryInProgress() };
    Spi::connect_mut(|client| {
        let p = plan(client, sql, args)?;
        let t = if standby {
            client.select(&*p, None, args)?
        } else {
            client.update(&*p, None, args)?
        };
        read(t)
    })
    .unwrap_or_else(|e: pgrx::spi::Error| {
        EngineError::Internal(format!(
            "{e} in: {}",
            sql.split_whitespace().collect::<Vec<_>>().join(" ")
        ))
        .raise()
    })
}

/// Runs `sql` for its effect; returns the number of rows it touched.
pub fn exec(sql: &'static str, args: &[DatumWithOid]) -> usize {
    query(sql, args, |t| Ok(t.len()))
}

/// The first column of the first row, if any.
pub fn one<T: FromDatum + IntoDatum>(sql: &'static str, args: &[DatumWithOid]) -> Option<T> {
    query(sql, args, |t| {
        if t.is_empty() {
            Ok(None)
        } else {
            t.first().get::<T>(1)
        }
    })
}

/// JSON out of a jsonb column.
pub fn json(v: Option<crate::json::Json>) -> Option<serde_json::Value> {
    v.map(|j| j.0)
}

/// Every row with its first `N` columns as text (NULL: empty), for the lookups that read
/// ids and names: `let [job_id, gid] = row`.
pub fn texts<const N: usize>(sql: &'static str, args: &[DatumWithOid]) -> Vec<[String; N]> {
    query(sql, args, as_texts::<N>)
}

/// Every row with its first `N` columns as text (NULL: empty): [`texts`]' reader, for
/// [`query_in_order`] too.
pub fn as_texts<const N: usize>(t: SpiTupleTable) -> SpiResult<Vec<[String; N]>> {
    let mut rows = Vec::with_capacity(t.len());
    for r in t {
        let mut row: [String; N] = std::array::from_fn(|_| String::new());
        for (i, cell) in row.iter_mut().enumerate() {
            *cell = r.get::<String>(i + 1)?.unwrap_or_default();
        }
        rows.push(row);
    }
    Ok(rows)
}
