//! One transaction's engine: a queue of work items (activity legs) applied in order,
//! with the jobs and activity rows they touch held in memory and written back once at
//! the end. Children of a finished activity run in the same transaction (no stream
//! hop); past a budget, the rest is handed to the engine stream (`spill`), so one
//! transaction stays small.

use crate::activity::{Act, ActStatus};
use crate::job::Job;
use crate::store::{JobKeys, NewMessage, Store, TryLoad};
use crate::{channel, dad, status};
use hotmesh_manifest::model::{write_job_field, Activity};
use hotmesh_manifest::{CompiledApp, Env, Expr};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

/// Steps one transaction applies before the rest goes to the engine stream.
const BUDGET: usize = 500;

pub use crate::activity::ActKey;
pub use crate::answer::Status;
pub use crate::work::{Failure, Kind, Lock, Work};

pub struct Engine<S: Store> {
    /// Where state is kept and read; all the engine's I/O goes through it.
    pub store: S,
    pub jobs: HashMap<String, Job>,
    pub acts: HashMap<ActKey, Act>,
    /// Activity rows known not to exist.
    absent: HashSet<ActKey>,
    queue: VecDeque<Work>,
    pub now_ms: i64,
    steps: usize,
    /// The earliest due time (unix ms) of the engine stream rows written: the engine
    /// worker is woken at commit if it would sleep past it.
    due_ms: Option<i64>,
    /// Worker messages Leg 1 made, written by [`Engine::flush`] in one statement (an
    /// answer batch starts a next activity per answer).
    pub messages: Vec<NewMessage>,
}

fn key(job: &str, aid: &str, dad: &str) -> ActKey {
    (job.to_string(), aid.to_string(), dad.to_string())
}

impl<S: Store> Engine<S> {
    /// An engine over `store`; its clock reads the store's now.
    pub fn with_store(store: S) -> Engine<S> {
        let now_ms = store.now_ms();
        Engine {
            store,
            jobs: HashMap::new(),
            acts: HashMap::new(),
            absent: HashSet::new(),
            queue: VecDeque::new(),
            now_ms,
            steps: 0,
            due_ms: None,
            messages: Vec::new(),
        }
    }

    pub fn push(&mut self, w: Work) {
        self.queue.push_back(w);
    }

    /// Applies every queued item (spilling past the budget), then writes state back.
    pub fn run(&mut self) {
        self.apply();
        self.flush();
    }

    /// Applies every queued item, spilling what is past the budget to the engine stream;
    /// the state stays in memory until [`Engine::flush`]. Each call has its own budget:
    /// a worker's answer batch applies one answer per call and writes them back once.
    pub fn apply(&mut self) {
        self.steps = 0;
        while let Some(w) = self.queue.pop_front() {
            if self.steps >= BUDGET {
                self.spill(w, 0.0);
                continue;
            }
            self.steps += 1;
            self.store.check_interrupts();
            self.step(w);
        }
    }

    /// Puts a work item on the engine stream, due in `delay` seconds. Returns its id.
    pub fn spill(&mut self, w: Work, delay: f64) -> i64 {
        // a mapped sleep may say anything; a step must not fail on its job's data
        let delay = crate::limits::clamp_seconds(delay);
        let due = self.now_ms + (delay * 1000.0) as i64;
        self.due_ms = Some(self.due_ms.map_or(due, |d| d.min(due)));
        self.store.enqueue(&w, delay)
    }

    pub fn flush(&mut self) {
        // jobs first: a fresh job's row is inserted before rows that name it
        self.flush_jobs(false);
        // then the messages: each activity row keeps its message's id (`wait_token`)
        let messages = std::mem::take(&mut self.messages);
        for (job, aid, dad, id) in self.store.write_messages(messages) {
            if let Some(a) = self.acts.get_mut(&key(&job, &aid, &dad)) {
                a.wait_token = Some(id.to_string());
                a.dirty = true;
            }
        }
        let dirty: Vec<(&ActKey, &Act)> = self.acts.iter().filter(|(_, a)| a.dirty).collect();
        self.store.write_acts(&dirty);
        for a in self.acts.values_mut() {
            a.dirty = false;
        }
        if let Some(due) = self.due_ms {
            self.store.wake_at(due);
        }
    }

