//! An in-memory [`Store`] and a small harness around it, so the engine's rules run in
//! plain tests, in milliseconds, without Postgres: deploy an app, publish, answer the
//! worker messages, send signals, move the clock, and look at the jobs and activity
//! rows. Enabled by the `testing` feature (and in this crate's own tests).
//!
//! It keeps what the extension's tables keep, with the same meaning, but it is no
//! database: there is one caller at a time, so job locks are always free, and writes
//! are applied when an engine writes back (there is no rollback). Stats rows are kept
//! without their time buckets: a signal-all by index finds every job filed under the
//! key, whatever the query's window.

use crate::activities::trigger::Start;
use crate::activity::{Act, ActKey, ActStatus};
use crate::answer::Status;
use crate::error::EngineError;
use crate::job::Job;
use crate::options::{InterruptOptions, PubOptions, StatsQuery};
use crate::status;
use crate::step::Engine;
use crate::store::{HookKey, HookRef, JobKeys, NewMessage, Store, TryLoad};
use crate::work::{Kind, Work};
use hotmesh_manifest::stats::Row;
use hotmesh_manifest::CompiledApp;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A worker message as a worker receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: i64,
    pub topic: String,
    pub job_id: String,
    pub gid: String,
    pub aid: String,
    pub dad: String,
    pub data: Value,
}

/// A signal kept for a hook that has not registered yet.
struct Early {
    hook_key: (String, String, String),
    data: Value,
    status: Status,
    code: i64,
    expires_ms: i64,
}

#[derive(Default)]
struct Tables {
    now_ms: i64,
    next_id: i64,
    /// deployed apps, newest last; every deployed version is active
    apps: Vec<Rc<CompiledApp>>,
    jobs: BTreeMap<String, Job>,
    /// when each job expires (unix ms), once it has an expiry
    expires: BTreeMap<String, i64>,
    acts: BTreeMap<ActKey, Act>,
    messages: BTreeMap<i64, NewMessage>,
    /// engine stream: id -> (due, work)
    engine_stream: BTreeMap<i64, (i64, Work)>,
    hooks: BTreeMap<(String, String, String), HookRef>,
    early: Vec<Early>,
    /// (app, key, job, row)
    stats: Vec<(String, String, String, Row)>,
    /// (channel, job id) of each completion announced
    announced: Vec<(String, String)>,
    work_announced: Vec<String>,
    /// how many times an engine asked for activity rows (one statement each in the
    /// extension)
    act_loads: usize,
}

impl Tables {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn live(&self, id: &str) -> bool {
        self.jobs.contains_key(id) && self.expires.get(id).is_none_or(|e| *e > self.now_ms)
    }
}

/// The engine's state in memory. Clones share it: each engine made by
/// [`MemoryStore::engine`] is one transaction over the same tables.
#[derive(Clone, Default)]
pub struct MemoryStore {
    tables: Rc<RefCell<Tables>>,
}

impl MemoryStore {
    /// Empty tables, the clock at 1,000,000 ms.
    pub fn new() -> MemoryStore {
        let s = MemoryStore::default();
        s.tables.borrow_mut().now_ms = 1_000_000;
        s
    }

    /// Compiles and activates an app (a newer deploy of the same id takes its topics).
    pub fn deploy(&self, yaml: &str) -> Result<Rc<CompiledApp>, hotmesh_manifest::ManifestError> {
        let app = Rc::new(hotmesh_manifest::compile_manifest(yaml)?);
        let mut t = self.tables.borrow_mut();
        t.apps.retain(|a| a.id != app.id);
        t.apps.push(app.clone());
        Ok(app)
    }

    /// A new engine (one transaction) over these tables.
    pub fn engine(&self) -> Engine<MemoryStore> {
        Engine::with_store(self.clone())
    }

    /// Starts a job (`hotmesh.pub`), in a transaction of its own.
    pub fn publish(
        &self,
        topic: &str,
        data: Value,
        options: PubOptions,
    ) -> Result<String, EngineError> {
        let mut e = self.engine();
        let id = e.start(
            topic,
            Start {
                data,
                options,
                ..Default::default()
            },
        )?;
        e.run();
        Ok(id)
    }

