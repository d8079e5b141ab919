//! A set of named bridges kept running: what the extension's bridge background worker runs
//! for the rows of `hotmesh.transports` (docs/transports.md). [`BridgeSet::reconcile`] takes
//! the wanted bridges; each is started by a task of its own, which connects the database
//! and the transport, retries with a backoff (1 s doubling to 30 s) while either cannot be
//! reached, and then runs the [`Bridge`] until it is no longer wanted. A bridge whose
//! specification changed is stopped and started again.
//!
//! Nothing here touches PostgreSQL's internals: the worker calls it from its own thread
//! through a tokio runtime, and writes [`BridgeSet::states`] into a table itself.

use crate::bridge::{Bridge, BridgeOptions, BridgeState};
use crate::HotMesh;
use hotmesh_transport::Options;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One wanted bridge: where it connects and what it relays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeSpec {
    /// Its name: the consumer name on PostgreSQL and on the transport.
    pub name: String,
    /// The transport's URL (`redis://…`, `nats://…`).
    pub transport: String,
    /// The database, as a `postgres://` URL.
    pub database: String,
    /// Worker topics relayed to the transport.
    pub topics: Vec<String>,
    /// Publishes-topic patterns whose completions go out as events.
    pub events: Vec<String>,
    /// Apps whose quorum messages cross both ways.
    pub quorum: Vec<String>,
    /// How long a message on the transport stays reserved without a heartbeat.
    pub hold: Duration,
}

impl BridgeSpec {
    fn options(&self) -> BridgeOptions {
        BridgeOptions::new(self.topics.clone())
            .name(self.name.clone())
            .hold(self.hold)
            .events(self.events.clone())
            .quorum(self.quorum.clone())
    }
}

/// Where a bridge's task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connecting for the first time.
    Starting,
    /// Relaying.
    Running,
    /// The database or the transport could not be reached, or refused: waiting to try again.
    Retrying,
}

impl Phase {
    /// As `hotmesh.bridges` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Retrying => "retrying",
        }
    }
}

/// A bridge's phase and counters, as its task last saw them.
#[derive(Clone, Debug, PartialEq)]
pub struct Supervised {
    /// Where its task is.
    pub phase: Phase,
    /// The running bridge's counters (zero before it ran), plus the failed starts in `errors`.
    pub state: BridgeState,
    /// Why the last start failed, while it has not started since.
    pub last_error: Option<String>,
    /// When it last started relaying.
    pub started_at: Option<SystemTime>,
}

struct Running {
    spec: BridgeSpec,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    seen: Arc<Mutex<Supervised>>,
}

/// Named bridges, each kept running by a task of its own.
#[derive(Default)]
pub struct BridgeSet {
    running: HashMap<String, Running>,
}

/// The first wait after a failed start, and the longest.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How often a running bridge's counters are copied out.
const REPORT: Duration = Duration::from_millis(500);

impl BridgeSet {
    /// No bridges yet.
    pub fn new() -> BridgeSet {
        BridgeSet::default()
    }

    /// Makes the running bridges those of `wanted` (by name): starts the new ones, stops
    /// those no longer wanted, restarts those whose specification changed. Must be called
    /// within a tokio runtime. Returns the names started and stopped, for the log.
    pub fn reconcile(&mut self, wanted: Vec<BridgeSpec>) -> (Vec<String>, Vec<String>) {
        let (start, stop) = plan(
            self.running.iter().map(|(n, r)| (n.as_str(), &r.spec)),
            &wanted,
        );
        for name in &stop {
            if let Some(r) = self.running.remove(name) {
                // its task stops the bridge (and lets its messages' holds lapse on the
                // next bridge's heartbeat) without holding up the caller
                let _ = r.stop.send(true);
            }
        }
        for spec in wanted.into_iter().filter(|s| start.contains(&s.name)) {
            let (stop, rx) = watch::channel(false);
            let seen = Arc::new(Mutex::new(Supervised {
                phase: Phase::Starting,
                state: BridgeState::default(),
                last_error: None,
                started_at: None,
            }));
            let task = tokio::spawn(supervise(spec.clone(), seen.clone(), rx));
            self.running.insert(
                spec.name.clone(),
                Running {
                    spec,
                    stop,
                    task,
                    seen,
                },
            );
        }
        (start, stop)
    }