    /// Writes the jobs created in this transaction (and with `!only_fresh` every changed
    /// one). A query that looks for jobs by something other than their id needs the
    /// fresh ones written first; otherwise they are written at the end.
    pub fn flush_jobs(&mut self, only_fresh: bool) {
        let mut changed: Vec<&mut Job> = self
            .jobs
            .values_mut()
            .filter(|j| j.fresh || (j.dirty && !only_fresh))
            .collect();
        if changed.is_empty() {
            return;
        }
        self.store.write_jobs(&mut changed);
        for j in changed {
            j.dirty = false;
        }
    }

    /// Locks the job of worker message `message_id` and returns its id (None: the
    /// message or its job is gone).
    pub fn lock_message(&mut self, message_id: i64) -> Option<String> {
        let j = self.store.load_job_of_message(message_id)?;
        let id = j.id.clone();
        self.jobs.entry(id.clone()).or_insert(j);
        Some(id)
    }

    /// Locks the job without waiting (the router's way): `Busy` when another
    /// transaction holds it, to be tried again later.
    pub fn try_lock(&mut self, job_id: &str) -> Lock {
        if self.jobs.contains_key(job_id) {
            return Lock::Held;
        }
        match self.store.try_load_job(job_id) {
            TryLoad::Loaded(j) => {
                self.jobs.insert(job_id.to_string(), *j);
                Lock::Held
            }
            TryLoad::Busy => Lock::Busy,
            TryLoad::Gone => Lock::Gone,
        }
    }

    /// The job, loaded and locked on first use; None if it is gone or `gid` is stale.
    pub fn lock(&mut self, job_id: &str, gid: Option<&str>) -> bool {
        if !self.jobs.contains_key(job_id) {
            match self.store.load_job(job_id) {
                Some(j) => {
                    self.jobs.insert(job_id.to_string(), j);
                }
                None => return false,
            }
        }
        gid.is_none_or(|g| self.jobs[job_id].gid == g)
    }

    pub fn job(&mut self, id: &str) -> &mut Job {
        let j = self.jobs.get_mut(id).expect("job locked before use");
        j.dirty = true;
        j
    }

    pub fn app(&self, job_id: &str) -> Rc<CompiledApp> {
        self.jobs[job_id].app.clone()
    }

    /// Loads the activity rows in `keys` that are not in memory yet.
    fn ensure(&mut self, job_id: &str, keys: Vec<(String, String)>) {
        if self.jobs.get(job_id).is_some_and(|j| j.fresh) {
            // a job created in this transaction has no rows but those in memory
            for (a, d) in keys {
                let k = key(job_id, &a, &d);
                if !self.acts.contains_key(&k) {
                    self.absent.insert(k);
                }
            }
            return;
        }
        let missing = self.unknown(job_id, keys);
        if missing.is_empty() {
            return;
        }
        let found = self.store.load_acts(job_id, &missing);
        let found = found
            .into_iter()
            .map(|(a, d, act)| (job_id.to_string(), a, d, act));
        self.keep_loaded(&[(job_id.to_string(), missing)], found);
    }

    /// The keys of `job_id`'s rows that are neither in memory nor known to be absent.
    fn unknown(&self, job_id: &str, keys: Vec<(String, String)>) -> Vec<(String, String)> {
        keys.into_iter()
            .filter(|(a, d)| {
                let k = key(job_id, a, d);
                !self.acts.contains_key(&k) && !self.absent.contains(&k)
            })
            .collect()
    }

    /// Keeps the rows a load of `asked` found; the others asked for are known absent.
    fn keep_loaded(
        &mut self,
        asked: &[JobKeys],
        found: impl IntoIterator<Item = (String, String, String, Act)>,
    ) {
        for (job_id, keys) in asked {
            for (a, d) in keys {
                self.absent.insert(key(job_id, a, d));
            }
        }
        for (job_id, a, d, act) in found {
            let k = key(&job_id, &a, &d);
            self.absent.remove(&k);
            self.acts.insert(k, act);
        }
    }

