//! Administration: the library's version, the background workers' status, waiting for
//! and waking the engine worker, and NOTIFY channel names as `LISTEN` must spell them.
//! Each one is `hotmesh.<name>`.

use pgrx::prelude::*;

/// The schema `hotmesh`: pgrx creates it inside the extension script, so it belongs to
/// the extension and `DROP EXTENSION` removes it.
#[pg_schema]
mod hotmesh {
    use crate::error::{HotmeshError, Raise};
    use crate::{shared, wake};
    use hotmesh_bgworker::SlotState;
    use hotmesh_engine::error::EngineError;
    use pgrx::prelude::*;
    use std::time::{Duration, Instant};

    fn require_preloaded() {
        if !shared::ready() {
            HotmeshError::NotPreloaded.raise();
        }
    }

    /// The version of the installed engine library.
    #[pg_extern(stable, parallel_safe)]
    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    /// One row per database the launcher serves: the engine worker's state and counters.
    #[pg_extern]
    #[allow(clippy::type_complexity)]
    fn workers() -> TableIterator<
        'static,
        (
            name!(database, Option<String>),
            name!(state, String),
            name!(pid, Option<i32>),
            name!(started_at, Option<TimestampWithTimeZone>),
            name!(starts, i32),
            name!(loops, i64),
            name!(errors, i64),
            name!(last_error, Option<String>),
            name!(last_error_at, Option<TimestampWithTimeZone>),
        ),
    > {
        require_preloaded();
        let slots: Vec<_> = shared::share()
            .0
            .slots
            .iter()
            .filter(|s| s.state != SlotState::Free)
            .copied()
            .collect();
        let rows: Vec<_> = slots
            .into_iter()
            .map(|s| {
                let name = shared::database_name(s.dboid);
                (
                    name,
                    s.state.name().to_string(),
                    (s.pid != 0).then_some(s.pid),
                    shared::timestamptz(s.started_ms),
                    s.starts as i32,
                    s.loops as i64,
                    s.errors as i64,
                    s.last_error(),
                    shared::timestamptz(s.last_error_ms),
                )
            })
            .collect();
        TableIterator::new(rows)
    }

    /// Blocks until this database's engine worker is running, or `timeout_seconds` pass.
    /// Returns whether it runs. Scripts and tests use it to make asynchronous start-up
    /// deterministic.
    #[pg_extern]
    fn wait_for_engine(timeout_seconds: default!(f64, 10.0)) -> bool {
        require_preloaded();
        if !timeout_seconds.is_finite() || !(0.0..=3600.0).contains(&timeout_seconds) {
            EngineError::InvalidArgument {
                name: "timeout_seconds",
                problem: format!("must be between 0 and 3600, got {timeout_seconds}"),
            }
            .raise();
        }
        let deadline = Instant::now() + Duration::from_secs_f64(timeout_seconds);
        let dboid = shared::my_database();
        loop {
            let running = shared::share()
                .0
                .find(dboid)
                .map(|s| s.state == SlotState::Running && s.pid != 0)
                .unwrap_or(false);
            if running {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            unsafe {
                pg_sys::WaitLatch(
                    pg_sys::MyLatch,
                    (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH)
                        as i32,
                    20,
                    pg_sys::PG_WAIT_EXTENSION,
                );
                pg_sys::ResetLatch(pg_sys::MyLatch);
            }
            pgrx::check_for_interrupts!();
        }
    }

    /// Wakes this database's engine worker when the current transaction commits. Returns
    /// the worker's loop count now, so a caller can watch it advance (-1: no worker).
    #[pg_extern]
    fn wake_engine() -> i64 {
        require_preloaded();
        wake::engine_at_commit();
        shared::share()
            .0
            .find(shared::my_database())
            .map(|s| s.loops as i64)
            .unwrap_or(-1)
    }

    /// Turns the ring of partitions of `hotmesh.jobs` and `hotmesh.activities` now, if its
    /// current part has been current for its span (or, with `force`, whatever the span):
    /// the next part's jobs still within `hotmesh.retention` move to the current part,
    /// the rest of it is emptied by TRUNCATE. The engine worker does this by itself; this
    /// is for administrators (it runs with the caller's privileges on those tables).
    /// True when it turned.
    #[pg_extern]
    fn turn_ring(force: default!(bool, false)) -> bool {
        crate::store::ring::turn(crate::gucs::retention_s(), force)
    }

    /// Makes this database's engine worker raise `message` as an ERROR in its next
    /// iteration, to check that errors are caught, counted and shown in `hotmesh.workers()`
    /// (and that alerting on them works). Returns false when no worker runs here.
    #[pg_extern]
    fn debug_fail_worker(message: &str) -> bool {
        require_preloaded();
        if message.trim().is_empty() {
            EngineError::InvalidArgument {
                name: "message",
                problem: "must not be empty".into(),
            }
            .raise();
        }
        let found = {
            let mut t = shared::exclusive();
            match t.0.find_mut(shared::my_database()) {
                Some(s) if s.pid != 0 => {
                    hotmesh_bgworker::slot::put_text(&mut s.inject_error, message);
                    true
                }
                _ => false,
            }
        };
        if found {
            wake::engine_now();
        }
        found
    }

    /// Called by the install script: when `CREATE EXTENSION` commits, the launcher starts
    /// this database's engine worker. A no-op without preloading.
    #[pg_extern(name = "_extension_created")]
    fn extension_created() {
        wake::extension_created_at_commit();
    }

    /// Called by the trigger on `hotmesh.transports`: when the change commits, the engine
    /// worker starts or leaves the bridge worker, which reads the rows again.
    #[pg_extern(name = "_transports_changed")]
    fn transports_changed() {
        wake::transports_changed_at_commit();
    }

    /// The NOTIFY channel for `name` as `LISTEN` must spell it: the name itself, or for
    /// one over 63 bytes `hm:` and a hash (what the engine sends on).
    #[pg_extern(immutable, parallel_safe)]
    fn channel(name: &str) -> String {
        hotmesh_engine::channel::name(name)
    }

    /// The channel where workers of `topic` hear that it has work (what a worker in any
    /// language LISTENs on before it calls `hotmesh.dequeue`).
    #[pg_extern(immutable, parallel_safe)]
    fn work_channel(topic: &str) -> String {
        hotmesh_engine::channel::work(topic)
    }

    /// The channel of an app's quorum: throttles, roll calls and activations.
    #[pg_extern(immutable, parallel_safe)]
    fn quorum_channel(app: &str) -> String {
        hotmesh_engine::channel::quorum(app)
    }
}
