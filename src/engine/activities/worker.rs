//! worker: Leg 1 puts the mapped input on the worker stream of its topic; Leg 2 is the
//! worker's answer (hotmesh.respond), handled by `Engine::answer`.

use crate::engine::db;
use crate::engine::notify;
use crate::engine::step::{Engine, Failure, Work};
use hotmesh_engine::channel;
use hotmesh_engine::retry::Policy;
use hotmesh_manifest::manifest::Activity;
use pgrx::JsonB;
use serde_json::Value;

impl Engine {
    pub(crate) fn worker_leg1(
        &mut self,
        def: &Activity,
        w: &Work,
        ctx: &Value,
    ) -> Result<(), Failure> {
        let input = Self::input(ctx, def)?;
        let topic = Self::topic(ctx, def)?;
        let policy = Policy::from_config(def.config.get("retry"))?;
        let app_id = self.jobs[&w.job_id].app_id.clone();
        let id = db::one::<i64>(
            "INSERT INTO hotmesh.worker_stream (topic, app_id, job_id, gid, activity_id, dad, data, max_attempts,
                                                backoff_coefficient, maximum_interval, initial_interval, retry_codes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            &[
                topic.as_str().into(),
                app_id.into(),
                w.job_id.as_str().into(),
                w.gid.as_str().into(),
                w.aid.as_str().into(),
                w.dad.as_str().into(),
                JsonB(input.clone()).into(),
                policy.max_attempts.into(),
                policy.backoff_coefficient.into(),
                policy.maximum_interval.into(),
                policy.initial_interval.into(),
                policy.codes.map(|c| JsonB(Value::Object(c))).into(),
            ],
        )
        .unwrap_or(0);
        notify::text(channel::work(&topic), &topic);
        let a = self
            .act(&w.job_id, &w.aid, &w.dad)
            .expect("created by leg1");
        a.input = Some(input);
        a.wait_token = Some(id.to_string());
        a.dirty = true;
        Ok(())
    }
}
