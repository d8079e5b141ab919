//! `hotmesh`: the engine from the command line. The connection comes from `--url` or
//! `HOTMESH_DATABASE_URL`. Output is JSON, or a readable table with `--table`; `watch`
//! prints JSON lines. A failure prints `hotmesh: <message>` on stderr and exits with the
//! code of its kind (see [`exit`]), so scripts can tell "no such job" from "timed out"
//! from "database down".
//!
//! ```text
//! hotmesh validate app.yaml          hotmesh deploy app.yaml && hotmesh activate orders 2
//! hotmesh pub orders.start '{"n":1}' hotmesh pubsub orders.start '{"n":1}' --timeout 5
//! hotmesh wait <job> --timeout 60    hotmesh status <job>        hotmesh state <job>
//! hotmesh signal orders.approve '{"id":"<job>"}'
//! hotmesh watch orders.done          hotmesh watch --pattern 'orders.*' --count 10
//! hotmesh throttle orders -1         hotmesh roll-call orders    hotmesh workers
//! hotmesh completions bash > /etc/bash_completion.d/hotmesh
//! ```

mod exit;
mod output;
mod progress;
mod validate;
mod watch;

use clap::{Args, CommandFactory, Parser, Subcommand};
use exit::Failure;
use hotmesh_client::{HotMesh, InterruptOptions, PubOptions, Status, Throttle};
use serde_json::{json, Map, Value};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "hotmesh",
    version,
    about = "HotMesh workflows in PostgreSQL, from the command line",
    after_help = "Each command's --help has an example; `hotmesh --help` lists the exit codes.",
    after_long_help = long_help()
)]
struct Cli {
    /// The database with the hotmesh extension (postgres://user@host:port/db).
    #[arg(long, env = "HOTMESH_DATABASE_URL", global = true, help_heading = GLOBAL)]
    url: Option<String>,
    /// Print a readable table instead of JSON.
    #[arg(long, global = true, help_heading = GLOBAL)]
    table: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

/// The heading of the options every command takes, apart from its own.
const GLOBAL: &str = "Global options";

/// Examples, exit codes and the environment, under `hotmesh --help`.
fn long_help() -> String {
    format!(
        "Examples:
  hotmesh validate app.yaml && hotmesh deploy app.yaml && hotmesh activate orders 1
  hotmesh pubsub orders.start '{{\"amount\": 5}}' --timeout 30
  job=$(hotmesh pub orders.start '{{\"amount\": 5}}' | jq -r .job_id); hotmesh wait \"$job\"

{}

Environment:
  HOTMESH_DATABASE_URL  the database, when --url is not given",
        exit::help_table()
    )
}

#[derive(Subcommand)]
enum Cmd {
    /// Deploy an app from a YAML file (its $refs merged), or `-` for standard input.
    #[command(after_help = "Example:\n  hotmesh deploy apps/orders.yaml")]
    Deploy {
        /// The manifest (YAML or JSON), or `-` for standard input.
        file: String,
    },
    /// Check a manifest without deploying it (offline: no database needed).
    ///
    /// Prints what a deploy would answer; a bad manifest fails with exit code 2 and
    /// `FILE:LINE: what is wrong` on stderr.
    #[command(
        after_help = "Example:\n  hotmesh validate apps/orders.yaml && hotmesh deploy apps/orders.yaml"
    )]
    Validate {
        /// The manifest (YAML or JSON), or `-` for standard input.
        file: String,
    },
    /// Make a version the app's active one.
    #[command(after_help = "Example:\n  hotmesh activate orders 2")]
    Activate {
        /// The app id.
        app: String,
        /// A deployed version of it.
        version: String,
    },
    /// Start a job; prints its id.
    #[command(
        after_help = "Examples:\n  hotmesh pub orders.start '{\"amount\": 5}' --id order-7\n  hotmesh pub orders.start '{}' --search '{\"region\": \"eu\"}' --pending 60"
    )]
    Pub {
        /// The topic a graph subscribes to.
        topic: String,
        /// The job's data, a JSON object.
        #[arg(default_value = "{}")]
        data: String,
        #[command(flatten)]
        options: PubArgs,
    },
    /// Start a job and wait for its output.
    #[command(
        after_help = "Example:\n  hotmesh pubsub orders.start '{\"amount\": 5}' --id order-7 --timeout 30"
    )]
    Pubsub {
        /// The topic a graph subscribes to.
        topic: String,
        /// The job's data, a JSON object.
        #[arg(default_value = "{}")]
        data: String,
        /// Seconds to wait (then exit code 4; the job runs on).
        #[arg(long, default_value = "10", value_parser = seconds, value_name = "S")]
        timeout: Duration,
        #[command(flatten)]
        options: PubArgs,
    },
    /// Wait for a job started elsewhere to end; prints its output.
    #[command(after_help = "Example:\n  hotmesh wait order-7 --timeout 60")]
    Wait {
        /// The job id.
        job: String,
        /// Seconds to wait (then exit code 4; the job runs on).
        #[arg(long, default_value = "10", value_parser = seconds, value_name = "S")]
        timeout: Duration,
    },
    /// A job's status semaphore (0 done, > 0 running, -1 pending, <= -100000000 interrupted).
    #[command(after_help = "Example:\n  hotmesh status order-7")]
    Status {
        /// The job id.
        job: String,
    },
    /// A job's {metadata, data}.
    #[command(after_help = "Example:\n  hotmesh state order-7 --table")]
    State {
        /// The job id.
        job: String,
    },
    /// A job's search fields (set with `pub --search` or by its maps).
    #[command(after_help = "Example:\n  hotmesh query-state order-7 region customer")]
    QueryState {
        /// The job id.
        job: String,
        /// The search fields to read.
        #[arg(required = true)]
        fields: Vec<String>,
    },
    /// A job with its activity timeline.
    #[command(after_help = "Example:\n  hotmesh export order-7")]
    Export {
        /// The job id.
        job: String,
    },
    /// Everything stored about a job, for debugging.
    #[command(after_help = "Example:\n  hotmesh raw order-7")]
    Raw {
        /// The job id.
        job: String,
    },
    /// Signal a waiting hook; prints the job reached (null: none waits yet, the signal is kept).
    #[command(
        after_help = "Example:\n  hotmesh signal orders.approve '{\"id\": \"order-7\", \"ok\": true}'"
    )]
    Signal {
        /// The topic the hook waits on.
        topic: String,
        /// The signal's data, a JSON object.
        data: String,
        /// success, error or pending.
        #[arg(long, default_value = "success")]
        status: String,
        /// The code (default: the status's own).
        #[arg(long)]
        code: Option<i32>,
    },
    /// Signal every hook on a topic whose job has a search field equal to a value.
    #[command(
        after_help = "Example:\n  hotmesh signal-all orders.approve '{\"ok\": true}' --key-name region --key-value eu"
    )]
    SignalAll {
        /// The topic the hooks wait on.
        topic: String,
        /// The signal's data, a JSON object (each job's gets its `id`).
        data: String,
        /// The search field to match.
        #[arg(long)]
        key_name: String,
        /// The value it must have.
        #[arg(long)]
        key_value: String,
    },
    /// Interrupt a job.
    #[command(
        after_help = "Example:\n  hotmesh interrupt orders.start order-7 --reason cancelled --descend"
    )]
    Interrupt {
        /// The topic the job was started with.
        topic: String,
        /// The job id.
        job: String,
        #[command(flatten)]
        options: InterruptArgs,
    },
    /// Delete a job now.
    #[command(after_help = "Example:\n  hotmesh scrub order-7")]
    Scrub {
        /// The job id.
        job: String,
    },
    /// Relay worker topics to Redis or NATS and their answers back (docs/transports.md).
    ///
    /// Runs until Ctrl-C or SIGTERM, printing its counters as a JSON line every 10 s.
    #[command(
        after_help = "Example:\n  hotmesh bridge redis://127.0.0.1:6379/ orders.charge orders.ship --name bridge-1 --events 'orders.*' --quorum orders"
    )]
    Bridge {
        /// The transport: redis://, rediss://, nats:// or tls://.
        transport: String,
        /// The worker topics whose messages go to the transport.
        topics: Vec<String>,
        /// The bridge's name (keep it across restarts).
        #[arg(long, default_value = "bridge")]
        name: String,
        /// Seconds a message on the transport stays reserved without the bridge's heartbeat.
        #[arg(long, value_parser = seconds, value_name = "S", default_value = "60")]
        hold: Duration,
        /// Publishes topics whose completions go out as events (a psub pattern; repeat it).
        #[arg(long = "events", value_name = "PATTERN")]
        events: Vec<String>,
        /// An app whose quorum messages (throttles, roll calls) cross both ways, with its
        /// activation notices (repeat it).
        #[arg(long = "quorum", value_name = "APP")]
        quorum: Vec<String>,
    },
    /// Print completions as JSON lines: on a publishes topic, on a pattern, or activations.
    ///
    /// Runs until Ctrl-C, `--count` messages, or `--timeout` seconds.
    #[command(
        after_help = "Examples:\n  hotmesh watch orders.done --count 1 --timeout 30\n  hotmesh watch --pattern 'orders.*' | jq .data"
    )]
    Watch {
        #[command(flatten)]
        source: SourceArgs,
        /// Stop after this many messages.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
        count: Option<u64>,
        /// Stop after this many seconds (with --count: fewer messages by then is exit code 4).
        #[arg(long, value_parser = seconds, value_name = "S")]
        timeout: Option<Duration>,
    },
    /// Throttle an app's workers: -1 pause, 0 resume, ms between messages.
    #[command(after_help = "Example:\n  hotmesh throttle orders -1 --topic orders.charge")]
    Throttle {
        /// The app id.
        app: String,
        /// -1 pause, 0 resume, > 0 milliseconds between messages.
        #[arg(allow_hyphen_values = true)]
        throttle: i32,
        /// Only the workers of this topic.
        #[arg(long, conflicts_with = "guid")]
        topic: Option<String>,
        /// Only the worker with this guid.
        #[arg(long)]
        guid: Option<String>,
    },
    /// The live processes of an app.
    #[command(after_help = "Example:\n  hotmesh roll-call orders --table")]
    RollCall {
        /// The app id.
        app: String,
        /// Seconds since the last heartbeat.
        #[arg(long, default_value = "30", value_parser = seconds, value_name = "S")]
        max_age: Duration,
    },
    /// The engine's background workers, one per database the launcher serves.
    #[command(after_help = "Example:\n  hotmesh workers --wait 30 --table")]
    Workers {
        /// First wait this many seconds for this database's engine worker to run
        /// (exit code 4 if it does not).
        #[arg(long, value_parser = seconds, value_name = "S")]
        wait: Option<Duration>,
    },
    /// This command line's version, and the engine's in the database (when one is given).
    #[command(after_help = "Example:\n  hotmesh version")]
    Version,
    /// Print a shell's completion script.
    #[command(
        after_help = "Examples:\n  hotmesh completions bash > ~/.local/share/bash-completion/completions/hotmesh\n  hotmesh completions zsh > \"${fpath[1]}/_hotmesh\"\n  hotmesh completions fish > ~/.config/fish/completions/hotmesh.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The options of a new job (`pub` and `pubsub`).
