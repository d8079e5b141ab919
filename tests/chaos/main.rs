//! `hotmesh-chaos`: the Rust side of `scripts/chaos.sh` and `scripts/failover-test.sh`.
//! The scripts kill things; this program runs the workload and judges the result.
//!
//! ```text
//! hotmesh-chaos setup    deploy and activate the chaos app, create the worker ledger
//! hotmesh-chaos worker   run the app's worker (a separate process the scripts SIGKILL)
//! hotmesh-chaos drive    publish the workflows, signal half of them, wait until every
//!                        job has ended (or the deadline), check every job, report
//! hotmesh-chaos bridge   relay chaos.work to CHAOS_STREAM_URL (Redis or NATS) and the
//!                        answers back (scripts/chaos.sh's bridge mode, CHAOS_BRIDGE)
//! ```
//!
//! Settings come from the environment:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CHAOS_URLS` | `HOTMESH_TEST_URL` | comma-separated database URLs; the first that is read-write is used, and looked for again after a failure (what libpq's `target_session_attrs=read-write` would do: sqlx has no multi-host URLs) |
//! | `CHAOS_WORKFLOWS` | 300 | workflows to start |
//! | `CHAOS_SECONDS` | 30 | they are started evenly over this many seconds |
//! | `CHAOS_DRAIN_SECONDS` | 120 | after the last start: how long every job has to end |
//! | `CHAOS_TIMER_MIN`, `CHAOS_TIMER_MAX` | 0.2, 1.0 | the sleep (s) of the timer half |
//! | `CHAOS_SIGNAL_FALLBACK` | 30 | the sleep (s) of the signalled half (the signal must win) |
//! | `CHAOS_SIGNAL_DELAY_MS` | 2000 | a signal is sent up to this long after its job starts (early signals included) |
//! | `CHAOS_WORK_MS` | 200 | a worker callback takes up to this long (so kills find callbacks running) |
//! | `CHAOS_CONCURRENCY` | 16 | callbacks per worker process |
//! | `CHAOS_RESERVATION` | 3 | worker reservation (s): a killed worker's messages come back after this |
//! | `CHAOS_RESULT_FILE` | — | also write the numbers as JSON here |
//! | `CHAOS_STREAM_URL` | — | a `redis://` or `nats://` URL: the workers run on that transport (`Config::stream_url`), `bridge` relays their messages |
//! | `CHAOS_BRIDGE_HOLD` | 6 | the bridge's hold (s): a killed bridge's messages are handed out again after this |
//!
//! The workflow: trigger → worker `a` → hook `w` (a timer, or a signal that must beat a
//! long timer) → three rounds of a cycle around worker `c` → worker `b` → done. Every
//! step's job maps add 1 to a counter of its own in the job's data (`na`, `nw`, `nc`,
//! `nb`), in the transaction that applies the step. A step applied twice leaves a
//! counter above its expected value; a step lost leaves a job that never ends. So the
//! checks are: every job whose `pub` committed exists, ended without error, with
//! `na = nw = nb = 1`, `nc = 3`, the activity rows of one run (no extra dimension), and
//! at most one completion notification. Worker callbacks may run more than once (a
//! killed worker's message is handed out again): the ledger table counts them, to show
//! the redeliveries the kills caused; only the engine's application must be once.

use hotmesh_client::{Config, Error, HotMesh, Message, Outcome, PubOptions, Worker};
use serde_json::{json, Value};
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, Row};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

