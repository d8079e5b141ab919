//! Workers on a transport, without PostgreSQL: the loop `HotMesh::init` runs for each worker
//! when `Config::stream_url` names Redis or NATS, against a real redis-server and
//! nats-server (free ports). The work is put on the transport as the bridge would put it
//! (`send_work`), and the answers are read where the bridge reads them (`take_answers`).

#[path = "../../transport/tests/common/mod.rs"]
mod common;

use common::{free_port, options, work_with as work, Server};
use hotmesh_client::{run_on_transport, Config, Error, HotMesh, Message, Outcome, Worker};
use hotmesh_transport::{connect, Answer, AnyTransport, Status, Transport};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The transport's claim_after, and the workers' reservation.
const CLAIM_AFTER: Duration = Duration::from_secs(1);

async fn transport(server: &Server) -> Arc<AnyTransport> {
    Arc::new(
        connect(&server.url(), options(CLAIM_AFTER))
            .await
            .expect("connect"),
    )
}

/// Workers running on a transport until `stop`.
struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<(), Error>>>,
}

impl Workers {
    fn start(t: &Arc<AnyTransport>, workers: Vec<Worker>, grace: Duration) -> Workers {
        Workers::throttled(t, workers, grace, None)
    }

    fn throttled(
        t: &Arc<AnyTransport>,
        workers: Vec<Worker>,
        grace: Duration,
        throttle: Option<watch::Receiver<i32>>,
    ) -> Workers {
        let (stop, rx) = watch::channel(false);
        let tasks = workers
            .into_iter()
            .map(|w| {
                let consumer = format!("worker-{}", w.topic);
                let run =
                    run_on_transport(t.clone(), w, consumer, rx.clone(), grace, throttle.clone());
                tokio::spawn(run)
            })
            .collect();
        Workers { stop, tasks }
    }

    /// Stops them; returns how long they took to end.
    async fn stop(self) -> Duration {
        let began = Instant::now();
        self.stop.send(true).unwrap();
        for t in self.tasks {
            tokio::time::timeout(Duration::from_secs(20), t)
                .await
                .expect("the worker ends")
                .unwrap()
                .unwrap();
        }
        began.elapsed()
    }
}

/// Takes (and acknowledges, as the bridge does once applied) answers until `n` came or
/// `within` passed.
async fn answers(t: &AnyTransport, n: usize, within: Duration) -> Vec<Answer> {
    let deadline = Instant::now() + within;
    let mut got = vec![];
    while got.len() < n && Instant::now() < deadline {
        for d in t
            .take_answers("bridge", n - got.len(), Duration::from_millis(200))
            .await
            .unwrap()
        {
            t.ack_answer(&d).await.unwrap();
            got.push(d.message);
        }
    }
    got.sort_by_key(|a| a.id);
    got
}

/// A worker that doubles `n`, at most `concurrency` at once; counts its calls and the
/// most running at once.
fn doubler(
    concurrency: usize,
    calls: Arc<AtomicUsize>,
    peak: Arc<Mutex<(usize, usize)>>,
) -> Worker {
    Worker::new("math.double", move |m: Message| {
        let (calls, peak) = (calls.clone(), peak.clone());
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            {
                let mut p = peak.lock().unwrap();
                p.0 += 1;
                p.1 = p.1.max(p.0);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            peak.lock().unwrap().0 -= 1;
            Outcome::success(json!({
                "doubled": m.data["n"].as_i64().unwrap() * 2,
                "reservation": m.reservation,
                "deliveries": m.deliveries,
                "job": m.job_id,
            }))
        }
    })
    .concurrency(concurrency)
    .reservation(CLAIM_AFTER)
}