#[derive(Args)]
struct PubArgs {
    /// The job id (default: a new one).
    #[arg(long)]
    id: Option<String>,
    /// Search fields, a JSON object: what `signal-all` and `query-state` find.
    #[arg(long, value_name = "JSON")]
    search: Option<String>,
    /// Markers, a JSON object of `-x` keys.
    #[arg(long, value_name = "JSON")]
    marker: Option<String>,
    /// Create the job pending (status -1) for this many seconds.
    #[arg(long, value_name = "S")]
    pending: Option<f64>,
    /// Seconds to keep the job after it completes (0 or less: never removed).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    expire: Option<f64>,
    /// The job's entity.
    #[arg(long)]
    entity: Option<String>,
}

/// The options of `interrupt`.
#[derive(Args)]
struct InterruptArgs {
    /// The error's message.
    #[arg(long)]
    reason: Option<String>,
    /// The error's code, 100 to 999 (default 410).
    #[arg(long)]
    code: Option<i64>,
    /// Seconds to keep the job (default: its own expire).
    #[arg(long, value_name = "S")]
    expire: Option<f64>,
    /// Interrupt its child jobs too.
    #[arg(long)]
    descend: bool,
    /// A job that ended already is not an error.
    #[arg(long)]
    suppress: bool,
    /// Record no error on the job (its parent and waiters see none).
    #[arg(long)]
    no_throw: bool,
}

