//! Signals: hooks register under `topic` + a resolved key (the rule's `expected`,
//! resolved against the whole job context); `hotmesh.signal` resolves the rule's
//! `actual` against the signal data and finds the hook. A signal that comes first is
//! kept (600 s, or `$expire` seconds in its data) and delivered when the hook registers.

use crate::error::EngineError;
use crate::options::StatsQuery;
use crate::status;
use crate::step::{key_text, Engine, Failure, Status, Work};
use crate::store::{HookKey, Store};
use hotmesh_manifest::model::{Activity, HookRule};
use hotmesh_manifest::{CompiledApp, Env};
use serde_json::{json, Value};

/// How long a signal waits for its hook, unless its data says `$expire`.
pub const PENDING_TTL: f64 = 600.0;

/// The rule for hook `aid` on `topic`: the one that names it, else the first.
fn rule<'a>(app: &'a CompiledApp, topic: &str, aid: &str) -> Option<&'a HookRule> {
    let mut rules = app.hooks.iter().filter(|r| r.topic == topic);
    let first = rules.clone().next();
    rules.find(|r| r.to == aid).or(first)
}

/// The key a hook registers under (default: the job id).
fn expected_key<S: Store>(
    rule: Option<&HookRule>,
    ctx: &Value,
    aid: &str,
) -> Result<String, Failure> {
    match rule.and_then(|r| r.expected.as_ref()) {
        Some(e) => match Engine::<S>::eval(ctx, aid, e)? {
            Some(v) if !v.is_null() => Ok(key_text(&v)),
            _ => Err("the hook rule's expected value resolved to nothing"
                .to_string()
                .into()),
        },
        None => Ok(ctx["metadata"]["jid"]
            .as_str()
            .unwrap_or_default()
            .to_string()),
    }
}

/// The key a signal looks for (default: `id` in its data).
fn actual_key(rule: &HookRule, data: &Value) -> Result<Option<String>, EngineError> {
    let ctx = json!({"$self": {"hook": {"data": data}}, "$hook": {"data": data}});
    match &rule.actual {
        Some(e) => e
            .eval_json(&Env {
                job: &ctx,
                self_id: None,
            })
            .map(|v| v.filter(|v| !v.is_null()).map(|v| key_text(&v)))
            .map_err(|e| EngineError::Map(format!("hook rule for {}: {e}", rule.topic))),
        None => Ok(data.get("id").map(key_text)),
    }
}

impl<S: Store> Engine<S> {
    /// Leg 1 of a signal hook: register, then take any signal that came first.
    pub(crate) fn register_hook(
        &mut self,
        def: &Activity,
        w: &Work,
        ctx: &Value,
        topic: &str,
    ) -> Result<(), Failure> {
        let app = self.app(&w.job_id);
        let key = expected_key::<S>(rule(&app, topic, &def.id), ctx, &def.id)?;
        let app_id = app.id.clone();
        // a signal on this key waits until the registration commits (or it waits for the
        // signal's): it then sees the hook, or this sees the signal it kept
        let k = HookKey {
            app_id: &app_id,
            topic,
            key: &key,
        };
        self.store.lock_hook_key(k);
        let hook = [
            w.job_id.clone(),
            w.gid.clone(),
            w.aid.clone(),
            w.dad.clone(),
        ];
        for (data, st, code) in self.store.register_hook(k, &hook) {
            self.push(Work::signal(hook.clone(), data, st, code));
        }
        Ok(())
    }
    /// Delivers a signal on `topic`. Returns the job it reached, or None when no hook
    /// waits for it yet (it is kept for one).
    ///
    /// Lock order, as on every path: the job row first, then its hook registration. The
    /// registration is looked up without a lock, its job locked, and the registration
    /// read again (a timer may have closed the hook meanwhile).
    pub fn signal(
        &mut self,
        topic: &str,
        data: Value,
        st: Status,
        code: i64,
    ) -> Result<Option<String>, EngineError> {
        let owners = self.store.hook_apps(topic);
        if owners.is_empty() {
            return Err(EngineError::NoHookRule(topic.into()));
        }
        let mut keys: Vec<(String, String)> = vec![];
        for (app_id, app) in &owners {
            for r in app.hooks.iter().filter(|r| r.topic == topic) {
                if let Some(k) = actual_key(r, &data)? {
                    // another version's rule may give the same key
                    if !keys.contains(&(app_id.clone(), k.clone())) {
                        keys.push((app_id.clone(), k));
                    }
                }
            }
        }
        let Some(first) = keys.first().cloned() else {
            return Err(EngineError::InvalidArgument {
                name: "data",
                problem: format!("no hook rule of topic {topic} resolves a key from this data"),
            });
        };
        for (app_id, k) in &keys {
            if let Some(hook) = self.find_hook(HookKey {
                app_id,
                topic,
                key: k,
            }) {
                let job_id = hook[0].clone();
                self.push(Work::signal(hook, data, st, code));
                return Ok(Some(job_id));
            }
        }
        // none waits: keep it, under the key lock a registration takes too, then look
        // once more (a registration may have committed since the first look)
        let (app_id, k) = first;
        let hk = HookKey {
            app_id: &app_id,
            topic,
            key: &k,
        };
        self.store.lock_hook_key(hk);
        if let Some(hook) = self.find_hook(hk) {
            let job_id = hook[0].clone();
            self.push(Work::signal(hook, data, st, code));
            return Ok(Some(job_id));
        }
        let ttl = data
            .get("$expire")
            .and_then(crate::retry::seconds)
            .map(crate::limits::clamp_seconds)
            .unwrap_or(PENDING_TTL);
        self.store.keep_signal(hk, data, st, code, ttl);
        Ok(None)
    }

