//! signal: sends its `signal.maps` payload to the hook(s) of its topic, in the same
//! transaction, then goes on to its own children. `subtype: one` (default) reaches one
//! hook by key; `all` reaches every job indexed under `key_name:key_value` by the
//! `index` measure of the trigger of the graph the hook belongs to (its `resolver.maps`
//! give `{data}` to resolve that trigger's `stats.key`, and the time window), and every
//! waiting job whose search field `key_name` is `key_value`. Each gets the payload with
//! `id`: its job id.

use crate::activity::ActStatus;
use crate::options::StatsQuery;
use crate::step::{key_text, Engine, Failure, Status, Work};
use crate::store::Store;
use hotmesh_manifest::model::Activity;
use serde_json::{json, Value};

impl<S: Store> Engine<S> {
    pub(crate) fn signal_leg1(
        &mut self,
        def: &Activity,
        w: &Work,
        ctx: &Value,
    ) -> Result<(), Failure> {
        let (jid, d) = (w.job_id.as_str(), w.dad.as_str());
        let payload = Self::input(ctx, def)?;
        let topic = Self::topic(ctx, def)?;
        let code = Self::setting_num(ctx, def, "code")?
            .map(|c| c as i64)
            .unwrap_or(200);
        let st = match Self::setting(ctx, def, "status")? {
            Some(Value::String(s)) => Status::parse(&s).unwrap_or(Status::Success),
            _ if code == 202 => Status::Pending,
            _ => Status::Success,
        };
        let err = |e: crate::error::EngineError| Failure {
            code: 500,
            message: e.to_string(),
        };
        let reached = if def.subtype.as_deref() == Some("all") {
            let name = Self::setting(ctx, def, "key_name")?
                .map(|v| key_text(&v))
                .unwrap_or_default();
            let value = Self::setting(ctx, def, "key_value")?
                .map(|v| key_text(&v))
                .unwrap_or_default();
            let query = StatsQuery::resolver(
                Self::setting(ctx, def, "resolver")?,
                Self::setting_bool(ctx, def, "scrub")?,
            )
            .map_err(|e| Failure {
                code: 500,
                message: e.to_string(),
            })?;
            json!(self
                .signal_indexed(&topic, &payload, &name, &value, Some(&query))
                .map_err(err)?)
        } else {
            json!(self
                .signal(&topic, payload.clone(), st, code)
                .map_err(err)?)
        };
        let a = self.act_mut(jid, &def.id, d).expect("created by leg1");
        a.input = Some(payload);
        a.output = Some(json!({ "signaled": reached }));
        a.status = ActStatus::Done;
        self.output_maps(def, jid, d)?;
        self.finish(def, jid, d, 200, false)
    }
}
