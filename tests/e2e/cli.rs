//! The `hotmesh` command line against a real cluster: every command, the exit code of
//! each kind of failure, `validate` offline, `watch` streams, `wait` and completions.
//! The binary is built once (`cargo build -p hotmesh-cli`) and run directly.

use hotmesh_tests::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const DB: &str = "e2e_cli";

/// `cli.start` waits on the hook `cli.go` (keyed on the job id); `cli.quick` ends at once.
const APP: &str = r#"
app:
  id: cli
  version: '1'
  graphs:
    - subscribes: cli.start
      publishes: cli.done
      activities:
        t: { type: trigger }
        h: { type: hook, job: { maps: { ok: '{$self.hook.data.ok}' } } }
      transitions:
        t: [ { to: h } ]
      hooks:
        cli.go:
          - to: h
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] }
    - subscribes: cli.quick
      publishes: cli.quick.done
      activities:
        q: { type: trigger, job: { maps: { n: '{$self.output.data.n}' } } }
"#;

/// A manifest with an unknown activity type on line 7.
const BAD_APP: &str = "app:\n  id: bad\n  version: '1'\n  graphs:\n    - subscribes: bad.start\n      activities:\n        t: { type: nosuchtype }\n";

/// The variables Cargo sets for a test besides `CARGO_PKG_*` (none is the user's own).
const CARGO_SETS_FOR_TESTS: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];

/// The `hotmesh` binary, built once for all the tests.
fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "-q", "-p", "hotmesh-cli", "--bin", "hotmesh"])
            .arg("--message-format=json");
        // Cargo gives this test the package's variables (CARGO_PKG_NAME, ...). Build
        // scripts that watch them (ring's does) would see them change between this build
        // and the one of `cargo test`, and each would rebuild half the tree for the other.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("CARGO_PKG_") || CARGO_SETS_FOR_TESTS.contains(&k.as_ref()) {
                build.env_remove(k.as_ref());
            }
        }
        let out = build.output().expect("cargo build hotmesh");
        assert!(
            out.status.success(),
            "cargo build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["target"]["name"] == "hotmesh")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the hotmesh executable")
    })
}

/// The test database, made once: the extension and [`APP`], active.
fn setup() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            fresh_database(DB).await;
            exec(DB, "CREATE EXTENSION hotmesh").await;
        });
        let file = write_file("app.yaml", APP);
        assert_eq!(json(&["deploy", &file])["status"], "deployed");
        assert_eq!(json(&["activate", "cli", "1"])["activated"], true);
    });
}

