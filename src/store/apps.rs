//! Compiled apps, loaded once per backend and version: a version is immutable once
//! deployed, so the step path never parses a manifest. A version dropped (with the
//! extension) and deployed again with other content is caught by the catalog table's
//! oid, which a new extension changes, and by the digest where the caller has it.

use super::db;
use crate::error::{HotmeshError, Raise};
use hotmesh_engine::error::EngineError;
use hotmesh_manifest::CompiledApp;
use pgrx::pg_sys;
use pgrx::JsonB;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

struct Cached {
    catalog: pg_sys::Oid,
    digest: String,
    app: Rc<CompiledApp>,
}

thread_local! {
    static CACHE: RefCell<HashMap<(String, String), Cached>> = RefCell::new(HashMap::new());
}

/// The oid of hotmesh.app_versions: two catalog lookups, no query.
fn catalog_oid() -> pg_sys::Oid {
    unsafe {
        let ns = pg_sys::get_namespace_oid(c"hotmesh".as_ptr(), true);
        pg_sys::get_relname_relid(c"app_versions".as_ptr(), ns)
    }
}

/// The compiled app of `app_id` at `version` (whose stored digest is `digest`, when the
/// caller read it).
pub fn get(app_id: &str, version: &str, digest: Option<&str>) -> Rc<CompiledApp> {
    let key = (app_id.to_string(), version.to_string());
    let catalog = catalog_oid();
    let hit = CACHE.with(|c| {
        c.borrow().get(&key).and_then(|e| {
            (e.catalog == catalog && digest.is_none_or(|d| d == e.digest)).then(|| e.app.clone())
        })
    });
    if let Some(app) = hit {
        return app;
    }
    let [digest, compiled] = db::query(
        "SELECT digest, compiled FROM hotmesh.app_versions WHERE app_id = $1 AND version = $2",
        &[app_id.into(), version.into()],
        |t| {
            if t.is_empty() {
                return Ok([None, None]);
            }
            let r = t.first();
            Ok([
                r.get::<String>(1)?.map(serde_json::Value::String),
                r.get::<JsonB>(2)?.map(|j| j.0),
            ])
        },
    );
    let (Some(serde_json::Value::String(digest)), Some(json)) = (digest, compiled) else {
        HotmeshError::NoSuchVersion {
            app: app_id.into(),
            version: version.into(),
            app_known: true,
        }
        .raise()
    };
    let app: CompiledApp = serde_json::from_value(json).unwrap_or_else(|e| {
        EngineError::Internal(format!("stored app {app_id} {version} does not load: {e}")).raise()
    });
    let app = Rc::new(app);
    CACHE.with(|c| {
        c.borrow_mut().insert(
            key,
            Cached {
                catalog,
                digest,
                app: app.clone(),
            },
        )
    });
    app
}

/// The active app version whose graph subscribes to `topic`: (app, version, digest).
pub fn for_topic(topic: &str) -> Option<(String, String, String)> {
    let [app, version, digest] = db::texts::<3>(
        "SELECT t.app_id, t.version, v.digest
           FROM hotmesh.app_topics t
           JOIN hotmesh.app_active a ON a.app_id = t.app_id AND a.version = t.version
           JOIN hotmesh.app_versions v ON v.app_id = t.app_id AND v.version = t.version
          WHERE t.topic = $1 AND t.kind = 'subscribes'
          LIMIT 1",
        &[topic.into()],
    )
    .pop()?;
    Some((app, version, digest))
}

/// Why `topic` starts nothing: the app that has it deployed but not active, if any.
pub fn inactive_owner(topic: &str) -> Option<String> {
    db::one::<String>(
        "SELECT app_id FROM hotmesh.app_topics WHERE topic = $1 AND kind = 'subscribes' LIMIT 1",
        &[topic.into()],
    )
}
