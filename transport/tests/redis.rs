//! The Redis transport against a real redis-server (one per test).

mod common;

use common::{options, work, Server};
use hotmesh_transport::redis::Redis;
use hotmesh_transport::{Answer, Delivery, Options, Status, Subscription, Transport, Work};
use serde_json::json;
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_millis(200);

async fn connect(server: &Server, claim_after: Duration) -> Redis {
    Redis::connect(&server.url(), options(claim_after))
        .await
        .expect("connect")
}

/// Takes from `topic` as `consumer` until something comes (or `within` has passed).
async fn take_some(
    redis: &Redis,
    topic: &str,
    consumer: &str,
    within: Duration,
) -> Vec<Delivery<Work>> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let got = redis.take_work(topic, consumer, 10, SHORT).await.unwrap();
        if !got.is_empty() {
            return got;
        }
    }
    Vec::new()
}

/// A raw connection, to look at and write the streams behind the transport's back.
async fn raw(server: &Server) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn xlen(con: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("XLEN").arg(key).query_async(con).await.unwrap()
}

async fn blocked_clients(con: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(con)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

async fn next_event(sub: &mut Subscription) -> hotmesh_transport::Event {
    tokio::time::timeout(Duration::from_secs(3), sub.next())
        .await
        .expect("an event within 3 s")
        .expect("the subscription is open")
}

#[tokio::test(flavor = "multi_thread")]
async fn work_is_taken_by_one_of_two_consumers_and_never_again_after_ack() {
    let server = Server::redis();
    let redis = connect(&server, Duration::from_millis(300)).await;
    // The group exists before the send (both consumers are waiting).
    assert!(redis
        .take_work("orders.charge", "w1", 10, Duration::ZERO)
        .await
        .unwrap()
        .is_empty());

    let (a, b) = (redis.clone(), redis.clone());
    let t1 = tokio::spawn(async move {
        a.take_work("orders.charge", "w1", 10, Duration::from_secs(1))
            .await
            .unwrap()
    });
    let t2 = tokio::spawn(async move {
        b.take_work("orders.charge", "w2", 10, Duration::from_secs(1))
            .await
            .unwrap()
    });
    // Both are blocked in their reads: the send is not held up behind them.
    let mut con = raw(&server).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while blocked_clients(&mut con).await < 2 {
        assert!(Instant::now() < deadline, "the takes did not block");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sent = work(1, "orders.charge");
    let sending = Instant::now();
    redis.send_work(&sent).await.unwrap();
    assert!(sending.elapsed() < Duration::from_millis(500));
    let (d1, d2) = (t1.await.unwrap(), t2.await.unwrap());
    let all: Vec<_> = d1.into_iter().chain(d2).collect();
    assert_eq!(all.len(), 1, "taken exactly once");
    assert_eq!(all[0].message, sent);
    assert_eq!(all[0].redelivered, 0);

    redis.ack_work(&all[0]).await.unwrap();
    assert_eq!(xlen(&mut con, "hotmesh:work:orders.charge").await, 0);
    // Past claim_after, neither consumer gets it again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    for consumer in ["w1", "w2"] {
        let got = redis
            .take_work("orders.charge", consumer, 10, SHORT)
            .await
            .unwrap();
        assert!(got.is_empty(), "{consumer} got {got:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unacknowledged_work_is_delivered_again_to_another_consumer_after_claim_after() {
    let server = Server::redis();
    let redis = connect(&server, Duration::from_millis(300)).await;
    let sent = work(2, "orders.ship");
    redis.send_work(&sent).await.unwrap();

    // Before the take: the delivery (whence Redis counts the idle time) comes after.
    let taken_at = Instant::now();
    let first = take_some(&redis, "orders.ship", "dead", Duration::from_secs(2)).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].redelivered, 0);

    // Not before claim_after…
    let early = redis
        .take_work("orders.ship", "alive", 10, Duration::ZERO)
        .await
        .unwrap();
    assert!(early.is_empty(), "claimed too early: {early:?}");
    // …but then, to another consumer.
    let again = take_some(&redis, "orders.ship", "alive", Duration::from_secs(3)).await;
    // Redis counts in whole milliseconds: a few may be lost to rounding.
    assert!(taken_at.elapsed() >= Duration::from_millis(295));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message, sent);
    assert_eq!(again[0].redelivered, 1);
    // Left again: Redis's delivery count goes on.
    let third = take_some(&redis, "orders.ship", "third", Duration::from_secs(3)).await;
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].redelivered, 2);

    redis.ack_work(&third[0]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(redis
        .take_work("orders.ship", "alive", 10, SHORT)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn work_sent_before_any_consumer_is_delivered_and_work_of_another_topic_is_not() {
    let server = Server::redis();
    let redis = connect(&server, Duration::from_secs(30)).await;
    let mine = work(3, "orders.charge");
    redis.send_work(&mine).await.unwrap();
    redis.send_work(&work(4, "orders.refund")).await.unwrap();

    let got = take_some(&redis, "orders.charge", "w1", Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message, mine);
    redis.ack_work(&got[0]).await.unwrap();
    assert!(redis
        .take_work("orders.charge", "w1", 10, SHORT)
        .await
        .unwrap()
        .is_empty());

    // The other topic's work is still there for its own consumers.
    let other = take_some(&redis, "orders.refund", "w1", Duration::from_secs(2)).await;
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].message.id, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_make_the_round_trip() {
    let server = Server::redis();
    let redis = connect(&server, Duration::from_secs(30)).await;
    let answers = [
        Answer {
            id: 7,
            reservation: 1007,
            status: Status::Success,
            code: Some(200),
            data: json!({"paid": true}),
            fatal: false,
            retry_after: None,
        },
        Answer {
            id: 8,
            reservation: 1008,
            status: Status::Error,
            code: Some(500),
            data: json!({"message": "card declined"}),
            fatal: false,
            retry_after: None,
        },
    ];
    for a in &answers {
        redis.send_answer(a).await.unwrap();
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while got.len() < 2 && Instant::now() < deadline {
        got.extend(redis.take_answers("bridge", 10, SHORT).await.unwrap());
    }
    let messages: Vec<_> = got.iter().map(|d| d.message.clone()).collect();
    assert_eq!(messages, answers);
    assert!(got.iter().all(|d| d.redelivered == 0));
    for d in &got {
        redis.ack_answer(d).await.unwrap();
    }
    let mut con = raw(&server).await;
    assert_eq!(xlen(&mut con, "hotmesh:answers").await, 0);
    assert!(redis
        .take_answers("bridge", 10, SHORT)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_get_the_subjects_their_pattern_names() {
    let server = Server::redis();
    let redis = connect(&server, Duration::from_secs(30)).await;
    let mut one = redis.subscribe("orders.*").await.unwrap();
    let mut rest = redis.subscribe("orders.>").await.unwrap();
    let mut literal = redis.subscribe("orders.new").await.unwrap();
    assert!(redis.subscribe("orders.>.eu").await.is_err());

    // Events arrive in the order published: what comes before the last one was filtered out
    // if it does not show.
    redis.publish("orders.new.eu", b"deep").await.unwrap();
    redis.publish("orders.old", b"old").await.unwrap();
    redis.publish("ordersXnew", b"x").await.unwrap();
    redis.publish("orders.new", b"new").await.unwrap();

    let e = next_event(&mut one).await;
    assert_eq!(e.subject, "orders.old");
    let e = next_event(&mut one).await;
    assert_eq!(
        (e.subject.as_str(), e.payload.as_slice()),
        ("orders.new", &b"new"[..])
    );

    let subjects = [
        next_event(&mut rest).await.subject,
        next_event(&mut rest).await.subject,
        next_event(&mut rest).await.subject,
    ];
    assert_eq!(subjects, ["orders.new.eu", "orders.old", "orders.new"]);

    let e = next_event(&mut literal).await;
    assert_eq!(e.subject, "orders.new");
    assert_eq!(e.payload, b"new");

    // Another prefix is another deployment: not seen.
    let other = Redis::connect(
        &server.url(),
        Options {
            prefix: "other".into(),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    other.publish("orders.new", b"theirs").await.unwrap();
    redis.publish("orders.new", b"ours").await.unwrap();
    assert_eq!(next_event(&mut literal).await.payload, b"ours");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_unacknowledged_work_and_the_client_keeps_working() {
    let mut server = Server::redis();
    let redis = connect(&server, Duration::from_millis(300)).await;
    let (w1, w2) = (work(10, "orders.charge"), work(11, "orders.charge"));
    redis.send_work(&w1).await.unwrap();
    let taken = take_some(&redis, "orders.charge", "dead", Duration::from_secs(2)).await;
    assert_eq!(taken.len(), 1);
    redis.send_work(&w2).await.unwrap();

    server.restart();

    // The first call may see the old connection broken; within a few tries it works.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = loop {
        match redis.take_work("orders.charge", "alive", 10, SHORT).await {
            Ok(got) => break got,
            Err(e) if e.is_connection() && Instant::now() < deadline => {}
            Err(e) => panic!("after the restart: {e}"),
        }
    };
    // The new work, then (after claim_after) the one the dead consumer left.
    let deadline = Instant::now() + Duration::from_secs(3);
    while got.len() < 2 && Instant::now() < deadline {
        got.extend(
            redis
                .take_work("orders.charge", "alive", 10, SHORT)
                .await
                .unwrap(),
        );
    }
    let mut ids: Vec<_> = got.iter().map(|d| d.message.id).collect();
    ids.sort();
    assert_eq!(ids, [10, 11]);
    for d in &got {
        redis.ack_work(d).await.unwrap();
    }
    redis.send_work(&work(12, "orders.charge")).await.unwrap();
    let last = take_some(&redis, "orders.charge", "alive", Duration::from_secs(2)).await;
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].message.id, 12);
}

#[tokio::test(flavor = "multi_thread")]
async fn while_redis_is_down_calls_fail_with_a_connection_error_soon() {
    let mut server = Server::redis();
    let redis = connect(&server, Duration::from_secs(30)).await;
    redis.send_work(&work(20, "orders.charge")).await.unwrap();
    server.kill();

    let started = Instant::now();
    let sent = tokio::time::timeout(
        Duration::from_secs(5),
        redis.send_work(&work(21, "orders.charge")),
    )
    .await
    .expect("send_work finished while Redis is down");
    let e = sent.expect_err("send_work failed");
    assert!(e.is_connection(), "{e}");
    let took = tokio::time::timeout(
        Duration::from_secs(5),
        redis.take_work("orders.charge", "w1", 10, SHORT),
    )
    .await
    .expect("take_work finished while Redis is down");
    assert!(took.expect_err("take_work failed").is_connection());
    let published = tokio::time::timeout(Duration::from_secs(5), redis.publish("a.b", b"x"))
        .await
        .expect("publish finished while Redis is down");
    assert!(published.expect_err("publish failed").is_connection());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(Redis::connect(&server.url(), Options::default())
        .await
        .err()
        .expect("no connection to a server that is down")
        .is_connection());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_entry_is_acknowledged_and_skipped() {
    let server = Server::redis();
    let redis = connect(&server, Duration::from_millis(300)).await;
    let key = "hotmesh:work:orders.charge";
    let mut con = raw(&server).await;
    for (field, value) in [("m", "not json"), ("other", "field"), ("m", r#"{"id": 1}"#)] {
        let _: String = redis::cmd("XADD")
            .arg(key)
            .arg("*")
            .arg(field)
            .arg(value)
            .query_async(&mut con)
            .await
            .unwrap();
    }
    // Valid work, but of another topic than its stream's.
    let stray = serde_json::to_string(&work(30, "orders.refund")).unwrap();
    let _: String = redis::cmd("XADD")
        .arg(key)
        .arg("*")
        .arg("m")
        .arg(stray)
        .query_async(&mut con)
        .await
        .unwrap();
    let good = work(31, "orders.charge");
    redis.send_work(&good).await.unwrap();

    let got = take_some(&redis, "orders.charge", "w1", Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message, good);
    // The malformed entries are gone (acknowledged and deleted); the good one waits for its
    // acknowledgement.
    assert_eq!(xlen(&mut con, key).await, 1);
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(key)
        .arg("workers")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(pending.first(), Some(&redis::Value::Int(1)));
    redis.ack_work(&got[0]).await.unwrap();
    assert_eq!(xlen(&mut con, key).await, 0);
    // None of them comes back after claim_after.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(redis
        .take_work("orders.charge", "w2", 10, SHORT)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_resubscribes_after_a_restart() {
    let mut server = Server::redis();
    let redis = connect(&server, Duration::from_secs(30)).await;
    let mut sub = redis.subscribe("jobs.>").await.unwrap();
    redis.publish("jobs.done", b"before").await.unwrap();
    assert_eq!(next_event(&mut sub).await.payload, b"before");

    server.restart();

    // Events published while the subscription is away are lost: publish until one comes.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        assert!(Instant::now() < deadline, "no event after the restart");
        if redis.publish("jobs.done", b"after").await.is_err() {
            continue;
        }
        if let Ok(Some(e)) = tokio::time::timeout(SHORT, sub.next()).await {
            assert_eq!(e.subject, "jobs.done");
            assert_eq!(e.payload, b"after");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn work_answers_and_events_work_over_resp3_too() {
    let server = Server::redis();
    let url = format!("{}?protocol=resp3", server.url());
    let redis = Redis::connect(&url, options(Duration::from_millis(300)))
        .await
        .unwrap();
    let mut sub = redis.subscribe("orders.*").await.unwrap();
    let sent = work(40, "orders.charge");
    redis.send_work(&sent).await.unwrap();
    let got = take_some(&redis, "orders.charge", "w1", Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message, sent);
    // Claimed from a dead consumer: the delivery count is read over RESP3 as well.
    let again = take_some(&redis, "orders.charge", "w2", Duration::from_secs(3)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].redelivered, 1);
    redis.ack_work(&again[0]).await.unwrap();

    let answer = Answer {
        id: 40,
        reservation: 1040,
        status: Status::Pending,
        code: None,
        data: json!(null),
        fatal: false,
        retry_after: None,
    };
    redis.send_answer(&answer).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut answers = Vec::new();
    while answers.is_empty() && Instant::now() < deadline {
        answers = redis.take_answers("bridge", 10, SHORT).await.unwrap();
    }
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].message, answer);
    redis.ack_answer(&answers[0]).await.unwrap();

    redis.publish("orders.new.eu", b"deep").await.unwrap();
    redis.publish("orders.new", b"new").await.unwrap();
    assert_eq!(next_event(&mut sub).await.subject, "orders.new");
}

#[tokio::test(flavor = "multi_thread")]
async fn names_are_checked() {
    let server = Server::redis();
    let redis = connect(&server, Duration::from_secs(30)).await;
    assert!(redis.send_work(&work(1, "orders..charge")).await.is_err());
    assert!(redis.take_work("orders.*", "w1", 1, SHORT).await.is_err());
    assert!(redis.take_work("orders", "", 1, SHORT).await.is_err());
    assert!(redis.publish("orders.*", b"x").await.is_err());
    assert!(redis.subscribe("orders.a*").await.is_err());
    assert!(Redis::connect(
        &server.url(),
        Options {
            prefix: "two words".into(),
            ..Options::default()
        }
    )
    .await
    .is_err());
    assert!(redis
        .take_work("orders", "w1", 0, SHORT)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_that_leaves_is_forgotten_once_nothing_is_pending_for_it() {
    let server = Server::redis();
    let redis = connect(&server, Duration::from_secs(30)).await;
    redis.send_work(&work(1, "orders.pay")).await.unwrap();
    let got = take_some(&redis, "orders.pay", "w-1", Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1);
    // its message is pending: forgetting the name would drop the message with it
    assert!(!redis.leave("orders.pay", "w-1").await.unwrap());
    redis.ack_work(&got[0]).await.unwrap();
    assert!(redis.leave("orders.pay", "w-1").await.unwrap());
    let mut con = raw(&server).await;
    let consumers: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg("hotmesh:work:orders.pay")
        .arg("workers")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(consumers.is_empty(), "{consumers:?}");
    // a topic nobody took from has no names to forget
    assert!(!redis.leave("orders.none", "w-1").await.unwrap());
}
