//! A job as the engine holds it during one transaction: its row's fields, the app it
//! runs on, and what the transaction changed (written back once, at the end).

use crate::ids;
use hotmesh_manifest::CompiledApp;
use serde_json::{json, Map, Value};
use std::rc::Rc;

#[derive(Debug, Clone)]
pub struct Parent {
    pub job_id: String,
    pub gid: String,
    pub activity_id: String,
    pub dad: String,
}

#[derive(Clone)]
pub struct Job {
    pub id: String,
    pub gid: String,
    pub app_id: String,
    pub version: String,
    pub topic: String,
    pub key: Option<String>,
    pub entity: Option<String>,
    pub status: i64,
    pub data: Map<String, Value>,
    pub search: Map<String, Value>,
    pub marks: Map<String, Value>,
    pub error: Option<Value>,
    pub parent: Option<Parent>,
    pub severed: bool,
    pub expire: Option<f64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub app: Rc<CompiledApp>,
    /// Set by completion: write completed_at.
    pub completed: bool,
    /// Set expired_at this many seconds from now.
    pub expire_in: Option<f64>,
    pub dirty: bool,
    /// Created in this transaction and not written yet: the write-back inserts it, and
    /// it has no activity rows in the table to load.
    pub fresh: bool,
    /// The id came from the caller or the graph (`stats.id`), not the generator: a job
    /// may hold it already, so the insert looks for one. A generated id is new, and its
    /// insert skips that look (an index probe per row).
    pub chosen_id: bool,
}

impl Job {
    /// The job's metadata, as maps read it (`$job.metadata`) and `get_state` returns it.
    pub fn metadata(&self) -> Value {
        Meta {
            id: &self.id,
            gid: &self.gid,
            app_id: &self.app_id,
            version: &self.version,
            topic: &self.topic,
            key: self.key.as_deref(),
            entity: self.entity.as_deref(),
            status: self.status,
            error: self.error.as_ref(),
            parent: self.parent.as_ref(),
            severed: self.severed,
            expire: self.expire,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
        }
        .metadata()
    }

    /// The graph this job runs.
    pub fn graph(&self) -> &hotmesh_manifest::model::Graph {
        self.app
            .graph_for(&self.topic)
            .unwrap_or(&self.app.graphs[0])
    }
}

/// What a job's metadata is made of: the fields of its row, borrowed from wherever they
/// were read (a job the engine holds, or a row `get_state` reads without its app). One
/// builder for both, so the two never differ.
pub struct Meta<'a> {
    pub id: &'a str,
    pub gid: &'a str,
    pub app_id: &'a str,
    pub version: &'a str,
    pub topic: &'a str,
    pub key: Option<&'a str>,
    pub entity: Option<&'a str>,
    pub status: i64,
    pub error: Option<&'a Value>,
    pub parent: Option<&'a Parent>,
    pub severed: bool,
    pub expire: Option<f64>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl Meta<'_> {
    /// The original's job metadata: `jid`, `gid`, `app`, `vrs`, `tpc`, `jc`, `ju`, `js`,
    /// and when set `key`, `entity`, `err` (a JSON string, as the original stores it),
    /// the parent's `pj`, `pg`, `pa`, `pd` (`px` when it does not wait) and `expire`.
    pub fn metadata(&self) -> Value {
        let mut m = json!({
            "jid": self.id,
            "gid": self.gid,
            "app": self.app_id,
            "vrs": self.version,
            "tpc": self.topic,
            "jc": ids::compact_time(self.created_ms),
            "ju": ids::compact_time(self.updated_ms),
            "js": self.status,
        });
        if let Some(k) = self.key {
            m["key"] = k.into();
        }
        if let Some(e) = self.entity {
            m["entity"] = e.into();
        }
        if let Some(err) = self.error {
            m["err"] = err.to_string().into();
        }
        if let Some(p) = self.parent {
            m["pj"] = p.job_id.clone().into();
            m["pg"] = p.gid.clone().into();
            m["pa"] = p.activity_id.clone().into();
            m["pd"] = p.dad.clone().into();
            if self.severed {
                m["px"] = true.into();
            }
        }
        if let Some(e) = self.expire {
            m["expire"] = e.into();
        }
        m
    }

    /// The original's JobOutput: `{metadata, data}`.
    pub fn output(&self, data: Map<String, Value>) -> Value {
        json!({"metadata": self.metadata(), "data": Value::Object(data)})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta<'a>(error: Option<&'a Value>, parent: Option<&'a Parent>, severed: bool) -> Meta<'a> {
        Meta {
            id: "j1",
            gid: "g1",
            app_id: "app",
            version: "2",
            topic: "t.start",
            key: None,
            entity: Some("order"),
            status: 0,
            error,
            parent,
            severed,
            expire: None,
            created_ms: 0,
            updated_ms: 1_000,
        }
    }

    #[test]
    fn metadata_names_the_job_as_the_original_does() {
        let m = meta(None, None, false).metadata();
        assert_eq!(
            (m["jid"].as_str(), m["gid"].as_str(), m["app"].as_str()),
            (Some("j1"), Some("g1"), Some("app"))
        );
        assert_eq!(
            (m["vrs"].as_str(), m["tpc"].as_str(), m["js"].as_i64()),
            (Some("2"), Some("t.start"), Some(0))
        );
        assert_eq!(m["entity"], "order");
        assert_eq!(m["jc"], crate::ids::compact_time(0));
        for absent in ["key", "err", "pj", "px", "expire"] {
            assert!(m.get(absent).is_none(), "{absent} is left out when unset");
        }
    }

    #[test]
    fn the_error_is_kept_as_a_compact_json_string() {
        let err = json!({"code": 410, "message": "stop"});
        let m = meta(Some(&err), None, false).metadata();
        assert_eq!(m["err"], r#"{"code":410,"message":"stop"}"#);
    }

    #[test]
    fn a_child_names_its_parent_and_says_when_the_parent_does_not_wait() {
        let p = Parent {
            job_id: "p".into(),
            gid: "pg".into(),
            activity_id: "call".into(),
            dad: ",0,0".into(),
        };
        let waited = meta(None, Some(&p), false).metadata();
        assert_eq!(
            (
                waited["pj"].as_str(),
                waited["pa"].as_str(),
                waited["pd"].as_str()
            ),
            (Some("p"), Some("call"), Some(",0,0"))
        );
        assert!(waited.get("px").is_none());
        assert_eq!(meta(None, Some(&p), true).metadata()["px"], true);
    }

    #[test]
    fn the_output_is_metadata_and_data() {
        let mut data = Map::new();
        data.insert("x".into(), 1.into());
        let o = meta(None, None, false).output(data);
        assert_eq!(o["data"]["x"], 1);
        assert_eq!(o["metadata"]["jid"], "j1");
    }
}
