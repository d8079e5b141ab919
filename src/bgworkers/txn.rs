//! Running work inside a worker without letting an ERROR kill the process.

use pgrx::bgworkers::BackgroundWorker;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;

/// Runs `f` in its own transaction. On ERROR the transaction is rolled back and the
/// message returned, so the worker's loop goes on.
pub fn run<R, F>(f: F) -> Result<R, String>
where
    F: FnOnce() -> R + std::panic::UnwindSafe + std::panic::RefUnwindSafe,
{
    PgTryBuilder::new(|| Ok(BackgroundWorker::transaction(f)))
        .catch_others(|e| {
            let msg = match &e {
                CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => {
                    r.message().to_string()
                }
                CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
            };
            unsafe {
                pg_sys::AbortCurrentTransaction();
                // the ERROR left its data in ErrorContext; clear it for the next one
                pg_sys::FlushErrorState();
            }
            Err(msg)
        })
        .execute()
}

/// Runs `f` in a subtransaction of the current transaction. On ERROR only the
/// subtransaction is rolled back, and the message returned: one bad router message does
/// not undo the batch it came in.
pub fn sub<R, F>(f: F) -> Result<R, String>
where
    F: FnOnce() -> R + std::panic::UnwindSafe + std::panic::RefUnwindSafe,
{
    unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
        PgTryBuilder::new(|| {
            let r = f();
            pg_sys::ReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(context);
            pg_sys::CurrentResourceOwner = owner;
            Ok(r)
        })
        .catch_others(|e| {
            let msg = match &e {
                CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => {
                    r.message().to_string()
                }
                CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
            };
            pg_sys::MemoryContextSwitchTo(context);
            pg_sys::FlushErrorState();
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(context);
            pg_sys::CurrentResourceOwner = owner;
            Err(msg)
        })
        .execute()
    }
}
