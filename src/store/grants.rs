//! Who may do what with an app (sql/grants.sql, docs/security.md). Every SQL function
//! of the engine is SECURITY DEFINER, so inside it `current_user` is the extension's
//! owner; the caller is the role the session acts as outside any SECURITY DEFINER
//! function (`GetOuterUserId`: the login role, or what SET ROLE chose). A role granted
//! nothing on an app gets a clear ERROR (42501) that names the app and the privilege.
//!
//! Superusers and members of the extension owner's role skip every check, at no cost:
//! that is decided without a query.

use super::db;
use crate::error::HotmeshError;
use pgrx::prelude::*;
use std::cell::Cell;

/// What a role may do with an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Deploy and activate versions, throttle, scrub jobs.
    Deploy,
    /// Start jobs, signal and interrupt them.
    Start,
    /// Take and answer the messages of its worker activities.
    Work,
    /// Read its jobs and stats.
    Read,
}

impl Privilege {
    pub fn name(self) -> &'static str {
        match self {
            Privilege::Deploy => "deploy",
            Privilege::Start => "start",
            Privilege::Work => "work",
            Privilege::Read => "read",
        }
    }

    pub fn parse(s: &str) -> Option<Privilege> {
        Some(match s {
            "deploy" => Privilege::Deploy,
            "start" => Privilege::Start,
            "work" => Privilege::Work,
            "read" => Privilege::Read,
            _ => return None,
        })
    }
}

thread_local! {
    /// The extension owner's oid, read once per backend (0: not read yet).
    static OWNER: Cell<u32> = const { Cell::new(0) };
}

fn owner() -> pg_sys::Oid {
    let cached = OWNER.with(Cell::get);
    if cached != 0 {
        return pg_sys::Oid::from(cached);
    }
    let oid = db::one::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'hotmesh'",
        &[],
    )
    .unwrap_or(pg_sys::InvalidOid);
    OWNER.with(|c| c.set(oid.to_u32()));
    oid
}

/// The role the caller acts as (see the module's comment).
pub(crate) fn caller() -> pg_sys::Oid {
    unsafe { pg_sys::GetOuterUserId() }
}

/// Whether the caller may do everything: a superuser, or a member of the owner's role.
pub(crate) fn unrestricted(role: pg_sys::Oid) -> bool {
    unsafe { pg_sys::superuser_arg(role) || pg_sys::has_privs_of_role(role, owner()) }
}

/// The roles granted `privilege` on `app` (or on every app).
fn grantees(app: &str, privilege: Privilege) -> Vec<pg_sys::Oid> {
    db::query(
        "SELECT grantee FROM hotmesh.app_grants WHERE app_id IN ($1, '*') AND privilege = $2",
        &[app.into(), privilege.name().into()],
        |t| {
            let mut v = vec![];
            for r in t {
                if let Some(o) = r.get::<pg_sys::Oid>(1)? {
                    v.push(o);
                }
            }
            Ok(v)
        },
    )
}

/// Whether `role` holds `privilege` on `app`, itself or through a role it inherits.
/// (`has_privs_of_role`: a grantee that was dropped is simply no one's.)
pub(crate) fn holds(role: pg_sys::Oid, app: &str, privilege: Privilege) -> bool {
    grantees(app, privilege)
        .into_iter()
        .any(|g| unsafe { pg_sys::has_privs_of_role(role, g) })
}

pub(crate) fn deny(role: pg_sys::Oid, app: &str, privilege: Privilege) -> ! {
    deny_what(role, format!("app '{app}'"), privilege)
}

fn deny_what(role: pg_sys::Oid, what: String, privilege: Privilege) -> ! {
    let name = unsafe { crate::shared::text_of(pg_sys::GetUserNameFromId(role, true)) }
        .unwrap_or_else(|| role.to_u32().to_string());
    HotmeshError::PermissionDenied {
        role: name,
        privilege: privilege.name(),
        what,
    }
    .raise()
}

/// Raises unless the caller may do `privilege` with `app`.
pub fn require(app: &str, privilege: Privilege) {
    require_found(privilege, || Some(app.to_string()));
}

/// Raises unless the caller may do `privilege` with the app `find` names; `find` runs
/// only for a restricted caller, and finding none is left for the caller to report (a
/// gone job or message reveals nothing).
fn require_found(privilege: Privilege, find: impl FnOnce() -> Option<String>) {
    let role = caller();
    if unrestricted(role) {
        return;
    }
    if let Some(app) = find() {
        if !holds(role, &app, privilege) {
            deny(role, &app, privilege);
        }
    }
}

/// Raises unless the caller may do `privilege` with the app of job `job_id`.
pub fn require_job(job_id: &str, privilege: Privilege) {
    require_found(privilege, || {
        db::one::<String>(
            "SELECT app_id FROM hotmesh.jobs WHERE id = $1",
            &[job_id.into()],
        )
    });
}

/// Raises unless the caller may work on worker message `id`'s app.
pub fn require_message(id: i64) {
    require_found(Privilege::Work, || {
        db::one::<String>(
            "SELECT app_id FROM hotmesh.worker_stream WHERE id = $1",
            &[id.into()],
        )
    });
}

/// Raises unless the caller may do `privilege` with the active app whose graph `topic`
/// starts (an unknown topic is left for the caller to report).
pub fn require_topic(topic: &str, privilege: Privilege) {
    require_found(privilege, || {
        super::apps::for_topic(topic).map(|(app, _, _)| app)
    });
}

/// Raises unless the caller may start (and so signal) every active app with a hook on
/// signal topic `topic`.
pub fn require_signal(topic: &str) {
    let role = caller();
    if unrestricted(role) {
        return;
    }
    let apps = db::texts::<1>(
        "SELECT DISTINCT t.app_id FROM hotmesh.app_topics t
           JOIN hotmesh.app_active a ON a.app_id = t.app_id AND a.version = t.version
          WHERE t.topic = $1 AND t.kind = 'hook'",
        &[topic.into()],
    );
    for [app] in apps {
        if !holds(role, &app, Privilege::Start) {
            deny(role, &app, Privilege::Start);
        }
    }
}

/// The apps whose worker messages the caller may take: None for all of them. A role
/// that may work on no app at all is refused here, with the error that says so.
pub fn work_apps(topic: &str) -> Option<Vec<String>> {
    let role = caller();
    if unrestricted(role) {
        return None;
    }
    let granted = db::query(
        "SELECT app_id, grantee FROM hotmesh.app_grants WHERE privilege = 'work'",
        &[],
        |t| {
            let mut v = vec![];
            for r in t {
                if let (Some(a), Some(g)) = (r.get::<String>(1)?, r.get::<pg_sys::Oid>(2)?) {
                    v.push((a, g));
                }
            }
            Ok(v)
        },
    );
    let apps: Vec<String> = granted
        .into_iter()
        .filter(|(_, g)| unsafe { pg_sys::has_privs_of_role(role, *g) })
        .map(|(a, _)| a)
        .collect();
    if apps.iter().any(|a| a == "*") {
        return None;
    }
    if apps.is_empty() {
        deny_what(
            role,
            format!("any app (asked for topic '{topic}')"),
            Privilege::Work,
        );
    }
    Some(apps)
}
