//! Compiled apps, loaded once per backend and version: a version is immutable once
//! deployed, so the step path never parses a manifest. A version dropped (with the
//! extension) and deployed again with other content is caught by the catalog table's
//! oid, which a new extension changes, and by the digest where the caller has it.

use super::db;
use crate::error::{HotmeshError, Raise};
use hotmesh_engine::error::EngineError;
use hotmesh_manifest::CompiledApp;
use pgrx::pg_sys;
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

/// The oid of catalog table `hotmesh.<name>` (InvalidOid: none): two catalog lookups, no
/// query.
fn relid(name: &std::ffi::CStr) -> pg_sys::Oid {
    // SAFETY: catalog lookups by name, on the backend's main thread
    unsafe {
        let ns = pg_sys::get_namespace_oid(c"hotmesh".as_ptr(), true);
        pg_sys::get_relname_relid(name.as_ptr(), ns)
    }
}

/// The oid of hotmesh.app_versions.
fn catalog_oid() -> pg_sys::Oid {
    relid(c"app_versions")
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
                r.get::<crate::json::Json>(2)?.map(|j| j.0),
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
///
/// Kept per backend between statements: every start asks, and the three-table lookup
/// was an eighth of a start's time. An activation or a deploy invalidates
/// `hotmesh.app_active`'s relcache entry ([`changed_at_commit`]); Postgres delivers that
/// to every backend once the change commits (to this one at once, and again on
/// rollback), and [`forget_topics`] empties the cache on it, or on any invalidation of
/// the three catalog tables (dropped with the extension) or of all relations. Filled in
/// READ COMMITTED only: a transaction snapshot older than an activation it has already
/// heard of would cache the version before it.
pub fn for_topic(topic: &str) -> Option<(String, String, String)> {
    // SAFETY: reads this backend's pending invalidations (cheap when there are none): an
    // activation committed before this statement empties the cache now
    unsafe { pg_sys::AcceptInvalidationMessages() };
    if TOPICS_STALE.with(|s| s.replace(false)) {
        TOPICS.with(|t| t.borrow_mut().clear());
    }
    if let Some(hit) = TOPICS.with(|t| t.borrow().get(topic).cloned()) {
        return Some(hit);
    }
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
    let found = (app, version, digest);
    // SAFETY: the backend's isolation level, read on its main thread
    let read_committed =
        unsafe { pg_sys::XactIsoLevel } < pg_sys::XACT_REPEATABLE_READ as std::ffi::c_int;
    if read_committed && watch_catalog() {
        // an invalidation that arrived during the lookup marked the cache stale: the next
        // call empties it, this entry with it
        TOPICS.with(|t| t.borrow_mut().insert(topic.to_string(), found.clone()));
    }
    Some(found)
}

thread_local! {
    /// `for_topic`'s answers, by topic.
    static TOPICS: RefCell<HashMap<String, (String, String, String)>> = RefCell::new(HashMap::new());
    /// An invalidation of the catalog arrived: empty `TOPICS` before its next use (the
    /// callback only sets this, so it never meets a borrow of the map).
    static TOPICS_STALE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The catalog tables whose invalidation empties `TOPICS` (and whether the callback
    /// is registered: `None` until the first fill).
    static WATCHED: std::cell::Cell<Option<[pg_sys::Oid; 3]>> = const { std::cell::Cell::new(None) };
}

/// The oids of the three catalog tables `for_topic` reads, in this database.
fn catalog_tables() -> [pg_sys::Oid; 3] {
    [relid(c"app_active"), relid(c"app_topics"), catalog_oid()]
}

/// Registers [`forget_topics`] once per backend (Postgres has room for ten such
/// callbacks, never freed); false when the catalog tables cannot be named.
fn watch_catalog() -> bool {
    let oids = catalog_tables();
    if oids.contains(&pg_sys::InvalidOid) {
        return false;
    }
    if WATCHED.with(|w| w.replace(Some(oids))).is_none() {
        // SAFETY: a callback with no state, for the life of the backend
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(Some(forget_topics), pg_sys::Datum::from(0))
        };
    }
    true
}

/// Relcache invalidation callback: `relid` changed (`InvalidOid`: all relations).
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn forget_topics(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let ours = WATCHED.with(|w| w.get().is_none_or(|oids| oids.contains(&relid)));
    if relid == pg_sys::InvalidOid || ours {
        TOPICS_STALE.with(|s| s.set(true));
    }
}

/// Tells every backend, once this transaction commits, that the active versions may
/// have changed ([`for_topic`]'s cache): a relcache invalidation of `hotmesh.app_active`.
pub fn changed_at_commit() {
    let oid = relid(c"app_active");
    if oid != pg_sys::InvalidOid {
        // SAFETY: queues an invalidation message of an existing relation
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(oid) };
    }
}

/// Why `topic` starts nothing: the app that has it deployed but not active, if any.
pub fn inactive_owner(topic: &str) -> Option<String> {
    db::one::<String>(
        "SELECT app_id FROM hotmesh.app_topics WHERE topic = $1 AND kind = 'subscribes' LIMIT 1",
        &[topic.into()],
    )
}
