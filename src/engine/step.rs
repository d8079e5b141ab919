//! The step machine on the extension's tables: `hotmesh_engine::step::Engine` over
//! [`SpiStore`], and the engine worker's way to apply work in a subtransaction.

use super::store::SpiStore;

pub use hotmesh_engine::answer::Status;
pub use hotmesh_engine::step::key_text;
pub use hotmesh_engine::work::{Kind, Lock, Work};

/// One transaction's engine, on the extension's tables.
pub type Engine = hotmesh_engine::step::Engine<SpiStore>;

/// An engine for the caller's transaction.
pub fn engine() -> Engine {
    Engine::with_store(SpiStore)
}

/// Runs `f` on a new engine for the caller's transaction, then applies the work it
/// queued and writes the state back once: the shape of every SQL function that steps.
pub fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> R {
    let mut e = engine();
    let r = f(&mut e);
    e.run();
    r
}

/// The engine worker's way to apply work: in a subtransaction (an ERROR undoes only
/// this), on a new engine that holds `job_id`, with `apply` writing what the work
/// consumes and queueing it. `Ok(false)`: another transaction holds the job, nothing
/// was done (try again later); a gone job runs `apply` anyway (its work is dropped as
/// stale, its cause consumed).
pub fn apply_unless_busy<F>(job_id: String, apply: F) -> Result<bool, String>
where
    F: FnOnce(&mut Engine) + std::panic::UnwindSafe + std::panic::RefUnwindSafe,
{
    crate::workers::txn::sub(move || {
        let mut e = engine();
        if e.try_lock(&job_id) == Lock::Busy {
            return false;
        }
        apply(&mut e);
        e.run();
        true
    })
}
