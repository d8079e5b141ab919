//! cycle: sends its mapped input to its ancestor, which runs again in a new dimension
//! (`,…,k`), so the iteration's descendants get fresh rows and earlier ones stay. The
//! cycle's own count passes to the ancestor's re-entry (status delta 0).

use crate::activity::ActStatus;
use crate::dad;
use crate::step::{Engine, Failure, Kind, Status, Work};
use crate::store::Store;
use hotmesh_manifest::model::Activity;
use serde_json::Value;

/// Iterations allowed per ancestor and dimension (the original's HMSH_MAX_CYCLES).
pub const MAX_CYCLES: i32 = 10_000;

impl<S: Store> Engine<S> {
    pub(crate) fn cycle_leg1(
        &mut self,
        def: &Activity,
        w: &Work,
        ctx: &Value,
    ) -> Result<(), Failure> {
        let data = Self::input(ctx, def)?;
        let app = self.app(&w.job_id);
        let ancestor = def.ancestor.clone().unwrap_or_default();
        // The ancestor's depth is the length of its own ancestor list, whatever path
        // reached this cycle: a cycle may be the target of several activities at different
        // depths (the original's durable collator), but deploy only accepts an ancestor
        // that is a common ancestor of the cycle, at the same place on every path to it.
        // Such an ancestor is reached by a single path, so its list is exact, and its row
        // is the prefix of this cycle's address at that depth.
        let depth = app
            .activities
            .get(&ancestor)
            .map(|a| a.ancestors.len())
            .ok_or_else(|| format!("cycle ancestor {ancestor} not found"))?;
        // the ancestor's first dimension in this branch keeps the iteration count
        let base = dad::with_index(dad::ancestor(&w.dad, depth), 0);
        let n = {
            let Some(a) = self.act_mut(&w.job_id, &ancestor, &base) else {
                return Err(format!("cycle ancestor {ancestor} has not run at {base}").into());
            };
            if a.iterations >= MAX_CYCLES {
                return Err(
                    format!("cycle limit reached: {ancestor} ran {MAX_CYCLES} iterations").into(),
                );
            }
            a.iterations += 1;
            a.iterations
        };
        let me = self
            .act_mut(&w.job_id, &w.aid, &w.dad)
            .expect("created by leg1");
        me.input = Some(data.clone());
        me.status = ActStatus::Done;
        self.push(Work {
            kind: Kind::Cycle,
            job_id: w.job_id.clone(),
            gid: w.gid.clone(),
            aid: ancestor,
            dad: dad::with_index(&base, n as u32),
            token: None,
            data,
            status: Status::Success,
            code: 200,
        });
        Ok(())
    }
}