    /// An activity row, loaded on first use (None: it does not exist), to read.
    pub fn act(&mut self, job_id: &str, aid: &str, dad: &str) -> Option<&Act> {
        self.ensure(job_id, vec![(aid.to_string(), dad.to_string())]);
        self.acts.get(&key(job_id, aid, dad))
    }

    /// An activity row to change: it is written back at the end (the only way to change
    /// a row, so no change is lost for a flag someone forgot).
    pub fn act_mut(&mut self, job_id: &str, aid: &str, dad: &str) -> Option<&mut Act> {
        self.ensure(job_id, vec![(aid.to_string(), dad.to_string())]);
        let a = self.acts.get_mut(&key(job_id, aid, dad))?;
        a.dirty = true;
        Some(a)
    }

    pub fn put_act(&mut self, job_id: &str, aid: &str, dad: &str, a: Act) {
        let k = key(job_id, aid, dad);
        self.absent.remove(&k);
        self.acts.insert(k, a);
    }

    /// Loads (one query, once) the rows that the maps of `aid` at `dad` may read: its
    /// ancestors' in its dimension, and its own. Returns their keys.
    fn load_context(&mut self, job_id: &str, aid: &str, dad: &str) -> Vec<(String, String)> {
        let keys = context_keys(&self.app(job_id), aid, dad);
        self.ensure(job_id, keys.clone());
        keys
    }

    /// Leg 2's one load ([`answer_context_keys`]), of the rows not in memory yet.
    fn load_answer_context(&mut self, def: &Activity, job_id: &str, d: &str) {
        let keys = answer_context_keys(&self.app(job_id), def, d);
        self.ensure(job_id, keys);
    }

    /// Loads at once the rows that answers to `(job, activity, dad)` will read (each
    /// one's Leg 2 context, as Leg 2 loads it for one answer): an answer
    /// batch reads them in one statement, not one per answer. Jobs not held (locked) by
    /// this engine are passed over; their answers load as they run.
    pub fn preload_answers(&mut self, answers: &[(String, String, String)]) {
        let mut wanted: Vec<JobKeys> = vec![];
        let mut of_job: HashMap<&str, usize> = HashMap::new();
        for (job_id, aid, d) in answers {
            let Some(job) = self.jobs.get(job_id).filter(|j| !j.fresh) else {
                continue;
            };
            let app = job.app.clone();
            let Some(def) = app.activities.get(aid) else {
                continue;
            };
            let missing = self.unknown(job_id, answer_context_keys(&app, def, d));
            let at = *of_job.entry(job_id).or_insert_with(|| {
                wanted.push((job_id.clone(), vec![]));
                wanted.len() - 1
            });
            wanted[at].1.extend(missing);
        }
        for (_, keys) in &mut wanted {
            keys.sort();
            keys.dedup();
        }
        wanted.retain(|(_, keys)| !keys.is_empty());
        if wanted.is_empty() {
            return;
        }
        let found = self.store.load_acts_of_jobs(&wanted);
        self.keep_loaded(&wanted, found);
    }

    /// What maps of activity `aid` at `dad` read: the job's metadata and data, and each
    /// ancestor's state in the dimension of this activity, and its own.
    pub fn context(&mut self, job_id: &str, aid: &str, dad: &str) -> Value {
        let app = self.app(job_id);
        let keys = self.load_context(job_id, aid, dad);
        let job = &self.jobs[job_id];
        let mut ctx = Map::new();
        ctx.insert("metadata".into(), job.metadata());
        ctx.insert("data".into(), Value::Object(job.data.clone()));
        for (a, d) in keys {
            if let Some(act) = self.acts.get(&key(job_id, &a, &d)) {
                let sub = app.activities.get(&a).and_then(|x| x.subtype.as_deref());
                ctx.insert(a.clone(), act.context(&a, &d, sub));
            }
        }
        Value::Object(ctx)
    }

