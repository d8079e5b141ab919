//! The bridge (docs/transports.md): the worker messages of chosen topics leave PostgreSQL
//! for Redis or NATS, and the answers of the workers there come back into the engine. The
//! engine and its state stay in PostgreSQL; workers on the transport run the same callback
//! code as workers on PostgreSQL (`Config::stream_url`).
//!
//! For each topic, the bridge is one more worker of the topic on PostgreSQL: it takes
//! messages with `hotmesh.dequeue` (the same reservation, the same privileges: `work` on the
//! topic's app), puts each on the transport (`send_work`, which returns once the transport
//! stored it), and holds the message's reservation while it is out there (a heartbeat of
//! all the messages in flight, every third of [`BridgeOptions::hold`]). A message the
//! transport did not take is released at once, to be taken again. Answers come back on the
//! transport's answer queue; each is applied as a worker's answer is (`respond_batch`,
//! batched, each answer its own step) and acknowledged on the transport only after that
//! commit.
//!
//! Nothing lost, nothing applied twice:
//! - a message leaves PostgreSQL's stream only when its answer is applied; until then it
//!   is reserved by the bridge, and handed out again if the bridge stops holding it (the
//!   bridge died: the reservation lapses after `hold`);
//! - an answer is applied once however often it arrives: its reservation must be the
//!   message's current one, and a message already answered is gone (`respond` is false);
//!   either way the delivery is acknowledged;
//! - an answer not applied (the database unreachable) is not acknowledged: the transport
//!   delivers it again after its `claim_after`.
//!
//! Besides the work, a bridge relays events: completions (and emits) of chosen publishes
//! topics to the transport ([`BridgeOptions::events`]), and apps' quorum messages both
//! ways with their activation notices ([`BridgeOptions::quorum`]), so that processes whose
//! [`sub_url`](crate::Config::sub_url) is the transport subscribe and obey throttles there.
//! Events are at most once, as NOTIFY is.

mod quorum;

use crate::answers::Answers;
use crate::backoff::Backoff;
use crate::hub::Event;
use crate::workers::{dequeue, outcome_of, single};
use crate::{Error, HotMesh};
use hotmesh_transport::{Answer, AnyTransport, Status, Transport};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a bridge relays, and how.
#[derive(Clone, Debug)]
pub struct BridgeOptions {
    /// The worker topics whose messages go to the transport.
    pub topics: Vec<String>,
    /// The bridge's name: its consumer name on PostgreSQL (`reserved_by`) and on the
    /// transport's answer queue. Keep it across restarts.
    pub name: String,
    /// How long a message on the transport stays reserved without a heartbeat (the bridge
    /// renews it every third of this while it runs; a dead bridge's messages are handed
    /// out again after it). Default 60 s.
    pub hold: Duration,
    /// Messages taken per `dequeue` (default 50).
    pub batch: usize,
    /// How often an idle topic is looked at without a notification (default 5 s).
    pub poll: Duration,
    /// Publishes topics whose completions go out as events (`psub` patterns: `*` any run
    /// of characters): each completed job, as a [`JobMessage`](crate::JobMessage) in JSON,
    /// on the transport's subject named by its topic, where subscribers on other services
    /// take them with NATS wildcards (`orders.*`, `orders.>`), clients whose
    /// [`sub_url`](crate::Config::sub_url) is the transport with `sub` and `psub`. At most
    /// once, as NOTIFY is.
    pub events: Vec<String>,
    /// Apps whose quorum crosses the bridge, both ways: the app's quorum messages on
    /// PostgreSQL (throttles, roll calls, `pub_quorum`'s) are published on the subject
    /// `_quorum.<app>`, and those published there by processes on the transport are
    /// NOTIFYed on the app's quorum channel; the app's activation notices go out on
    /// `_activated.<app>` (`{app_id, version}`). A message the bridge relays carries
    /// `"_bridge": <its name>` and is not relayed again (by any bridge: run one bridge per
    /// app's quorum, or each message arrives once per bridge). Quorum messages are JSON
    /// objects of at most 7,500 bytes once marked (a NOTIFY's payload); others are not
    /// relayed. At most once, as NOTIFY is. An app id must make a subject (no whitespace,
    /// no wildcards, no empty token).
    pub quorum: Vec<String>,
}

impl BridgeOptions {
    /// The topics, with defaults for the rest (name `bridge`).
    ///
    /// ```
    /// let o = hotmesh_client::bridge::BridgeOptions::new(["orders.charge"]);
    /// assert_eq!(o.hold.as_secs(), 60);
    /// ```
    pub fn new<S: Into<String>>(topics: impl IntoIterator<Item = S>) -> BridgeOptions {
        BridgeOptions {
            topics: topics.into_iter().map(Into::into).collect(),
            name: "bridge".into(),
            hold: Duration::from_secs(60),
            batch: 50,
            poll: Duration::from_secs(5),
            events: vec![],
            quorum: vec![],
        }
    }

