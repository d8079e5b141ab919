//! An activity's state in one dimension (one row of `hotmesh.activities`), and the
//! status it moves through: waiting, then pending (a 202 stream or an open hook) and
//! done, error or cancelled.

use crate::ids;
use serde_json::{json, Value};

/// (job id, activity id, dad): an activity row's key.
pub type ActKey = (String, String, String);

/// Where an activity is in its life.
///
/// ```
/// use hotmesh_engine::activity::ActStatus;
/// assert_eq!(ActStatus::parse("pending"), ActStatus::Pending);
/// assert!(ActStatus::Pending.is_open() && !ActStatus::Pending.is_finished());
/// assert!(ActStatus::Cancelled.is_finished());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActStatus {
    /// Its first leg ran; it waits for a worker, a child, a timer or a signal.
    Waiting,
    /// It took a partial result (202) or keeps its hook open: more may come.
    Pending,
    Done,
    /// It failed (its error leg ran).
    Error,
    /// Its job ended (interrupted or done) while it still waited.
    Cancelled,
}

impl ActStatus {
    /// As the `status` column spells it.
    pub fn name(self) -> &'static str {
        match self {
            ActStatus::Waiting => "waiting",
            ActStatus::Pending => "pending",
            ActStatus::Done => "done",
            ActStatus::Error => "error",
            ActStatus::Cancelled => "cancelled",
        }
    }

    /// Reads the `status` column. A value the engine never writes (a row someone
    /// changed by hand) reads as done: nothing reopens it.
    pub fn parse(s: &str) -> ActStatus {
        match s {
            "waiting" => ActStatus::Waiting,
            "pending" => ActStatus::Pending,
            "error" => ActStatus::Error,
            "cancelled" => ActStatus::Cancelled,
            _ => ActStatus::Done,
        }
    }

    /// Still takes answers: waiting or pending.
    pub fn is_open(self) -> bool {
        matches!(self, ActStatus::Waiting | ActStatus::Pending)
    }

    /// Ended: done, error or cancelled (the row's `finished_at` is set).
    pub fn is_finished(self) -> bool {
        !self.is_open()
    }
}

/// An activity's state in one dimension.
#[derive(Debug, Clone)]
pub struct Act {
    pub kind: &'static str,
    pub status: ActStatus,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub hook: Option<Value>,
    pub error: Option<Value>,
    pub wait_token: Option<String>,
    pub iterations: i32,
    /// Results taken so far; the children of the k-th go under dimension k.
    pub answers: i32,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub dirty: bool,
}

impl Act {
    pub fn new(kind: &'static str, now_ms: i64) -> Act {
        Act {
            kind,
            status: ActStatus::Waiting,
            input: None,
            output: None,
            hook: None,
            error: None,
            wait_token: None,
            iterations: 0,
            answers: 0,
            created_ms: now_ms,
            updated_ms: now_ms,
            dirty: true,
        }
    }

    /// `{input: {data}, output: {data, metadata}, hook: {data}}`, what maps read.
    pub fn context(&self, aid: &str, dad: &str, subtype: Option<&str>) -> Value {
        let mut meta = json!({
            "aid": aid,
            "atp": self.kind,
            "dad": dad,
            "ac": ids::compact_time(self.created_ms),
            "au": ids::compact_time(self.updated_ms),
        });
        if let Some(s) = subtype {
            meta["stp"] = s.into();
        }
        if let Some(e) = &self.error {
            meta["err"] = e.to_string().into();
            meta["$error"] = e.clone();
        }
        let mut out = json!({"output": {"metadata": meta}});
        if let Some(d) = &self.output {
            out["output"]["data"] = d.clone();
        }
        if let Some(d) = &self.input {
            out["input"] = json!({ "data": d });
        }
        if let Some(d) = &self.hook {
            out["hook"] = json!({ "data": d });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_activity_status_reads_back_from_its_name() {
        for s in [
            ActStatus::Waiting,
            ActStatus::Pending,
            ActStatus::Done,
            ActStatus::Error,
            ActStatus::Cancelled,
        ] {
            assert_eq!(ActStatus::parse(s.name()), s);
        }
        assert_eq!(ActStatus::parse("edited by hand"), ActStatus::Done);
    }

    #[test]
    fn a_new_activity_waits_and_is_to_be_written() {
        let a = Act::new("worker", 1_000);
        assert_eq!(a.status, ActStatus::Waiting);
        assert!(a.dirty && a.status.is_open());
    }

    #[test]
    fn the_context_holds_what_maps_read() {
        let mut a = Act::new("hook", 0);
        a.input = Some(json!({"i": 1}));
        a.output = Some(json!({"o": 2}));
        a.hook = Some(json!({"h": 3}));
        a.error = Some(json!({"code": 500}));
        let c = a.context("a1", ",0", Some("sleep"));
        assert_eq!(c["input"]["data"]["i"], 1);
        assert_eq!(c["output"]["data"]["o"], 2);
        assert_eq!(c["hook"]["data"]["h"], 3);
        let m = &c["output"]["metadata"];
        assert_eq!(
            (m["aid"].as_str(), m["atp"].as_str(), m["stp"].as_str()),
            (Some("a1"), Some("hook"), Some("sleep"))
        );
        assert_eq!(m["$error"]["code"], 500);
        assert_eq!(m["err"], "{\"code\":500}");
    }
}
