//! The extension's [`Store`]: the engine's state in its tables, through SPI, with the
//! prepared statements of `state.rs`, in the caller's transaction; and the engine on it
//! ([`Engine`], [`with_engine`]), as every SQL function and the engine worker run it.

use super::ring::{self, Part};
use super::state::{self, Act, ActKey, Job, NewMessage, TryLoad};
use super::{apps, db, notify, stats};
use hotmesh_engine::error::EngineError;
use hotmesh_engine::options::StatsQuery;
use hotmesh_engine::store::{HookKey, HookRef, JobKeys, Store};
use hotmesh_manifest::stats::Row;
use hotmesh_manifest::CompiledApp;
use pgrx::JsonB;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

pub use hotmesh_engine::answer::Status;
pub use hotmesh_engine::step::key_text;
pub use hotmesh_engine::work::{Kind, Lock, Work};

/// One transaction's engine, on the extension's tables.
pub type Engine = hotmesh_engine::step::Engine<SpiStore>;

/// An engine for the caller's transaction.
pub fn engine() -> Engine {
    Engine::with_store(SpiStore::default())
}

/// Runs `f` on a new engine for the caller's transaction, then applies the work it
/// queued and writes the state back once: the shape of every SQL function that steps.
pub fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> R {
    let mut e = engine();
    let r = f(&mut e);
    e.run();
    r
}

/// The engine worker's way to apply work: in a subtransaction (an ERROR undoes only
/// this), on a new engine that holds `job_id`, with `apply` writing what the work
/// consumes and queueing it. `Ok(false)`: another transaction holds the job, nothing
/// was done (try again later); a gone job runs `apply` anyway (its work is dropped as
/// stale, its cause consumed).
pub fn apply_unless_busy<F>(job_id: String, apply: F) -> Result<bool, String>
where
    F: FnOnce(&mut Engine) + std::panic::UnwindSafe + std::panic::RefUnwindSafe,
{
    crate::bgworkers::txn::sub(move || {
        let mut e = engine();
        if e.try_lock(&job_id) == Lock::Busy {
            return false;
        }
        apply(&mut e);
        e.run();
        true
    })
}

/// The store of the extension: its tables, through SPI, in the caller's transaction.
#[derive(Debug, Default)]
pub struct SpiStore {
    /// The part of the ring each job this engine loaded or created is in: the partition
    /// its later statements name.
    places: HashMap<String, Part>,
    /// Ids of jobs started here that replace an expired job of the same id.
    expired: HashSet<String>,
    /// Ids of jobs inserted since the last write of activity rows: that write inserts
    /// their rows without looking for rows in the way.
    inserted: HashSet<String>,
}

impl SpiStore {
    /// Notes where a job loaded outside the store's own loads (an answer's first
    /// statement, `stream::take`) is.
    pub fn place(&mut self, job_id: &str, part: Part) {
        self.places.insert(job_id.to_string(), part);
    }

    fn placed(&mut self, loaded: Option<state::Placed>) -> Option<Job> {
        let (job, part) = loaded?;
        self.place(&job.id, part);
        Some(job)
    }
}

impl Store for SpiStore {
    fn now_ms(&self) -> i64 {
        // the transaction's start, as now() in SQL
        let ts = unsafe { pgrx::pg_sys::GetCurrentTransactionStartTimestamp() };
        ts / 1000 + 946_684_800_000
    }

    fn check_interrupts(&self) {
        crate::guard::check();
    }

    fn active_app(&mut self, topic: &str) -> Result<Rc<CompiledApp>, EngineError> {
        let Some((app_id, version, digest)) = apps::for_topic(topic) else {
            return Err(match apps::inactive_owner(topic) {
                Some(app) => EngineError::AppNotActive {
                    topic: topic.into(),
                    app,
                },
                None => EngineError::UnknownTopic(topic.into()),
            });
        };
        Ok(apps::get(&app_id, &version, Some(&digest)))
    }

