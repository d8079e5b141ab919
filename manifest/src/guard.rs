//! A hook the host calls back at every loop head and recursive call, so a long map or
//! a huge manifest can be cancelled and a deep walk stops before the stack runs out.
//!
//! The extension installs, once per backend, a function that runs Postgres's
//! `CHECK_FOR_INTERRUPTS()` and `check_stack_depth()`; those report by raising an
//! error, which reaches Rust as a panic that unwinds out of this crate. [`tick`] is
//! therefore only called where unwinding leaves nothing half-updated that outlives the
//! call (every structure this crate builds is owned by the call being unwound), and the
//! hook itself is a plain `fn()`, so installing it takes no lock and calling it costs
//! one atomic load and an indirect call.

use std::sync::atomic::{AtomicPtr, Ordering};

static HOOK: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

/// Installs the hook [`tick`] calls. Installing again replaces it; the hook must be
/// safe to call from any thread that runs this crate's code.
pub fn set_hook(f: fn()) {
    HOOK.store(f as *mut (), Ordering::Release);
}

/// Removes the hook ([`tick`] does nothing again).
pub fn clear_hook() {
    HOOK.store(std::ptr::null_mut(), Ordering::Release);
}

/// Calls the installed hook, if any. Cheap enough to call once per element of a loop.
#[inline]
pub fn tick() {
    let p = HOOK.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: the only non-null value ever stored is a `fn()` cast by `set_hook`.
        let f: fn() = unsafe { std::mem::transmute::<*mut (), fn()>(p) };
        f();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    fn count() {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn tick_calls_the_installed_hook_and_nothing_once_cleared() {
        tick();
        set_hook(count);
        let before = CALLS.load(Ordering::Relaxed);
        tick();
        tick();
        assert!(CALLS.load(Ordering::Relaxed) >= before + 2);
        clear_hook();
        let after = CALLS.load(Ordering::Relaxed);
        tick();
        assert_eq!(CALLS.load(Ordering::Relaxed), after);
    }
}
