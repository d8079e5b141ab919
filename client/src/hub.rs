//! Where the process hears notifications. Every notification goes to a broadcast channel;
//! each consumer (workers, pubsub waiters, subscriptions, the quorum) filters by channel.
//!
//! Two sources behind the same interface:
//! - PostgreSQL: the process's one LISTEN connection. A lost connection is re-established
//!   by sqlx (which listens again on every channel); consumers then hear `Reconnected`,
//!   since notifications sent meanwhile are lost, and look for themselves (a worker
//!   dequeues, a waiter reads the job).
//! - A transport (`sub_url` names Redis or NATS): the channels a bridge relays are
//!   subscribed as their subjects ([`transport`]), and what arrives is announced under the
//!   channel's name, so the quorum's code is the same on both.

mod transport;
pub(crate) use transport::{resubscribe, ACTIVATED};

use crate::Error;
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, mpsc, oneshot};

#[derive(Clone, Debug)]
pub(crate) enum Event {
    Note { channel: String, payload: String },
    Reconnected,
}

enum Cmd {
    Listen(String, oneshot::Sender<Result<(), Error>>),
    Unlisten(String),
}

pub(crate) struct Hub {
    cmd: mpsc::UnboundedSender<Cmd>,
    events: broadcast::Sender<Event>,
}

impl Hub {
    /// Connects to PostgreSQL and starts the routing task.
    pub async fn start(url: &str) -> Result<Hub, Error> {
        let listener = PgListener::connect(url).await.map_err(Error::Connect)?;
        let (cmd, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(16_384);
        tokio::spawn(run(listener, rx, events.clone()));
        Ok(Hub { cmd, events })
    }

    /// A hub on `t`: the channels of `app`'s quorum and the activations, as the subjects a
    /// bridge relays them on (other channels are refused).
    pub fn on_transport(t: std::sync::Arc<hotmesh_transport::AnyTransport>, app: &str) -> Hub {
        let (cmd, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(16_384);
        tokio::spawn(transport::run(t, app.to_string(), rx, events.clone()));
        Hub { cmd, events }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// LISTENs on `channel` (the name as the engine sends it: see `channel_name`); returns
    /// once the server has it, so a notification sent after this is heard.
    pub async fn listen(&self, channel: &str) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Listen(channel.to_string(), tx))
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    pub fn unlisten(&self, channel: &str) {
        let _ = self.cmd.send(Cmd::Unlisten(channel.to_string()));
    }
}

async fn run(
    mut l: PgListener,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    events: broadcast::Sender<Event>,
) {
    // who listens on each channel: two waiters of one job share its channel, and the
    // first to finish must not deafen the other
    let mut listeners: std::collections::HashMap<String, usize> = Default::default();
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Cmd::Listen(ch, reply)) => {
                    let r = l.listen(&ch).await.map_err(Error::from_sqlx);
                    if r.is_ok() {
                        *listeners.entry(ch).or_default() += 1;
                    }
                    let _ = reply.send(r);
                }
                Some(Cmd::Unlisten(ch)) => {
                    if let Some(n) = listeners.get_mut(&ch) {
                        *n -= 1;
                        if *n == 0 {
                            listeners.remove(&ch);
                            let _ = l.unlisten(&ch).await;
                        }
                    }
                }
                // every handle is gone
                None => return,
            },
            n = l.try_recv() => match n {
                Ok(Some(n)) => {
                    let _ = events.send(Event::Note {
                        channel: n.channel().to_string(),
                        payload: n.payload().to_string(),
                    });
                }
                Ok(None) => {
                    // the connection was lost; the next try_recv reconnects and listens again
                    tracing::warn!("hotmesh: LISTEN connection lost; reconnecting");
                    let _ = events.send(Event::Reconnected);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "hotmesh: LISTEN connection failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    let _ = events.send(Event::Reconnected);
                }
            },
        }
    }
}
