//! await: Leg 1 starts a child job of the topic (a graph of the same app version, else
//! the active app that subscribes to it); Leg 2 is the child's result. With
//! `await: false` the parent goes on at once with `{job_id}`.

use crate::activities::trigger::Start;
use crate::job::Parent;
use crate::step::{Engine, Failure, Status, Work};
use crate::store::Store;
use hotmesh_manifest::model::Activity;
use serde_json::{json, Value};

impl<S: Store> Engine<S> {
    pub(crate) fn await_leg1(
        &mut self,
        def: &Activity,
        w: &Work,
        ctx: &Value,
    ) -> Result<(), Failure> {
        let data = Self::input(ctx, def)?;
        let topic = Self::topic(ctx, def)?;
        let wait = match Self::setting(ctx, def, "await")? {
            Some(Value::Bool(b)) => b,
            Some(Value::String(s)) => s != "false",
            _ => true,
        };
        let parent = Parent {
            job_id: w.job_id.clone(),
            gid: w.gid.clone(),
            activity_id: w.aid.clone(),
            dad: w.dad.clone(),
        };
        let own = self.app(&w.job_id);
        let start = Start {
            data: data.clone(),
            parent: Some(parent),
            severed: !wait,
            ..Default::default()
        };
        let child = if own.graph_for(&topic).is_some() {
            let (app_id, version) = (own.id.clone(), own.version.clone());
            self.start_in(own, &app_id, &version, &topic, start)
        } else {
            self.start(&topic, start)
        };
        let child = child.map_err(|e| Failure {
            code: 500,
            message: e.to_string(),
        })?;
        let a = self
            .act_mut(&w.job_id, &w.aid, &w.dad)
            .expect("created by leg1");
        a.input = Some(data);
        a.wait_token = Some(child.clone());
        if !wait {
            let now = crate::ids::compact_time(self.now_ms);
            let answer = Work {
                kind: crate::step::Kind::Result,
                token: Some(child.clone()),
                data: json!({"job_id": child, "jc": now, "ju": now}),
                status: Status::Success,
                code: 200,
                ..w.clone()
            };
            return self.answer(def, &answer);
        }
        Ok(())
    }
}
