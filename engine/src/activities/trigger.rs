//! trigger: creates the job (hotmesh.pub, or an await activity's child). The job id is
//! the `id` option, else the trigger's `stats.id`, else a new guid. The input becomes the
//! trigger's input and output; job maps write the job data; the status starts at the
//! number of children that start (0: the job is complete at once).

use crate::activity::Act;
use crate::activity::ActStatus;
use crate::error::EngineError;
use crate::job::{Job, Parent};
use crate::options::PubOptions;
use crate::step::{key_text, Engine};
use crate::store::Store;
use crate::{dad, ids, status};
use hotmesh_manifest::CompiledApp;
use serde_json::{Map, Value};
use std::rc::Rc;

#[derive(Default)]
pub struct Start {
    pub data: Value,
    /// The caller's options (`hotmesh.pub`'s; none for a child job).
    pub options: PubOptions,
    pub parent: Option<Parent>,
    pub severed: bool,
}

impl<S: Store> Engine<S> {
    /// Starts a job of the active app that subscribes to `topic`.
    pub fn start(&mut self, topic: &str, s: Start) -> Result<String, EngineError> {
        let app = self.store.active_app(topic)?;
        let (app_id, version) = (app.id.clone(), app.version.clone());
        self.start_in(app, &app_id, &version, topic, s)
    }

    pub fn start_in(
        &mut self,
        app: Rc<CompiledApp>,
        app_id: &str,
        version: &str,
        topic: &str,
        s: Start,
    ) -> Result<String, EngineError> {
        let graph = app
            .graph_for(topic)
            .ok_or_else(|| EngineError::UnknownTopic(topic.into()))?;
        let tid = graph.trigger.clone();
        let def = app
            .activities
            .get(&tid)
            .ok_or_else(|| EngineError::Internal(format!("trigger {tid} missing")))?;
        if !s.data.is_object() {
            return Err(EngineError::InvalidArgument {
                name: "data",
                problem: format!("must be a JSON object, got {}", s.data),
            });
        }
        // what the trigger's maps see before the job exists: its own input and output
        let mut ctx = Map::new();
        ctx.insert(
            tid.clone(),
            serde_json::json!({"input": {"data": s.data}, "output": {"data": s.data}}),
        );
        ctx.insert("data".into(), Value::Object(Map::new()));
        let ctx = Value::Object(ctx);
        let fail =
            |e: crate::step::Failure| EngineError::Map(format!("trigger {tid}: {}", e.message));
        let id = match &s.options.id {
            Some(id) => id.clone(),
            None => match Self::setting(&ctx, def, "stats.id").map_err(fail)? {
                Some(Value::Null) | None if def.settings.contains_key("stats.id") => {
                    return Err(EngineError::InvalidArgument {
                        name: "data",
                        problem: format!(
                            "the trigger's stats.id of topic {topic} resolved to nothing"
                        ),
                    });
                }
                Some(v) => key_text(&v),
                None => ids::guid(),
            },
        };
        if !ids::valid_job_id(&id) {
            return Err(EngineError::InvalidArgument {
                name: "id",
                problem: "a job id has 1 to 255 characters and no control characters".into(),
            });
        }
        let key = Self::setting(&ctx, def, "stats.key")
            .map_err(fail)?
            .map(|v| key_text(&v));
        let entity = match s.options.entity.clone() {
            Some(e) => Some(e),
            None => Self::setting(&ctx, def, "entity")
                .map_err(fail)?
                .map(|v| key_text(&v)),
        };
        let expire = match s.options.expire {
            Some(e) => Some(e),
            None => Self::setting_num(&ctx, def, "expire").map_err(fail)?,
        };
        // a chosen id may be taken (a generated one is not); the row itself is written
        // when the step ends (flush_jobs), which settles a race between two starts
        let chosen = s.options.id.is_some() || def.settings.contains_key("stats.id");
        let job = Job {
            id: id.clone(),
            gid: ids::guid(),
            app_id: app_id.to_string(),
            version: version.to_string(),
            topic: topic.to_string(),
            key,
            entity,
            status: 0,
            data: Map::new(),
            search: s.options.search.clone(),
            marks: s.options.marker.clone(),
            error: None,
            parent: s.parent.clone(),
            severed: s.severed,
            expire,
            created_ms: self.now_ms,
            updated_ms: self.now_ms,
            app: app.clone(),
            completed: false,
            expire_in: None,
            dirty: true,
            fresh: true,
            chosen_id: chosen,
        };
        if (chosen && self.store.live_job_exists(&id)) || self.jobs.contains_key(&id) {
            return Err(EngineError::DuplicateJob(id));
        }
        self.jobs.insert(id.clone(), job);
        let mut a = Act::new("trigger", self.now_ms);
        a.input = Some(s.data.clone());
        a.output = Some(s.data.clone());
        a.status = ActStatus::Done;
        self.put_act(&id, &tid, dad::ROOT, a);
        if let Some(p) = s.options.pending {
            let job = self.job(&id);
            job.status = status::PENDING;
            job.expire_in = Some(crate::limits::clamp_seconds(p));
            let r = self.output_maps(def, &id, dad::ROOT).and_then(|_| {
                let ctx = self.context(&id, &tid, dad::ROOT);
                self.job_maps(def, &id, &ctx)
            });
            r.map_err(fail)?;
            self.record_stats(def, &id);
            return Ok(id);
        }
        // status 1 stands for the trigger itself until finish() releases it
        self.job(&id).status = 1;
        self.output_maps(def, &id, dad::ROOT).map_err(fail)?;
        self.finish(def, &id, dad::ROOT, 200, false).map_err(fail)?;
        self.record_stats(def, &id);
        Ok(id)
    }

    /// Records the trigger's `stats.measures` for a new job, in its time bucket, when
    /// the job has a key (the original records nothing without one).
    fn record_stats(&mut self, def: &hotmesh_manifest::model::Activity, id: &str) {
        let Some(stats) = &def.stats else { return };
        let Some(key) = self.jobs[id].key.clone().filter(|k| !k.is_empty()) else {
            return;
        };
        let ctx = self.context(id, &def.id, dad::ROOT);
        let rows = stats.record(&hotmesh_manifest::Env {
            job: &ctx,
            self_id: Some(&def.id),
        });
        let job = &self.jobs[id];
        let bucket = stats.granularity.bucket(job.created_ms);
        let app_id = job.app_id.clone();
        self.store.record_stats(&app_id, &key, &bucket, id, &rows);
    }
}
