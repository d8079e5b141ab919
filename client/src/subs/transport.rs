//! `sub` and `psub` when `sub_url` names Redis or NATS: a subscription to the transport's
//! subject (the topic) or pattern, where a bridge publishes completions and emits
//! ([`BridgeOptions::events`](crate::bridge::BridgeOptions::events)) as [`JobMessage`]s in
//! JSON. Patterns are NATS subjects there (`*` one token, a last `>` the rest), not
//! PostgreSQL's globs.
//!
//! The message is the job as the bridge read it (with the bridge's privileges), delivered
//! as it came: on a transport, who may publish is the transport's access control, not
//! PostgreSQL's. At most once, as NOTIFY is.

use super::{Callback, JobMessage};
use crate::{Error, HotMesh};
use hotmesh_transport::{subject, AnyTransport, Event, Transport};
use std::sync::Arc;

/// The completion an event carries: a [`JobMessage`] published on the subject named by
/// its topic. None for anything else on the subjects a pattern reaches (quorum
/// messages, other services' events).
pub(crate) fn job_message(e: &Event) -> Option<JobMessage> {
    let m: JobMessage = serde_json::from_slice(&e.payload).ok()?;
    (m.topic == e.subject).then_some(m)
}

/// Checks what `sub` (a subject) or `psub` (a pattern) is given, as the transport will.
pub(crate) fn check(what: &str, pattern: bool) -> Result<(), Error> {
    let (checked, name) = if pattern {
        (subject::check_pattern(what), "pattern")
    } else {
        (subject::check_subject(what), "topic")
    };
    checked.map_err(|e| Error::Invalid {
        name,
        problem: format!("{e} (on a transport sub_url it is a NATS subject)"),
    })
}

impl HotMesh {
    /// Subscribes `callback` to `what` on `t`; returns once the transport has the
    /// subscription (a completion published after this is delivered).
    pub(super) async fn subscribe_on_transport(
        &self,
        t: &Arc<AnyTransport>,
        key: String,
        what: String,
        pattern: bool,
        callback: Callback,
    ) -> Result<(), Error> {
        check(&what, pattern)?;
        let mut sub = t.subscribe(&what).await.map_err(Error::Transport)?;
        let t = t.clone();
        let task = tokio::spawn(async move {
            loop {
                while let Some(e) = sub.next().await {
                    match job_message(&e) {
                        Some(m) => callback(m),
                        None => {
                            tracing::debug!(subject = %e.subject, "hotmesh: not a completion; skipped")
                        }
                    }
                }
                sub = crate::hub::resubscribe(&t, &what).await;
            }
        });
        self.keep_subscription(key, task);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(subject: &str, payload: serde_json::Value) -> Event {
        Event {
            subject: subject.into(),
            payload: payload.to_string().into_bytes(),
        }
    }

    #[test]
    fn a_completion_published_by_the_bridge_reads_as_a_job_message() {
        let m = job_message(&event(
            "orders.done",
            json!({"topic": "orders.done", "job": {"metadata": {"jid": "j1", "js": 0}, "data": {"n": 2}}}),
        ))
        .expect("a job message");
        assert_eq!(m.topic, "orders.done");
        assert_eq!(m.job.job_id(), "j1");
        assert_eq!(m.job.data["n"], 2);
    }

    #[test]
    fn other_traffic_on_a_pattern_is_not_a_completion() {
        assert!(job_message(&event("_quorum.orders", json!({"type": "throttle"}))).is_none());
        let wrong_subject =
            json!({"topic": "orders.done", "job": {"metadata": {"jid": "j1"}, "data": {}}});
        assert!(job_message(&event("orders.other", wrong_subject)).is_none());
        let e = Event {
            subject: "orders.done".into(),
            payload: b"not json".to_vec(),
        };
        assert!(job_message(&e).is_none());
    }

    #[test]
    fn topics_and_patterns_are_nats_subjects_on_a_transport() {
        assert!(check("orders.done", false).is_ok());
        assert!(check("orders.*", false).is_err());
        assert!(check("orders.*", true).is_ok());
        assert!(check("orders.>", true).is_ok());
        // a glob of PostgreSQL's psub is no NATS pattern
        let e = check("orders.d*", true).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Invalid {
                    name: "pattern",
                    ..
                }
            ),
            "{e}"
        );
    }
}
