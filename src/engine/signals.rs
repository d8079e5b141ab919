//! Signals: hooks register under `topic` + a resolved key (the rule's `expected`,
//! resolved against the whole job context); `hotmesh.signal` resolves the rule's
//! `actual` against the signal data and finds the hook. A signal that comes first is
//! kept (600 s, or `$expire` seconds in its data) and delivered when the hook registers.

use super::apps;
use super::db;
use super::stats;
use super::step::{key_text, Engine, Failure, Status, Work};
use crate::error::HotmeshError;
use hotmesh_engine::status;
use hotmesh_manifest::manifest::{Activity, HookRule};
use hotmesh_manifest::{CompiledApp, Env};
use pgrx::JsonB;
use serde_json::{json, Value};
use std::rc::Rc;

/// How long a signal waits for its hook, unless its data says `$expire`.
pub const PENDING_TTL: f64 = 600.0;

/// The rule for hook `aid` on `topic`: the one that names it, else the first.
fn rule<'a>(app: &'a CompiledApp, topic: &str, aid: &str) -> Option<&'a HookRule> {
    let mut rules = app.hooks.iter().filter(|r| r.topic == topic);
    let first = rules.clone().next();
    rules.find(|r| r.to == aid).or(first)
}

/// The key a hook registers under (default: the job id).
fn expected_key(rule: Option<&HookRule>, ctx: &Value, aid: &str) -> Result<String, Failure> {
    match rule.and_then(|r| r.expected.as_ref()) {
        Some(e) => match Engine::eval(ctx, aid, e)? {
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
fn actual_key(rule: &HookRule, data: &Value) -> Result<Option<String>, HotmeshError> {
    let ctx = json!({"$self": {"hook": {"data": data}}, "$hook": {"data": data}});
    match &rule.actual {
        Some(e) => e
            .eval_json(&Env {
                job: &ctx,
                self_id: None,
            })
            .map(|v| v.filter(|v| !v.is_null()).map(|v| key_text(&v)))
            .map_err(|e| HotmeshError::Map(format!("hook rule for {}: {e}", rule.topic))),
        None => Ok(data.get("id").map(key_text)),
    }
}

impl Engine {
    /// Leg 1 of a signal hook: register, then take any signal that came first.
    pub(crate) fn register_hook(
        &mut self,
        def: &Activity,
        w: &Work,
        ctx: &Value,
        topic: &str,
    ) -> Result<(), Failure> {
        let app = self.app(&w.job_id);
        let key = expected_key(rule(&app, topic, &def.id), ctx, &def.id)?;
        let app_id = app.id.clone();
        // a signal on this key waits until the registration commits (or it waits for the
        // signal's): it then sees the hook, or this sees the signal it kept
        lock_key(&app_id, topic, &key);
        db::exec(
            "INSERT INTO hotmesh.signal_hooks (app_id, topic, key, job_id, gid, activity_id, dad, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'infinity')
             ON CONFLICT (app_id, topic, key) DO UPDATE
                SET job_id = excluded.job_id, gid = excluded.gid, activity_id = excluded.activity_id, dad = excluded.dad,
                    created_at = now(), expires_at = excluded.expires_at",
            &[app_id.as_str().into(), topic.into(), key.as_str().into(), w.job_id.as_str().into(), w.gid.as_str().into(), def.id.as_str().into(), w.dad.as_str().into()],
        );
        let early: Vec<(Value, String, i32)> = db::query(
            "DELETE FROM hotmesh.pending_signals WHERE id IN (
                 SELECT id FROM hotmesh.pending_signals
                  WHERE app_id = $1 AND topic = $2 AND key = $3 AND expires_at > now() ORDER BY id FOR UPDATE)
             RETURNING data, status, code",
            &[app_id.as_str().into(), topic.into(), key.as_str().into()],
            |t| {
                let mut v = vec![];
                for r in t {
                    v.push((db::json(r.get::<JsonB>(1)?).unwrap_or(Value::Null), r.get::<String>(2)?.unwrap_or_default(), r.get::<i32>(3)?.unwrap_or(200)));
                }
                Ok(v)
            },
        );
        for (data, st, code) in early {
            let hook = [
                w.job_id.clone(),
                w.gid.clone(),
                w.aid.clone(),
                w.dad.clone(),
            ];
            let st = Status::parse(&st).unwrap_or(Status::Success);
            self.push(Work::signal(hook, data, st, code as i64));
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
    ) -> Result<Option<String>, HotmeshError> {
        let owners = hook_apps(topic);
        if owners.is_empty() {
            return Err(HotmeshError::NoHookRule(topic.into()));
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
            return Err(HotmeshError::InvalidArgument {
                name: "data",
                problem: format!("no hook rule of topic {topic} resolves a key from this data"),
            });
        };
        for (app_id, k) in &keys {
            if let Some(hook) = self.find_hook(app_id, topic, k) {
                let job_id = hook[0].clone();
                self.push(Work::signal(hook, data, st, code));
                return Ok(Some(job_id));
            }
        }
        // none waits: keep it, under the key lock a registration takes too, then look
        // once more (a registration may have committed since the first look)
        let (app_id, k) = first;
        lock_key(&app_id, topic, &k);
        if let Some(hook) = self.find_hook(&app_id, topic, &k) {
            let job_id = hook[0].clone();
            self.push(Work::signal(hook, data, st, code));
            return Ok(Some(job_id));
        }
        let ttl = data
            .get("$expire")
            .and_then(hotmesh_engine::retry::seconds)
            .map(hotmesh_engine::limits::clamp_seconds)
            .unwrap_or(PENDING_TTL);
        db::exec(
            "INSERT INTO hotmesh.pending_signals (app_id, topic, key, data, status, code, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))",
            &[app_id.as_str().into(), topic.into(), k.as_str().into(), JsonB(data).into(), st.name().into(), (code as i32).into(), ttl.into()],
        );
        Ok(None)
    }

    /// The hook registered under `key`, with its job locked: `[job_id, gid, activity,
    /// dad]`. None when there is none (or it closed while its job was locked).
    fn find_hook(&mut self, app_id: &str, topic: &str, key: &str) -> Option<[String; 4]> {
        for _ in 0..3 {
            let seen = db::texts::<4>(
                "SELECT job_id, gid, activity_id, dad FROM hotmesh.signal_hooks
                  WHERE app_id = $1 AND topic = $2 AND key = $3 AND expires_at > now()",
                &[app_id.into(), topic.into(), key.into()],
            )
            .pop()?;
            if !self.lock(&seen[0], None) {
                return None;
            }
            let now = db::texts::<4>(
                "SELECT job_id, gid, activity_id, dad FROM hotmesh.signal_hooks
                  WHERE app_id = $1 AND topic = $2 AND key = $3 AND expires_at > now() FOR UPDATE",
                &[app_id.into(), topic.into(), key.into()],
            )
            .pop()?;
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
        query: Option<&stats::Query>,
    ) -> Result<Vec<String>, HotmeshError> {
        let owners = hook_apps(topic);
        let Some((app_id, app)) = owners.first() else {
            return Err(HotmeshError::NoHookRule(topic.into()));
        };
        let mut jobs: Vec<String> = match query {
            Some(q) => {
                // the graph of the hook the topic's rule reaches: its trigger indexed the jobs
                let graph = app
                    .hooks
                    .iter()
                    .find(|r| r.topic == topic)
                    .and_then(|r| app.activities.get(&r.to))
                    .map(|a| app.graphs[a.graph].subscribes.clone())
                    .ok_or_else(|| HotmeshError::NoHookRule(topic.into()))?;
                if stats::records(app, &graph) {
                    let scope = stats::scope(app, &graph, q, self.now_ms)?;
                    let facet = format!("{key_name}:{key_value}");
                    let found: Vec<String> = stats::ids(&scope, &facet)
                        .into_iter()
                        .map(|(_, j)| j)
                        .collect();
                    if q.scrub {
                        stats::scrub(&scope, &facet);
                    }
                    found
                } else {
                    // its trigger indexes nothing: the search fields alone
                    vec![]
                }
            }
            None => stats::indexed_anywhere(app_id, key_name, key_value),
        };
        jobs.extend(
            db::texts::<1>(
                "SELECT DISTINCT h.job_id FROM hotmesh.signal_hooks h JOIN hotmesh.jobs j ON j.id = h.job_id
                  WHERE h.topic = $1 AND j.search @> jsonb_build_object($2::text, $3::text) AND j.status > 0",
                &[topic.into(), key_name.into(), key_value.into()],
            )
            .into_iter()
            .map(|[j]| j),
        );
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
            let hook = db::texts::<4>(
                "SELECT job_id, gid, activity_id, dad FROM hotmesh.signal_hooks
                  WHERE topic = $1 AND job_id = $2 AND expires_at > now() ORDER BY created_at, key LIMIT 1 FOR UPDATE",
                &[topic.into(), job_id.as_str().into()],
            )
            .pop();
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

/// Serializes, until commit, the signals and hook registrations of one key: a signal
/// that finds no hook and a registration that finds no early signal cannot both miss
/// each other.
fn lock_key(app_id: &str, topic: &str, key: &str) {
    db::exec(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2 || chr(31) || $3, 1213028682))",
        &[app_id.into(), topic.into(), key.into()],
    );
}

/// The app versions with a hook rule on `topic`: each app's active version first (its
/// rule decides the key a signal waits under), then its other versions, newest first,
/// so a job still running on an older version is found under that version's rule.
fn hook_apps(topic: &str) -> Vec<(String, Rc<CompiledApp>)> {
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
