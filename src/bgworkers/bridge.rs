//! The bridge worker of one database (docs/transports.md): started by the database's engine
//! worker while `hotmesh.transports` has an enabled row, it runs the bridges those rows
//! describe (`hotmesh_client::bridge_set`) and writes their state into
//! `hotmesh.bridge_status` (read through the view `hotmesh.bridges`).
//!
//! How it talks to the database: the bridges are async code (sqlx, redis, async-nats) on
//! a tokio runtime, and a background worker may not use SPI, or any PostgreSQL function,
//! from threads other than its main one. So each bridge has its own connections to this
//! server, as the role its row names, exactly as the `hotmesh bridge` command has: the
//! same code, the same privileges (`work` on the topics' apps), LISTEN for the events
//! (a background worker cannot LISTEN through SPI). The main thread uses SPI only for its
//! own bookkeeping: reading the rows (when they change, and every second) and writing the
//! state when it changed (at least every 5 seconds). The connection goes to `hotmesh.bridge_host` (default: the first of
//! `unix_socket_directories`) and this server's port; authentication is pg_hba's.

use super::txn;
use crate::gucs;
use crate::store::db;
use hotmesh_bgworker::log_lines::LogLines;
use hotmesh_client::bridge_set::{local_database_url, BridgeSet, BridgeSpec, Supervised};
use pgrx::bgworkers::*;
use pgrx::prelude::*;
use pgrx::PgMemoryContexts;
use std::time::{Duration, Instant};

/// `backend_type` shown in `pg_stat_activity`.
pub const BRIDGE_TYPE: &str = "hotmesh bridge";

/// How long the worker sleeps when not woken (a change of the rows wakes it): it reads
/// the rows and copies out the bridges' state this often.
const TICK: Duration = Duration::from_secs(1);
/// How often the state is written when nothing changed (so `updated_at` shows it lives).
const WRITE_EVERY: Duration = Duration::from_secs(5);
/// How long a stop waits for the bridges' tasks.
const STOP_PATIENCE: Duration = Duration::from_secs(5);
/// One bridge worker per database: the key of the session advisory lock it holds.
const LOCK_KEY: (i32, i32) = (0x686d_6272, 1); // "hmbr"

/// Starts the bridge worker of database `dboid` (called by its engine worker, which the
/// postmaster wakes when the bridge worker exits: it starts another if still wanted).
pub fn start(dboid: u32, name: &str) -> Option<DynamicBackgroundWorker> {
    let title: String = format!("{BRIDGE_TYPE} {name}").chars().take(90).collect();
    unsafe {
        PgMemoryContexts::TopMemoryContext.switch_to(|_| {
            BackgroundWorkerBuilder::new(&title)
                .set_type(BRIDGE_TYPE)
                .set_library("hotmesh")
                .set_function("hotmesh_bridge_main")
                .enable_spi_access()
                .set_start_time(BgWorkerStartTime::RecoveryFinished)
                .set_restart_time(None) // the engine worker starts it again
                .set_argument(Some(pg_sys::Datum::from(dboid)))
                .set_notify_pid(pg_sys::MyProcPid)
                .load_dynamic()
                .ok()
        })
    }
}

/// A bridge worker is started at most this often (one that dies at once is not restarted
/// in a loop).
const RESTART_MS: i64 = 1_000;

/// The engine worker's side: keeps its database's bridge worker running while an enabled
/// transport wants one.
#[derive(Default)]
pub struct Keeper {
    handle: Option<DynamicBackgroundWorker>,
    /// Looked at least once (when the engine worker starts).
    looked: bool,
    warned: bool,
    last_start_ms: i64,
    /// A start held back (too soon after the last, or no free slot): look again then.
    again_at_ms: Option<i64>,
}

impl Keeper {
    /// Whether to look now: the first time, after `hotmesh.transports` changed, when the
    /// bridge worker exited (the postmaster wakes us), or when a held-back start is due.
    pub fn due(&self, transports_changed: bool, now_ms: i64) -> bool {
        !self.looked
            || transports_changed
            || self.exited()
            || self.again_at_ms.is_some_and(|t| now_ms >= t)
    }

