//! The NATS transport against a real nats-server with JetStream (one per test).

mod common;

use common::{options, work, Server};
use hotmesh_transport::nats::Nats;
use hotmesh_transport::{
    Answer, Delivery, Event, Options, Status, Subscription, Transport, TransportError, Work,
};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

async fn connect(server: &Server, claim_after: Duration) -> Nats {
    Nats::connect(&server.url(), options(claim_after))
        .await
        .expect("connect")
}

/// Takes from `nats` until `n` deliveries came or `limit` passed.
async fn take_until(nats: &Nats, topic: &str, n: usize, limit: Duration) -> Vec<Delivery<Work>> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        let batch = nats
            .take_work(topic, "w1", n - got.len(), Duration::from_millis(200))
            .await
            .expect("take_work");
        got.extend(batch);
    }
    got
}

/// The next event of `s`, within a few seconds.
async fn next(s: &mut Subscription) -> Event {
    tokio::time::timeout(Duration::from_secs(3), s.next())
        .await
        .expect("an event")
        .expect("open")
}

/// Messages left in a stream, as the server counts them.
async fn stream_messages(server: &Server, stream: &str) -> u64 {
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(stream).await.unwrap();
    s.info().await.unwrap().state.messages
}

#[tokio::test(flavor = "multi_thread")]
async fn work_is_taken_once_across_consumers_and_never_again_after_its_ack() {
    let server = Server::nats();
    let claim = Duration::from_secs(1);
    let a = connect(&server, claim).await;
    let b = connect(&server, claim).await;
    for id in 1..=10 {
        a.send_work(&work(id, "orders")).await.unwrap();
    }

    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut deliveries = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while deliveries.len() < 10 && Instant::now() < deadline {
        // Two processes taking at once, a few at a time.
        let (x, y) = tokio::join!(
            a.take_work("orders", "p1", 3, Duration::from_millis(200)),
            b.take_work("orders", "p2", 3, Duration::from_millis(200)),
        );
        for d in x.unwrap().into_iter().chain(y.unwrap()) {
            assert_eq!(d.redelivered, 0);
            assert_eq!(d.message, work(d.message.id, "orders"));
            *seen.entry(d.message.id).or_default() += 1;
            deliveries.push(d);
        }
    }
    assert_eq!(deliveries.len(), 10, "taken: {seen:?}");
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    for (i, d) in deliveries.iter().enumerate() {
        // Acknowledged by either client: the tag is what counts.
        let ack = if i % 2 == 0 { &a } else { &b };
        ack.ack_work(d).await.unwrap();
    }

    // Past claim_after, nothing comes back: the acks landed.
    let (x, y) = tokio::join!(
        a.take_work("orders", "p1", 10, claim + Duration::from_millis(500)),
        b.take_work("orders", "p2", 10, claim + Duration::from_millis(500)),
    );
    assert!(x.unwrap().is_empty());
    assert!(y.unwrap().is_empty());
    assert_eq!(stream_messages(&server, "HOTMESH_WORK").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn work_taken_but_not_acknowledged_is_delivered_again_after_claim_after() {
    let server = Server::nats();
    let claim = Duration::from_millis(500);
    let dead = connect(&server, claim).await;
    let alive = connect(&server, claim).await;
    dead.send_work(&work(7, "t")).await.unwrap();

    let first = take_until(&dead, "t", 1, Duration::from_secs(3)).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].redelivered, 0);
    let taken_at = Instant::now();
    // `dead` dies without acknowledging.
    drop(dead);

    let again = take_until(&alive, "t", 1, Duration::from_secs(5)).await;
    assert_eq!(again.len(), 1, "not delivered again");
    assert!(taken_at.elapsed() >= Duration::from_millis(400));
    assert_eq!(again[0].message, work(7, "t"));
    assert!(again[0].redelivered >= 1, "{}", again[0].redelivered);
    alive.ack_work(&again[0]).await.unwrap();
    assert_eq!(stream_messages(&server, "HOTMESH_WORK").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn work_sent_before_any_consumer_is_delivered_and_other_topics_are_not() {
    let server = Server::nats();
    let nats = connect(&server, Duration::from_secs(30)).await;
    nats.send_work(&work(1, "a.b")).await.unwrap();

    let other = nats
        .take_work("a.c", "w", 10, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(other.is_empty());
    let got = nats
        .take_work("a.b", "w", 10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message, work(1, "a.b"));
    nats.ack_work(&got[0]).await.unwrap();

    // Work sent while a take waits wakes it.
    let waiting = nats.take_work("a.c", "w", 10, Duration::from_secs(5));
    let send = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        nats.send_work(&work(2, "a.c")).await.unwrap();
    };
    let started = Instant::now();
    let (got, ()) = tokio::join!(waiting, send);
    let got = got.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message.id, 2);
    assert!(started.elapsed() < Duration::from_secs(3));
    nats.ack_work(&got[0]).await.unwrap();

    // Names NATS cannot carry are refused.
    for bad in ["", "a..b", "a.*", "a b"] {
        let e = nats.send_work(&work(3, bad)).await.unwrap_err();
        assert!(matches!(e, TransportError::Invalid { .. }), "{bad}: {e}");
        let e = nats
            .take_work(bad, "w", 1, Duration::ZERO)
            .await
            .unwrap_err();
        assert!(matches!(e, TransportError::Invalid { .. }), "{bad}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_round_trip_with_their_fields() {
    let server = Server::nats();
    // A prefix with characters stream names cannot hold.
    let opts = Options {
        claim_after: Duration::from_secs(30),
        prefix: "my-app.v1".into(),
    };
    let worker = Nats::connect(&server.url(), opts.clone()).await.unwrap();
    let engine = Nats::connect(&server.url(), opts).await.unwrap();
    let answers = [
        Answer {
            id: 1,
            reservation: 11,
            status: Status::Success,
            code: Some(200),
            data: json!({"out": [1, 2, 3]}),
            fatal: false,
            retry_after: None,
        },
        Answer {
            id: 2,
            reservation: 12,
            status: Status::Error,
            code: Some(500),
            data: json!({"message": "boom"}),
            fatal: false,
            retry_after: None,
        },
        Answer {
            id: 3,
            reservation: 13,
            status: Status::Pending,
            code: None,
            data: json!(null),
            fatal: false,
            retry_after: None,
        },
    ];
    for a in &answers {
        worker.send_answer(a).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.len() < answers.len() && Instant::now() < deadline {
        got.extend(
            engine
                .take_answers("bridge", 10, Duration::from_millis(200))
                .await
                .unwrap(),
        );
    }
    let messages: Vec<Answer> = got.iter().map(|d| d.message.clone()).collect();
    assert_eq!(messages, answers);
    for d in &got {
        engine.ack_answer(d).await.unwrap();
    }
    let more = engine
        .take_answers("bridge", 10, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(more.is_empty());
    assert_eq!(stream_messages(&server, "MY-APP_V1_ANSWERS").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_reach_the_subscriptions_whose_patterns_match() {
    let server = Server::nats();
    let subscriber = connect(&server, Duration::from_secs(30)).await;
    let publisher = connect(&server, Duration::from_secs(30)).await;
    let mut one = subscriber.subscribe("orders.*").await.unwrap();
    let mut all = subscriber.subscribe("orders.>").await.unwrap();

    publisher.publish("orders.new.eu", b"eu").await.unwrap();
    publisher.publish("orders.new", b"new").await.unwrap();
    publisher.publish("other.new", b"other").await.unwrap();

    // One publisher's events arrive in order: the first `orders.*` sees is `orders.new`,
    // so `orders.new.eu` (published before it) did not reach it.
    let e = next(&mut one).await;
    assert_eq!(
        (e.subject.as_str(), e.payload.as_slice()),
        ("orders.new", &b"new"[..])
    );
    let e = next(&mut all).await;
    assert_eq!(
        (e.subject.as_str(), e.payload.as_slice()),
        ("orders.new.eu", &b"eu"[..])
    );
    let e = next(&mut all).await;
    assert_eq!(
        (e.subject.as_str(), e.payload.as_slice()),
        ("orders.new", &b"new"[..])
    );
    let quiet = tokio::time::timeout(Duration::from_millis(200), one.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");

    for bad in ["orders.>.eu", "orders.a*", ""] {
        let e = subscriber.subscribe(bad).await.err().expect(bad);
        assert!(matches!(e, TransportError::Invalid { .. }), "{bad}: {e}");
    }
    let e = publisher.publish("orders.*", b"x").await.unwrap_err();
    assert!(matches!(e, TransportError::Invalid { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nats_restart_keeps_unacknowledged_work_and_the_client_works_after_it() {
    let mut server = Server::nats();
    let claim = Duration::from_millis(500);
    let nats = connect(&server, claim).await;
    let mut events = nats.subscribe("done.>").await.unwrap();
    nats.send_work(&work(1, "t")).await.unwrap();
    nats.send_work(&work(2, "t")).await.unwrap();
    let taken = take_until(&nats, "t", 1, Duration::from_secs(3)).await;
    assert_eq!(taken.len(), 1);
    // nats-server writes its file store asynchronously, within milliseconds of the ack; a
    // kill before that would lose the message (as a crash of a server without fsync does).
    tokio::time::sleep(Duration::from_millis(100)).await;

    server.restart();

    // The first call after the restart may find the client still reconnecting.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match nats.send_work(&work(3, "t")).await {
            Ok(()) => break,
            Err(e) if e.is_connection() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("send after restart: {e}"),
        }
    }
    // 1 (taken, not acknowledged: again after claim_after), 2 and 3.
    let got = take_until(&nats, "t", 3, Duration::from_secs(5)).await;
    let mut ids: Vec<i64> = got.iter().map(|d| d.message.id).collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3]);
    for d in &got {
        nats.ack_work(d).await.unwrap();
    }
    assert!(nats
        .take_work("t", "w", 10, claim + Duration::from_millis(300))
        .await
        .unwrap()
        .is_empty());

    // The subscription from before the restart still gets events.
    nats.publish("done.x", b"1").await.unwrap();
    assert_eq!(next(&mut events).await.subject, "done.x");
}

#[tokio::test(flavor = "multi_thread")]
async fn while_nats_is_down_calls_fail_with_a_connection_error_within_seconds() {
    let mut server = Server::nats();
    let nats = connect(&server, Duration::from_secs(30)).await;
    nats.send_work(&work(1, "t")).await.unwrap();
    server.kill();

    let started = Instant::now();
    let sent = tokio::time::timeout(Duration::from_secs(10), nats.send_work(&work(2, "t")))
        .await
        .expect("send_work returned");
    let e = sent.unwrap_err();
    assert!(e.is_connection(), "{e}");
    assert!(started.elapsed() < Duration::from_secs(7));

    let calls = async {
        let took = nats.take_work("t", "w", 1, Duration::from_secs(1)).await;
        assert!(took.unwrap_err().is_connection());
        let answer = Answer {
            id: 1,
            reservation: 1,
            status: Status::Success,
            code: Some(200),
            data: json!(1),
            fatal: false,
            retry_after: None,
        };
        let e = nats.send_answer(&answer).await.unwrap_err();
        assert!(e.is_connection(), "{e}");
        assert!(nats.publish("x", b"1").await.unwrap_err().is_connection());
        assert!(nats.subscribe("x").await.err().unwrap().is_connection());
    };
    tokio::time::timeout(Duration::from_secs(20), calls)
        .await
        .expect("calls returned");

    // And connect fails at once on a server that is down.
    let e = tokio::time::timeout(
        Duration::from_secs(10),
        Nats::connect(&server.url(), Options::default()),
    )
    .await
    .expect("connect returned")
    .err()
    .unwrap();
    assert!(e.is_connection(), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_message_on_a_work_subject_is_skipped_and_good_work_after_it_is_delivered() {
    let server = Server::nats();
    let nats = connect(&server, Duration::from_millis(500)).await;
    let raw = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    raw.publish("hotmesh.work.t", "not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    raw.publish("hotmesh.work.t", r#"{"id": "wrong"}"#.into())
        .await
        .unwrap()
        .await
        .unwrap();
    nats.send_work(&work(5, "t")).await.unwrap();

    let got = take_until(&nats, "t", 1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message, work(5, "t"));
    nats.ack_work(&got[0]).await.unwrap();
    // The malformed ones were acknowledged: not back after claim_after.
    assert!(nats
        .take_work("t", "w", 10, Duration::from_millis(800))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(stream_messages(&server, "HOTMESH_WORK").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_with_different_claim_after_share_a_topic() {
    let server = Server::nats();
    let old = connect(&server, Duration::from_secs(30)).await;
    let new = connect(&server, Duration::from_millis(500)).await;
    old.send_work(&work(1, "t")).await.unwrap();
    // The old process creates the topic's consumer, the new one updates its ack wait.
    let first = take_until(&old, "t", 1, Duration::from_secs(3)).await;
    assert_eq!(first.len(), 1);
    let again = take_until(&new, "t", 1, Duration::from_secs(5)).await;
    assert_eq!(again.len(), 1, "the newest claim_after applies");
    assert_eq!(again[0].message.id, 1);
    assert!(again[0].redelivered >= 1);
    // Both keep taking from the one consumer.
    new.ack_work(&again[0]).await.unwrap();
    old.send_work(&work(2, "t")).await.unwrap();
    let got = take_until(&old, "t", 1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    old.ack_work(&got[0]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_names_nothing_to_forget_on_nats() {
    let server = Server::nats();
    let nats = connect(&server, Duration::from_secs(30)).await;
    assert!(!nats.leave("orders.pay", "w-1").await.unwrap());
    assert!(
        nats.leave("orders pay", "w-1").await.is_err(),
        "not a subject"
    );
}