async fn answers_and_acknowledges(server: Server) {
    let t = transport(&server).await;
    let (calls, peak) = (Arc::new(AtomicUsize::new(0)), Arc::default());
    let panics = Arc::new(AtomicUsize::new(0));
    let p2 = panics.clone();
    let panicker = Worker::new("math.panic", move |_m| {
        p2.fetch_add(1, Ordering::SeqCst);
        async { panic!("boom") }
    })
    .reservation(CLAIM_AFTER);
    let workers = Workers::start(
        &t,
        vec![doubler(2, calls.clone(), Arc::clone(&peak)), panicker],
        Duration::from_secs(5),
    );
    for id in 1..=6 {
        t.send_work(&work(id, "math.double", json!({"n": id * 10})))
            .await
            .unwrap();
    }
    t.send_work(&work(100, "math.panic", json!({})))
        .await
        .unwrap();

    let got = answers(&t, 7, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 7, "{got:?}");
    for (a, id) in got.iter().zip(1..=6) {
        assert_eq!(
            a,
            &Answer {
                id,
                reservation: 1000 + id,
                status: Status::Success,
                code: Some(200),
                data: json!({
                    "doubled": id * 20,
                    "reservation": 1000 + id,
                    "deliveries": 1,
                    "job": format!("job-{id}"),
                }),
                fatal: false,
                retry_after: None,
            }
        );
    }
    let p = &got[6];
    assert_eq!(
        (p.id, p.reservation, p.status, p.code),
        (100, 1100, Status::Error, Some(500))
    );
    let message = p.data["message"].as_str().unwrap();
    assert!(message.starts_with("the callback failed"), "{message}");
    // never more callbacks at once than the worker's concurrency
    assert_eq!(peak.lock().unwrap().1, 2, "two slots, six messages");

    // every message was acknowledged after its answer: none comes again after claim_after
    tokio::time::sleep(CLAIM_AFTER * 2).await;
    let again = answers(&t, 1, Duration::from_secs(2)).await;
    assert!(again.is_empty(), "answered again: {again:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(panics.load(Ordering::SeqCst), 1);
    workers.stop().await;
}

async fn a_stop_waits_for_running_callbacks_and_leaves_the_rest_to_come_again(server: Server) {
    let t = transport(&server).await;
    let started = Arc::new(tokio::sync::Notify::new());
    let s2 = started.clone();
    let slow = move |sleep: Duration| {
        let s2 = s2.clone();
        Worker::new("slow.job", move |m: Message| {
            let s2 = s2.clone();
            async move {
                s2.notify_one();
                tokio::time::sleep(sleep).await;
                Outcome::success(json!({"deliveries": m.deliveries}))
            }
        })
        .reservation(CLAIM_AFTER)
    };

    // within the grace period: the stop waits for the callback and its answer
    let workers = Workers::start(
        &t,
        vec![slow(Duration::from_millis(700))],
        Duration::from_secs(5),
    );
    t.send_work(&work(1, "slow.job", json!({}))).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .expect("the callback starts");
    let took = workers.stop().await;
    assert!(took >= Duration::from_millis(400), "{took:?}");
    let got = answers(&t, 1, Duration::from_secs(5)).await;
    assert_eq!(
        (got.len(), got[0].id, got[0].status),
        (1, 1, Status::Success)
    );

    // past the grace period: the stop gives up on the callback; its delivery is not
    // acknowledged, and comes again (to the next worker) after claim_after
    let workers = Workers::start(
        &t,
        vec![slow(Duration::from_secs(30))],
        Duration::from_millis(200),
    );
    t.send_work(&work(2, "slow.job", json!({}))).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .expect("the callback starts");
    let took = workers.stop().await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(answers(&t, 1, Duration::from_millis(500)).await.is_empty());
    let workers = Workers::start(
        &t,
        vec![slow(Duration::from_millis(10))],
        Duration::from_secs(5),
    );
    let got = answers(&t, 1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1, "delivered again");
    assert_eq!((got[0].id, got[0].reservation), (2, 1002));
    // a redelivery counts as a delivery
    assert!(got[0].data["deliveries"].as_i64().unwrap() >= 2, "{got:?}");
    workers.stop().await;
}

async fn the_worker_carries_on_after_a_server_restart(mut server: Server) {
    let t = transport(&server).await;
    let (calls, peak) = (Arc::new(AtomicUsize::new(0)), Arc::default());
    let workers = Workers::start(&t, vec![doubler(4, calls, peak)], Duration::from_secs(5));
    t.send_work(&work(1, "math.double", json!({"n": 1})))
        .await
        .unwrap();
    assert_eq!(answers(&t, 1, Duration::from_secs(10)).await.len(), 1);

    server.restart();
    // the transport's clients reconnect by themselves; the worker backs off meanwhile
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match t.send_work(&work(2, "math.double", json!({"n": 2}))).await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                assert!(e.is_connection(), "{e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the server did not come back: {e}"),
        }
    }
    let got = answers(&t, 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "answered after the restart");
    assert_eq!((got[0].id, &got[0].data["doubled"]), (2, &json!(4)));
    workers.stop().await;
}

