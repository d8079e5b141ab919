//! Retry policies a client gives its workers (the original's `retryPolicy` on init and
//! on each worker), and the errors a typed callback returns. An activity's own `retry`
//! in the YAML wins; then the worker's policy; then the one given at init. The decision
//! itself is the engine's ([`hotmesh_engine::stream::on_answer`]), so a worker retries
//! exactly as the extension would under the same policy.

use crate::workers::Outcome;
use hotmesh_engine::retry::Policy;
use serde_json::{json, Value};
use std::time::Duration;

/// How often, and how far apart, a failed callback is tried again (the original's
/// `retryPolicy`): attempt `k` (1, 2, …) waits `min(initial · coefficient^k, maximum)`.
///
/// ```
/// use hotmesh_client::RetryPolicy;
/// use std::time::Duration;
/// let p = RetryPolicy::new(5)
///     .backoff_coefficient(2.0)
///     .maximum_interval(Duration::from_secs(30));
/// assert_eq!(p.delay_before(1), Some(Duration::from_secs(2)));
/// assert_eq!(p.delay_before(4), Some(Duration::from_secs(16)));
/// assert_eq!(p.delay_before(5), None, "5 attempts in all");
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct RetryPolicy(Policy);

impl Default for RetryPolicy {
    /// The original's defaults: 3 attempts, coefficient 10, at most 120 s apart, 1 s
    /// initial interval.
    fn default() -> Self {
        RetryPolicy(Policy {
            max_attempts: 3,
            ..Policy::default()
        })
    }
}

impl RetryPolicy {
    /// `maximum_attempts` in all, the first included (1: no retry), with the default
    /// backoff.
    ///
    /// ```
    /// assert_eq!(hotmesh_client::RetryPolicy::new(1).delay_before(1), None);
    /// ```
    pub fn new(maximum_attempts: u32) -> RetryPolicy {
        let mut p = RetryPolicy::default();
        p.0.max_attempts = maximum_attempts.min(i32::MAX as u32) as i32;
        p
    }

    /// The factor between one wait and the next (at least 1).
    ///
    /// ```
    /// let p = hotmesh_client::RetryPolicy::new(3).backoff_coefficient(3.0);
    /// ```
    pub fn backoff_coefficient(mut self, c: f64) -> RetryPolicy {
        self.0.backoff_coefficient = c;
        self
    }

    /// The longest wait between attempts.
    ///
    /// ```
    /// let p = hotmesh_client::RetryPolicy::new(3).maximum_interval(std::time::Duration::from_secs(5));
    /// ```
    pub fn maximum_interval(mut self, d: Duration) -> RetryPolicy {
        self.0.maximum_interval = d.as_secs_f64();
        self
    }

    /// The base of the waits.
    ///
    /// ```
    /// let p = hotmesh_client::RetryPolicy::new(3).initial_interval(std::time::Duration::from_millis(100));
    /// ```
    pub fn initial_interval(mut self, d: Duration) -> RetryPolicy {
        self.0.initial_interval = d.as_secs_f64();
        self
    }

    /// A policy in the original's JSON form: `{maximumAttempts, backoffCoefficient,
    /// maximumInterval, initialInterval}` (durations as seconds or strings like `"30s"`),
    /// read with the extension's own rules.
    ///
    /// ```
    /// let p = hotmesh_client::RetryPolicy::from_json(&serde_json::json!({"maximumAttempts": 4, "maximumInterval": "30s"})).unwrap();
    /// assert_eq!(p, hotmesh_client::RetryPolicy::new(4).maximum_interval(std::time::Duration::from_secs(30)));
    /// assert!(hotmesh_client::RetryPolicy::from_json(&serde_json::json!({"maximumAttempts": 0})).is_err());
    /// ```
    pub fn from_json(v: &Value) -> Result<RetryPolicy, crate::Error> {
        let p = Policy::from_config(Some(v)).map_err(|problem| crate::Error::Invalid {
            name: "retry",
            problem,
        })?;
        if p.codes.is_some() {
            return Err(crate::Error::Invalid {
                name: "retry",
                problem: "a worker's policy is structured (maximumAttempts, backoffCoefficient, maximumInterval, initialInterval); per-code policies belong in the YAML".into(),
            });
        }
        Ok(RetryPolicy(p))
    }

