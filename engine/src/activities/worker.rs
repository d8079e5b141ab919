//! worker: Leg 1 puts the mapped input on the worker stream of its topic; Leg 2 is the
//! worker's answer (hotmesh.respond), handled by `Engine::answer`.

use crate::retry::Policy;
use crate::step::{Engine, Failure, Work};
use crate::store::NewMessage;
use crate::store::Store;
use hotmesh_manifest::model::Activity;
use serde_json::Value;

impl<S: Store> Engine<S> {
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
        // written at the end of the step, with the other messages of the batch; the
        // activity row gets the message's id then
        self.messages.push(NewMessage {
            topic: topic.clone(),
            app_id,
            job_id: w.job_id.clone(),
            gid: w.gid.clone(),
            activity_id: w.aid.clone(),
            dad: w.dad.clone(),
            data: input.clone(),
            policy,
        });
        self.store.announce_work(&topic);
        let a = self
            .act_mut(&w.job_id, &w.aid, &w.dad)
            .expect("created by leg1");
        a.input = Some(input);
        a.wait_token = None;
        Ok(())
    }
}