fn write_file(name: &str, text: &str) -> String {
    let p = std::env::temp_dir().join(format!("e2e-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// What a run of `hotmesh` left.
struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| panic!("{e}: {}", self.out))
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().expect("an exit code, not a signal"),
            out: String::from_utf8_lossy(&o.stdout).into_owned(),
            err: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(binary());
    c.args(args).env("HOTMESH_DATABASE_URL", url_for(DB));
    c
}

/// Runs `hotmesh <args>` against the test database.
fn hotmesh(args: &[&str]) -> Run {
    command(args).output().expect("run hotmesh").into()
}

/// Runs `hotmesh <args>` with no database anywhere (offline commands).
fn offline(args: &[&str]) -> Run {
    command(args)
        .env_remove("HOTMESH_DATABASE_URL")
        .output()
        .expect("run hotmesh")
        .into()
}

/// The JSON output of a run that must succeed.
fn json(args: &[&str]) -> Value {
    let r = hotmesh(args);
    assert_eq!(r.code, 0, "hotmesh {args:?}: {}", r.err);
    r.json()
}

/// Asserts the exit code, and that stderr is one `hotmesh:` line (and maybe a hint).
fn fails(args: &[&str], code: i32) -> String {
    let r = hotmesh(args);
    assert_eq!(r.code, code, "hotmesh {args:?}: {}{}", r.out, r.err);
    assert!(r.err.starts_with("hotmesh: "), "{}", r.err);
    let lines: Vec<&str> = r.err.lines().collect();
    assert!(
        lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: ")),
        "{}",
        r.err
    );
    r.err
}

/// A started `hotmesh` whose output is read when it exits (or after `secs`).
fn finish(mut child: std::process::Child, secs: u64) -> Run {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hotmesh did not end within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap().into()
}

fn spawn(args: &[&str]) -> std::process::Child {
    command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hotmesh")
}

/// A job id unique to this run.
fn id(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

#[test]
fn deploy_pub_signal_state_interrupt_and_throttle_work() {
    setup();
    let k1 = id("k1");
    assert_eq!(json(&["pub", "cli.start", "{}", "--id", &k1])["job_id"], k1);
    assert_eq!(json(&["status", &k1])["status"], 1);
    let signal = format!(r#"{{"id": "{k1}", "ok": "yes"}}"#);
    assert_eq!(json(&["signal", "cli.go", &signal])["job_id"], k1);
    assert_eq!(json(&["state", &k1])["data"]["ok"], "yes");
    let table = hotmesh(&["state", &k1, "--table"]);
    assert!(
        table.code == 0 && table.out.starts_with("key") && table.out.contains("metadata"),
        "{}",
        table.out
    );
    let k2 = id("k2");
    json(&["pub", "cli.start", "{}", "--id", &k2]);
    let interrupted = json(&[
        "interrupt",
        "cli.start",
        &k2,
        "--reason",
        "no",
        "--code",
        "499",
    ]);
    assert_eq!(interrupted["interrupted"], true);
    assert_eq!(json(&["scrub", &k2])["scrubbed"], true);
    let t = json(&["throttle", "cli", "-1", "--topic", "cli.work"]);
    assert_eq!(t["throttle"], -1);
    assert_eq!(t["confirmed"], 0, "no worker of the topic runs");
    assert_eq!(json(&["throttle", "cli", "0"])["throttle"], 0);
    assert!(json(&["roll-call", "cli"]).is_array());
}

#[test]
fn a_missing_job_exits_3() {
    setup();
    let err = fails(&["status", "nosuchjob"], 3);
    assert!(err.contains("code 404"), "{err}");
    fails(&["state", "nosuchjob"], 3);
    fails(&["wait", "nosuchjob", "--timeout", "1"], 3);
}

#[test]
fn a_wait_that_times_out_exits_4_and_says_how_to_wait_again() {
    setup();
    let job = id("slow");
    json(&["pub", "cli.start", "{}", "--id", &job]);
    // a little over the first progress tick: a pipe must still get no progress line
    let err = fails(&["wait", &job, "--timeout", "1.1"], 4);
    assert!(err.contains("code 504"), "{err}");
    assert!(err.contains(&format!("hotmesh wait {job}")), "{err}");
    assert!(
        !err.contains('\r'),
        "a progress line went to a pipe: {err:?}"
    );
    let err = fails(&["pubsub", "cli.start", "{}", "--timeout", "0.3"], 4);
    assert!(err.contains("code 504"), "{err}");
}

#[test]
fn invalid_input_exits_2() {
    setup();
    let err = fails(&["pub", "cli.start", "not json"], 2);
    assert!(err.contains("invalid argument data"), "{err}");
    fails(&["pub", "cli.start", "[1, 2]"], 2);
    fails(&["pub", "cli.start", "{}", "--search", "{"], 2);
    fails(&["signal", "cli.go", "{}", "--status", "maybe"], 2);
    // refused by the engine's own rules, before or after the round trip
    fails(&["pub", "cli.start", "{}", "--pending=-5"], 2);
    // usage errors are clap's: exit 2 too
    let r = hotmesh(&["pubsub", "cli.start", "{}", "--timeout", "0"]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert_eq!(hotmesh(&["no-such-command"]).code, 2);
    let r = offline(&["status", "j"]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("HOTMESH_DATABASE_URL"), "{}", r.err);
}

#[test]
fn an_unreachable_server_exits_5() {
    let err = fails(
        &["status", "j", "--url", "postgres://postgres@127.0.0.1:1/x"],
        5,
    );
    assert!(err.contains("cannot connect"), "{err}");
    assert!(err.contains("hint: "), "{err}");
}

#[test]
fn validate_checks_a_manifest_offline() {
    let good = write_file("good.yaml", APP);
    let r = offline(&["validate", &good]);
    assert_eq!(r.code, 0, "{}", r.err);
    let v = r.json();
    assert_eq!(
        (v["status"].as_str(), v["app_id"].as_str()),
        (Some("valid"), Some("cli"))
    );
    let bad = write_file("bad.yaml", BAD_APP);
    let r = offline(&["validate", &bad]);
    assert_eq!(r.code, 2, "{}", r.out);
    assert!(
        r.err.starts_with(&format!("hotmesh: {bad}:7: ")),
        "{}",
        r.err
    );
    assert!(r.err.contains("nosuchtype"), "{}", r.err);
}

#[test]
fn wait_prints_the_output_of_a_job_that_ends_or_exits_6_for_one_that_failed() {
    setup();
    let job = id("waited");
    json(&["pub", "cli.start", "{}", "--id", &job]);
    let waiting = spawn(&["wait", &job, "--timeout", "10"]);
    std::thread::sleep(Duration::from_millis(200));
    json(&[
        "signal",
        "cli.go",
        &format!(r#"{{"id": "{job}", "ok": "late"}}"#),
    ]);
    let r = finish(waiting, 15);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.json()["data"]["ok"], "late");
    // a job that ended already answers at once
    assert_eq!(json(&["wait", &job])["data"]["ok"], "late");
    let doomed = id("doomed");
    json(&["pub", "cli.start", "{}", "--id", &doomed]);
    json(&["interrupt", "cli.start", &doomed, "--reason", "stop"]);
    let err = fails(&["wait", &doomed], 6);
    assert!(err.contains("410") && err.contains("stop"), "{err}");
}

#[test]
fn pub_search_fields_are_read_by_query_state_and_found_by_signal_all() {
    setup();
    let (a, b) = (id("eu-a"), id("eu-b"));
    for j in [&a, &b] {
        json(&[
            "pub",
            "cli.start",
            "{}",
            "--id",
            j,
            "--search",
            r#"{"region": "eu"}"#,
        ]);
    }
    let q = json(&["query-state", &a, "region"]);
    assert_eq!(q["region"], "eu", "{q}");
    let r = json(&[
        "signal-all",
        "cli.go",
        r#"{"ok": "all"}"#,
        "--key-name",
        "region",
        "--key-value",
        "eu",
    ]);
    let mut ids: Vec<&str> = r["job_ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    ids.sort();
    assert_eq!(ids, [a.as_str(), b.as_str()]);
    assert_eq!(json(&["wait", &b])["data"]["ok"], "all");
}

#[test]
fn a_pending_job_waits_with_status_minus_1() {
    setup();
    let p = id("pending");
    json(&["pub", "cli.quick", "{}", "--id", &p, "--pending", "60"]);
    assert_eq!(json(&["status", &p])["status"], -1);
}

#[test]
fn export_and_raw_show_a_job() {
    setup();
    let j = id("exported");
    json(&["pubsub", "cli.quick", r#"{"n": 3}"#, "--id", &j]);
    let e = json(&["export", &j]);
    assert!(e.to_string().contains(&j), "{e}");
    let raw = json(&["raw", &j]);
    assert!(raw.is_object(), "{raw}");
    fails(&["export", "nosuchjob"], 3);
}

#[test]
fn pubsub_with_an_id_answers_for_that_job() {
    setup();
    let j = id("ps");
    let out = json(&[
        "pubsub",
        "cli.quick",
        r#"{"n": 5}"#,
        "--id",
        &j,
        "--timeout",
        "5",
    ]);
    assert_eq!(out["metadata"]["jid"], j);
    assert_eq!(out["data"]["n"], 5);
    // the same id again is a conflict: exit 1
    let err = fails(&["pubsub", "cli.quick", "{}", "--id", &j], 1);
    assert!(err.contains("409"), "{err}");
}

/// Starts `cli.quick` jobs until the watcher has what it waits for (it may not be
/// listening yet when the first one ends).
fn feed_until_done(watcher: std::process::Child) -> Run {
    let mut watcher = watcher;
    let deadline = Instant::now() + Duration::from_secs(10);
    while watcher.try_wait().unwrap().is_none() && Instant::now() < deadline {
        json(&["pub", "cli.quick", r#"{"n": 1}"#]);
        std::thread::sleep(Duration::from_millis(100));
    }
    finish(watcher, 5)
}

#[test]
fn watch_prints_a_json_line_per_completion() {
    setup();
    let r = feed_until_done(spawn(&[
        "watch",
        "cli.quick.done",
        "--count",
        "1",
        "--timeout",
        "10",
    ]));
    assert_eq!(r.code, 0, "{}", r.err);
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.out);
    let m: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(
        (m["topic"].as_str(), m["data"]["n"].as_i64()),
        (Some("cli.quick.done"), Some(1))
    );
    let r = feed_until_done(spawn(&[
        "watch",
        "--pattern",
        "cli.quick.*",
        "--count",
        "2",
    ]));
    assert_eq!((r.code, r.out.lines().count()), (0, 2), "{}", r.err);
}

#[test]
fn watch_ends_at_its_timeout_and_exits_4_when_messages_are_missing() {
    setup();
    let r = hotmesh(&["watch", "cli.nothing", "--timeout", "0.3"]);
    assert_eq!((r.code, r.out.as_str()), (0, ""), "{}", r.err);
    fails(
        &["watch", "cli.nothing", "--count", "1", "--timeout", "0.3"],
        4,
    );
}

#[test]
fn workers_lists_this_databases_engine_worker() {
    setup();
    let rows = json(&["workers", "--wait", "10"]);
    let mine = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["database"] == DB)
        .unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(mine["state"], "running", "{mine}");
}

#[test]
fn version_names_the_cli_and_the_engine() {
    setup();
    let v = json(&["version"]);
    assert_eq!(v["cli"], env!("CARGO_PKG_VERSION"));
    assert!(v["engine"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    let r = offline(&["version"]);
    assert_eq!((r.code, r.json()["engine"].is_null()), (0, true));
}

#[test]
fn completions_and_help_need_no_database() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = offline(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {}", r.err);
        assert!(
            r.out.contains("hotmesh") && r.out.contains("query-state"),
            "{shell}"
        );
    }
    let r = offline(&["--help"]);
    assert!(
        r.out.contains("Exit codes:") && r.out.contains("3  not found"),
        "{}",
        r.out
    );
    let r = offline(&["wait", "--help"]);
    assert!(r.out.contains("Example:\n  hotmesh wait"), "{}", r.out);
}