    /// The worker messages of `topic` waiting for an answer, oldest first.
    pub fn messages(&self, topic: &str) -> Vec<Message> {
        self.tables
            .borrow()
            .messages
            .iter()
            .filter(|(_, m)| m.topic == topic)
            .map(|(id, m)| Message {
                id: *id,
                topic: m.topic.clone(),
                job_id: m.job_id.clone(),
                gid: m.gid.clone(),
                aid: m.activity_id.clone(),
                dad: m.dad.clone(),
                data: m.data.clone(),
            })
            .collect()
    }

    /// A worker's answer to message `id` (`hotmesh.respond`). False when the message is
    /// gone (answered already, or its job ended).
    pub fn respond(&self, id: i64, data: Value, status: Status, code: Option<i64>) -> bool {
        let Some(m) = self.tables.borrow_mut().messages.remove(&id) else {
            return false;
        };
        let mut e = self.engine();
        e.push(Work {
            kind: Kind::Response,
            job_id: m.job_id,
            gid: m.gid,
            aid: m.activity_id,
            dad: m.dad,
            token: Some(id.to_string()),
            data,
            status,
            code: code.unwrap_or(status.default_code()),
        });
        e.run();
        true
    }

    /// Successes with `data` to messages `ids`, in one transaction, as the extension's
    /// `respond_batch` applies them: their jobs locked, the rows the answers read loaded
    /// at once ([`Engine::preload_answers`]), then each answer applied and the state
    /// written back once. Returns how many were applied (the others were gone).
    pub fn respond_batch(&self, ids: &[i64], data: Value) -> usize {
        let taken: Vec<NewMessage> = {
            let mut t = self.tables.borrow_mut();
            ids.iter().filter_map(|id| t.messages.remove(id)).collect()
        };
        let mut e = self.engine();
        for m in &taken {
            e.lock(&m.job_id, None);
        }
        let answers: Vec<(String, String, String)> = taken
            .iter()
            .map(|m| (m.job_id.clone(), m.activity_id.clone(), m.dad.clone()))
            .collect();
        e.preload_answers(&answers);
        for (id, m) in ids.iter().zip(&taken) {
            e.push(Work {
                kind: Kind::Response,
                job_id: m.job_id.clone(),
                gid: m.gid.clone(),
                aid: m.activity_id.clone(),
                dad: m.dad.clone(),
                token: Some(id.to_string()),
                data: data.clone(),
                status: Status::Success,
                code: Status::Success.default_code(),
            });
            e.apply();
        }
        e.flush();
        taken.len()
    }

    /// How many times an engine has asked for activity rows.
    pub fn act_loads(&self) -> usize {
        self.tables.borrow().act_loads
    }

    /// Answers every waiting message of `topic` with `f(data)` as a success.
    pub fn work(&self, topic: &str, f: impl Fn(&Value) -> Value) -> usize {
        let ms = self.messages(topic);
        for m in &ms {
            self.respond(m.id, f(&m.data), Status::Success, None);
        }
        ms.len()
    }

    /// A signal (`hotmesh.signal`): the job it reached, or None when it was kept.
    pub fn signal(
        &self,
        topic: &str,
        data: Value,
        status: Status,
        code: i64,
    ) -> Result<Option<String>, EngineError> {
        let mut e = self.engine();
        let r = e.signal(topic, data, status, code)?;
        e.run();
        Ok(r)
    }

    /// Signals every job waiting on `topic` indexed or searchable under `name:value`.
    pub fn signal_all(
        &self,
        topic: &str,
        data: Value,
        name: &str,
        value: &str,
    ) -> Result<Vec<String>, EngineError> {
        let mut e = self.engine();
        let r = e.signal_indexed(topic, &data, name, value, None)?;
        e.run();
        Ok(r)
    }

    /// Interrupts a job (`hotmesh.interrupt`).
    pub fn interrupt(&self, job_id: &str, options: &InterruptOptions) -> Result<bool, EngineError> {
        let mut e = self.engine();
        let r = e.interrupt_job(job_id, options)?;
        e.run();
        Ok(r)
    }