    /// Relays the quorum messages (and activation notices) of the apps `apps` both ways
    /// (see [`quorum`](BridgeOptions::quorum)).
    ///
    /// ```
    /// let o = hotmesh_client::bridge::BridgeOptions::new(["orders.charge"]).quorum(["orders"]);
    /// assert_eq!(o.quorum, ["orders"]);
    /// // a bridge of the quorum only
    /// let o = hotmesh_client::bridge::BridgeOptions::new(Vec::<String>::new()).quorum(["orders"]);
    /// ```
    pub fn quorum<S: Into<String>>(mut self, apps: impl IntoIterator<Item = S>) -> Self {
        self.quorum = apps.into_iter().map(Into::into).collect();
        self
    }

    /// Relays the completions of the publishes topics `patterns` matches as events.
    ///
    /// ```
    /// let o = hotmesh_client::bridge::BridgeOptions::new(["orders.charge"]).events(["orders.*"]);
    /// assert_eq!(o.events, ["orders.*"]);
    /// ```
    pub fn events<S: Into<String>>(
        mut self,
        patterns: impl IntoIterator<Item = S>,
    ) -> BridgeOptions {
        self.events = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the bridge's name.
    pub fn name(mut self, name: impl Into<String>) -> BridgeOptions {
        self.name = name.into();
        self
    }

    /// Sets how long a message on the transport stays reserved without a heartbeat.
    pub fn hold(mut self, hold: Duration) -> BridgeOptions {
        self.hold = hold;
        self
    }
}

/// What a running bridge has done (counters since it started).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeState {
    /// Whether its last call to the transport succeeded.
    pub connected: bool,
    /// Messages put on the transport.
    pub relayed: u64,
    /// Answers applied (or found stale) and acknowledged.
    pub answered: u64,
    /// Messages on the transport whose answer has not come back yet.
    pub in_flight: u64,
    /// Completions published as events.
    pub events: u64,
    /// Failed calls (to the transport or the database), each retried.
    pub errors: u64,
    /// Quorum messages relayed (either way) and activation notices published.
    pub quorum: u64,
}

#[derive(Default)]
struct Counters {
    connected: AtomicBool,
    events: AtomicU64,
    quorum: AtomicU64,
    relayed: AtomicU64,
    answered: AtomicU64,
    errors: AtomicU64,
}

/// Messages on the transport: id -> reservation.
type InFlight = Arc<Mutex<HashMap<i64, i64>>>;

/// A running bridge; [`Bridge::stop`] ends it.
pub struct Bridge {
    hm: HotMesh,
    events: Vec<String>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
    in_flight: InFlight,
}

impl Bridge {
    /// Starts relaying `options.topics` between the database of `hm` and `transport`.
    pub async fn start(
        hm: &HotMesh,
        transport: Arc<AnyTransport>,
        options: BridgeOptions,
    ) -> Result<Bridge, Error> {
        if options.topics.is_empty() && options.events.is_empty() && options.quorum.is_empty() {
            return Err(Error::Invalid {
                name: "topics",
                problem: "name at least one worker topic, events pattern or quorum app".into(),
            });
        }
        quorum::check(&options)?;
        if options.hold < Duration::from_secs(3) {
            return Err(Error::Invalid {
                name: "hold",
                problem: "at least 3 seconds".into(),
            });
        }
        let (stop, _) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let in_flight: InFlight = Arc::default();
        let link = Link {
            hm: hm.clone(),
            transport,
            options: options.clone(),
            counters: counters.clone(),
            in_flight: in_flight.clone(),
        };
        for (i, pattern) in options.events.iter().enumerate() {
            if let Err(e) = link.relay_events(pattern).await {
                for p in &options.events[..i] {
                    hm.punsub(p);
                }
                return Err(e);
            }
        }
        let mut tasks = match quorum::start(&link, &stop).await {
            Ok(t) => t,
            Err(e) => {
                for p in &options.events {
                    hm.punsub(p);
                }
                return Err(e);
            }
        };
        for topic in &options.topics {
            tasks.push(tokio::spawn(
                link.clone().relay_work(topic.clone(), stop.subscribe()),
            ));
        }
        tasks.push(tokio::spawn(link.clone().apply_answers(stop.subscribe())));
        tasks.push(tokio::spawn(link.clone().hold_in_flight(stop.subscribe())));

        Ok(Bridge {
            hm: hm.clone(),
            events: options.events.clone(),
            stop,
            tasks,
            counters,
            in_flight,
        })
    }

