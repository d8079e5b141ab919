//! The engine's port to storage and time: every read and write the step machine makes
//! goes through [`Store`], so the rules in [`crate::step`] and [`crate::activities`] say
//! what happens and a store says how it is kept. The extension's store keeps it in its
//! tables with prepared statements (the engine is generic over its store, so the hot
//! path is monomorphised and calls them directly).
//!
//! The methods take and give the engine's own types (jobs, activity rows, work, hook
//! references), never SQL values, and none of them decides anything: a method that
//! looks for a hook finds it, and the engine decides what the hook's answer means.

use crate::activity::{Act, ActKey};
use crate::answer::Status;
use crate::error::EngineError;
use crate::job::Job;
use crate::options::StatsQuery;
use crate::work::Work;
use hotmesh_manifest::stats::Row;
use hotmesh_manifest::CompiledApp;
use serde_json::Value;
use std::rc::Rc;

/// What loading a job without waiting for its lock found.
pub enum TryLoad {
    Loaded(Box<Job>),
    /// Another transaction holds the job row.
    Busy,
    /// No such job, or it expired.
    Gone,
}

/// A worker message Leg 1 made, not written yet.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub topic: String,
    pub app_id: String,
    pub job_id: String,
    pub gid: String,
    pub activity_id: String,
    pub dad: String,
    pub data: Value,
    pub policy: crate::retry::Policy,
}

/// A hook registration: `[job id, gid, activity id, dad]`.
pub type HookRef = [String; 4];

/// What a hook registers under and a signal looks for: an app's signal topic and the
/// key a hook rule resolved.
#[derive(Debug, Clone, Copy)]
pub struct HookKey<'a> {
    pub app_id: &'a str,
    pub topic: &'a str,
    pub key: &'a str,
}

/// A job and the activity rows `(activity, dad)` wanted of it.
pub type JobKeys = (String, Vec<(String, String)>);

/// Storage and time, as the step machine needs them. A store is used by one transaction
/// (one engine) at a time; what it writes becomes visible when that transaction commits,
/// and so do its announcements.
pub trait Store {
    /// The transaction's start (unix ms): one clock for a whole step, as `now()`.
    fn now_ms(&self) -> i64;
    /// Stops a long loop when the caller cancels (and guards the stack depth).
    fn check_interrupts(&self);

    // apps
    /// The active app whose graph subscribes to `topic`.
    fn active_app(&mut self, topic: &str) -> Result<Rc<CompiledApp>, EngineError>;
    /// The app versions with a hook rule on `topic`: each app's active version first,
    /// then its other versions, newest first.
    fn hook_apps(&mut self, topic: &str) -> Vec<(String, Rc<CompiledApp>)>;

    // jobs
    /// Loads and locks a live job (waiting for its lock).
    fn load_job(&mut self, id: &str) -> Option<Job>;
    /// Loads and locks a live job unless another transaction holds it.
    fn try_load_job(&mut self, id: &str) -> TryLoad;
    /// Loads and locks the job of worker message `message_id`.
    fn load_job_of_message(&mut self, message_id: i64) -> Option<Job>;
    /// Whether a live job has this id.
    fn live_job_exists(&mut self, id: &str) -> bool;
    /// Writes changed jobs back (fresh ones inserted).
    fn write_jobs(&mut self, jobs: &mut [&mut Job]);
    /// The running child jobs of `parent`, in id order.
    fn running_children(&mut self, parent: &str) -> Vec<String>;

    // activity rows
    /// The rows `(activity, dad)` of a job that exist.
    fn load_acts(&mut self, job_id: &str, keys: &[(String, String)]) -> Vec<(String, String, Act)>;
    /// The rows of several jobs at once ([`JobKeys`]);
    /// returns `(job, activity, dad, row)` for those that exist. By default one
    /// [`Store::load_acts`] per job; a store that can read them together should.
    fn load_acts_of_jobs(&mut self, wanted: &[JobKeys]) -> Vec<(String, String, String, Act)> {
        let mut out = vec![];
        for (job_id, keys) in wanted {
            for (a, d, act) in self.load_acts(job_id, keys) {
                out.push((job_id.clone(), a, d, act));
            }
        }
        out
    }
    /// Writes activity rows, each inserted or updated.
    fn write_acts(&mut self, rows: &[(&ActKey, &Act)]);

    // streams
    /// Writes worker messages; returns each one's `(job, activity, dad, id)`.
    fn write_messages(&mut self, messages: Vec<NewMessage>) -> Vec<(String, String, String, i64)>;
    /// Puts work on the engine stream, due in `delay_s` seconds; returns its id.
    fn enqueue(&mut self, w: &Work, delay_s: f64) -> i64;
    /// Removes a job's work that has not run (worker messages, engine stream rows, hook
    /// registrations; rows another transaction holds are left to it) and marks its
    /// open activity rows cancelled.
    fn cancel_job_work(&mut self, job_id: &str);
    /// Removes an engine stream timer, unless another transaction holds it.
    fn remove_timer(&mut self, id: i64);

    // hooks and signals
    /// Serializes, until commit, the signals and hook registrations of one key.
    fn lock_hook_key(&mut self, k: HookKey);
    /// Registers a hook under its key and takes the signals that came first.
    fn register_hook(&mut self, k: HookKey, hook: &HookRef) -> Vec<(Value, Status, i64)>;
    /// Removes the hook registration of an activity.
    fn remove_hook(&mut self, job_id: &str, aid: &str, dad: &str);
    /// The hook registered under a key (`lock`: its registration row locked).
    fn find_hook(&mut self, k: HookKey, lock: bool) -> Option<HookRef>;
    /// The oldest hook on `topic` of a job, locked.
    fn hook_of_job(&mut self, topic: &str, job_id: &str) -> Option<HookRef>;
    /// Keeps a signal that found no hook, for `ttl_s` seconds.
    fn keep_signal(&mut self, k: HookKey, data: Value, status: Status, code: i64, ttl_s: f64);
    /// Jobs with a hook on `topic` whose search field `name` is `value`, still running.
    fn waiting_by_search(&mut self, topic: &str, name: &str, value: &str) -> Vec<String>;

    // stats
    /// Records a new job's stats rows.
    fn record_stats(&mut self, app_id: &str, key: &str, bucket: &str, job_id: &str, rows: &[Row]);
    /// The jobs a trigger's `index` measure filed under `name:value` (with a `query`: in
    /// its key and buckets, scrubbed if it says so; without: anywhere in the app).
    fn indexed_jobs(
        &mut self,
        app_id: &str,
        app: &CompiledApp,
        graph: &str,
        facet: (&str, &str),
        query: Option<&StatsQuery>,
    ) -> Result<Vec<String>, EngineError>;

    // announcements, sent at commit
    /// Workers of `topic` have work.
    fn announce_work(&mut self, topic: &str);
    /// A job completed (or emitted): its reference on `channel`.
    fn announce_job(&mut self, channel: String, topic: &str, job_id: &str, reference: Value);
    /// Engine stream work falls due at `due_ms`: the engine worker must not sleep past it.
    fn wake_at(&mut self, due_ms: i64);
}