    fn hook_apps(&mut self, topic: &str) -> Vec<(String, Rc<CompiledApp>)> {
        db::texts::<3>(
            "SELECT t.app_id, t.version, v.digest
               FROM hotmesh.app_topics t
               JOIN hotmesh.app_versions v ON v.app_id = t.app_id AND v.version = t.version
               LEFT JOIN hotmesh.app_active a ON a.app_id = t.app_id AND a.version = t.version
              WHERE t.topic = $1 AND t.kind = 'hook'
                AND EXISTS (SELECT 1 FROM hotmesh.app_active x WHERE x.app_id = t.app_id)
              GROUP BY t.app_id, t.version, v.digest, v.deployed_at, a.app_id
              ORDER BY (a.app_id IS NULL), v.deployed_at DESC, t.app_id",
            &[topic.into()],
        )
        .into_iter()
        .map(|[a, v, d]| {
            let app = apps::get(&a, &v, Some(&d));
            (a, app)
        })
        .collect()
    }

    fn load_job(&mut self, id: &str) -> Option<Job> {
        let loaded = state::load_job(id);
        self.placed(loaded)
    }

    fn try_load_job(&mut self, id: &str) -> TryLoad {
        let (load, part) = state::try_load_job(id);
        if let Some(p) = part {
            self.place(id, p);
        }
        load
    }

    fn load_job_of_message(&mut self, message_id: i64) -> Option<Job> {
        let loaded = state::load_job_of_message(message_id);
        self.placed(loaded)
    }

    fn live_job_exists(&mut self, id: &str) -> bool {
        // the ring lock before the look: the look and the insert then see one current
        // part, and a start of the same id in between meets this one in its index
        ring::part_for_new_job();
        let (live, expired) = state::job_exists(id);
        if expired {
            self.expired.insert(id.to_string());
        }
        live
    }

    fn write_jobs(&mut self, jobs: &mut [&mut Job]) {
        state::flush_jobs(
            jobs,
            &mut self.places,
            &mut self.expired,
            &mut self.inserted,
        )
    }

    fn running_children(&mut self, parent: &str) -> Vec<String> {
        db::texts::<1>(
            "SELECT id FROM hotmesh.jobs WHERE parent_job_id = $1 AND status > 0 ORDER BY id",
            &[parent.into()],
        )
        .into_iter()
        .map(|[c]| c)
        .collect()
    }

    fn load_acts(&mut self, job_id: &str, keys: &[(String, String)]) -> Vec<(String, String, Act)> {
        state::load_acts(job_id, self.places.get(job_id).copied(), keys)
    }

    fn load_acts_of_jobs(&mut self, wanted: &[JobKeys]) -> Vec<(String, String, String, Act)> {
        // a statement per part (almost always one); a job of unknown part alone,
        // through the parent
        let mut by_part: HashMap<Part, Vec<JobKeys>> = HashMap::new();
        let mut out = vec![];
        for (job_id, keys) in wanted {
            match self.places.get(job_id) {
                Some(p) => by_part
                    .entry(*p)
                    .or_default()
                    .push((job_id.clone(), keys.clone())),
                None => out.extend(
                    state::load_acts(job_id, None, keys)
                        .into_iter()
                        .map(|(a, d, act)| (job_id.clone(), a, d, act)),
                ),
            }
        }
        for (part, of_part) in by_part {
            out.extend(state::load_acts_of_jobs(part, &of_part));
        }
        out
    }

    fn write_acts(&mut self, rows: &[(&ActKey, &Act)]) {
        // a job's rows are all new at its first write only: a later flush of the same
        // engine updates them
        state::flush_acts(rows, &self.places, &std::mem::take(&mut self.inserted))
    }

    fn write_messages(&mut self, messages: Vec<NewMessage>) -> Vec<(String, String, String, i64)> {
        state::insert_messages(messages)
    }

    fn enqueue(&mut self, w: &Work, delay_s: f64) -> i64 {
        db::one::<i64>(
            "INSERT INTO hotmesh.engine_stream (type, job_id, gid, activity_id, dad, token, data, status, code, priority, visible_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now() + make_interval(secs => $11))
             RETURNING id",
            &[
                w.kind.name().into(),
                w.job_id.as_str().into(),
                w.gid.as_str().into(),
                w.aid.as_str().into(),
                w.dad.as_str().into(),
                w.token.clone().into(),
                JsonB(w.data.clone()).into(),
                w.status.name().into(),
                (w.code as i32).into(),
                w.kind.priority().into(),
                delay_s.into(),
            ],
        )
        .unwrap_or(0)
    }