    /// Evaluates an expression of activity `aid` (undefined: None).
    pub fn eval(ctx: &Value, aid: &str, e: &Expr) -> Result<Option<Value>, Failure> {
        Ok(e.eval_json(&Env {
            job: ctx,
            self_id: Some(aid),
        })?)
    }

    pub fn setting(ctx: &Value, def: &Activity, name: &str) -> Result<Option<Value>, Failure> {
        match def.settings.get(name) {
            Some(e) => Self::eval(ctx, &def.id, e),
            None => Ok(None),
        }
    }

    /// The activity's mapped input (`input.maps`; a signal's `signal.maps`), `{}`
    /// without maps or when they map to nothing.
    pub fn input(ctx: &Value, def: &Activity) -> Result<Value, Failure> {
        Ok(match &def.input {
            Some(e) => Self::eval(ctx, &def.id, e)?.unwrap_or_else(|| json!({})),
            None => json!({}),
        })
    }

    /// The activity's `topic`, which must resolve to a non-empty string.
    pub fn topic(ctx: &Value, def: &Activity) -> Result<String, Failure> {
        let v = match &def.topic {
            Some(e) => Self::eval(ctx, &def.id, e)?,
            None => None,
        };
        match v {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            other => Err(format!(
                "{} topic must resolve to a non-empty string, got {}",
                def.kind.name(),
                other.map_or("undefined".to_string(), |v| v.to_string())
            )
            .into()),
        }
    }

    pub fn setting_bool(ctx: &Value, def: &Activity, name: &str) -> Result<bool, Failure> {
        Ok(match Self::setting(ctx, def, name)? {
            Some(Value::Bool(b)) => b,
            Some(Value::String(s)) => s == "true",
            Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
            _ => false,
        })
    }

    pub fn setting_num(ctx: &Value, def: &Activity, name: &str) -> Result<Option<f64>, Failure> {
        Ok(match Self::setting(ctx, def, name)? {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        })
    }

    /// Applies one work item. Stale items (job gone, another generation, job closed,
    /// activity no longer waiting) are dropped: that is what makes redelivery harmless.
    fn step(&mut self, w: Work) {
        if !self.lock(&w.job_id, Some(&w.gid)) {
            return;
        }
        if !status::running(self.jobs[&w.job_id].status) {
            return;
        }
        let app = self.app(&w.job_id);
        let Some(def) = app.activities.get(&w.aid) else {
            return;
        };
        let r = match w.kind {
            Kind::Transition => self.leg1(def, &w),
            Kind::Cycle => self.reenter(def, &w),
            _ => self.leg2(def, &w),
        };
        if let Err(f) = r {
            self.fail(
                def,
                &w.job_id,
                &w.dad,
                f.code,
                json!({"message": f.message, "code": f.code}),
            );
        }
    }

    fn leg1(&mut self, def: &Activity, w: &Work) -> Result<(), Failure> {
        use hotmesh_manifest::model::ActivityKind as K;
        let (jid, aid, d) = (w.job_id.as_str(), w.aid.as_str(), w.dad.as_str());
        // a transition applied twice finds its row: nothing to do (the same query loads
        // what its maps read)
        self.load_context(jid, aid, d);
        if self.acts.contains_key(&key(jid, aid, d)) {
            return Ok(());
        }
        self.put_act(jid, aid, d, Act::new(def.kind.name(), self.now_ms));
        let ctx = self.context(jid, aid, d);
        if let Some(t) = Self::setting_num(&ctx, def, "statusThreshold")? {
            let t = t as i64;
            if t > 0 && self.jobs[jid].status <= t {
                // only this activity and open channels (a signal-in hook) remain: the job
                // is done. The original subtracts T, which is 0 at js == T; below T it
                // would leave a negative status that reads as pending or interrupted, so
                // the status becomes 0 here either way.
                self.job(jid).status = 0;
                if let Some(a) = self.act_mut(jid, aid, d) {
                    a.status = ActStatus::Done;
                }
                self.complete(jid, false);
                return Ok(());
            }
        }
        match def.kind {
            K::Worker => self.worker_leg1(def, w, &ctx),
            K::Await => self.await_leg1(def, w, &ctx),
            K::Hook => self.hook_leg1(def, w, &ctx),
            K::Cycle => self.cycle_leg1(def, w, &ctx),
            K::Signal => self.signal_leg1(def, w, &ctx),
            K::Interrupt => self.interrupt_leg1(def, w, &ctx),
            K::Trigger => Ok(()),
        }
    }