    /// How long to wait before attempt `attempt + 1` after `attempt` attempts failed (None:
    /// no attempt left).
    ///
    /// ```
    /// let p = hotmesh_client::RetryPolicy::default();
    /// assert_eq!(p.delay_before(1), Some(std::time::Duration::from_secs(10)));
    /// ```
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        let retries_so_far = attempt.saturating_sub(1).min(i32::MAX as u32) as i32;
        self.0
            .next(500, retries_so_far)
            .map(Duration::from_secs_f64)
    }

    /// The policy in the original's JSON form (intervals in seconds): what
    /// [`from_json`](Self::from_json) reads.
    ///
    /// ```
    /// let p = hotmesh_client::RetryPolicy::new(4);
    /// assert_eq!(p.to_json()["maximumAttempts"], 4);
    /// assert_eq!(hotmesh_client::RetryPolicy::from_json(&p.to_json()).unwrap(), p);
    /// ```
    pub fn to_json(&self) -> Value {
        let p = &self.0;
        json!({
            "maximumAttempts": p.max_attempts,
            "backoffCoefficient": p.backoff_coefficient,
            "maximumInterval": p.maximum_interval,
            "initialInterval": p.initial_interval,
        })
    }

    pub(crate) fn check(&self) -> Result<(), crate::Error> {
        let bad = |problem: &str| {
            Err(crate::Error::Invalid {
                name: "retry",
                problem: problem.into(),
            })
        };
        let p = &self.0;
        if p.max_attempts < 1 {
            return bad("maximum_attempts must be at least 1");
        }
        if !(p.backoff_coefficient.is_finite() && p.backoff_coefficient >= 1.0) {
            return bad("backoff_coefficient must be at least 1");
        }
        if !(p.maximum_interval.is_finite() && p.initial_interval.is_finite()) {
            return bad("intervals must be finite");
        }
        Ok(())
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.0
    }
}

impl From<RetryPolicy> for Value {
    fn from(p: RetryPolicy) -> Value {
        p.to_json()
    }
}

/// A policy deserializes from the original's JSON form, with the extension's checks.
impl TryFrom<Value> for RetryPolicy {
    type Error = crate::Error;
    fn try_from(v: Value) -> Result<RetryPolicy, crate::Error> {
        RetryPolicy::from_json(&v)
    }
}

/// The error of a typed callback ([`Worker::typed`](crate::Worker::typed)). Any
/// `std::error::Error` converts into a retryable one (code 500), so `?` works in the
/// callback; [`fatal`](Self::fatal) is never retried, whatever the policy.
///
/// ```
/// use hotmesh_client::WorkerError;
/// let e = WorkerError::fatal(422, "no such card");
/// assert!(!e.retryable);
/// let io: WorkerError = std::io::Error::other("disk full").into();
/// assert!(io.retryable && io.code == 500);
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct WorkerError {
    /// The code the activity hears (100 to 999; 500 unless given).
    pub code: i32,
    /// What went wrong.
    pub message: String,
    /// Whether the retry policy may try again (false: the job hears it at once).
    pub retryable: bool,
    /// More fields of the error's data, beside `message` and `code`.
    pub data: serde_json::Map<String, Value>,
}

impl WorkerError {
    /// A failure worth another attempt (code 500): the retry policy decides.
    ///
    /// ```
    /// let e = hotmesh_client::WorkerError::retryable("the bank timed out");
    /// assert!(e.retryable);
    /// ```
    pub fn retryable(message: impl std::fmt::Display) -> WorkerError {
        WorkerError {
            code: 500,
            message: message.to_string(),
            retryable: true,
            data: Default::default(),
        }
    }

    /// A failure no retry can mend: the activity hears `code` at once.
    ///
    /// ```
    /// let e = hotmesh_client::WorkerError::fatal(404, "no such customer");
    /// assert_eq!(e.code, 404);
    /// ```
    pub fn fatal(code: i32, message: impl std::fmt::Display) -> WorkerError {
        WorkerError {
            code,
            message: message.to_string(),
            retryable: false,
            data: Default::default(),
        }
    }

    /// Sets the code.
    ///
    /// ```
    /// let e = hotmesh_client::WorkerError::retryable("busy").with_code(503);
    /// ```
    pub fn with_code(mut self, code: i32) -> WorkerError {
        self.code = code;
        self
    }

    /// Adds a field to the error's data.
    ///
    /// ```
    /// let e = hotmesh_client::WorkerError::fatal(422, "bad card").with("card", "4242");
    /// assert_eq!(e.data["card"], "4242");
    /// ```
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> WorkerError {
        self.data.insert(key.to_string(), value.into());
        self
    }

    pub(crate) fn into_outcome(self) -> Outcome {
        let mut data = self.data;
        data.insert("message".into(), json!(self.message));
        data.insert("code".into(), json!(self.code));
        let data = Value::Object(data);
        if self.retryable {
            Outcome::error(self.code, data)
        } else {
            Outcome::fatal(self.code, data)
        }
    }
}

impl std::fmt::Display for WorkerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl<E: std::error::Error> From<E> for WorkerError {
    /// Retryable, code 500, the message with its causes.
    fn from(e: E) -> WorkerError {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        WorkerError::retryable(message)
    }
}