    fn cancel_job_work(&mut self, job_id: &str) {
        // rows another transaction holds (an answer, a router batch) are skipped: that
        // transaction finds the job ended once it gets the job row, and drops its work
        db::exec(
            concat!(
                "DELETE FROM hotmesh.worker_stream WHERE id = ANY (ARRAY(
                   SELECT id FROM hotmesh.worker_stream WHERE job_id = $1 AND ",
                super::stream::not_dead_lettered!(),
                " FOR UPDATE SKIP LOCKED))"
            ),
            &[job_id.into()],
        );
        db::exec(
            concat!(
                "DELETE FROM hotmesh.engine_stream WHERE id = ANY (ARRAY(
                   SELECT id FROM hotmesh.engine_stream WHERE job_id = $1 AND ",
                super::stream::not_dead_lettered!(),
                " FOR UPDATE SKIP LOCKED))"
            ),
            &[job_id.into()],
        );
        db::exec(
            "DELETE FROM hotmesh.signal_hooks WHERE (app_id, topic, key) IN
               (SELECT app_id, topic, key FROM hotmesh.signal_hooks WHERE job_id = $1 FOR UPDATE SKIP LOCKED)",
            &[job_id.into()],
        );
        static CANCEL: &str = "UPDATE {acts} SET status = 'cancelled', updated_at = now()
              WHERE job_id = $1 AND status IN ('waiting', 'pending')";
        let part = self.places.get(job_id).copied();
        db::exec(ring::sql(CANCEL, part), &[job_id.into()]);
    }

