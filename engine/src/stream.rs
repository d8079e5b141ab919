//! What happens to a worker message when its worker answers, asks for a retry, or never
//! answers: the stream's decisions, apart from the SQL that carries them out
//! (`src/store/stream.rs` in the extension).

use crate::answer::Status;
use crate::retry::Policy;

/// The code of the error a job hears when its worker asked for a retry with no attempt
/// left.
pub const RETRIES_EXHAUSTED: i64 = 597;
/// The code of the error a job hears when its message was dead-lettered: handed out
/// too often without an answer (its worker keeps dying on it).
pub const DEAD_LETTERED: i64 = 999;

/// What becomes of a message and its answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Disposition {
    /// The answer is applied (the activity's Leg 2) and the message removed.
    Apply,
    /// The answer is applied and the message stays, parked: more answers will come for
    /// it (202), and it is not handed out again.
    Park,
    /// Nothing is applied: the message is handed out again after `delay` seconds (the
    /// answer was an error its policy retries).
    Requeue { delay: f64 },
    /// The answer is applied as an error with `code` and the message removed (a retry
    /// asked for with no attempt left).
    Fail { code: i64 },
}

/// A worker's answer with `status` and `code` to a message at attempt `attempt` (retries
/// so far) under `policy`.
///
/// ```
/// use hotmesh_engine::answer::Status;
/// use hotmesh_engine::retry::Policy;
/// use hotmesh_engine::stream::{on_answer, Disposition};
/// let three = Policy { max_attempts: 3, ..Default::default() };
/// assert_eq!(on_answer(Status::Success, 200, 0, &three), Disposition::Apply);
/// assert!(matches!(on_answer(Status::Error, 500, 0, &three), Disposition::Requeue { .. }));
/// assert_eq!(on_answer(Status::Error, 500, 2, &three), Disposition::Apply);
/// ```
pub fn on_answer(status: Status, code: i64, attempt: i32, policy: &Policy) -> Disposition {
    match status {
        Status::Success => Disposition::Apply,
        Status::Pending => Disposition::Park,
        Status::Error => match policy.next(code, attempt) {
            Some(delay) => Disposition::Requeue { delay },
            None => Disposition::Apply,
        },
    }
}

/// The worker asks for another attempt (`hotmesh.retry`), after `delay` seconds or the
/// policy's delay (at least 1 s under a policy that retries nothing: the worker asked).
/// With no attempt left, the job hears [`RETRIES_EXHAUSTED`].
pub fn on_retry(delay: Option<f64>, attempt: i32, policy: &Policy) -> Disposition {
    let next = match delay {
        Some(d) => Some(d.max(0.0)),
        None => policy
            .next(500, attempt)
            .or((policy.max_attempts <= 1).then_some(1.0)),
    };
    match next {
        Some(delay) => Disposition::Requeue { delay },
        None => Disposition::Fail {
            code: RETRIES_EXHAUSTED,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: i32) -> Policy {
        Policy {
            max_attempts,
            ..Default::default()
        }
    }

    #[test]
    fn a_success_is_applied_and_a_pending_answer_parks_its_message() {
        assert_eq!(
            on_answer(Status::Success, 200, 0, &policy(3)),
            Disposition::Apply
        );
        assert_eq!(
            on_answer(Status::Pending, 202, 0, &policy(3)),
            Disposition::Park
        );
    }

    #[test]
    fn an_error_is_retried_while_attempts_remain_with_the_policys_backoff() {
        let p = Policy {
            max_attempts: 3,
            initial_interval: 1.0,
            backoff_coefficient: 10.0,
            maximum_interval: 120.0,
            codes: None,
        };
        assert_eq!(
            on_answer(Status::Error, 500, 0, &p),
            Disposition::Requeue { delay: 10.0 }
        );
        assert_eq!(
            on_answer(Status::Error, 500, 1, &p),
            Disposition::Requeue { delay: 100.0 }
        );
        assert_eq!(on_answer(Status::Error, 500, 2, &p), Disposition::Apply);
    }

    #[test]
    fn without_a_policy_an_error_is_applied_at_once() {
        assert_eq!(
            on_answer(Status::Error, 500, 0, &Policy::default()),
            Disposition::Apply
        );
    }

    #[test]
    fn a_retry_request_waits_as_asked_or_as_the_policy_says_and_fails_when_attempts_run_out() {
        assert_eq!(
            on_retry(Some(-3.0), 0, &policy(3)),
            Disposition::Requeue { delay: 0.0 }
        );
        assert!(matches!(
            on_retry(None, 0, &policy(3)),
            Disposition::Requeue { .. }
        ));
        assert_eq!(
            on_retry(None, 2, &policy(3)),
            Disposition::Fail {
                code: RETRIES_EXHAUSTED
            }
        );
        // a policy that retries nothing still honours the worker's request once a second
        assert_eq!(
            on_retry(None, 0, &policy(1)),
            Disposition::Requeue { delay: 1.0 }
        );
    }
}
