//! Quorum messages both ways through the bridge ([`BridgeOptions::quorum`]): an app's
//! quorum channel on PostgreSQL (throttles, roll calls, `pub_quorum`'s messages) and the
//! subject [`subject::quorum`] on the transport, and the app's activation notices from
//! PostgreSQL to [`subject::activated`].
//!
//! Echo suppression: the bridge hears what it relays (it LISTENs on the channel it
//! notifies, and subscribes to the subject it publishes on), so everything it relays
//! carries a mark, `"_bridge": <its name>`, and a marked message is never relayed again,
//! whichever bridge marked it: a message crosses once. Quorum messages are JSON objects
//! (what `pub_quorum` and the engine send); anything else cannot be marked and is not
//! relayed. A marked message must fit a NOTIFY ([`MAX_PAYLOAD`], as `pub_quorum` checks).
//!
//! At most once, as NOTIFY is: a message that arrives while the other side is down is
//! dropped (and counted as an error).

use super::{BridgeOptions, Link};
use crate::hub::Event;
use crate::Error;
use hotmesh_engine::channel::MAX_PAYLOAD;
use hotmesh_transport::{subject, Subscription, Transport};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// The key that marks a message relayed by a bridge (its value: the bridge's name).
pub(crate) const MARK: &str = "_bridge";

/// Why a message is not relayed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Skip {
    /// A bridge relayed it already (this one's echo, or another bridge's).
    #[error("relayed by a bridge already")]
    Echo,
    /// Not a JSON object: it cannot carry the mark.
    #[error("not a JSON object")]
    NotAnObject,
    /// Marked, it would not fit a NOTIFY.
    #[error("{0} bytes marked; a quorum message carries at most {MAX_PAYLOAD}")]
    TooBig(usize),
}

/// The text to relay for quorum message `payload`, marked as relayed by `bridge`.
pub(crate) fn marked(payload: &[u8], bridge: &str) -> Result<String, Skip> {
    let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(payload) else {
        return Err(Skip::NotAnObject);
    };
    if m.contains_key(MARK) {
        return Err(Skip::Echo);
    }
    m.insert(MARK.into(), Value::String(bridge.into()));
    let text = Value::Object(m).to_string();
    if text.len() > MAX_PAYLOAD {
        return Err(Skip::TooBig(text.len()));
    }
    Ok(text)
}

/// The app whose activation notice `payload` is (`{app_id, version}`), if it is one of
/// `apps`.
pub(crate) fn activated_app<'a>(payload: &str, apps: &'a [String]) -> Option<&'a str> {
    let v: Value = serde_json::from_str(payload).ok()?;
    let app = v["app_id"].as_str()?;
    apps.iter().find(|a| *a == app).map(String::as_str)
}

/// Checks the apps' subjects (an app id must be a subject token), before anything starts.
pub(super) fn check(options: &BridgeOptions) -> Result<(), Error> {
    for app in &options.quorum {
        subject::check_subject(&subject::quorum(app)).map_err(|e| Error::Invalid {
            name: "quorum",
            problem: format!("app '{app}' cannot be a subject: {e}"),
        })?;
    }
    Ok(())
}

/// Starts relaying the quorum of `options.quorum`'s apps: LISTENs and subscribes before
/// it returns (a message sent after it is relayed), then the tasks run until `stop`.
pub(super) async fn start(
    link: &Link,
    stop: &watch::Sender<bool>,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let apps = link.options.quorum.clone();
    if apps.is_empty() {
        return Ok(vec![]);
    }
    let hub = link.hm.hub().await?;
    let events = hub.subscribe();
    let mut channels = HashMap::new(); // channel -> app
    for app in &apps {
        let ch = hotmesh_engine::channel::quorum(app);
        hub.listen(&ch).await?;
        channels.insert(ch, app.clone());
    }
    hub.listen(crate::hub::ACTIVATED).await?;
    let mut tasks = vec![tokio::spawn(link.clone().quorum_to_transport(
        events,
        channels,
        apps.clone(),
        stop.subscribe(),
    ))];
    for app in apps {
        let subject = subject::quorum(&app);
        // subscribed now if the transport is up (so what is published after start is
        // relayed); else the task keeps trying
        let first = match link.transport.subscribe(&subject).await {
            Ok(s) => Some(s),
            Err(e) => {
                link.failed("subscribe to the quorum", &e, e.is_connection());
                None
            }
        };
        tasks.push(tokio::spawn(link.clone().quorum_to_postgres(
            app,
            first,
            stop.subscribe(),
        )));
    }
    Ok(tasks)
}