    /// Its counters now.
    pub fn state(&self) -> BridgeState {
        let c = &self.counters;
        BridgeState {
            connected: c.connected.load(Ordering::Relaxed),
            relayed: c.relayed.load(Ordering::Relaxed),
            answered: c.answered.load(Ordering::Relaxed),
            in_flight: self.in_flight.lock().unwrap().len() as u64,
            events: c.events.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            quorum: c.quorum.load(Ordering::Relaxed),
        }
    }

    /// Stops relaying. Messages on the transport stay reserved until their hold lapses:
    /// their answers are applied by the next bridge that runs, or they are handed out again.
    pub async fn stop(self) {
        for pattern in &self.events {
            self.hm.punsub(pattern);
        }
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// What the bridge's tasks share.
#[derive(Clone)]
struct Link {
    hm: HotMesh,
    transport: Arc<AnyTransport>,
    options: BridgeOptions,
    counters: Arc<Counters>,
    in_flight: InFlight,
}

impl Link {
    fn failed(&self, what: &str, e: &dyn std::fmt::Display, transport: bool) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        if transport {
            self.counters.connected.store(false, Ordering::Relaxed);
        }
        tracing::warn!(error = %e, bridge = %self.options.name, "hotmesh bridge: {what}; retrying");
    }

    /// One topic's messages, from PostgreSQL to the transport.
    async fn relay_work(self, topic: String, mut stop: watch::Receiver<bool>) {
        let channel = hotmesh_engine::channel::work(&topic);
        let mut events = match self.hm.hub().await {
            Ok(hub) => {
                let ev = hub.subscribe();
                if let Err(e) = hub.listen(&channel).await {
                    // the poll still finds the work
                    self.failed("cannot LISTEN", &e, false);
                }
                Some(ev)
            }
            Err(e) => {
                self.failed("no LISTEN connection", &e, false);
                None
            }
        };
        let mut backoff = Backoff::new();
        while !*stop.borrow() {
            let msgs = match dequeue(
                &self.hm,
                &topic,
                self.options.hold,
                &self.options.name,
                self.options.batch,
            )
            .await
            {
                Ok(m) => m,
                Err(e) => {
                    self.failed("dequeue", &e, false);
                    backoff.wait(&mut stop).await;
                    continue;
                }
            };
            let idle = msgs.is_empty();
            let mut refused = false;
            for m in msgs {
                let (id, reservation) = (m.id, m.reservation);
                // in flight before it is sent: its answer may come back before send returns
                self.in_flight.lock().unwrap().insert(id, reservation);
                if refused {
                    self.give_back(id, reservation).await;
                    continue;
                }
                match self.transport.send_work(&m.into_work()).await {
                    Ok(()) => {
                        self.counters.relayed.fetch_add(1, Ordering::Relaxed);
                        self.counters.connected.store(true, Ordering::Relaxed);
                        backoff.reset();
                    }
                    Err(e) => {
                        // the transport did not take it: hand it (and the rest of the
                        // batch) out again instead of holding it
                        self.failed("send_work", &e, e.is_connection());
                        self.give_back(id, reservation).await;
                        refused = true;
                    }
                }
            }
            if refused {
                backoff.wait(&mut stop).await;
            } else if idle {
                wait_for_work(&mut events, &channel, self.options.poll, &mut stop).await;
            }
        }
    }

    /// Completions of the publishes topics `pattern` matches, out to the transport (a
    /// subscription of the bridge's client: it ends when the client stops).
    async fn relay_events(&self, pattern: &str) -> Result<(), Error> {
        let link = self.clone();
        self.hm
            .psub_on_postgres(pattern, move |m| {
                let link = link.clone();
                tokio::spawn(async move {
                    let payload = match serde_json::to_vec(&m) {
                        Ok(p) => p,
                        Err(e) => return link.failed("an event", &e, false),
                    };
                    match link.transport.publish(&m.topic, &payload).await {
                        Ok(()) => {
                            link.counters.events.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => link.failed("publish", &e, e.is_connection()),
                    }
                });
            })
            .await
    }

    /// Releases a message the transport did not take (another hand-out takes it).
    async fn give_back(&self, id: i64, reservation: i64) {
        self.in_flight.lock().unwrap().remove(&id);
        if let Err(e) = sqlx::query("SELECT hotmesh.release($1, $2)")
            .bind(id)
            .bind(reservation)
            .execute(self.hm.stream_pool())
            .await
        {
            // its reservation lapses instead
            self.failed("release", &e, false);
        }
    }

    /// Answers, from the transport into the engine; each acknowledged after its commit.
    async fn apply_answers(self, mut stop: watch::Receiver<bool>) {
        let answers = Answers::start(self.hm.clone(), self.options.hold);
        let mut backoff = Backoff::new();
        while !*stop.borrow() {
            let taken = tokio::select! {
                t = self.transport.take_answers(&self.options.name, 100, Duration::from_secs(1)) => t,
                _ = stop.changed() => break,
            };
            let deliveries = match taken {
                Ok(d) => {
                    self.counters.connected.store(true, Ordering::Relaxed);
                    backoff.reset();
                    d
                }
                Err(e) => {
                    self.failed("take_answers", &e, e.is_connection());
                    backoff.wait(&mut stop).await;
                    continue;
                }
            };
            // all at once: the answers of one take share a respond_batch
            let applied: Vec<_> = deliveries
                .into_iter()
                .map(|d| {
                    let answers = answers.clone();
                    let hm = self.hm.clone();
                    tokio::spawn(async move {
                        let r = apply(&hm, &answers, &d.message).await;
                        (d, r)
                    })
                })
                .collect();
            for task in applied {
                let Ok((d, r)) = task.await else { continue };
                match r {
                    Ok(_applied_or_stale) => {
                        if d.message.status != Status::Pending {
                            self.in_flight.lock().unwrap().remove(&d.message.id);
                        }
                        match self.transport.ack_answer(&d).await {
                            Ok(()) => {
                                self.counters.answered.fetch_add(1, Ordering::Relaxed);
                            }
                            // delivered again later: applying it again changes nothing
                            Err(e) => self.failed("ack_answer", &e, e.is_connection()),
                        }
                    }
                    // not applied, not acknowledged: the transport delivers it again
                    Err(e) => self.failed("respond", &e, false),
                }
            }
        }
    }

    /// Renews the reservations of the messages on the transport; forgets those that are
    /// gone (answered, or their job ended).
    async fn hold_in_flight(self, mut stop: watch::Receiver<bool>) {
        let every = self.options.hold / 3;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            let held: Vec<(i64, i64)> = self
                .in_flight
                .lock()
                .unwrap()
                .iter()
                .map(|(i, r)| (*i, *r))
                .collect();
            // one statement per message: a statement that renewed many would hold each
            // row it renewed while it waits for the next, and deadlock with a
            // respond_batch (ours, for answers that came back meanwhile) locking the same
            // rows in its own order; one row at a time holds nothing while it waits, and a
            // row answered meanwhile is simply gone
            for (id, reservation) in held {
                let renewed = sqlx::query_scalar::<_, bool>("SELECT hotmesh.heartbeat($1, $2, $3)")
                    .bind(id)
                    .bind(self.options.hold.as_secs_f64())
                    .bind(reservation)
                    .fetch_one(self.hm.stream_pool())
                    .await;
                match renewed {
                    Ok(true) => {}
                    Ok(false) => {
                        self.in_flight.lock().unwrap().remove(&id);
                    }
                    Err(e) => {
                        self.failed("heartbeat", &e, false);
                        break;
                    }
                }
                if *stop.borrow() {
                    return;
                }
            }
        }
    }
}

/// Sleeps until the topic's NOTIFY, a reconnect, the poll, or stop.
async fn wait_for_work(
    events: &mut Option<tokio::sync::broadcast::Receiver<Event>>,
    channel: &str,
    poll: Duration,
    stop: &mut watch::Receiver<bool>,
) {
    let note = async {
        match events {
            Some(ev) => loop {
                match ev.recv().await {
                    Ok(Event::Note { channel: ch, .. }) if ch == channel => return,
                    Ok(Event::Note { .. }) => {}
                    _ => return,
                }
            },
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = note => {}
        _ = tokio::time::sleep(poll) => {}
        _ = stop.changed() => {}
    }
}

/// Applies one answer: a fatal error (`hotmesh.fail`) or a retry the worker asked for
/// (`hotmesh.retry`) by a call of its own, the others batched. True: applied; false: stale.
async fn apply(hm: &HotMesh, answers: &Answers, a: &Answer) -> Result<bool, String> {
    if a.status == Status::Error && a.fatal {
        single(
            hm,
            sqlx::query_scalar("SELECT hotmesh.fail($1, $2, $3, $4)")
                .bind(a.id)
                .bind(&a.data)
                .bind(a.code.unwrap_or(500))
                .bind(a.reservation),
        )
        .await
    } else if let (Status::Error, Some(delay)) = (a.status, a.retry_after) {
        single(
            hm,
            sqlx::query_scalar("SELECT hotmesh.retry($1, $2, $3, $4)")
                .bind(a.id)
                .bind(delay.clamp(0.0, 86_400.0))
                .bind(&a.data)
                .bind(a.reservation),
        )
        .await
    } else {
        answers.answer(a.id, a.reservation, outcome_of(a)).await
    }
}