    /// Moves the clock on by `ms` and applies the engine stream work then due (timers,
    /// cycles, spilled steps), each in its own transaction, as the engine worker does.
    /// Returns how many were applied.
    pub fn advance(&self, ms: i64) -> usize {
        self.tables.borrow_mut().now_ms += ms;
        let mut applied = 0;
        loop {
            let next = {
                let mut t = self.tables.borrow_mut();
                let now = t.now_ms;
                let due = t
                    .engine_stream
                    .iter()
                    .filter(|(_, (d, _))| *d <= now)
                    .min_by_key(|(id, (d, w))| (-w.kind.priority(), *d, **id))
                    .map(|(id, _)| *id);
                due.and_then(|id| t.engine_stream.remove(&id).map(|(_, w)| (id, w)))
            };
            let Some((id, mut w)) = next else { break };
            if w.kind == Kind::Timer {
                w.token = Some(id.to_string());
            }
            let mut e = self.engine();
            e.push(w);
            e.run();
            applied += 1;
        }
        applied
    }

    /// A job as stored (None: never written, or expired).
    pub fn job(&self, id: &str) -> Option<Job> {
        let t = self.tables.borrow();
        t.live(id).then(|| t.jobs[id].clone())
    }

    /// A job's activity row in one dimension.
    pub fn activity(&self, job_id: &str, aid: &str, dad: &str) -> Option<Act> {
        self.tables
            .borrow()
            .acts
            .get(&(job_id.to_string(), aid.to_string(), dad.to_string()))
            .cloned()
    }

    /// Every activity row of a job: `(activity, dad, status)`, in key order.
    pub fn activities(&self, job_id: &str) -> Vec<(String, String, ActStatus)> {
        self.tables
            .borrow()
            .acts
            .iter()
            .filter(|(k, _)| k.0 == job_id)
            .map(|(k, a)| (k.1.clone(), k.2.clone(), a.status))
            .collect()
    }

    /// Engine stream rows waiting (timers, spilled steps): `(due ms, kind)`.
    pub fn scheduled(&self) -> Vec<(i64, Kind)> {
        self.tables
            .borrow()
            .engine_stream
            .values()
            .map(|(d, w)| (*d, w.kind))
            .collect()
    }

    /// Hook registrations: `(topic, key, job id)`.
    pub fn hooks(&self) -> Vec<(String, String, String)> {
        self.tables
            .borrow()
            .hooks
            .iter()
            .map(|((_, topic, key), h)| (topic.clone(), key.clone(), h[0].clone()))
            .collect()
    }

    /// Signals kept for hooks not registered yet.
    pub fn early_signals(&self) -> usize {
        self.tables.borrow().early.len()
    }

    /// The completions announced: `(channel, job id)`, in order.
    pub fn announced(&self) -> Vec<(String, String)> {
        self.tables.borrow().announced.clone()
    }

    /// The topics told they have work, in order.
    pub fn work_announced(&self) -> Vec<String> {
        self.tables.borrow().work_announced.clone()
    }

    /// The clock (unix ms).
    pub fn now(&self) -> i64 {
        self.tables.borrow().now_ms
    }
}

impl MemoryStore {
    fn read_acts(&self, job_id: &str, keys: &[(String, String)]) -> Vec<(String, String, Act)> {
        let t = self.tables.borrow();
        keys.iter()
            .filter_map(|(a, d)| {
                let act = t.acts.get(&(job_id.to_string(), a.clone(), d.clone()))?;
                let mut act = act.clone();
                act.dirty = false;
                Some((a.clone(), d.clone(), act))
            })
            .collect()
    }
}

impl Store for MemoryStore {
    fn now_ms(&self) -> i64 {
        self.tables.borrow().now_ms
    }

    fn check_interrupts(&self) {}

    fn active_app(&mut self, topic: &str) -> Result<Rc<CompiledApp>, EngineError> {
        let t = self.tables.borrow();
        t.apps
            .iter()
            .rev()
            .find(|a| a.graph_for(topic).is_some())
            .cloned()
            .ok_or_else(|| EngineError::UnknownTopic(topic.into()))
    }