impl Link {
    /// PostgreSQL's quorum notifications and activation notices of the apps, out to the
    /// transport.
    async fn quorum_to_transport(
        self,
        mut events: broadcast::Receiver<Event>,
        channels: HashMap<String, String>,
        apps: Vec<String>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let ev = tokio::select! {
                ev = events.recv() => ev,
                _ = stop.changed() => break,
            };
            let (channel, payload) = match ev {
                Ok(Event::Note { channel, payload }) => (channel, payload),
                // notifications were lost: at most once, as for any listener
                Ok(Event::Reconnected) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, bridge = %self.options.name, "hotmesh bridge: quorum messages missed");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            let (subject, text) = if channel == crate::hub::ACTIVATED {
                // one way, from the engine: nothing to mark
                match activated_app(&payload, &apps) {
                    Some(app) => (subject::activated(app), payload),
                    None => continue,
                }
            } else if let Some(app) = channels.get(&channel) {
                match marked(payload.as_bytes(), &self.options.name) {
                    Ok(text) => (subject::quorum(app), text),
                    Err(Skip::Echo) => continue,
                    Err(e) => {
                        tracing::warn!(reason = %e, %app, "hotmesh bridge: a quorum message not relayed to the transport");
                        continue;
                    }
                }
            } else {
                continue;
            };
            match self.transport.publish(&subject, text.as_bytes()).await {
                Ok(()) => {
                    self.counters.quorum.fetch_add(1, Ordering::Relaxed);
                    self.counters.connected.store(true, Ordering::Relaxed);
                }
                Err(e) => self.failed("publish a quorum message", &e, e.is_connection()),
            }
        }
        if let Ok(hub) = self.hm.hub().await {
            for ch in channels.keys() {
                hub.unlisten(ch);
            }
            hub.unlisten(crate::hub::ACTIVATED);
        }
    }

    /// Quorum messages published on the transport by its processes, into PostgreSQL's
    /// quorum channel of `app`.
    async fn quorum_to_postgres(
        self,
        app: String,
        mut sub: Option<Subscription>,
        mut stop: watch::Receiver<bool>,
    ) {
        let subject = subject::quorum(&app);
        let mut backoff = crate::backoff::Backoff::new();
        while !*stop.borrow() {
            let Some(s) = sub.as_mut() else {
                match self.transport.subscribe(&subject).await {
                    Ok(s) => {
                        sub = Some(s);
                        backoff.reset();
                    }
                    Err(e) => {
                        self.failed("subscribe to the quorum", &e, e.is_connection());
                        backoff.wait(&mut stop).await;
                    }
                }
                continue;
            };
            let event = tokio::select! {
                e = s.next() => e,
                _ = stop.changed() => break,
            };
            let Some(event) = event else {
                // the transport ended it: subscribe again (what came meanwhile is lost)
                sub = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let text = match marked(&event.payload, &self.options.name) {
                Ok(t) => t,
                Err(Skip::Echo) => continue,
                Err(e) => {
                    tracing::warn!(reason = %e, %app, "hotmesh bridge: a quorum message not relayed to PostgreSQL");
                    continue;
                }
            };
            match sqlx::query("SELECT pg_notify(hotmesh.quorum_channel($1), $2)")
                .bind(&app)
                .bind(&text)
                .execute(self.hm.pool())
                .await
            {
                Ok(_) => {
                    self.counters.quorum.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.failed("pg_notify a quorum message", &e, false),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_message_carries_the_bridges_mark() {
        let t = marked(br#"{"type":"throttle","throttle":-1}"#, "bridge-1").unwrap();
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["_bridge"], "bridge-1");
        assert_eq!(v["type"], "throttle");
        assert_eq!(v["throttle"], -1);
    }

    #[test]
    fn a_marked_message_is_not_relayed_again_by_any_bridge() {
        let once = marked(br#"{"type":"rollcall"}"#, "a").unwrap();
        assert_eq!(marked(once.as_bytes(), "a"), Err(Skip::Echo));
        assert_eq!(marked(once.as_bytes(), "b"), Err(Skip::Echo));
    }

    #[test]
    fn what_cannot_be_marked_is_not_relayed() {
        assert_eq!(marked(b"hello", "a"), Err(Skip::NotAnObject));
        assert_eq!(marked(b"[1,2]", "a"), Err(Skip::NotAnObject));
        assert_eq!(marked(b"\"text\"", "a"), Err(Skip::NotAnObject));
        assert_eq!(marked(&[0xff, 0xfe], "a"), Err(Skip::NotAnObject));
    }

    #[test]
    fn a_message_too_big_for_a_notify_once_marked_is_not_relayed() {
        let fits = serde_json::json!({"type": "user", "x": "a".repeat(MAX_PAYLOAD - 60)});
        assert!(marked(fits.to_string().as_bytes(), "b").is_ok());
        let big = serde_json::json!({"type": "user", "x": "a".repeat(MAX_PAYLOAD)});
        assert!(matches!(
            marked(big.to_string().as_bytes(), "b"),
            Err(Skip::TooBig(n)) if n > MAX_PAYLOAD
        ));
    }

    #[test]
    fn activation_notices_are_relayed_for_the_bridges_apps_only() {
        let apps = vec!["orders".to_string(), "billing".to_string()];
        assert_eq!(
            activated_app(r#"{"app_id":"orders","version":"2"}"#, &apps),
            Some("orders")
        );
        assert_eq!(
            activated_app(r#"{"app_id":"other","version":"2"}"#, &apps),
            None
        );
        assert_eq!(activated_app("not json", &apps), None);
    }
}
