//! interrupt: ends a job now. Without `target` it interrupts its own job (and has no
//! children); with one, it interrupts that job and goes on to its own children. The
//! same code serves hotmesh.interrupt.

use crate::activity::ActStatus;
use crate::error::EngineError;
use crate::options::InterruptOptions;
use crate::status;
use crate::step::{Engine, Failure, Work};
use crate::store::Store;
use hotmesh_manifest::model::Activity;
use serde_json::{json, Value};

impl<S: Store> Engine<S> {
    /// Interrupts job `jid`: status minus a billion, the error recorded (unless `throw`
    /// is false), its pending messages cancelled, the parent told (410) and waiters
    /// woken. Returns false when it had already ended (and `suppress` was given).
    pub fn interrupt_job(&mut self, jid: &str, o: &InterruptOptions) -> Result<bool, EngineError> {
        // `descend` recurses down chains of child jobs, as deep as they nest
        self.store.check_interrupts();
        if !self.lock(jid, None) {
            return Err(EngineError::JobNotFound(jid.into()));
        }
        if !status::running(self.jobs[jid].status) {
            return if o.suppress {
                Ok(false)
            } else {
                Err(EngineError::JobCompleted(jid.into()))
            };
        }
        let job = self.job(jid);
        job.status += status::INTERRUPT;
        if o.throw {
            let message = o
                .reason
                .clone()
                .unwrap_or_else(|| format!("job [{jid}] interrupted"));
            job.error = Some(json!({"code": o.code, "message": message, "job_id": jid}));
        }
        if o.expire.is_some() {
            job.expire = o.expire;
        }
        self.cancel_messages(jid);
        if o.descend {
            // children started in this transaction are found too
            self.flush_jobs(true);
            for c in self.store.running_children(jid) {
                let o = InterruptOptions {
                    suppress: true,
                    reason: Some(format!("parent job [{jid}] interrupted")),
                    ..o.clone()
                };
                self.interrupt_job(&c, &o)?;
            }
        }
        self.complete(jid, false);
        Ok(true)
    }

    pub(crate) fn interrupt_leg1(
        &mut self,
        def: &Activity,
        w: &Work,
        ctx: &Value,
    ) -> Result<(), Failure> {
        let (jid, d) = (w.job_id.as_str(), w.dad.as_str());
        let target = match Self::setting(ctx, def, "target")? {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            _ => None,
        };
        let o = InterruptOptions {
            reason: Self::setting(ctx, def, "reason")?.and_then(|v| v.as_str().map(str::to_string)),
            throw: !matches!(Self::setting(ctx, def, "throw")?, Some(Value::Bool(false))),
            code: Self::setting_num(ctx, def, "code")?
                .map(|c| c as i64)
                .unwrap_or(410),
            expire: Self::setting_num(ctx, def, "expire")?,
            suppress: true,
            descend: Self::setting_bool(ctx, def, "descend")?,
        };
        let a = self.act_mut(jid, &def.id, d).expect("created by leg1");
        a.status = ActStatus::Done;
        match target.filter(|t| t != jid) {
            None => {
                // its own job: end it, and release this activity's count
                self.interrupt_job(jid, &o).map_err(|e| Failure {
                    code: 500,
                    message: e.to_string(),
                })?;
                self.job(jid).status -= 1;
                Ok(())
            }
            Some(t) => {
                match self.interrupt_job(&t, &o) {
                    Ok(_) | Err(EngineError::JobNotFound(_)) => {}
                    Err(e) => {
                        return Err(Failure {
                            code: 500,
                            message: e.to_string(),
                        })
                    }
                }
                self.output_maps(def, jid, d)?;
                self.finish(def, jid, d, 200, false)
            }
        }
    }
}
