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
}

impl Job {
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
        if let Some(k) = &self.key {
            m["key"] = k.clone().into();
        }
        if let Some(e) = &self.entity {
            m["entity"] = e.clone().into();
        }
        if let Some(err) = &self.error {
            // a JSON string, as the original stores it
            m["err"] = err.to_string().into();
        }
        if let Some(p) = &self.parent {
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

    /// The graph this job runs.
    pub fn graph(&self) -> &hotmesh_manifest::manifest::Graph {
        self.app
            .graph_for(&self.topic)
            .unwrap_or(&self.app.graphs[0])
    }
}