    fn hook_apps(&mut self, topic: &str) -> Vec<(String, Rc<CompiledApp>)> {
        let t = self.tables.borrow();
        t.apps
            .iter()
            .rev()
            .filter(|a| a.hooks.iter().any(|h| h.topic == topic))
            .map(|a| (a.id.clone(), a.clone()))
            .collect()
    }

    fn load_job(&mut self, id: &str) -> Option<Job> {
        let t = self.tables.borrow();
        t.live(id).then(|| {
            let mut j = t.jobs[id].clone();
            (j.dirty, j.fresh, j.completed, j.expire_in) = (false, false, false, None);
            j
        })
    }

    fn try_load_job(&mut self, id: &str) -> TryLoad {
        // one caller at a time: nobody else holds a job
        match self.load_job(id) {
            Some(j) => TryLoad::Loaded(Box::new(j)),
            None => TryLoad::Gone,
        }
    }

    fn load_job_of_message(&mut self, message_id: i64) -> Option<Job> {
        let job = self
            .tables
            .borrow()
            .messages
            .get(&message_id)?
            .job_id
            .clone();
        self.load_job(&job)
    }

    fn live_job_exists(&mut self, id: &str) -> bool {
        self.tables.borrow().live(id)
    }

    fn write_jobs(&mut self, jobs: &mut [&mut Job]) {
        let mut t = self.tables.borrow_mut();
        let now = t.now_ms;
        for j in jobs.iter_mut() {
            if let Some(s) = j.expire_in {
                t.expires.insert(j.id.clone(), now + (s * 1000.0) as i64);
            } else if j.fresh {
                // a new job under an expired one's id replaces it
                t.expires.remove(&j.id);
            }
            j.fresh = false;
            t.jobs.insert(j.id.clone(), j.clone());
        }
    }

    fn running_children(&mut self, parent: &str) -> Vec<String> {
        let t = self.tables.borrow();
        t.jobs
            .values()
            .filter(|j| {
                j.parent.as_ref().is_some_and(|p| p.job_id == parent) && status::running(j.status)
            })
            .map(|j| j.id.clone())
            .collect()
    }

    fn load_acts(&mut self, job_id: &str, keys: &[(String, String)]) -> Vec<(String, String, Act)> {
        self.tables.borrow_mut().act_loads += 1;
        self.read_acts(job_id, keys)
    }

    fn load_acts_of_jobs(&mut self, wanted: &[JobKeys]) -> Vec<(String, String, String, Act)> {
        // one read for all, as the extension's one statement
        self.tables.borrow_mut().act_loads += 1;
        let mut out = vec![];
        for (job_id, keys) in wanted {
            for (a, d, act) in self.read_acts(job_id, keys) {
                out.push((job_id.clone(), a, d, act));
            }
        }
        out
    }

    fn write_acts(&mut self, rows: &[(&ActKey, &Act)]) {
        let mut t = self.tables.borrow_mut();
        for (k, a) in rows {
            let mut a = (*a).clone();
            a.dirty = false;
            t.acts.insert((*k).clone(), a);
        }
    }

    fn write_messages(&mut self, messages: Vec<NewMessage>) -> Vec<(String, String, String, i64)> {
        let mut t = self.tables.borrow_mut();
        messages
            .into_iter()
            .map(|m| {
                let id = t.id();
                let r = (m.job_id.clone(), m.activity_id.clone(), m.dad.clone(), id);
                t.messages.insert(id, m);
                r
            })
            .collect()
    }

    fn enqueue(&mut self, w: &Work, delay_s: f64) -> i64 {
        let mut t = self.tables.borrow_mut();
        let id = t.id();
        let due = t.now_ms + (delay_s * 1000.0) as i64;
        t.engine_stream.insert(id, (due, w.clone()));
        id
    }

    fn cancel_job_work(&mut self, job_id: &str) {
        let mut t = self.tables.borrow_mut();
        t.messages.retain(|_, m| m.job_id != job_id);
        t.engine_stream.retain(|_, (_, w)| w.job_id != job_id);
        t.hooks.retain(|_, h| h[0] != job_id);
        for (k, a) in t.acts.iter_mut() {
            if k.0 == job_id && a.status.is_open() {
                a.status = ActStatus::Cancelled;
            }
        }
    }