    fn leg2(&mut self, def: &Activity, w: &Work) -> Result<(), Failure> {
        let (jid, aid, d) = (w.job_id.as_str(), w.aid.as_str(), w.dad.as_str());
        self.load_answer_context(def, jid, d);
        let Some(a) = self.act(jid, aid, d) else {
            return Ok(());
        };
        if !a.status.is_open() {
            return Ok(()); // already answered: a duplicate or a loser of a race
        }
        if w.kind != Kind::Signal && a.wait_token != w.token {
            return Ok(()); // an answer to an earlier wait
        }
        match w.kind {
            Kind::Timer => self.hook_timer(def, w),
            Kind::Signal => self.hook_signal(def, w),
            _ => self.answer(def, w),
        }
    }

    /// A worker's response or a child's result: the activity's output, then its
    /// transitions.
    pub fn answer(&mut self, def: &Activity, w: &Work) -> Result<(), Failure> {
        let (jid, aid, d) = (w.job_id.as_str(), w.aid.as_str(), w.dad.as_str());
        if w.status == Status::Error {
            self.fail(def, jid, d, w.code, error_object(&w.data, w.code));
            return Ok(());
        }
        let pending = w.status == Status::Pending;
        let now = self.now_ms;
        let a = self.act_mut(jid, aid, d).expect("checked by leg2");
        a.output = Some(w.data.clone());
        a.status = if pending {
            ActStatus::Pending
        } else {
            ActStatus::Done
        };
        a.updated_ms = now;
        self.output_maps(def, jid, d)?;
        self.finish(def, jid, d, if pending { 202 } else { w.code }, pending)
    }

    /// Merges the activity's `output.maps` into its output data.
    pub fn output_maps(&mut self, def: &Activity, jid: &str, d: &str) -> Result<(), Failure> {
        let Some(e) = &def.output else { return Ok(()) };
        let ctx = self.context(jid, &def.id, d);
        if let Some(Value::Object(m)) = Self::eval(&ctx, &def.id, e)? {
            let a = self.act_mut(jid, &def.id, d).expect("activity in memory");
            let mut out = match a.output.take() {
                Some(Value::Object(o)) => o,
                _ => Map::new(),
            };
            out.extend(m);
            a.output = Some(Value::Object(out));
        }
        Ok(())
    }

    /// Writes job maps into the job: `_x` keys are search fields, `-x` keys markers;
    /// `x[N]` sets entries of object `x` (`hotmesh_manifest::model::JobKey`).
    pub fn job_maps(&mut self, def: &Activity, jid: &str, ctx: &Value) -> Result<(), Failure> {
        if def.job.is_empty() {
            return Ok(());
        }
        let maps = hotmesh_manifest::model::apply_job_maps(
            &def.job,
            &Env {
                job: ctx,
                self_id: Some(&def.id),
            },
        )?;
        let job = self.job(jid);
        for (k, w) in maps {
            // `x[N]` writes only its slots into object `x`, so activities that write
            // different indexes of it add up (`write_job_field`)
            if let Some(name) = k.strip_prefix('_') {
                write_job_field(&mut job.search, name.to_string(), w);
            } else if k.starts_with('-') {
                write_job_field(&mut job.marks, k, w);
            } else {
                write_job_field(&mut job.data, k, w);
            }
        }
        Ok(())
    }

