//! `hotmesh`: the engine from the command line. The connection comes from `--url` or
//! `HOTMESH_DATABASE_URL`. Output is JSON, or a readable table with `--table`.
//!
//! ```text
//! hotmesh deploy app.yaml            hotmesh activate orders 2
//! hotmesh pub orders.start '{"n":1}' hotmesh pubsub orders.start '{"n":1}' --timeout 5
//! hotmesh status <job>               hotmesh state <job>
//! hotmesh signal orders.approve '{"id":"<job>"}'
//! hotmesh interrupt orders.start <job> --reason stop
//! hotmesh scrub <job>                hotmesh throttle orders -1 [--topic t | --guid g]
//! hotmesh roll-call orders
//! ```

use clap::{Parser, Subcommand};
use hotmesh_client::{Error, HotMesh, InterruptOptions, PubOptions, Status, Throttle};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "hotmesh",
    version,
    about = "HotMesh workflows in PostgreSQL, from the command line"
)]
struct Cli {
    /// The database with the hotmesh extension.
    #[arg(long, env = "HOTMESH_DATABASE_URL", global = true)]
    url: Option<String>,
    /// Print a readable table instead of JSON.
    #[arg(long, global = true)]
    table: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Deploy an app from a YAML file (its $refs merged), or `-` for standard input.
    Deploy { file: String },
    /// Make a version the app's active one.
    Activate { app: String, version: String },
    /// Start a job; prints its id.
    Pub {
        topic: String,
        #[arg(default_value = "{}")]
        data: String,
        /// The job id.
        #[arg(long)]
        id: Option<String>,
    },
    /// Start a job and wait for its output.
    Pubsub {
        topic: String,
        #[arg(default_value = "{}")]
        data: String,
        /// Seconds to wait (then: error 504).
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// A job's status semaphore.
    Status { job: String },
    /// A job's {metadata, data}.
    State { job: String },
    /// Signal a waiting hook.
    Signal {
        topic: String,
        data: String,
        #[arg(long, default_value = "success")]
        status: String,
        #[arg(long)]
        code: Option<i32>,
    },
    /// Interrupt a job.
    Interrupt {
        topic: String,
        job: String,
        #[arg(long)]
        reason: Option<String>,
        /// Interrupt its child jobs too.
        #[arg(long)]
        descend: bool,
    },
    /// Delete a job now.
    Scrub { job: String },
    /// Throttle an app's workers: -1 pause, 0 resume, ms between messages.
    Throttle {
        app: String,
        #[arg(allow_hyphen_values = true)]
        throttle: i32,
        #[arg(long)]
        topic: Option<String>,
        #[arg(long)]
        guid: Option<String>,
    },
    /// The live processes of an app.
    RollCall {
        app: String,
        /// Seconds since the last heartbeat.
        #[arg(long, default_value_t = 30.0)]
        max_age: f64,
    },
}

fn json_arg(name: &'static str, s: &str) -> Result<Value, Error> {
    serde_json::from_str(s).map_err(|e| Error::Invalid {
        name,
        problem: format!("not JSON: {e}"),
    })
}

/// Rows of objects as a table (columns: the keys of the first row).
fn table(rows: &[Value]) -> String {
    let Some(Value::Object(first)) = rows.first() else {
        return String::from("(none)\n");
    };
    let cols: Vec<&String> = first.keys().collect();
    let cell = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|c| cell(&r[c.as_str()])).collect())
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
                .max(c.len())
        })
        .collect();
    let line = |vals: Vec<&str>| {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(cols.iter().map(|c| c.as_str()).collect()) + "\n";
    for r in &cells {
        out += &(line(r.iter().map(|s| s.as_str()).collect()) + "\n");
    }
    out
}

/// An object as two-column rows.
fn pairs(v: &Value) -> Vec<Value> {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
        other => vec![json!({ "value": other })],
    }
}

async fn run(cli: Cli) -> Result<Value, Error> {
    let url = cli.url.clone().ok_or(Error::Invalid {
        name: "url",
        problem: "give --url or set HOTMESH_DATABASE_URL".into(),
    })?;
    let hm = HotMesh::connect(&url).await?;
    Ok(match cli.cmd {
        Cmd::Deploy { file } => {
            if file == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| {
                    Error::Manifest {
                        path: "-".into(),
                        problem: e.to_string(),
                    }
                })?;
                hm.deploy(&text).await?
            } else {
                hm.deploy_file(&file).await?
            }
        }
        Cmd::Activate { app, version } => {
            json!({ "activated": hm.activate(&app, &version).await? })
        }
        Cmd::Pub { topic, data, id } => {
            let o = PubOptions {
                id,
                ..Default::default()
            };
            json!({ "job_id": hm.publish(&topic, json_arg("data", &data)?, o).await? })
        }
        Cmd::Pubsub {
            topic,
            data,
            timeout,
        } => {
            if !(timeout.is_finite() && timeout > 0.0) {
                return Err(Error::Invalid {
                    name: "timeout",
                    problem: "must be a number of seconds > 0".into(),
                });
            }
            let o = hm
                .pubsub(
                    &topic,
                    json_arg("data", &data)?,
                    Duration::from_secs_f64(timeout),
                )
                .await?;
            json!({ "metadata": o.metadata, "data": o.data })
        }
        Cmd::Status { job } => json!({ "job_id": job, "status": hm.get_status(&job).await? }),
        Cmd::State { job } => {
            let o = hm.get_state(&job).await?;
            json!({ "metadata": o.metadata, "data": o.data })
        }
        Cmd::Signal {
            topic,
            data,
            status,
            code,
        } => {
            let status = Status::parse(&status).map_err(|problem| Error::Invalid {
                name: "--status",
                problem,
            })?;
            json!({ "job_id": hm.signal_with(&topic, json_arg("data", &data)?, status, code).await? })
        }
        Cmd::Interrupt {
            topic,
            job,
            reason,
            descend,
        } => {
            let o = InterruptOptions {
                reason,
                descend,
                ..Default::default()
            };
            json!({ "interrupted": hm.interrupt(&topic, &job, o).await? })
        }
        Cmd::Scrub { job } => json!({ "scrubbed": hm.scrub(&job).await? }),
        Cmd::Throttle {
            app,
            throttle,
            topic,
            guid,
        } => {
            let t = Throttle {
                throttle,
                topic,
                guid,
            };
            hotmesh_client::throttle_app(hm.pool(), &app, &t).await?;
            json!({ "app": app, "throttle": t.throttle, "topic": t.topic, "guid": t.guid })
        }
        Cmd::RollCall { app, max_age } => {
            let ps = hotmesh_client::roll_call_app(
                hm.pool(),
                &app,
                Duration::from_secs_f64(max_age.max(0.0)),
            )
            .await?;
            Value::Array(
                ps.into_iter()
                    .map(|p| {
                        json!({"guid": p.guid, "role": p.role, "topic": p.topic, "version": p.version, "pid": p.pid,
                               "processed": p.processed, "errors": p.errors, "throttle": p.throttle,
                               "stream_depth": p.stream_depth, "heartbeat_at": p.heartbeat_at.to_rfc3339()})
                    })
                    .collect(),
            )
        }
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let as_table = cli.table;
    match run(cli).await {
        Ok(v) => {
            if as_table {
                let rows = match &v {
                    Value::Array(a) => a.clone(),
                    other => pairs(other),
                };
                print!("{}", table(&rows));
            } else {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hotmesh: {e} (code {})", e.code());
            ExitCode::FAILURE
        }
    }
}
