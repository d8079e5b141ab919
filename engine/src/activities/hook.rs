//! hook: four flavours chosen when it runs. `sleep` > 0: a timer; a `hooks` rule routes
//! a signal topic to it: it waits for a signal; both: the first to arrive wins (the
//! other is removed in the same transaction, and the job row lock orders the two);
//! neither: a passthrough that maps and goes on.

use crate::activity::ActStatus;
use crate::step::{Engine, Failure, Kind, Status, Work};
use crate::store::Store;
use hotmesh_manifest::model::Activity;
use serde_json::Value;

impl<S: Store> Engine<S> {
    pub(crate) fn hook_leg1(
        &mut self,
        def: &Activity,
        w: &Work,
        ctx: &Value,
    ) -> Result<(), Failure> {
        let (jid, d) = (w.job_id.as_str(), w.dad.as_str());
        let sleep = Self::setting_num(ctx, def, "sleep")?.filter(|s| *s > 0.0 && s.is_finite());
        let topic = def.hook_topic.clone();
        if sleep.is_none() && topic.is_none() {
            let a = self.act_mut(jid, &def.id, d).expect("created by leg1");
            a.status = ActStatus::Done;
            self.output_maps(def, jid, d)?;
            return self.finish(def, jid, d, 200, false);
        }
        if let Some(s) = sleep {
            let timer = Work {
                kind: Kind::Timer,
                token: None,
                data: Value::Null,
                status: Status::Success,
                code: 200,
                ..w.clone()
            };
            let id = self.spill(timer, s);
            let a = self.act_mut(jid, &def.id, d).expect("created by leg1");
            a.wait_token = Some(id.to_string());
        }
        if let Some(t) = topic {
            self.register_hook(def, w, ctx, &t)?;
        }
        Ok(())
    }

    /// The timer fired first: the hook no longer takes signals.
    pub(crate) fn hook_timer(&mut self, def: &Activity, w: &Work) -> Result<(), Failure> {
        let (jid, d) = (w.job_id.as_str(), w.dad.as_str());
        if def.hook_topic.is_some() {
            self.store.remove_hook(jid, &def.id, d);
        }
        let a = self.act_mut(jid, &def.id, d).expect("checked by leg2");
        a.status = ActStatus::Done;
        self.output_maps(def, jid, d)?;
        self.finish(def, jid, d, 200, false)
    }

    /// A signal arrived: its data is `hook.data`. 202 keeps the hook open for more.
    pub(crate) fn hook_signal(&mut self, def: &Activity, w: &Work) -> Result<(), Failure> {
        let (jid, d) = (w.job_id.as_str(), w.dad.as_str());
        let keep_open = w.status == Status::Pending || w.code == 202;
        let now = self.now_ms;
        let a = self.act_mut(jid, &def.id, d).expect("checked by leg2");
        a.hook = Some(w.data.clone());
        a.updated_ms = now;
        let timer = a.wait_token.clone();
        if !keep_open {
            a.status = ActStatus::Done;
            self.store.remove_hook(jid, &def.id, d);
            if let Some(t) = timer.and_then(|t| t.parse::<i64>().ok()) {
                self.store.remove_timer(t);
            }
        } else {
            a.status = ActStatus::Pending;
        }
        if w.status == Status::Error {
            self.fail(
                def,
                jid,
                d,
                w.code,
                crate::step::error_object(&w.data, w.code),
            );
            return Ok(());
        }
        self.output_maps(def, jid, d)?;
        self.finish(def, jid, d, if keep_open { 202 } else { w.code }, keep_open)
    }
}