const APP: &str = r#"
app:
  id: chaos
  version: '1'
  graphs:
    - subscribes: chaos.start
      publishes: chaos.done
      expire: 0
      activities:
        t:
          type: trigger
        a:
          type: worker
          topic: chaos.work
          input: { maps: { step: a } }
          job: { maps: { a: '{$self.output.data.step}', na: { '@pipe': [['{$job.data.na}', 0], ['{@conditional.nullish}', 1], ['{@math.add}']] } } }
        w:
          type: hook
          sleep: '{t.output.data.sleep}'
          job: { maps: { by: { '@pipe': [['{$self.hook.data.by}', 'timer'], ['{@conditional.nullish}']] }, nw: { '@pipe': [['{$job.data.nw}', 0], ['{@conditional.nullish}', 1], ['{@math.add}']] } } }
        round:
          type: hook
          cycle: true
          output: { maps: { n: 0 } }
        c:
          type: worker
          topic: chaos.work
          input: { maps: { step: c, round: '{round.output.data.n}' } }
          job: { maps: { nc: { '@pipe': [['{$job.data.nc}', 0], ['{@conditional.nullish}', 1], ['{@math.add}']] } } }
        again:
          type: cycle
          ancestor: round
          input: { maps: { n: { '@pipe': [['{round.output.data.n}', 1], ['{@math.add}']] } } }
        b:
          type: worker
          topic: chaos.work
          input: { maps: { step: b } }
          job: { maps: { b: '{$self.output.data.step}', done: true, nb: { '@pipe': [['{$job.data.nb}', 0], ['{@conditional.nullish}', 1], ['{@math.add}']] } } }
      transitions:
        t: [ { to: a } ]
        a: [ { to: w } ]
        w: [ { to: round } ]
        round: [ { to: c } ]
        c:
          - to: again
            conditions: { match: [ { expected: true, actual: { '@pipe': [['{round.output.data.n}', 2], ['{@number.lt}']] } } ] }
          - to: b
            conditions: { match: [ { expected: true, actual: { '@pipe': [['{round.output.data.n}', 2], ['{@number.gte}']] } } ] }
      hooks:
        chaos.signal:
          - to: w
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] }
"#;

/// Activity rows of one job that ran once: activity → rows (dimensions).
const EXPECTED_ROWS: &[(&str, i64)] = &[
    ("t", 1),
    ("a", 1),
    ("w", 1),
    ("round", 3),
    ("c", 3),
    ("again", 2),
    ("b", 1),
];

// ---------------------------------------------------------------- small helpers

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

static SEED: AtomicU64 = AtomicU64::new(0);