    /// Whether the bridge worker started last has exited.
    pub fn exited(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| {
            matches!(
                h.pid(),
                Err(BackgroundWorkerStatus::Stopped) | Err(BackgroundWorkerStatus::PostmasterDied)
            )
        })
    }

    /// When to look again without being woken, if a start was held back.
    pub fn next_ms(&self) -> Option<i64> {
        self.again_at_ms
    }

    /// Starts the bridge worker if one is wanted and none runs.
    pub fn look(&mut self, dboid: u32) {
        self.looked = true;
        self.again_at_ms = None;
        if self.handle.is_some() && !self.exited() {
            return;
        }
        self.handle = None;
        let now = crate::shared::now_ms();
        let wanted = txn::run(|| {
            if !wanted() {
                return Look::NotWanted;
            }
            if running() {
                return Look::Running;
            }
            Look::Start(crate::shared::database_name(dboid).unwrap_or_default())
        });
        match wanted {
            // another bridge worker holds the lock (one that is exiting, or one started
            // by an engine worker before us): look again soon, it may be gone then
            Ok(Look::Running) => self.again_at_ms = Some(now + 2 * RESTART_MS),
            Ok(Look::Start(_)) if now - self.last_start_ms < RESTART_MS => {
                self.again_at_ms = Some(self.last_start_ms + RESTART_MS);
            }
            Ok(Look::Start(name)) => {
                self.last_start_ms = now;
                self.handle = start(dboid, &name);
                if self.handle.is_none() {
                    self.again_at_ms = Some(now + 5_000);
                    if !std::mem::replace(&mut self.warned, true) {
                        warning!("hotmesh engine: cannot start the bridge worker: no free background worker slot; raise max_worker_processes");
                    }
                }
            }
            Ok(Look::NotWanted) => {}
            Err(msg) => {
                warning!("hotmesh engine: looking for transports: {msg}");
                self.again_at_ms = Some(now + 5_000);
            }
        }
    }
}

/// What the engine worker found when it looked.
enum Look {
    NotWanted,
    /// Wanted, and a bridge worker holds the lock.
    Running,
    /// Wanted and none runs: start one (the database's name, for its title).
    Start(String),
}

/// Whether this database wants a bridge worker (an enabled transport). False while the
/// extension's SQL predates the transports (before ALTER EXTENSION UPDATE).
fn wanted() -> bool {
    transports_present()
        && db::one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM hotmesh.transports WHERE enabled)",
            &[],
        )
        .unwrap_or(false)
}

/// Whether the table exists (a statement naming it would fail to parse without it).
fn transports_present() -> bool {
    db::one::<bool>(
        "SELECT pg_catalog.to_regclass('hotmesh.transports') IS NOT NULL",
        &[],
    )
    .unwrap_or(false)
}

/// Whether a bridge worker holds this database's bridge lock (one started by an engine
/// worker that has exited since, say).
fn running() -> bool {
    db::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                         WHERE l.locktype = 'advisory' AND l.granted
                           AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                                              WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
                           AND l.classid = $1::pg_catalog.oid AND l.objid = $2::pg_catalog.oid
                           AND l.objsubid = 2)",
        &[LOCK_KEY.0.into(), LOCK_KEY.1.into()],
    )
    .unwrap_or(false)
}

/// Where the bridges connect: host, port, database.
struct Server {
    host: String,
    port: u16,
    database: String,
}

impl Server {
    fn here() -> Server {
        let host = gucs::bridge_host().unwrap_or_else(|| {
            let dirs = unsafe {
                crate::shared::text_of(pg_sys::GetConfigOption(
                    c"unix_socket_directories".as_ptr(),
                    true,
                    false,
                ))
            }
            .unwrap_or_default();
            dirs.split(',')
                .map(|d| d.trim().trim_matches('"').to_string())
                .find(|d| !d.is_empty())
                .unwrap_or_else(|| "localhost".into())
        });
        let database =
            crate::shared::database_name(crate::shared::my_database()).unwrap_or_default();
        Server {
            host,
            port: unsafe { pg_sys::PostPortNumber } as u16,
            database,
        }
    }
}