impl InterruptArgs {
    fn options(self) -> InterruptOptions {
        // field by field: the options type may grow (non_exhaustive)
        let mut o = InterruptOptions::default();
        o.reason = self.reason;
        o.throw = !self.no_throw;
        o.code = self.code.unwrap_or(o.code);
        o.expire = self.expire;
        o.suppress = self.suppress;
        o.descend = self.descend;
        o
    }
}

/// What `watch` listens to: exactly one of these.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct SourceArgs {
    /// A publishes topic (`sub`).
    topic: Option<String>,
    /// A pattern of topics: `*` any run of characters, `?` one (`psub`).
    #[arg(long)]
    pattern: Option<String>,
    /// Activations of new versions instead of completions.
    #[arg(long)]
    activations: bool,
}

impl SourceArgs {
    fn source(self) -> watch::Source {
        match (self.topic, self.pattern) {
            (Some(t), _) => watch::Source::Topic(t),
            (None, Some(p)) => watch::Source::Pattern(p),
            (None, None) => watch::Source::Activations,
        }
    }
}

/// The longest wait a command takes (a year): longer ones are surely a typo.
const MAX_WAIT_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// A number of seconds > 0, as `--timeout` and friends take it.
fn seconds(s: &str) -> Result<Duration, String> {
    let n: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(n.is_finite() && n > 0.0 && n <= MAX_WAIT_SECS) {
        return Err(format!(
            "must be more than 0 and at most {MAX_WAIT_SECS} seconds"
        ));
    }
    Ok(Duration::from_secs_f64(n))
}