    /// Each bridge's name and what its task last saw.
    pub fn states(&self) -> Vec<(String, Supervised)> {
        let mut out: Vec<_> = self
            .running
            .iter()
            .map(|(n, r)| (n.clone(), r.seen.lock().unwrap().clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Stops every bridge and waits for them, at most `patience`.
    pub async fn stop_all(&mut self, patience: Duration) {
        let running: Vec<_> = self.running.drain().map(|(_, r)| r).collect();
        for r in &running {
            let _ = r.stop.send(true);
        }
        let all = async {
            for r in running {
                let _ = r.task.await;
            }
        };
        let _ = tokio::time::timeout(patience, all).await;
    }
}

/// Which names to start and which to stop, from what runs and what is wanted: a name
/// that runs with another specification is in both.
fn plan<'a>(
    running: impl Iterator<Item = (&'a str, &'a BridgeSpec)>,
    wanted: &[BridgeSpec],
) -> (Vec<String>, Vec<String>) {
    let running: HashMap<&str, &BridgeSpec> = running.collect();
    let mut stop: Vec<String> = running
        .iter()
        .filter(|(n, s)| !wanted.iter().any(|w| w.name == **n && w == **s))
        .map(|(n, _)| n.to_string())
        .collect();
    stop.sort();
    let start = wanted
        .iter()
        .filter(|w| running.get(w.name.as_str()) != Some(w))
        .map(|w| w.name.clone())
        .collect();
    (start, stop)
}

/// Keeps one bridge running until `stop`.
async fn supervise(
    spec: BridgeSpec,
    seen: Arc<Mutex<Supervised>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut wait = RETRY_FIRST;
    let mut failed_starts = 0u64;
    // a bridge that started runs until stopped (its connections reconnect by themselves)
    while !*stop.borrow() {
        match start(&spec).await {
            Ok((hm, bridge)) => {
                {
                    let mut s = seen.lock().unwrap();
                    s.phase = Phase::Running;
                    s.last_error = None;
                    s.started_at = Some(SystemTime::now());
                }
                tracing::info!(bridge = %spec.name, "hotmesh bridge: relaying");
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(REPORT) => {
                            let mut state = bridge.state();
                            state.errors += failed_starts;
                            seen.lock().unwrap().state = state;
                        }
                        _ = stop.changed() => break,
                    }
                }
                bridge.stop().await;
                hm.stop().await;
                return;
            }
            Err(e) => {
                failed_starts += 1;
                tracing::warn!(bridge = %spec.name, error = %e, "hotmesh bridge: cannot start; retrying in {} s", wait.as_secs());
                {
                    let mut s = seen.lock().unwrap();
                    s.phase = Phase::Retrying;
                    s.state.connected = false;
                    s.state.errors += 1;
                    s.last_error = Some(e);
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
                wait = (wait * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Connects the database and the transport, and starts relaying.
async fn start(spec: &BridgeSpec) -> Result<(HotMesh, Bridge), String> {
    let hm = HotMesh::connect(&spec.database)
        .await
        .map_err(|e| format!("database: {e}"))?;
    let options = Options {
        claim_after: spec.hold,
        ..Options::default()
    };
    let transport = match hotmesh_transport::connect(&spec.transport, options).await {
        Ok(t) => t,
        Err(e) => {
            hm.stop().await;
            return Err(format!(
                "{}: {e}",
                hotmesh_transport::redact(&spec.transport)
            ));
        }
    };
    match Bridge::start(&hm, Arc::new(transport), spec.options()).await {
        Ok(b) => Ok((hm, b)),
        Err(e) => {
            hm.stop().await;
            Err(e.to_string())
        }
    }
}

/// The URL of a database on this server, as a bridge worker connects to it: `host` a
/// socket directory (starting with `/`) or an address.
///
/// ```
/// let u = hotmesh_client::bridge_set::local_database_url("/var/run/postgresql", 5432, "my db", "app role", "hotmesh bridge");
/// assert_eq!(u, "postgres://app%20role@localhost:5432/my%20db?host=%2Fvar%2Frun%2Fpostgresql&application_name=hotmesh%20bridge");
/// ```
pub fn local_database_url(
    host: &str,
    port: u16,
    database: &str,
    role: &str,
    application: &str,
) -> String {
    let authority = if host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    let mut url = format!(
        "postgres://{}@{}:{port}/{}?",
        encode(role),
        if authority.contains(':') {
            format!("[{authority}]")
        } else {
            authority.to_string()
        },
        encode(database)
    );
    if host.starts_with('/') {
        url.push_str(&format!("host={}&", encode(host)));
    }
    url.push_str(&format!("application_name={}", encode(application)));
    url
}

/// Percent-encodes all but the unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, topics: &[&str]) -> BridgeSpec {
        BridgeSpec {
            name: name.into(),
            transport: "redis://127.0.0.1:1/".into(),
            database: "postgres://x@127.0.0.1:1/db".into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            events: vec![],
            quorum: vec![],
            hold: Duration::from_secs(60),
        }
    }

    #[test]
    fn new_names_start_and_gone_names_stop() {
        let a = spec("a", &["t.a"]);
        let b = spec("b", &["t.b"]);
        let (start, stop) = plan([("a", &a)].into_iter(), std::slice::from_ref(&b));
        assert_eq!(start, ["b"]);
        assert_eq!(stop, ["a"]);
    }

    #[test]
    fn a_changed_specification_restarts_its_bridge_and_an_unchanged_one_runs_on() {
        let a = spec("a", &["t.a"]);
        let b = spec("b", &["t.b"]);
        let b2 = spec("b", &["t.b", "t.c"]);
        let (start, stop) = plan([("a", &a), ("b", &b)].into_iter(), &[a.clone(), b2]);
        assert_eq!(start, ["b"]);
        assert_eq!(stop, ["b"]);
    }

    #[tokio::test]
    async fn an_unreachable_transport_is_retried_and_its_error_shown() {
        let mut set = BridgeSet::new();
        // a database nobody listens on: the start fails, the task retries
        set.reconcile(vec![spec("a", &["t.a"])]);
        let mut seen = None;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let s = set.states();
            if s[0].1.phase == Phase::Retrying {
                seen = Some(s[0].1.clone());
                break;
            }
        }
        let seen = seen.expect("the bridge retries");
        assert!(seen.last_error.unwrap().starts_with("database:"));
        assert!(seen.state.errors >= 1 && !seen.state.connected);
        set.stop_all(Duration::from_secs(5)).await;
        assert!(set.states().is_empty());
    }
}