async fn throttles_pause_and_pace_the_worker(server: Server) {
    let t = transport(&server).await;
    let (calls, peak) = (Arc::new(AtomicUsize::new(0)), Arc::default());
    let (throttle, rx) = watch::channel(0);
    let workers = Workers::throttled(
        &t,
        vec![doubler(4, calls.clone(), peak)],
        Duration::from_secs(5),
        Some(rx),
    );
    t.send_work(&work(1, "math.double", json!({"n": 1})))
        .await
        .unwrap();
    assert_eq!(answers(&t, 1, Duration::from_secs(10)).await.len(), 1);

    // paused: work sent now (even what a take already waiting gets) runs no callback
    throttle.send(-1).unwrap();
    t.send_work(&work(2, "math.double", json!({"n": 2})))
        .await
        .unwrap();
    assert!(answers(&t, 1, CLAIM_AFTER * 3).await.is_empty(), "paused");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    throttle.send(0).unwrap();
    let got = answers(&t, 1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1, "resumed");
    assert_eq!((got[0].id, &got[0].data["doubled"]), (2, &json!(4)));

    // 300 ms between messages: one at a time, however many slots
    throttle.send(300).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await; // a waiting take ends
    let began = Instant::now();
    for id in 3..=5 {
        t.send_work(&work(id, "math.double", json!({"n": id})))
            .await
            .unwrap();
    }
    assert_eq!(answers(&t, 3, Duration::from_secs(15)).await.len(), 3);
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(600), "{took:?}");
    workers.stop().await;
}

async fn a_topic_that_is_not_a_subject_is_refused(server: Server) {
    let t = transport(&server).await;
    let (_stop, rx) = watch::channel(false);
    let w = Worker::new("math double", |_m| async { Outcome::success(json!({})) });
    let e = run_on_transport(t, w, "c", rx, Duration::from_secs(1), None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid { name: "topic", .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_workers_answer_and_acknowledge() {
    answers_and_acknowledges(Server::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_workers_answer_and_acknowledge() {
    answers_and_acknowledges(Server::nats()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_stop_waits_for_running_callbacks_and_leaves_the_rest_to_come_again() {
    a_stop_waits_for_running_callbacks_and_leaves_the_rest_to_come_again(Server::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_stop_waits_for_running_callbacks_and_leaves_the_rest_to_come_again() {
    a_stop_waits_for_running_callbacks_and_leaves_the_rest_to_come_again(Server::nats()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_worker_carries_on_after_a_server_restart() {
    the_worker_carries_on_after_a_server_restart(Server::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_worker_carries_on_after_a_server_restart() {
    the_worker_carries_on_after_a_server_restart(Server::nats()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_throttles_pause_and_pace_the_worker() {
    throttles_pause_and_pace_the_worker(Server::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_throttles_pause_and_pace_the_worker() {
    throttles_pause_and_pace_the_worker(Server::nats()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_topic_that_is_not_a_subject_is_refused() {
    a_topic_that_is_not_a_subject_is_refused(Server::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_topic_that_is_not_a_subject_is_refused() {
    a_topic_that_is_not_a_subject_is_refused(Server::nats()).await;
}

/// `HotMesh::init` connects the transport before PostgreSQL: nothing listens on either
/// port here, and the error names `stream_url` without its password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_transport_fails_init_naming_stream_url() {
    for url in [
        format!("redis://:hunter2@127.0.0.1:{}/", free_port()),
        format!("nats://hunter2@127.0.0.1:{}", free_port()),
    ] {
        let config = Config::new(
            "app",
            format!("postgres://postgres@127.0.0.1:{}/db", free_port()),
        )
        .stream_url(url.clone())
        .worker(Worker::new("math.double", |_m| async {
            Outcome::success(json!({}))
        }));
        let began = Instant::now();
        let e = HotMesh::init(config).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Invalid {
                    name: "stream_url",
                    ..
                }
            ),
            "{url}: {e}"
        );
        let text = e.to_string();
        assert!(text.contains("cannot connect to"), "{text}");
        assert!(text.contains("127.0.0.1"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(began.elapsed() < Duration::from_secs(30), "{url}");
    }
}

/// Subscriptions on a transport (`sub_url`): the transport is connected at init, before
/// PostgreSQL; one that cannot be reached fails init naming `sub_url`, its password hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_sub_url_transport_fails_init_naming_sub_url() {
    for url in [
        format!("redis://:hunter2@127.0.0.1:{}/", free_port()),
        format!("nats://hunter2@127.0.0.1:{}", free_port()),
    ] {
        let config = Config::new(
            "app",
            format!("postgres://postgres@127.0.0.1:{}/db", free_port()),
        )
        .sub_url(url.clone());
        let began = Instant::now();
        let e = HotMesh::init(config).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Invalid {
                    name: "sub_url",
                    ..
                }
            ),
            "{url}: {e}"
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(began.elapsed() < Duration::from_secs(30), "{url}");
    }
}