/// A JSON argument; `name` is how the user wrote it (`data`, `--search`).
fn json_arg(name: &str, s: &str) -> Result<Value, Failure> {
    serde_json::from_str(s)
        .map_err(|e| Failure::invalid(format!("invalid argument {name}: not JSON: {e}")))
}

/// A JSON object argument (job data, search fields).
fn object_arg(name: &str, s: &str) -> Result<Map<String, Value>, Failure> {
    match json_arg(name, s)? {
        Value::Object(m) => Ok(m),
        other => Err(Failure::invalid(format!(
            "invalid argument {name}: must be a JSON object, got {other}"
        ))),
    }
}

impl PubArgs {
    fn options(self) -> Result<PubOptions, Failure> {
        let object = |name, v: Option<String>| v.map_or(Ok(Map::new()), |s| object_arg(name, &s));
        // field by field: the options type may grow (non_exhaustive)
        let mut o = PubOptions::default();
        o.search = object("--search", self.search)?;
        o.marker = object("--marker", self.marker)?;
        o.id = self.id;
        o.pending = self.pending;
        o.entity = self.entity;
        o.expire = self.expire;
        Ok(o)
    }
}

async fn connect(url: Option<&str>) -> Result<HotMesh, Failure> {
    let url = url.ok_or_else(|| {
        Failure::invalid("no database given").hint("give --url or set HOTMESH_DATABASE_URL")
    })?;
    Ok(HotMesh::connect(url).await?)
}