    fn remove_timer(&mut self, id: i64) {
        self.tables.borrow_mut().engine_stream.remove(&id);
    }

    fn lock_hook_key(&mut self, _k: HookKey) {}

    fn register_hook(&mut self, k: HookKey, hook: &HookRef) -> Vec<(Value, Status, i64)> {
        let key = (k.app_id.to_string(), k.topic.to_string(), k.key.to_string());
        let mut t = self.tables.borrow_mut();
        t.hooks.insert(key.clone(), hook.clone());
        let now = t.now_ms;
        let (taken, kept): (Vec<Early>, Vec<Early>) = std::mem::take(&mut t.early)
            .into_iter()
            .partition(|e| e.hook_key == key && e.expires_ms > now);
        t.early = kept;
        taken
            .into_iter()
            .map(|e| (e.data, e.status, e.code))
            .collect()
    }

    fn remove_hook(&mut self, job_id: &str, aid: &str, dad: &str) {
        self.tables
            .borrow_mut()
            .hooks
            .retain(|_, h| !(h[0] == job_id && h[2] == aid && h[3] == dad));
    }

    fn find_hook(&mut self, k: HookKey, _lock: bool) -> Option<HookRef> {
        let key = (k.app_id.to_string(), k.topic.to_string(), k.key.to_string());
        self.tables.borrow().hooks.get(&key).cloned()
    }

    fn hook_of_job(&mut self, topic: &str, job_id: &str) -> Option<HookRef> {
        let t = self.tables.borrow();
        t.hooks
            .iter()
            .find(|((_, tp, _), h)| tp == topic && h[0] == job_id)
            .map(|(_, h)| h.clone())
    }

    fn keep_signal(&mut self, k: HookKey, data: Value, status: Status, code: i64, ttl_s: f64) {
        let mut t = self.tables.borrow_mut();
        let expires_ms = t.now_ms + (ttl_s * 1000.0) as i64;
        t.early.push(Early {
            hook_key: (k.app_id.to_string(), k.topic.to_string(), k.key.to_string()),
            data,
            status,
            code,
            expires_ms,
        });
    }

    fn waiting_by_search(&mut self, topic: &str, name: &str, value: &str) -> Vec<String> {
        let t = self.tables.borrow();
        let mut out: Vec<String> = t
            .hooks
            .iter()
            .filter(|((_, tp, _), _)| tp == topic)
            .filter_map(|(_, h)| t.jobs.get(&h[0]))
            .filter(|j| status::running(j.status))
            .filter(|j| j.search.get(name).and_then(Value::as_str) == Some(value))
            .map(|j| j.id.clone())
            .collect();
        out.dedup();
        out
    }

    fn record_stats(&mut self, app_id: &str, key: &str, _bucket: &str, job_id: &str, rows: &[Row]) {
        let mut t = self.tables.borrow_mut();
        for r in rows {
            t.stats.push((
                app_id.to_string(),
                key.to_string(),
                job_id.to_string(),
                r.clone(),
            ));
        }
    }

    fn indexed_jobs(
        &mut self,
        app_id: &str,
        _app: &CompiledApp,
        _graph: &str,
        (name, value): (&str, &str),
        _query: Option<&StatsQuery>,
    ) -> Result<Vec<String>, EngineError> {
        let facet = format!("{name}:{value}");
        let t = self.tables.borrow();
        Ok(t.stats
            .iter()
            .filter(|(a, _, _, r)| a == app_id && r.measure == "index" && r.facet == facet)
            .map(|(_, _, j, _)| j.clone())
            .collect())
    }

    fn announce_work(&mut self, topic: &str) {
        self.tables
            .borrow_mut()
            .work_announced
            .push(topic.to_string());
    }

    fn announce_job(&mut self, channel: String, _topic: &str, job_id: &str, _reference: Value) {
        self.tables
            .borrow_mut()
            .announced
            .push((channel, job_id.to_string()));
    }

    fn wake_at(&mut self, _due_ms: i64) {}
}
