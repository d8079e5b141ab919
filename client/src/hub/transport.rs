//! The hub on Redis or NATS: a process whose `sub_url` is a transport hears its quorum
//! (throttles, roll calls, `pub_quorum`'s messages) and the activations there, as a bridge
//! with [`BridgeOptions::quorum`](crate::bridge::BridgeOptions::quorum) relays them from
//! PostgreSQL. Each channel LISTENed maps to a subject; what arrives on it is announced as
//! a notification of that channel. At most once, as NOTIFY is: a subscription that was
//! re-established announces `Reconnected`, and consumers look for themselves.

use super::{Cmd, Event};
use crate::Error;
use hotmesh_transport::{subject, AnyTransport, Transport};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// PostgreSQL's channel of activation notices (every app's).
pub(crate) const ACTIVATED: &str = "hotmesh_activated";

/// The subject (or pattern) that carries `channel` on a transport, for a process of `app`:
/// its quorum channel, and the activations of every app (as on PostgreSQL, where the
/// channel is shared). None: not carried (work and completion channels are PostgreSQL's).
pub(crate) fn subject_of(channel: &str, app: &str) -> Option<String> {
    if channel == ACTIVATED {
        return Some(subject::ACTIVATED_ALL.to_string());
    }
    // the channel name may be a hash (a long app id): compare with our own app's
    (!app.is_empty() && channel == hotmesh_engine::channel::quorum(app))
        .then(|| subject::quorum(app))
}

/// A channel subscribed: how many listen, and the task forwarding its events.
struct Relay {
    listeners: usize,
    task: JoinHandle<()>,
}

pub(super) async fn run(
    t: Arc<AnyTransport>,
    app: String,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    events: broadcast::Sender<Event>,
) {
    let mut relays: HashMap<String, Relay> = HashMap::new();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Cmd::Listen(channel, reply) => {
                if let Some(r) = relays.get_mut(&channel) {
                    r.listeners += 1;
                    let _ = reply.send(Ok(()));
                    continue;
                }
                let Some(subject) = subject_of(&channel, &app) else {
                    let _ = reply.send(Err(Error::Invalid {
                        name: "sub_url",
                        problem: format!(
                            "channel '{channel}' is not carried by the transport (only the \
                             app's quorum and activations are)"
                        ),
                    }));
                    continue;
                };
                // subscribed before the reply: what is published after listen returns is heard
                match t.subscribe(&subject).await {
                    Ok(sub) => {
                        let task = tokio::spawn(forward(
                            t.clone(),
                            channel.clone(),
                            subject,
                            sub,
                            events.clone(),
                        ));
                        relays.insert(channel, Relay { listeners: 1, task });
                        let _ = reply.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(Error::Transport(e)));
                    }
                }
            }
            Cmd::Unlisten(channel) => {
                if let Some(r) = relays.get_mut(&channel) {
                    r.listeners -= 1;
                    if r.listeners == 0 {
                        if let Some(r) = relays.remove(&channel) {
                            r.task.abort();
                        }
                    }
                }
            }
        }
    }
    // every handle is gone
    for r in relays.into_values() {
        r.task.abort();
    }
}

/// Announces the events of `subject` as notifications of `channel`; subscribes again
/// when the transport ended the subscription.
async fn forward(
    t: Arc<AnyTransport>,
    channel: String,
    subject: String,
    mut sub: hotmesh_transport::Subscription,
    events: broadcast::Sender<Event>,
) {
    loop {
        while let Some(e) = sub.next().await {
            let _ = events.send(Event::Note {
                channel: channel.clone(),
                payload: String::from_utf8_lossy(&e.payload).into_owned(),
            });
        }
        sub = resubscribe(&t, &subject).await;
        // what was published meanwhile is lost: consumers look for themselves
        let _ = events.send(Event::Reconnected);
    }
}

/// A subscription to `pattern` again, after the transport ended one: tries until it is
/// back (100 ms doubling to 5 s between tries). What was published meanwhile is lost.
pub(crate) async fn resubscribe(
    t: &AnyTransport,
    pattern: &str,
) -> hotmesh_transport::Subscription {
    tracing::warn!(%pattern, "hotmesh: a transport subscription ended; subscribing again");
    let mut wait = Duration::from_millis(100);
    loop {
        tokio::time::sleep(wait).await;
        match t.subscribe(pattern).await {
            Ok(s) => return s,
            Err(e) => {
                tracing::warn!(error = %e, %pattern, "hotmesh: cannot subscribe; retrying");
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quorum_and_activation_channels_map_to_their_subjects() {
        let q = hotmesh_engine::channel::quorum("orders");
        assert_eq!(subject_of(&q, "orders").as_deref(), Some("_quorum.orders"));
        assert_eq!(
            subject_of(ACTIVATED, "orders").as_deref(),
            Some("_activated.>")
        );
        assert_eq!(subject_of(ACTIVATED, "").as_deref(), Some("_activated.>"));
    }

    #[test]
    fn a_long_app_id_maps_through_its_hashed_channel() {
        let app = "a".repeat(80);
        let q = hotmesh_engine::channel::quorum(&app);
        assert!(q.starts_with("hm:"));
        assert_eq!(subject_of(&q, &app), Some(format!("_quorum.{app}")));
    }

    #[test]
    fn channels_the_bridge_does_not_relay_are_not_carried() {
        assert_eq!(
            subject_of(&hotmesh_engine::channel::quorum("billing"), "orders"),
            None
        );
        assert_eq!(
            subject_of(&hotmesh_engine::channel::work("orders.charge"), "orders"),
            None
        );
        assert_eq!(subject_of("orders.done", "orders"), None);
        assert_eq!(subject_of(&hotmesh_engine::channel::quorum(""), ""), None);
    }
}