/// What a command prints: its value, and the columns `--table` shows first.
struct Shown {
    value: Value,
    columns: &'static [&'static str],
}

impl From<Value> for Shown {
    fn from(value: Value) -> Shown {
        Shown {
            value,
            columns: &[],
        }
    }
}

/// The columns of `workers --table`, most telling first.
const WORKER_COLUMNS: &[&str] = &[
    "database",
    "state",
    "pid",
    "started_at",
    "starts",
    "loops",
    "errors",
];
/// The columns of `roll-call --table`.
const PROCESS_COLUMNS: &[&str] = &[
    "guid",
    "role",
    "topic",
    "version",
    "pid",
    "throttle",
    "processed",
    "errors",
];

/// Runs the command; `None` when it printed its own output (a stream, a script).
async fn run(cli: Cli) -> Result<Option<Shown>, Failure> {
    match cli.cmd {
        Cmd::Validate { file } => validate::validate(&file).map(|v| Some(v.into())),
        Cmd::Completions { shell } => completions(shell).map(|()| None),
        Cmd::Version => version(cli.url.as_deref()).await.map(|v| Some(v.into())),
        cmd => {
            let hm = connect(cli.url.as_deref()).await?;
            engine(&hm, cmd).await
        }
    }
}

/// The commands that talk to the engine.
async fn engine(hm: &HotMesh, cmd: Cmd) -> Result<Option<Shown>, Failure> {
    let v = match cmd {
        Cmd::Deploy { file } => deploy(hm, &file).await?,
        Cmd::Activate { app, version } => {
            json!({ "activated": hm.activate_app(&app, &version).await? })
        }
        Cmd::Pub {
            topic,
            data,
            options,
        } => {
            let job = hm
                .publish(&topic, object_arg("data", &data)?, options.options()?)
                .await?;
            json!({ "job_id": job.id() })
        }
        Cmd::Pubsub {
            topic,
            data,
            timeout,
            options,
        } => pubsub(hm, &topic, &data, timeout, options).await?,
        Cmd::Wait { job, timeout } => {
            let what = format!("waiting for job {job}");
            let out = progress::show_while(&what, timeout, hm.job(&job).result(timeout)).await?;
            json!({ "metadata": out.metadata, "data": out.data })
        }
        Cmd::Status { job } => json!({ "job_id": job, "status": hm.get_status(&job).await? }),
        Cmd::State { job } => {
            let o = hm.get_state(&job).await?;
            json!({ "metadata": o.metadata, "data": o.data })
        }
        Cmd::QueryState { job, fields } => {
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            hm.get_query_state(&job, &fields).await?
        }
        Cmd::Export { job } => hm.export(&job).await?,
        Cmd::Raw { job } => hm.get_raw(&job).await?,
        Cmd::Signal {
            topic,
            data,
            status,
            code,
        } => {
            let status = Status::parse(&status).map_err(|problem| {
                Failure::invalid(format!("invalid argument --status: {problem}"))
            })?;
            let data = Value::Object(object_arg("data", &data)?);
            json!({ "job_id": hm.signal_with(&topic, data, status, code).await? })
        }
        Cmd::SignalAll {
            topic,
            data,
            key_name,
            key_value,
        } => {
            let data = Value::Object(object_arg("data", &data)?);
            json!({ "job_ids": hm.signal_all(&topic, data, &key_name, &key_value).await? })
        }
        Cmd::Interrupt {
            topic,
            job,
            options,
        } => json!({ "interrupted": hm.interrupt(&topic, &job, options.options()).await? }),
        Cmd::Scrub { job } => json!({ "scrubbed": hm.scrub(&job).await? }),
        Cmd::Watch {
            source,
            count,
            timeout,
        } => {
            watch::watch(hm, source.source(), watch::Until { count, timeout }).await?;
            return Ok(None);
        }
        Cmd::Bridge {
            transport,
            topics,
            name,
            hold,
            events,
            quorum,
        } => {
            let options = hotmesh_client::bridge::BridgeOptions::new(topics)
                .name(name)
                .hold(hold)
                .events(events)
                .quorum(quorum);
            bridge(hm, &transport, options).await?;
            return Ok(None);
        }
        Cmd::Throttle {
            app,
            throttle,
            topic,
            guid,
        } => {
            // set field by field: any value is passed on, the engine's rules judge it
            let mut t = Throttle::resume();
            (t.throttle, t.topic, t.guid) = (throttle, topic, guid);
            // in force when it returns: `confirmed` live workers have read it
            let confirmed = hotmesh_client::throttle_app(hm.pool(), &app, &t).await?;
            json!({ "app": app, "throttle": t.throttle, "topic": t.topic, "guid": t.guid, "confirmed": confirmed })
        }
        Cmd::RollCall { app, max_age } => {
            return Ok(Some(Shown {
                value: roll_call(hm, &app, max_age).await?,
                columns: PROCESS_COLUMNS,
            }))
        }
        Cmd::Workers { wait } => {
            return Ok(Some(Shown {
                value: workers(hm, wait).await?,
                columns: WORKER_COLUMNS,
            }))
        }
        Cmd::Validate { .. } | Cmd::Completions { .. } | Cmd::Version => {
            unreachable!("offline commands are run by `run`")
        }
    };
    Ok(Some(v.into()))
}

