//! The job status semaphore (`jobs.status`). The trigger sets it to the number of
//! children that start; every activity that finishes adds `children - 1`; the job is
//! complete when it reaches 0. A pending job is -1; an interrupt subtracts a billion.

/// Added to the status by an interrupt.
pub const INTERRUPT: i64 = -1_000_000_000;
/// Status of a job created with the `pending` option.
pub const PENDING: i64 = -1;

/// Whether a job with this status was interrupted.
pub fn interrupted(status: i64) -> bool {
    status < -100_000_000
}

/// Whether a job with this status still runs (takes steps).
pub fn running(status: i64) -> bool {
    status > 0
}

/// Whether a job with this status has ended: done, interrupted or closed (not running,
/// not pending).
pub fn ended(status: i64) -> bool {
    status != PENDING && status <= 0
}

/// The readable name of a status, for views and the CLI.
pub fn name(status: i64) -> &'static str {
    match status {
        s if interrupted(s) => "interrupted",
        s if s > 0 => "running",
        0 => "done",
        -1 => "pending",
        _ => "closed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name(3), "running");
        assert_eq!(name(0), "done");
        assert_eq!(name(PENDING), "pending");
        assert_eq!(name(2 + INTERRUPT), "interrupted");
        assert!(!running(0) && running(1));
    }
}
