//! Real servers for the tests: redis-server and nats-server (with JetStream) from the
//! machine's packages, each on a free port with its data in a directory of its own,
//! stopped when dropped. `restart` keeps the data (a server restart, as in production).

#![allow(dead_code)]

use hotmesh_transport::{Options, Work};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The default options but for `claim_after`.
pub fn options(claim_after: Duration) -> Options {
    Options {
        claim_after,
        ..Options::default()
    }
}

/// Work as the bridge would send it: message `id` of `topic` (reservation 1000 + id),
/// with `data`.
pub fn work_with(id: i64, topic: &str, data: Value) -> Work {
    Work {
        id,
        reservation: 1000 + id,
        topic: topic.into(),
        job_id: format!("job-{id}"),
        activity_id: "a1".into(),
        dad: ",0".into(),
        data,
        attempt: 0,
        deliveries: 1,
        metadata: json!({"guid": id, "jid": format!("job-{id}"), "topic": topic}),
    }
}

/// [`work_with`] with data `{n: id, text}` (a non-ASCII text: it must travel as it is).
pub fn work(id: i64, topic: &str) -> Work {
    work_with(id, topic, json!({"n": id, "text": "héllo"}))
}

/// A port nobody listens on now, and not handed out before in this process: the tests
/// of a binary run in parallel, and two of them given one port started two servers on
/// it (the second failed to bind, its readiness check met the first, and its test lost
/// its server when the other test ended).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    program: &'static str,
    args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    /// redis-server with an append-only file (a restart keeps the streams).
    pub fn redis() -> Server {
        let port = free_port();
        let dir = scratch("redis", port);
        let args = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--appendonly".into(),
            "yes".into(),
            "--appendfsync".into(),
            "always".into(),
            "--save".into(),
            "".into(),
        ];
        Server::start("redis-server", port, dir, args)
    }

    /// nats-server with JetStream, its store in the server's directory.
    pub fn nats() -> Server {
        let port = free_port();
        let dir = scratch("nats", port);
        let args = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-js".into(),
            "-sd".into(),
            dir.display().to_string(),
        ];
        Server::start("nats-server", port, dir, args)
    }

    fn start(program: &'static str, port: u16, dir: PathBuf, args: Vec<String>) -> Server {
        let mut s = Server {
            port,
            dir,
            program,
            args,
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        // Debian puts nats-server in /usr/sbin, which a user's PATH may lack
        let start = |program: &str| {
            Command::new(program)
                .args(&self.args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        };
        let child = start(self.program)
            .or_else(|_| start(&format!("/usr/sbin/{}", self.program)))
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} (scripts/setup-machine.sh installs it): {e}",
                    self.program
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "{} did not start", self.program);
            std::thread::sleep(Duration::from_millis(20));
        }
        // the one listening must be ours: a server that could not bind has exited
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!("{} on port {} exited ({status})", self.program, self.port);
        }
    }

    /// Kills the server (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn url(&self) -> String {
        match self.program {
            "redis-server" => format!("redis://127.0.0.1:{}/", self.port),
            _ => format!("nats://127.0.0.1:{}", self.port),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch(kind: &str, port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotmesh-transport-{kind}-{port}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