async fn deploy(hm: &HotMesh, file: &str) -> Result<Value, Failure> {
    if file != "-" {
        return Ok(hm.deploy_file(file).await?);
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
        .map_err(|e| Failure::invalid(format!("-: cannot read standard input: {e}")))?;
    Ok(hm.deploy(&text).await?)
}

/// Starts the job with a known id, so the progress line and a timeout's hint can name it.
async fn pubsub(
    hm: &HotMesh,
    topic: &str,
    data: &str,
    timeout: Duration,
    options: PubArgs,
) -> Result<Value, Failure> {
    let data = object_arg("data", data)?;
    let mut o = options.options()?;
    let id = o.id.get_or_insert_with(hotmesh_client::guid).clone();
    let what = format!("waiting for job {id}");
    let out = progress::show_while(&what, timeout, hm.pubsub_with(topic, data, o, timeout)).await?;
    Ok(json!({ "metadata": out.metadata, "data": out.data }))
}

async fn roll_call(hm: &HotMesh, app: &str, max_age: Duration) -> Result<Value, Failure> {
    let ps = hotmesh_client::roll_call_app(hm.pool(), app, max_age).await?;
    Ok(ps
        .into_iter()
        .map(|p| {
            json!({"guid": p.guid, "role": p.role, "topic": p.topic, "version": p.version, "pid": p.pid,
                   "processed": p.processed, "errors": p.errors, "throttle": p.throttle,
                   "stream_depth": p.stream_depth, "heartbeat_at": p.heartbeat_at.to_rfc3339()})
        })
        .collect())
}

async fn workers(hm: &HotMesh, wait: Option<Duration>) -> Result<Value, Failure> {
    if let Some(d) = wait {
        let what = "waiting for this database's engine worker";
        if !progress::show_while(what, d, hm.wait_for_engine(d)).await? {
            return Err(Failure {
                exit: exit::TIMEOUT,
                message: format!(
                    "this database's engine worker is not running after {} s",
                    d.as_secs_f64()
                ),
                hint: Some("`hotmesh workers` shows its state and last error".into()),
            });
        }
    }
    Ok(hm
        .workers()
        .await?
        .into_iter()
        .map(|w| {
            json!({"database": w.database, "state": w.state, "pid": w.pid,
                   "started_at": w.started_at.map(|t| t.to_rfc3339()), "starts": w.starts,
                   "loops": w.loops, "errors": w.errors, "last_error": w.last_error,
                   "last_error_at": w.last_error_at.map(|t| t.to_rfc3339())})
        })
        .collect())
}

/// The command line's version; the engine's too when a database is given (one that
/// cannot be reached then is an error: the point is to compare them).
async fn version(url: Option<&str>) -> Result<Value, Failure> {
    let engine = match url {
        Some(_) => Some(connect(url).await?.version().await?),
        None => None,
    };
    Ok(json!({ "cli": env!("CARGO_PKG_VERSION"), "engine": engine }))
}

/// The script is made whole before it is written (the generator panics on a closed pipe).
fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "hotmesh", &mut script);
    finish_output(output::write_out(&String::from_utf8_lossy(&script)))
}

