//! HotMesh YAML apps for hotmesh, free of pgrx so plain tests cover them:
//! - [`yaml`]: YAML/JSON into a tree that keeps line numbers;
//! - [`compile`]: validation and compilation of an app manifest into what the engine
//!   runs per step;
//! - [`model`]: the compiled app the engine reads at run time ([`model::CompiledApp`]);
//! - [`expr`]: the mapping language (`{refs}`, `@pipe`, `@reduce`), compiled once and
//!   evaluated per step;
//! - [`stats`]: a trigger's stats measures, recorded per time bucket;
//! - [`limits`] and [`guard`]: the bounds every input is held to, and the hook that
//!   lets the host interrupt long work;
//! - [`functions`]: the `{@group.name}` catalog, as the original's wrappers run it
//!   ([`js`], [`date`], [`cron`] hold the language parts they share).

pub mod compile;
pub mod cron;
pub mod date;
pub mod error;
pub mod expr;
pub mod functions;
pub mod guard;
pub mod js;
pub mod limits;
pub mod model;
pub mod stats;
pub mod value;
pub mod yaml;

pub use compile::compile_manifest;
pub use error::{EvalError, ManifestError};
pub use expr::{Env, Expr};
pub use model::CompiledApp;
pub use value::Value;

/// Milliseconds since the epoch (what `Date.now()` returns).
pub fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0)
}

/// A number in [0, 1) for `{@math.random}` (xorshift, seeded from the clock; not for
/// cryptography, like Math.random).
pub fn random() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1) | 1,
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}
