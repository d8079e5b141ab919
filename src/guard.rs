//! Interrupts and stack depth, for code that loops or recurses on input: Postgres's
//! CHECK_FOR_INTERRUPTS (so `statement_timeout`, `pg_cancel_backend` and
//! `pg_terminate_backend` reach a long evaluation) and check_stack_depth (so deep
//! recursion is an ERROR, "stack depth limit exceeded", instead of a crash). Both raise
//! an ERROR through pgrx, which unwinds the Rust frames above them like any other.
//!
//! The pgrx-free crates (`hotmesh-manifest`: YAML, the compiler, the mapping language)
//! call [`check`] through the hook installed at load time.

use pgrx::prelude::*;

/// Raises if a cancel or terminate is pending, or the stack is nearly full.
pub fn check() {
    pgrx::check_for_interrupts!();
    unsafe { pg_sys::check_stack_depth() };
}

/// Lets the pgrx-free crates reach [`check`]. Once per process, at load.
pub fn install() {
    hotmesh_manifest::guard::set_hook(check);
}