    /// The hook registered under `key`, with its job locked: `[job_id, gid, activity,
    /// dad]`. None when there is none (or it closed while its job was locked).
    fn find_hook(&mut self, k: HookKey) -> Option<[String; 4]> {
        for _ in 0..3 {
            let seen = self.store.find_hook(k, false)?;
            if !self.lock(&seen[0], None) {
                return None;
            }
            let now = self.store.find_hook(k, true)?;
            if now == seen {
                return Some(now);
            }
            // the key moved to another job while this one was locked: follow it
        }
        None
    }

    /// Signals every job indexed under `key_name:key_value` (a trigger's `index`
    /// measure) and every job waiting on `topic` whose search field `key_name` is
    /// `key_value`. With a `query` (a signal activity's resolver), the index is read
    /// where the original reads it: under the key that `query.data` resolves through the
    /// trigger of the hook's graph, in the query's buckets (and `scrub` removes what was
    /// read); without one, under any key and bucket of the hook's app. Each job gets
    /// `data` with `id`: its job id. Returns the jobs reached (a job whose hook has not
    /// registered yet is not reached: its signal is kept for the hook, as any early one).
    pub fn signal_indexed(
        &mut self,
        topic: &str,
        data: &Value,
        key_name: &str,
        key_value: &str,
        query: Option<&StatsQuery>,
    ) -> Result<Vec<String>, EngineError> {
        let owners = self.store.hook_apps(topic);
        let Some((app_id, app)) = owners.first() else {
            return Err(EngineError::NoHookRule(topic.into()));
        };
        let graph = match query {
            // the graph of the hook the topic's rule reaches: its trigger indexed the jobs
            Some(_) => app
                .hooks
                .iter()
                .find(|r| r.topic == topic)
                .and_then(|r| app.activities.get(&r.to))
                .map(|a| app.graphs[a.graph].subscribes.clone())
                .ok_or_else(|| EngineError::NoHookRule(topic.into()))?,
            None => String::new(),
        };
        let mut jobs =
            self.store
                .indexed_jobs(app_id, app, &graph, (key_name, key_value), query)?;
        jobs.extend(self.store.waiting_by_search(topic, key_name, key_value));
        // one order for every caller: the job locks are taken in id order
        jobs.sort();
        jobs.dedup();
        let mut reached = vec![];
        for job_id in jobs {
            let mut d = data.clone();
            if let Value::Object(m) = &mut d {
                m.insert("id".into(), job_id.clone().into());
            }
            // the job first, then its registration, as on every path; an ended job
            // (an index outlives it) is left alone
            if !self.lock(&job_id, None) || !status::running(self.jobs[&job_id].status) {
                continue;
            }
            let hook = self.store.hook_of_job(topic, &job_id);
            match hook {
                Some(hook) => {
                    self.push(Work::signal(hook, d, Status::Success, 200));
                    reached.push(job_id);
                }
                // not registered yet: by key, as any signal (kept until it registers)
                None => reached.extend(self.signal(topic, d, Status::Success, 200)?),
            }
        }
        Ok(reached)
    }
}