/// The enabled rows, as bridges to run. None: the extension is gone (or its SQL older).
fn read_specs(server: &Server) -> Option<Vec<BridgeSpec>> {
    if !transports_present() {
        return None;
    }
    let rows = db::texts::<7>(
        "SELECT name, url, pg_catalog.to_json(topics)::text, pg_catalog.to_json(events)::text,
                pg_catalog.to_json(quorum)::text, role::text,
                EXTRACT(epoch FROM hold)::text
           FROM hotmesh.transports WHERE enabled ORDER BY name",
        &[],
    );
    let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
    Some(
        rows.into_iter()
            .map(
                |[name, url, topics, events, quorum, role, hold]| BridgeSpec {
                    database: local_database_url(
                        &server.host,
                        server.port,
                        &server.database,
                        &role,
                        &format!("hotmesh bridge {name}"),
                    ),
                    name,
                    transport: url,
                    topics: list(&topics),
                    events: list(&events),
                    quorum: list(&quorum),
                    hold: Duration::from_secs_f64(hold.parse::<f64>().unwrap_or(60.0).max(3.0)),
                },
            )
            .collect(),
    )
}

/// Writes the bridges' state; rows of bridges no longer run are marked stopped.
fn write_states(states: &[(String, Supervised)], pid: i32) {
    let names: Vec<String> = states.iter().map(|(n, _)| n.clone()).collect();
    db::exec(
        "UPDATE hotmesh.bridge_status SET state = 'stopped', connected = false, in_flight = 0,
                pid = NULL, updated_at = pg_catalog.now()
          WHERE state <> 'stopped' AND NOT (name = ANY ($1))",
        &[names.into()],
    );
    for (name, s) in states {
        let started = s.started_at.and_then(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs_f64())
        });
        db::exec(
            "INSERT INTO hotmesh.bridge_status AS b (name, pid, state, connected, relayed, answered,
                    in_flight, published, quorum_relayed, errors, last_error, started_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, pg_catalog.to_timestamp($12), pg_catalog.now())
             ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, state = excluded.state,
                    connected = excluded.connected, relayed = excluded.relayed,
                    answered = excluded.answered, in_flight = excluded.in_flight,
                    published = excluded.published, quorum_relayed = excluded.quorum_relayed,
                    errors = excluded.errors,
                    last_error = excluded.last_error, started_at = excluded.started_at,
                    updated_at = excluded.updated_at",
            &[
                name.as_str().into(),
                pid.into(),
                s.phase.as_str().into(),
                s.state.connected.into(),
                (s.state.relayed as i64).into(),
                (s.state.answered as i64).into(),
                (s.state.in_flight as i64).into(),
                (s.state.events as i64).into(),
                (s.state.quorum as i64).into(),
                (s.state.errors as i64).into(),
                s.last_error.clone().into(),
                started.into(),
            ],
        );
    }
}

/// Whether the database's slot is paused (a statement needs the database to itself).
fn paused(dboid: u32) -> bool {
    crate::shared::share()
        .0
        .find(dboid)
        .is_some_and(|s| s.state == hotmesh_bgworker::SlotState::Paused)
}

/// Clears this worker's pid from the slot, unless another bridge worker's is there.
fn clear_bridge(dboid: u32, pid: i32) {
    let mut t = crate::shared::exclusive();
    if t.0.find(dboid).is_some_and(|s| s.bridge_pid == pid) {
        t.0.set_bridge(dboid, 0);
    }
}

/// Blocks every signal in the calling thread: the runtime's threads must leave
/// PostgreSQL's signals (SIGTERM, SIGHUP, the latch's SIGURG) to the main thread, whose
/// handlers set the latch.
fn block_signals() {
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}

