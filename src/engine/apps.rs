//! Compiled apps, loaded once per backend and version: a version is immutable once
//! deployed, so the step path never parses a manifest. The digest guards against a
//! version that was dropped (with the extension) and deployed again with other content.

use super::db;
use crate::error::HotmeshError;
use hotmesh_manifest::CompiledApp;
use pgrx::JsonB;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static CACHE: RefCell<HashMap<(String, String), (String, Rc<CompiledApp>)>> = RefCell::new(HashMap::new());
}

/// The compiled app of `app_id` at `version`, whose stored digest is `digest`.
pub fn get(app_id: &str, version: &str, digest: &str) -> Rc<CompiledApp> {
    let key = (app_id.to_string(), version.to_string());
    if let Some((d, app)) = CACHE.with(|c| c.borrow().get(&key).cloned()) {
        if d == digest {
            return app;
        }
    }
    let compiled: Option<JsonB> = db::one(
        "SELECT compiled FROM hotmesh.app_versions WHERE app_id = $1 AND version = $2",
        &[app_id.into(), version.into()],
    );
    let Some(JsonB(json)) = compiled else {
        HotmeshError::NoSuchVersion {
            app: app_id.into(),
            version: version.into(),
            app_known: true,
        }
        .raise()
    };
    let app: CompiledApp = serde_json::from_value(json).unwrap_or_else(|e| {
        HotmeshError::Internal(format!("stored app {app_id} {version} does not load: {e}")).raise()
    });
    let app = Rc::new(app);
    CACHE.with(|c| {
        c.borrow_mut()
            .insert(key, (digest.to_string(), app.clone()))
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
