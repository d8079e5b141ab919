//! Engine work: a leg of one activity of one job (a transition, a worker's answer, a
//! child's result, a timer, a signal, a cycle's re-entry), as the engine queues it in
//! memory and as the engine stream stores it; and what an activity's failure carries.

use crate::answer::Status;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Leg 1 of an activity (its parent finished).
    Transition,
    /// A worker's answer.
    Response,
    /// A child job's result, for an await activity.
    Result,
    /// A hook's timer fired.
    Timer,
    /// A signal reached a hook.
    Signal,
    /// A cycle re-enters its ancestor.
    Cycle,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Transition => "transition",
            Kind::Response => "response",
            Kind::Result => "result",
            Kind::Timer => "timehook",
            Kind::Signal => "webhook",
            Kind::Cycle => "cycle",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "transition" => Kind::Transition,
            "response" => Kind::Response,
            "result" => Kind::Result,
            "timehook" => Kind::Timer,
            "webhook" => Kind::Signal,
            "cycle" => Kind::Cycle,
            _ => return None,
        })
    }

    /// Engine stream priority (the original's order: signals and timers first).
    pub fn priority(self) -> i32 {
        match self {
            Kind::Timer | Kind::Signal => 5,
            Kind::Transition | Kind::Cycle => 4,
            Kind::Result => 3,
            Kind::Response => 2,
        }
    }
}

/// One unit of engine work: a leg of activity `aid` at `dad` of job `job_id`.
#[derive(Debug, Clone)]
pub struct Work {
    pub kind: Kind,
    pub job_id: String,
    pub gid: String,
    pub aid: String,
    pub dad: String,
    /// What the activity waits for (worker message id, child job id, timer id).
    pub token: Option<String>,
    pub data: Value,
    pub status: Status,
    pub code: i64,
}

impl Work {
    /// A signal for the hook `aid` at `dad` of job `job_id`.
    pub fn signal(hook: [String; 4], data: Value, status: Status, code: i64) -> Work {
        let [job_id, gid, aid, dad] = hook;
        Work {
            kind: Kind::Signal,
            job_id,
            gid,
            aid,
            dad,
            token: None,
            data,
            status,
            code,
        }
    }

    pub fn transition(job_id: &str, gid: &str, aid: &str, dad: &str) -> Work {
        Work {
            kind: Kind::Transition,
            job_id: job_id.into(),
            gid: gid.into(),
            aid: aid.into(),
            dad: dad.into(),
            token: None,
            data: Value::Null,
            status: Status::Success,
            code: 200,
        }
    }
}

/// What locking a job without waiting got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// The job row is locked by this transaction.
    Held,
    /// Another transaction holds it.
    Busy,
    /// No such job (or it expired).
    Gone,
}

/// A failure while running an activity: becomes the activity's error (code 500 unless
/// told otherwise) and follows the error path.
pub struct Failure {
    pub code: i64,
    pub message: String,
}

impl From<hotmesh_manifest::EvalError> for Failure {
    fn from(e: hotmesh_manifest::EvalError) -> Self {
        Failure {
            code: 500,
            message: e.to_string(),
        }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure { code: 500, message }
    }
}
