//! SQL functions as workers (docs/meshcall.md, "SQL functions as targets"): a topic
//! connected with `hotmesh.connect_sql(topic, function)` is answered by the engine worker
//! itself, which calls `function(args jsonb) → jsonb` for each of the topic's messages, as
//! the role that connected it, and applies the answer: a worker with no process at all.
//!
//! Each message runs in a subtransaction of the engine worker's pass: a function that
//! fails rolls back alone and answers an error (500, its message). A pass answers at most
//! [`BATCH`] messages per topic and stops starting new ones after [`BUDGET_MS`]: user
//! functions share the engine worker with timers and steps, so they must be short.

use super::txn;
use crate::store::db;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Mutex;

/// Messages a pass answers at most, per topic.
pub const BATCH: i64 = 64;
/// A pass starts no new call after this long.
pub const BUDGET_MS: i64 = 200;

/// The connected topics as the last pass read them: the relay checks the topics it
/// notifies against them, to wake the engine worker at once for work of its own.
static TOPICS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Whether `topic` is connected to a SQL function (as of the last pass).
pub fn is_target(topic: &str) -> bool {
    TOPICS
        .lock()
        .unwrap()
        .as_ref()
        .is_some_and(|t| t.contains(topic))
}

/// One pass over the connected topics: how many messages it answered, and whether it
/// left some (the caller runs another pass soon).
pub fn run() -> (usize, bool) {
    let targets = db::texts::<3>(
        // a function or role dropped since it was connected: skipped (its messages wait)
        "SELECT t.topic, pg_catalog.format('%I.%I', n.nspname, p.proname), r.oid::text
           FROM hotmesh.sql_targets t
           JOIN pg_catalog.pg_proc p ON p.oid = pg_catalog.to_regprocedure(t.function)
           JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
           JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) t.run_as
          ORDER BY t.topic",
        &[],
    );
    *TOPICS.lock().unwrap() = Some(targets.iter().map(|t| t[0].clone()).collect());
    let started = crate::shared::now_ms();
    let (mut answered, mut left) = (0, false);
    for [topic, function, role] in &targets {
        let messages = db::query(
            "SELECT id, data, reservation FROM hotmesh.dequeue($1, $2::int4, 30, 'hotmesh engine')",
            &[topic.as_str().into(), BATCH.into()],
            |t| {
                let mut v = vec![];
                for r in t {
                    v.push((
                        r.get::<i64>(1)?.unwrap_or(0),
                        r.get::<crate::json::Json>(2)?
                            .map(|j| j.0)
                            .unwrap_or_default(),
                        r.get::<i64>(3)?.unwrap_or(0),
                    ));
                }
                Ok(v)
            },
        );
        left |= messages.len() as i64 >= BATCH;
        for (id, data, reservation) in messages {
            if crate::shared::now_ms() - started > BUDGET_MS {
                // give the rest back at once: the next pass takes them
                db::exec(
                    "SELECT hotmesh.release($1, $2)",
                    &[id.into(), reservation.into()],
                );
                left = true;
                continue;
            }
            let args = data.get("args").cloned().unwrap_or(serde_json::Value::Null);
            let (f, r) = (function.clone(), role.clone());
            let out = txn::sub(move || call(&f, &r, args));
            let (answer, status, code) = match out {
                Ok(v) => (json!({ "response": v }), "success", None),
                Err(msg) => (json!({ "message": msg }), "error", Some(500)),
            };
            db::exec(
                "SELECT hotmesh.respond($1, $2, $3, $4, $5)",
                &[
                    id.into(),
                    JsonB(answer).into(),
                    status.into(),
                    code.into(),
                    reservation.into(),
                ],
            );
            answered += 1;
        }
    }
    (answered, left)
}

/// Calls `function(args)` as role `role` (its oid), the way PostgreSQL runs index
/// expressions during maintenance: a security-restricted operation (the function cannot
/// `SET ROLE` back to the engine worker's superuser), and every setting it changes undone
/// when it returns (a `SET search_path` in it must not reach the engine's own queries).
/// On an ERROR, the caller's subtransaction abort restores both.
fn call(function: &str, role: &str, args: serde_json::Value) -> serde_json::Value {
    let role = pg_sys::Oid::from(role.parse::<u32>().unwrap_or(0));
    let sql = format!("SELECT {function}($1)::pg_catalog.jsonb");
    unsafe {
        let (mut uid, mut ctx) = (pg_sys::InvalidOid, 0i32);
        pg_sys::GetUserIdAndSecContext(&mut uid, &mut ctx);
        pg_sys::SetUserIdAndSecContext(
            role,
            ctx | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        let nest = pg_sys::NewGUCNestLevel();
        let out = Spi::get_one_with_args::<JsonB>(&sql, &[JsonB(args).into()]);
        pg_sys::AtEOXact_GUC(false, nest);
        pg_sys::SetUserIdAndSecContext(uid, ctx);
        match out {
            Ok(v) => v.map(|j| j.0).unwrap_or(serde_json::Value::Null),
            Err(e) => error!("{e}"),
        }
    }
}