    /// The activity produced its result with `code`: job maps, then every transition
    /// that passes starts a child. `pending` (202): the activity stays open, so its own
    /// count is not released.
    pub fn finish(
        &mut self,
        def: &Activity,
        jid: &str,
        d: &str,
        code: i64,
        pending: bool,
    ) -> Result<(), Failure> {
        let mut ctx = self.context(jid, &def.id, d);
        self.job_maps(def, jid, &ctx)?;
        ctx["data"] = Value::Object(self.jobs[jid].data.clone());
        let children = self.children(def, &ctx, code)?;
        let emit = Self::setting_bool(&ctx, def, "emit")?;
        let persist = Self::setting_bool(&ctx, def, "persist")?;
        // the k-th result of an activity (202s, then the last) starts its children in
        // dimension k, so each answer's branch has its own rows
        let k = match self.act_mut(jid, &def.id, d) {
            Some(a) => {
                a.answers += 1;
                a.answers - 1
            }
            None => 0,
        };
        self.open_at(
            jid,
            &dad::with_index(&dad::child(d), k as u32),
            &children,
            if pending { 0 } else { 1 },
        );
        if self.jobs[jid].status == 0 {
            self.complete(jid, false);
        } else if emit || persist {
            self.complete(jid, true);
            if persist {
                let e = self.jobs[jid].expire;
                self.job(jid).expire_in = expiry(e);
            }
        }
        Ok(())
    }

    /// The ids of the activities whose transition from `def` passes for `code`.
    fn children(&self, def: &Activity, ctx: &Value, code: i64) -> Result<Vec<String>, Failure> {
        let env = Env {
            job: ctx,
            self_id: Some(&def.id),
        };
        let mut out = vec![];
        for t in &def.transitions {
            if t.rule.passes(code, &env)? {
                out.push(t.to.clone());
            }
        }
        Ok(out)
    }

    /// Starts `children` under `d` and applies `children - released` to the status.
    fn open(&mut self, jid: &str, d: &str, children: &[String], released: i64) {
        self.open_at(jid, &dad::child(d), children, released)
    }

    fn open_at(&mut self, jid: &str, child_dad: &str, children: &[String], released: i64) {
        let gid = self.jobs[jid].gid.clone();
        for c in children {
            self.push(Work::transition(jid, &gid, c, child_dad));
        }
        self.job(jid).status += children.len() as i64 - released;
    }

    /// The activity failed with `code`: the error is kept on it, and transitions that
    /// accept the code run. If none does, the job ends with the error.
    pub fn fail(&mut self, def: &Activity, jid: &str, d: &str, code: i64, err: Value) {
        if let Some(a) = self.act_mut(jid, &def.id, d) {
            a.status = ActStatus::Error;
            a.error = Some(err.clone());
        }
        let ctx = self.context(jid, &def.id, d);
        let children = self.children(def, &ctx, code).unwrap_or_default();
        if children.is_empty() {
            let mut e = err;
            e["job_id"] = jid.into();
            if e.get("is_stream_error").is_none()
                && def.kind == hotmesh_manifest::model::ActivityKind::Worker
            {
                e["is_stream_error"] = true.into();
            }
            self.close(jid, e);
            return;
        }
        self.open(jid, d, &children, 1);
        if self.jobs[jid].status == 0 {
            self.complete(jid, false);
        }
    }

    /// Ends a job now with `err` (unhandled error): status 0, its other messages
    /// cancelled, completion announced.
    pub fn close(&mut self, jid: &str, err: Value) {
        let job = self.job(jid);
        job.error = Some(err);
        job.status = 0;
        self.cancel_messages(jid);
        self.complete(jid, false);
    }

    /// Removes the job's messages that have not run (worker messages, timers, hook
    /// registrations) and marks its open activities cancelled.
    pub fn cancel_messages(&mut self, jid: &str) {
        self.messages.retain(|m| m.job_id != jid);
        self.store.cancel_job_work(jid);
        for (k, a) in self.acts.iter_mut() {
            if k.0 == jid && a.status.is_open() {
                a.status = ActStatus::Cancelled;
                a.dirty = true;
            }
        }
        self.queue.retain(|w| w.job_id != jid);
    }