/// Writes what the bridges' threads logged to the server log.
fn flush_log(lines: &LogLines) {
    let (lines, dropped) = lines.take();
    for l in lines {
        if l.warning {
            warning!("{}", l.text);
        } else {
            log!("{}", l.text);
        }
    }
    if dropped > 0 {
        warning!("hotmesh bridge: {dropped} more log lines dropped");
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn hotmesh_bridge_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let dboid = arg.value() as u32;
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(dboid)), None);
    // one bridge worker per database, even if an engine worker that lost track of us
    // starts another: the second finds the lock taken and leaves
    let mine = txn::run(|| {
        db::one::<bool>(
            "SELECT pg_catalog.pg_try_advisory_lock($1, $2)",
            &[LOCK_KEY.0.into(), LOCK_KEY.1.into()],
        )
        .unwrap_or(false)
    });
    match mine {
        Ok(true) => {}
        Ok(false) => return, // another bridge worker runs here
        Err(msg) => {
            warning!("hotmesh bridge: {msg}");
            return;
        }
    }
    let mut server = match txn::run(Server::here) {
        Ok(s) => s,
        Err(msg) => {
            warning!("hotmesh bridge: {msg}");
            return;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hotmesh-bridge")
        .on_thread_start(block_signals)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            warning!("hotmesh bridge: cannot start its runtime: {e}");
            return;
        }
    };
    let lines = LogLines::new();
    let _log = tracing::subscriber::set_global_default(lines.clone());
    let pid = crate::shared::my_pid();
    log!("hotmesh bridge started");

    crate::shared::exclusive().0.set_bridge(dboid, pid);
    let mut set = BridgeSet::new();
    let mut last_write: Option<(Instant, Vec<(String, Supervised)>)> = None;
    loop {
        if paused(dboid) {
            // a statement needs the database to itself (DROP DATABASE, a rename), and
            // waits at most 5 seconds for the other sessions: leave at once, connections
            // and all (the messages out on the transport stay reserved until their hold
            // lapses); the engine worker starts a bridge worker again after the pause
            log!("hotmesh bridge: the database is needed to itself; leaving");
            clear_bridge(dboid, pid);
            runtime.shutdown_background();
            return;
        }
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            // hotmesh.bridge_host may have changed: the bridges' URLs with it
            if let Ok(s) = txn::run(Server::here) {
                server = s;
            }
        }
        // every wake-up: a few rows, read at most once a second unless they changed
        {
            match txn::run(|| read_specs(&server)) {
                Ok(Some(specs)) if !specs.is_empty() => {
                    let _rt = runtime.enter();
                    let (started, stopped) = set.reconcile(specs);
                    for n in stopped.iter().filter(|n| !started.contains(n)) {
                        log!("hotmesh bridge: {n} stopped");
                    }
                    for n in &started {
                        log!("hotmesh bridge: {n} starting");
                    }
                }
                // nothing enabled, or the extension gone: leave (the engine worker starts
                // a bridge worker again when a row is enabled)
                Ok(_) => break,
                Err(msg) => warning!("hotmesh bridge: reading hotmesh.transports: {msg}"),
            }
        }
        flush_log(&lines);
        let states = set.states();
        let due = match &last_write {
            None => true,
            Some((at, seen)) => *seen != states || at.elapsed() >= WRITE_EVERY,
        };
        if due {
            match txn::run(|| write_states(&states, pid)) {
                Ok(()) => last_write = Some((Instant::now(), states)),
                Err(msg) => warning!("hotmesh bridge: writing hotmesh.bridge_status: {msg}"),
            }
        }
        if !BackgroundWorker::wait_latch(Some(TICK)) {
            break; // SIGTERM or postmaster death
        }
    }
    clear_bridge(dboid, pid);
    runtime.block_on(set.stop_all(STOP_PATIENCE));
    flush_log(&lines);
    let _ = txn::run(|| write_states(&[], pid));
    runtime.shutdown_timeout(Duration::from_secs(1));
    log!("hotmesh bridge exiting");
}