/// A reader that closed the pipe ends the output, not the command's success.
fn finish_output(r: std::io::Result<()>) -> Result<(), Failure> {
    match r {
        Err(e) if !output::reader_left(&e) => Err(Failure::from_io(e)),
        _ => Ok(()),
    }
}

fn report(f: &Failure) {
    eprintln!("hotmesh: {}", f.message);
    if let Some(h) = &f.hint {
        eprintln!("hint: {h}");
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // clap exits by itself: 0 for --help and --version, 2 for a usage error
    let cli = Cli::parse();
    let as_table = cli.table;
    let done = run(cli).await.and_then(|shown| match shown {
        Some(s) => finish_output(output::print(&s.value, as_table, s.columns)),
        None => Ok(()),
    });
    match done {
        Ok(()) => ExitCode::from(exit::OK),
        Err(f) => {
            report(&f);
            ExitCode::from(f.exit)
        }
    }
}

/// `hotmesh bridge`: relays `topics` to `transport` until Ctrl-C or SIGTERM.
async fn bridge(
    hm: &HotMesh,
    transport: &str,
    options: hotmesh_client::bridge::BridgeOptions,
) -> Result<(), Failure> {
    let t = hotmesh_transport::connect(transport, hotmesh_transport::Options::default())
        .await
        .map_err(|e| Failure::invalid(format!("{}: {e}", hotmesh_transport::redact(transport))))?;
    let b = hotmesh_client::bridge::Bridge::start(hm, std::sync::Arc::new(t), options).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(Failure::from_io)?;
    let mut every = tokio::time::interval(Duration::from_secs(10));
    every.tick().await;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = every.tick() => {
                let s = b.state();
                println!("{}", json!({"connected": s.connected, "relayed": s.relayed, "answered": s.answered,
                                      "in_flight": s.in_flight, "events": s.events, "quorum": s.quorum,
                                      "errors": s.errors}));
            }
        }
    }
    b.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds_must_be_positive_and_finite() {
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        for bad in ["0", "-1", "inf", "NaN", "x", "1e12"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_command_has_an_example() {
        for c in Cli::command().get_subcommands() {
            let help = c
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(help.contains("hotmesh "), "{} has no example", c.get_name());
        }
    }

    #[test]
    fn pub_options_are_read_as_json_objects() {
        let o = PubArgs {
            id: Some("j".into()),
            search: Some(r#"{"region": "eu"}"#.into()),
            marker: None,
            pending: Some(5.0),
            expire: None,
            entity: None,
        }
        .options()
        .unwrap();
        assert_eq!(o.search["region"], "eu");
        let bad = PubArgs {
            id: None,
            search: Some("[1]".into()),
            marker: None,
            pending: None,
            expire: None,
            entity: None,
        };
        let e = bad.options().unwrap_err();
        assert_eq!(
            (e.exit, e.message.contains("--search")),
            (exit::INVALID, true)
        );
    }
}
