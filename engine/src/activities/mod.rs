//! Leg 1 (and the legs particular to them) of each activity type, as `impl Engine`
//! blocks: what the activity does when its parent transitions to it.

pub mod await_;
pub mod cycle;
pub mod hook;
pub mod interrupt;
pub mod signal;
pub mod trigger;
pub mod worker;