/// splitmix64 over a process-wide counter, seeded at random.
fn rand_u64() -> u64 {
    if SEED.load(Ordering::Relaxed) == 0 {
        let s = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            | 1;
        let _ = SEED.compare_exchange(0, s, Ordering::Relaxed, Ordering::Relaxed);
    }
    let mut z = SEED
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn rand_f64() -> f64 {
    (rand_u64() >> 11) as f64 / (1u64 << 53) as f64
}

static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

macro_rules! say {
    ($($arg:tt)*) => {{
        let t = T0.get_or_init(Instant::now).elapsed().as_secs_f64();
        eprintln!("[{t:7.2}s {}] {}", std::process::id(), format!($($arg)*));
    }};
}

fn urls() -> Vec<String> {
    let raw = std::env::var("CHAOS_URLS")
        .or_else(|_| std::env::var("HOTMESH_TEST_URL"))
        .expect("set CHAOS_URLS (or HOTMESH_TEST_URL)");
    raw.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Errors worth trying again: the connection or server went away, the server is
/// starting or in recovery, a read-only standby, a deadlock or serialization failure.
fn transient(e: &Error) -> bool {
    match e {
        Error::Connect(_) | Error::Sql(_) => true,
        Error::Database { sqlstate: code, .. } => {
            code.starts_with("08")
                || code.starts_with("57")
                || code.starts_with("53")
                || code.starts_with("40")
                // a write on a hot standby: the wrong server
                || code == "25006"
        }
        _ => false,
    }
}

/// The first URL whose server accepts writes (not in recovery), trying each once.
async fn find_primary(urls: &[String]) -> Option<String> {
    for u in urls {
        let probe = async {
            let mut c = PgConnection::connect(u).await.ok()?;
            let rec: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                .fetch_one(&mut c)
                .await
                .ok()?;
            let _ = c.close().await;
            (!rec).then_some(())
        };
        if let Ok(Some(())) = tokio::time::timeout(Duration::from_secs(3), probe).await {
            return Some(u.clone());
        }
    }
    None
}

/// Waits (up to `secs`) for a read-write server among `urls`.
async fn wait_primary(urls: &[String], secs: u64) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(u) = find_primary(urls).await {
            return Some(u);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A client handle on the current primary; `refresh` looks for the primary again.
struct Conn {
    urls: Vec<String>,
    cur: RwLock<(String, HotMesh)>,
    switch: tokio::sync::Mutex<()>,
    switches: AtomicUsize,
}

impl Conn {
    async fn open(urls: Vec<String>) -> Conn {
        loop {
            if let Some(u) = wait_primary(&urls, 60).await {
                match HotMesh::connect(&u).await {
                    Ok(hm) => {
                        return Conn {
                            urls,
                            cur: RwLock::new((u, hm)),
                            switch: Default::default(),
                            switches: AtomicUsize::new(0),
                        }
                    }
                    Err(e) => say!("connect {u}: {e}"),
                }
            } else {
                say!("no read-write server among {urls:?} yet");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn hm(&self) -> HotMesh {
        self.cur.read().await.1.clone()
    }

    async fn url(&self) -> String {
        self.cur.read().await.0.clone()
    }

    /// After a failure: with several URLs, move to the one that is read-write now.
    async fn refresh(&self) {
        if self.urls.len() < 2 {
            return;
        }
        let before = self.url().await;
        let _g = self.switch.lock().await;
        if self.url().await != before {
            return; // another task switched meanwhile
        }
        if let Some(u) = find_primary(&self.urls).await {
            if u != before {
                if let Ok(hm) = HotMesh::connect(&u).await {
                    say!("client: the primary is now {u}");
                    *self.cur.write().await = (u, hm);
                    self.switches.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Runs `f` until it succeeds or fails for good (not transient, or `secs` passed).
    async fn retry<T, F, Fut>(&self, secs: u64, mut f: F) -> Result<T, Error>
    where
        F: FnMut(HotMesh) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut pause = Duration::from_millis(100);
        loop {
            match f(self.hm().await).await {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                    self.refresh().await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

async fn sql_retry<T, F, Fut>(conn: &Conn, f: F) -> T
where
    F: Fn(sqlx::PgPool) -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut tries = 0;
    loop {
        let pool = conn.hm().await.pool().clone();
        match f(pool).await {
            Ok(v) => return v,
            Err(e) => {
                tries += 1;
                if tries > 120 {
                    panic!("query failed for 2 minutes: {e}");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                conn.refresh().await;
            }
        }
    }
}

// ---------------------------------------------------------------- setup

async fn setup() {
    let conn = Conn::open(urls()).await;
    let hm = conn.hm().await;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS public.chaos_ledger (
             job_id text NOT NULL, activity_id text NOT NULL, dad text NOT NULL,
             message_id bigint NOT NULL, deliveries int NOT NULL, pid int NOT NULL,
             at timestamptz NOT NULL DEFAULT now());
         CREATE INDEX IF NOT EXISTS chaos_ledger_job ON public.chaos_ledger (job_id)",
    )
    .execute(hm.pool())
    .await
    .expect("ledger table");
    let d = hm.deploy(APP).await.expect("deploy the chaos app");
    hm.activate_app("chaos", "1").await.expect("activate");
    let up = hm
        .wait_for_engine(Duration::from_secs(20))
        .await
        .expect("wait_for_engine");
    assert!(up, "the engine worker is not running");
    say!("setup: app chaos {} on {}", d["status"], conn.url().await);
}

// ---------------------------------------------------------------- worker

async fn worker() {
    let urls = urls();
    let concurrency: usize = env_or("CHAOS_CONCURRENCY", 16);
    let reservation: f64 = env_or("CHAOS_RESERVATION", 3.0);
    let work_ms: u64 = env_or("CHAOS_WORK_MS", 200);
    let pid = std::process::id() as i32;
    loop {
        let Some(url) = wait_primary(&urls, 3600).await else {
            continue;
        };
        let ledger = match PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                say!("worker: ledger pool: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let l = ledger.clone();
        let w = Worker::new("chaos.work", move |m: Message| {
            let ledger = l.clone();
            async move {
                // At least once: a callback whose answer never landed runs again.
                let _ = sqlx::query(
                    "INSERT INTO public.chaos_ledger (job_id, activity_id, dad, message_id, deliveries, pid)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&m.job_id)
                .bind(&m.activity_id)
                .bind(&m.dad)
                .bind(m.id)
                .bind(m.deliveries)
                .bind(pid)
                .execute(&ledger)
                .await;
                if work_ms > 0 {
                    let ms = rand_u64() % (work_ms + 1);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Outcome::success(json!({ "step": m.data["step"] }))
            }
        })
        .concurrency(concurrency)
        .reservation(Duration::from_secs_f64(reservation))
        .poll(Duration::from_secs(1));
        let mut cfg = Config::new("chaos", &url).worker(w);
        if let Ok(stream) = std::env::var("CHAOS_STREAM_URL") {
            // the bridge mode: the messages come from Redis or NATS, the store stays here
            cfg = cfg.stream_url(stream);
        }
        cfg.grace = Duration::from_secs(1);
        cfg.heartbeat = Duration::from_secs(2);
        let hm = match HotMesh::init(cfg).await {
            Ok(h) => h,
            Err(e) => {
                say!("worker: init on {url}: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        say!("worker: running on {url} ({concurrency} at once)");
        // With several URLs, follow the primary: leave when this server has been gone (or
        // become a standby) for 3 s and another one is read-write.
        let mut bad = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if urls.len() < 2 {
                continue;
            }
            let ok = find_primary(std::slice::from_ref(&url)).await.is_some();
            bad = if ok { 0 } else { bad + 1 };
            if bad >= 3 {
                if let Some(u) = find_primary(&urls).await {
                    if u != url {
                        say!("worker: {url} is gone; moving to {u}");
                        break;
                    }
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), hm.stop()).await;
        ledger.close().await;
    }
}

// ---------------------------------------------------------------- bridge

/// The bridge of `chaos.work` between the database and `CHAOS_STREAM_URL`, until killed.
/// Started once: a server restart or a transport restart it must survive by itself (its
/// connections reconnect); the script's SIGKILL is its only end.
async fn bridge() {
    use hotmesh_client::bridge::{Bridge, BridgeOptions};
    let stream = std::env::var("CHAOS_STREAM_URL").expect("CHAOS_STREAM_URL");
    let hold: f64 = env_or("CHAOS_BRIDGE_HOLD", 6.0);
    let options = hotmesh_transport::Options {
        // an answer whose apply failed comes again after this, as a worker's message does
        claim_after: Duration::from_secs_f64(env_or("CHAOS_RESERVATION", 3.0)),
        ..hotmesh_transport::Options::default()
    };
    let conn = Conn::open(urls()).await;
    let hm = conn.hm().await;
    // the transport may be down when a killed bridge is started again
    let transport = loop {
        match hotmesh_transport::connect(&stream, options.clone()).await {
            Ok(t) => break Arc::new(t),
            Err(e) => {
                say!("bridge: {stream}: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let b = Bridge::start(
        &hm,
        transport,
        BridgeOptions::new(["chaos.work"])
            .name("chaos-bridge")
            .hold(Duration::from_secs_f64(hold)),
    )
    .await
    .expect("start the bridge");
    say!("bridge: relaying chaos.work to {stream}");
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        say!("bridge: {:?}", b.state());
    }
}

// ---------------------------------------------------------------- drive

#[derive(Default)]
struct Seen {
    /// completion notifications per job id
    done: HashMap<String, u32>,
}

fn note(seen: &Mutex<Seen>, payload: &str) {
    let Ok(p) = serde_json::from_str::<Value>(payload) else {
        return;
    };
    let jobs: Vec<&Value> = match p["type"].as_str() {
        Some("job") => vec![&p["job"]],
        Some("jobs") => p["jobs"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        _ => vec![],
    };
    let mut s = seen.lock().unwrap();
    for j in jobs {
        if j["metadata"]["js"].as_i64() == Some(0) {
            if let Some(id) = j["metadata"]["jid"].as_str() {
                *s.done.entry(id.to_string()).or_default() += 1;
            }
        }
    }
}

/// Listens on the graph's publishes channel, following the primary.
async fn listen(conn: Arc<Conn>, seen: Arc<Mutex<Seen>>, ready: tokio::sync::oneshot::Sender<()>) {
    let mut ready = Some(ready);
    loop {
        let url = conn.url().await;
        let mut l = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                conn.refresh().await;
                continue;
            }
        };
        if l.listen("chaos.done").await.is_err() {
            continue;
        }
        say!("listener: listening on {url}");
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
        loop {
            match l.try_recv().await {
                Ok(Some(n)) => note(&seen, n.payload()),
                // lost (notifications sent meanwhile are lost too): a new listener on the
                // primary, wherever it is now
                Ok(None) | Err(_) => {
                    say!("listener: connection lost");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    conn.refresh().await;
                    break;
                }
            }
        }
    }
}

struct Job {
    id: String,
    signal: bool,
}

async fn drive() -> bool {
    let n: usize = env_or("CHAOS_WORKFLOWS", 300);
    let secs: f64 = env_or("CHAOS_SECONDS", 30.0);
    let drain: u64 = env_or("CHAOS_DRAIN_SECONDS", 120);
    let tmin: f64 = env_or("CHAOS_TIMER_MIN", 0.2);
    let tmax: f64 = env_or("CHAOS_TIMER_MAX", 1.0);
    let fallback: f64 = env_or("CHAOS_SIGNAL_FALLBACK", 30.0);
    let sig_delay: u64 = env_or("CHAOS_SIGNAL_DELAY_MS", 2000);
    let prefix = std::env::var("CHAOS_RUN_ID").unwrap_or_else(|_| {
        format!(
            "chaos-{}-",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        )
    });
    let conn = Arc::new(Conn::open(urls()).await);
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(listen(conn.clone(), seen.clone(), tx));
    let _ = rx.await;
    say!(
        "drive: {n} workflows over {secs} s on {} (ids {prefix}*)",
        conn.url().await
    );

    let started = Instant::now();
    let committed: Arc<Mutex<Vec<Job>>> = Arc::default();
    let pub_errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let sig_errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let signals = Arc::new(AtomicUsize::new(0));
    let mut signal_tasks = tokio::task::JoinSet::new();
    let (sig_tx, mut sig_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let publishers = 8;
    let mut pubs = tokio::task::JoinSet::new();
    for p in 0..publishers {
        let (conn, committed, pub_errors, prefix, sig_tx) = (
            conn.clone(),
            committed.clone(),
            pub_errors.clone(),
            prefix.clone(),
            sig_tx.clone(),
        );
        pubs.spawn(async move {
            let mut k = p;
            while k < n {
                let at = started + Duration::from_secs_f64(secs * k as f64 / n as f64);
                tokio::time::sleep_until(at.into()).await;
                let id = format!("{prefix}{k:06}");
                let signal = k % 2 == 1;
                let sleep = if signal {
                    fallback
                } else {
                    tmin + (tmax - tmin) * rand_f64()
                };
                let data = json!({ "sleep": sleep, "k": k });
                let opts = PubOptions::new().id(id.clone());
                let r = conn
                    .retry(120, |hm| {
                        let (data, opts) = (data.clone(), opts.clone());
                        async move {
                            match hm.publish("chaos.start", data, opts).await {
                                // an earlier attempt committed and only its answer was lost
                                Err(Error::Database {
                                    sqlstate: code,
                                    message,
                                }) if code == "23505" && message.contains("Duplicate job") => {
                                    Ok(String::new())
                                }
                                other => other.map(String::from),
                            }
                        }
                    })
                    .await;
                match r {
                    Ok(_) => {
                        committed.lock().unwrap().push(Job {
                            id: id.clone(),
                            signal,
                        });
                        if signal {
                            let _ = sig_tx.send(id);
                        }
                    }
                    Err(e) => pub_errors.lock().unwrap().push(format!("{id}: {e}")),
                }
                k += publishers;
            }
        });
    }
    drop(sig_tx);
    // signals: each some time after its job started (before its hook waits, sometimes)
    while let Some(id) = sig_rx.recv().await {
        let (conn, sig_errors, signals) = (conn.clone(), sig_errors.clone(), signals.clone());
        signal_tasks.spawn(async move {
            tokio::time::sleep(Duration::from_millis(rand_u64() % (sig_delay + 1))).await;
            let data = json!({ "id": id, "by": "signal" });
            let r = conn
                .retry(120, |hm| {
                    let data = data.clone();
                    async move { hm.signal("chaos.signal", data).await }
                })
                .await;
            match r {
                Ok(_) => {
                    signals.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => sig_errors.lock().unwrap().push(format!("{id}: {e}")),
            }
        });
    }
    while pubs.join_next().await.is_some() {}
    while signal_tasks.join_next().await.is_some() {}
    let published_in = started.elapsed();
    let ids: Vec<String> = committed
        .lock()
        .unwrap()
        .iter()
        .map(|j| j.id.clone())
        .collect();
    say!(
        "drive: {} started in {:.1} s ({} publish errors), {} signals sent; waiting up to {drain} s for every job to end",
        ids.len(),
        published_in.as_secs_f64(),
        pub_errors.lock().unwrap().len(),
        signals.load(Ordering::Relaxed)
    );

    // quiescence: every committed job has ended, or the deadline
    let deadline = Instant::now() + Duration::from_secs(drain);
    let mut last_report = Instant::now();
    loop {
        let ids2 = ids.clone();
        let ended: i64 = sql_retry(&conn, |p| {
            let ids = ids2.clone();
            async move {
                sqlx::query_scalar(
                    "SELECT count(*) FROM hotmesh.jobs WHERE id = ANY($1) AND status <= 0",
                )
                .bind(ids)
                .fetch_one(&p)
                .await
            }
        })
        .await;
        if ended as usize == ids.len() {
            break;
        }
        if Instant::now() > deadline {
            say!(
                "drive: deadline passed with {} jobs not ended",
                ids.len() as i64 - ended
            );
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            say!("drive: {ended}/{} ended", ids.len());
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drained_in = started.elapsed();
    // late notifications
    tokio::time::sleep(Duration::from_secs(2)).await;

    // ------------------------------------------------------------ the checks
    let jobs: Vec<(String, bool)> = committed
        .lock()
        .unwrap()
        .iter()
        .map(|j| (j.id.clone(), j.signal))
        .collect();
    let ids2 = ids.clone();
    let rows = sql_retry(&conn, |p| {
        let ids = ids2.clone();
        async move {
            sqlx::query(
                "SELECT j.id, j.status::bigint, j.error, j.data, j.completed_at IS NOT NULL,
                        coalesce((SELECT jsonb_object_agg(activity_id, n) FROM (
                            SELECT activity_id, count(*) AS n FROM hotmesh.activities a
                             WHERE a.job_id = j.id GROUP BY activity_id) s), '{}'::jsonb),
                        (SELECT count(*) FROM hotmesh.activities a
                          WHERE a.job_id = j.id AND a.answers > 1)
                   FROM hotmesh.jobs j WHERE j.id = ANY($1)",
            )
            .bind(ids)
            .fetch_all(&p)
            .await
        }
    })
    .await;
    let mut by_id: HashMap<String, &sqlx::postgres::PgRow> = HashMap::new();
    for r in &rows {
        by_id.insert(r.get(0), r);
    }
    // a copy: the listener goes on taking the lock
    let done = seen.lock().unwrap().done.clone();
    let (mut completed, mut lost, mut twice, mut stuck, mut failed, mut bad, mut missed) =
        (0, 0, 0, 0, 0, 0, 0);
    let mut examples: Vec<String> = vec![];
    let mut example = |what: &str, id: &str, detail: String| {
        if examples.len() < 20 {
            examples.push(format!("{what} {id}: {detail}"));
        }
    };
    for (id, signal) in &jobs {
        let notes = done.get(id).copied().unwrap_or(0);
        if notes > 1 {
            twice += 1;
            example(
                "twice (notifications)",
                id,
                format!("{notes} completion notifications"),
            );
            continue;
        }
        let Some(r) = by_id.get(id) else {
            lost += 1;
            example(
                "lost",
                id,
                "its pub committed but there is no job row".into(),
            );
            continue;
        };
        let status: i64 = r.get(1);
        let error: Option<Value> = r.get(2);
        let data: Value = r.get(3);
        let acts: Value = r.get(5);
        // an activity row that took more than one answer (none of these answers 202)
        let reanswered: i64 = r.get(6);
        if let Some(e) = error {
            failed += 1;
            example("failed", id, e.to_string());
            continue;
        }
        if status != 0 {
            stuck += 1;
            example(
                "stuck",
                id,
                format!("status {status}, data {data}, activities {acts}"),
            );
            continue;
        }
        let count = |k: &str| data[k].as_i64().unwrap_or(0);
        let over = count("na") > 1 || count("nw") > 1 || count("nc") > 3 || count("nb") > 1;
        let extra_rows = EXPECTED_ROWS
            .iter()
            .any(|(a, n)| acts[*a].as_i64().unwrap_or(0) > *n)
            || acts.as_object().map(|o| o.len()).unwrap_or(0) > EXPECTED_ROWS.len();
        if over || extra_rows || reanswered > 0 {
            twice += 1;
            example("twice", id, format!("data {data}, activities {acts}"));
            continue;
        }
        let whole = count("na") == 1
            && count("nw") == 1
            && count("nc") == 3
            && count("nb") == 1
            && data["done"] == true
            && EXPECTED_ROWS
                .iter()
                .all(|(a, n)| acts[*a].as_i64().unwrap_or(0) == *n);
        if !whole {
            bad += 1;
            example("incomplete", id, format!("data {data}, activities {acts}"));
            continue;
        }
        if *signal && data["by"] != "signal" {
            missed += 1;
            example("signal missed", id, format!("data {data}"));
        }
        completed += 1;
    }
    // a job of this run whose pub the client never saw commit
    let prefix_like = format!("{prefix}%");
    let (orphans, dead, executions, distinct_steps, redelivered): (i64, i64, i64, i64, i64) =
        sql_retry(&conn, |p| {
            let (like, ids) = (prefix_like.clone(), ids.clone());
            async move {
                let r = sqlx::query(
                    "SELECT (SELECT count(*) FROM hotmesh.jobs WHERE id LIKE $1 AND id <> ALL($2)),
                            (SELECT count(*) FROM hotmesh.dead_letters WHERE job_id LIKE $1),
                            (SELECT count(*) FROM public.chaos_ledger WHERE job_id LIKE $1),
                            (SELECT count(DISTINCT (job_id, activity_id, dad)) FROM public.chaos_ledger WHERE job_id LIKE $1),
                            (SELECT count(*) FROM public.chaos_ledger WHERE job_id LIKE $1 AND deliveries > 1)",
                )
                .bind(like)
                .bind(ids)
                .fetch_one(&p)
                .await?;
                Ok((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            }
        })
        .await;
    let heard = done.len();
    let pub_err = pub_errors.lock().unwrap().clone();
    let sig_err = sig_errors.lock().unwrap().clone();
    for e in &examples {
        say!("  {e}");
    }
    for e in pub_err.iter().chain(sig_err.iter()).take(10) {
        say!("  client error: {e}");
    }
    println!(
        "chaos: started {} completed {completed} lost {lost} twice {twice} stuck {stuck}",
        jobs.len()
    );
    println!(
        "chaos: details: failed {failed} incomplete {bad} signal-missed {missed} publish-errors {} signal-errors {} orphans {orphans} dead-letters {dead}; \
         worker callbacks {executions} for {distinct_steps} steps ({redelivered} on a redelivered message); \
         completions heard {heard}; primary switches {}; started in {:.1} s, all ended after {:.1} s",
        pub_err.len(),
        sig_err.len(),
        conn.switches.load(Ordering::Relaxed),
        published_in.as_secs_f64(),
        drained_in.as_secs_f64()
    );
    if let Ok(path) = std::env::var("CHAOS_RESULT_FILE") {
        let v = json!({
            "prefix": prefix, "started": jobs.len(), "completed": completed, "lost": lost,
            "twice": twice, "stuck": stuck, "failed": failed, "incomplete": bad,
            "signal_missed": missed, "publish_errors": pub_err.len(), "signal_errors": sig_err.len(),
            "orphans": orphans, "dead_letters": dead, "callbacks": executions,
            "steps": distinct_steps, "redelivered": redelivered, "heard": heard,
            "seconds_to_start": published_in.as_secs_f64(), "seconds_to_end": drained_in.as_secs_f64(),
        });
        let _ = std::fs::write(path, v.to_string());
    }
    jobs.len() == n
        && completed == n
        && lost + twice + stuck + failed + bad + missed == 0
        && pub_err.is_empty()
        && sig_err.is_empty()
        && orphans == 0
}

#[tokio::main]
async fn main() {
    T0.get_or_init(Instant::now);
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "setup" => setup().await,
        "worker" => worker().await,
        "bridge" => bridge().await,
        "drive" => {
            if !drive().await {
                std::process::exit(1);
            }
        }
        "app" => print!("{APP}"),
        _ => {
            eprintln!(
                "usage: hotmesh-chaos setup|worker|bridge|drive|app (see the source for the settings)"
            );
            std::process::exit(2);
        }
    }
}