    fn remove_timer(&mut self, id: i64) {
        // a router batch may hold the timer row: then it stays, and the router finds the
        // hook done and drops it (waiting for it could close a cycle with that batch)
        db::exec(
            "DELETE FROM hotmesh.engine_stream WHERE id = ANY (ARRAY(
               SELECT id FROM hotmesh.engine_stream WHERE id = $1 FOR UPDATE SKIP LOCKED))",
            &[id.into()],
        );
    }

    fn lock_hook_key(&mut self, k: HookKey) {
        db::exec(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2 || chr(31) || $3, 1213028682))",
            &[k.app_id.into(), k.topic.into(), k.key.into()],
        );
    }

    fn register_hook(&mut self, k: HookKey, hook: &HookRef) -> Vec<(Value, Status, i64)> {
        let HookKey { app_id, topic, key } = k;
        let [job_id, gid, aid, dad] = hook;
        db::exec(
            "INSERT INTO hotmesh.signal_hooks (app_id, topic, key, job_id, gid, activity_id, dad, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'infinity')
             ON CONFLICT (app_id, topic, key) DO UPDATE
                SET job_id = excluded.job_id, gid = excluded.gid, activity_id = excluded.activity_id, dad = excluded.dad,
                    created_at = now(), expires_at = excluded.expires_at",
            &[
                app_id.into(),
                topic.into(),
                key.into(),
                job_id.as_str().into(),
                gid.as_str().into(),
                aid.as_str().into(),
                dad.as_str().into(),
            ],
        );
        db::query(
            "DELETE FROM hotmesh.pending_signals WHERE id = ANY (ARRAY(
                 SELECT id FROM hotmesh.pending_signals
                  WHERE app_id = $1 AND topic = $2 AND key = $3 AND expires_at > now() ORDER BY id FOR UPDATE))
             RETURNING data, status, code",
            &[app_id.into(), topic.into(), key.into()],
            |t| {
                let mut v = vec![];
                for r in t {
                    let status = r.get::<String>(2)?.unwrap_or_default();
                    v.push((
                        db::json(r.get::<crate::json::Json>(1)?).unwrap_or(Value::Null),
                        Status::parse(&status).unwrap_or(Status::Success),
                        r.get::<i32>(3)?.unwrap_or(200) as i64,
                    ));
                }
                Ok(v)
            },
        )
    }

    fn remove_hook(&mut self, job_id: &str, aid: &str, dad: &str) {
        db::exec(
            "DELETE FROM hotmesh.signal_hooks WHERE job_id = $1 AND activity_id = $2 AND dad = $3",
            &[job_id.into(), aid.into(), dad.into()],
        );
    }

    fn find_hook(&mut self, k: HookKey, lock: bool) -> Option<HookRef> {
        let args = [k.app_id.into(), k.topic.into(), k.key.into()];
        if lock {
            db::texts::<4>(
                "SELECT job_id, gid, activity_id, dad FROM hotmesh.signal_hooks
                  WHERE app_id = $1 AND topic = $2 AND key = $3 AND expires_at > now() FOR UPDATE",
                &args,
            )
            .pop()
        } else {
            db::texts::<4>(
                "SELECT job_id, gid, activity_id, dad FROM hotmesh.signal_hooks
                  WHERE app_id = $1 AND topic = $2 AND key = $3 AND expires_at > now()",
                &args,
            )
            .pop()
        }
    }

    fn hook_of_job(&mut self, topic: &str, job_id: &str) -> Option<HookRef> {
        db::texts::<4>(
            "SELECT job_id, gid, activity_id, dad FROM hotmesh.signal_hooks
              WHERE topic = $1 AND job_id = $2 AND expires_at > now() ORDER BY created_at, key LIMIT 1 FOR UPDATE",
            &[topic.into(), job_id.into()],
        )
        .pop()
    }

    fn keep_signal(&mut self, k: HookKey, data: Value, status: Status, code: i64, ttl_s: f64) {
        let HookKey { app_id, topic, key } = k;
        db::exec(
            "INSERT INTO hotmesh.pending_signals (app_id, topic, key, data, status, code, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))",
            &[
                app_id.into(),
                topic.into(),
                key.into(),
                JsonB(data).into(),
                status.name().into(),
                (code as i32).into(),
                ttl_s.into(),
            ],
        );
    }

    fn waiting_by_search(&mut self, topic: &str, name: &str, value: &str) -> Vec<String> {
        db::texts::<1>(
            "SELECT DISTINCT h.job_id FROM hotmesh.signal_hooks h JOIN hotmesh.jobs j ON j.id = h.job_id
              WHERE h.topic = $1 AND j.search @> jsonb_build_object($2::text, $3::text) AND j.status > 0",
            &[topic.into(), name.into(), value.into()],
        )
        .into_iter()
        .map(|[j]| j)
        .collect()
    }

    fn record_stats(&mut self, app_id: &str, key: &str, bucket: &str, job_id: &str, rows: &[Row]) {
        stats::record(app_id, key, bucket, job_id, rows)
    }

    fn indexed_jobs(
        &mut self,
        app_id: &str,
        app: &CompiledApp,
        graph: &str,
        (name, value): (&str, &str),
        query: Option<&StatsQuery>,
    ) -> Result<Vec<String>, EngineError> {
        let Some(q) = query else {
            return Ok(stats::indexed_anywhere(app_id, name, value));
        };
        if !stats::records(app, graph) {
            // its trigger indexes nothing: the search fields alone
            return Ok(vec![]);
        }
        let scope = stats::scope(app, graph, q, self.now_ms()).map_err(EngineError::from)?;
        let facet = format!("{name}:{value}");
        let found = stats::ids(&scope, &facet)
            .into_iter()
            .map(|(_, j)| j)
            .collect();
        if q.scrub {
            stats::scrub(&scope, &facet);
        }
        Ok(found)
    }

    fn announce_work(&mut self, topic: &str) {
        notify::text(hotmesh_engine::channel::work(topic), topic);
    }

    fn announce_job(&mut self, channel: String, topic: &str, job_id: &str, reference: Value) {
        notify::job(channel, topic, job_id, reference);
    }

    fn wake_at(&mut self, due_ms: i64) {
        crate::wake::engine_due_at_commit(due_ms);
    }
}