    /// Completion tasks: tell the parent, announce the output, start the expiry. With
    /// `interim` (emit, persist) the job stays open: the parent hears 202.
    pub fn complete(&mut self, jid: &str, interim: bool) {
        let now = self.now_ms;
        let job = self.job(jid);
        job.updated_ms = now;
        if !interim {
            job.completed = true;
            job.expire_in = expiry(job.expire);
        }
        let job = &self.jobs[jid];
        // listeners hear which job and its status; they read the rest (what they may)
        let announced = channel::job_ref(jid, &job.topic, &job.app_id, job.status);
        let publishes = job.graph().publishes.clone();
        if let (Some(p), false) = (job.parent.clone(), job.severed) {
            let (st, code, data) = match &job.error {
                Some(e) if !interim => (
                    Status::Error,
                    e.get("code").and_then(Value::as_i64).unwrap_or(500),
                    e.clone(),
                ),
                _ if interim => (Status::Pending, 202, Value::Object(job.data.clone())),
                _ => (Status::Success, 200, Value::Object(job.data.clone())),
            };
            self.push(Work {
                kind: Kind::Result,
                job_id: p.job_id,
                gid: p.gid,
                aid: p.activity_id,
                dad: p.dad,
                token: Some(jid.to_string()),
                data,
                status: st,
                code,
            });
        }
        let topic = publishes
            .clone()
            .unwrap_or_else(|| self.jobs[jid].topic.clone());
        self.store.announce_job(
            channel::job(publishes.as_deref(), jid),
            &topic,
            jid,
            announced.clone(),
        );
        if let Some(p) = &publishes {
            self.store.announce_job(channel::name(p), p, jid, announced);
        }
    }

    /// Leg 2 of a cycle: the ancestor runs again in dimension `w.dad`, its output the
    /// cycle's input.
    fn reenter(&mut self, def: &Activity, w: &Work) -> Result<(), Failure> {
        let (jid, aid, d) = (w.job_id.as_str(), w.aid.as_str(), w.dad.as_str());
        if self.act(jid, aid, d).is_some() {
            return Ok(());
        }
        let mut a = Act::new(def.kind.name(), self.now_ms);
        a.input = Some(w.data.clone());
        a.output = Some(w.data.clone());
        a.status = ActStatus::Done;
        self.put_act(jid, aid, d, a);
        self.finish(def, jid, d, 200, false)
    }
}

/// The rows that the maps of `aid` at `dad` may read: its ancestors' in its dimension,
/// and its own.
/// What an answer to `def` at `dad` reads: its context, and that of the children its
/// first result would start (their rows, which Leg 1 checks, usually absent). A later
/// result's children, in another dimension, load when they run.
fn answer_context_keys(app: &CompiledApp, def: &Activity, d: &str) -> Vec<(String, String)> {
    let mut keys = context_keys(app, &def.id, d);
    let child = dad::with_index(&dad::child(d), 0);
    for t in &def.transitions {
        keys.extend(context_keys(app, &t.to, &child));
    }
    keys.sort();
    keys.dedup();
    keys
}

fn context_keys(app: &CompiledApp, aid: &str, dad: &str) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = match app.activities.get(aid) {
        Some(def) => def
            .ancestors
            .iter()
            .enumerate()
            .map(|(i, a)| (a.clone(), dad::ancestor(dad, i).to_string()))
            .collect(),
        None => vec![],
    };
    keys.push((aid.to_string(), dad.to_string()));
    keys
}

/// Seconds until a completed job expires (None: never): `expire` or 1 s; <= 0 never.
pub fn expiry(expire: Option<f64>) -> Option<f64> {
    match expire {
        Some(e) if e <= 0.0 || e.is_nan() => None,
        Some(e) => Some(crate::limits::clamp_seconds(e)),
        None => Some(1.0),
    }
}

/// An error answer's data as the error kept on the activity: an object (other values
/// become its `message`) with the `code`.
pub fn error_object(data: &Value, code: i64) -> Value {
    let mut err = match data {
        Value::Object(m) => Value::Object(m.clone()),
        other => json!({ "message": other }),
    };
    err["code"] = code.into();
    err
}

/// A value as a lookup key: strings as they are, anything else as JSON.
pub fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
