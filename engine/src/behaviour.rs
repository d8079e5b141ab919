//! The engine's behaviour, run on the in-memory store: each test deploys an app,
//! drives it as a caller and workers would, and checks the jobs, activity rows,
//! messages and announcements. No Postgres; the whole file runs in milliseconds. The
//! same behaviours run against the extension in pg_regress and the end-to-end tests.

use crate::activity::ActStatus;
use crate::answer::Status;
use crate::error::EngineError;
use crate::memory::{MemoryStore, Message};
use crate::options::{InterruptOptions, PubOptions};
use crate::status;
use crate::work::{Kind, Work};
use serde_json::{json, Value};

/// One app with a graph per behaviour (the shapes of pg_regress's engine app).
const APP: &str = r#"
app:
  id: eng
  version: '1'
  graphs:
    # a trigger alone: done at once
    - subscribes: only.start
      activities:
        on0: { type: trigger, job: { maps: { seen: '{$self.output.data.x}' } } }
    # three workers in a row
    - subscribes: chain.start
      publishes: chain.done
      expire: 60
      activities:
        ch0: { type: trigger }
        a: { type: worker, topic: step.a, input: { maps: { n: '{ch0.output.data.n}' } } }
        b: { type: worker, topic: step.b, input: { maps: { n: '{a.output.data.n}' } } }
        c:
          type: worker
          topic: step.c
          input: { maps: { n: '{b.output.data.n}' } }
          output: { maps: { doubled: { '@pipe': [['{$self.output.data.n}', 2], ['{@math.multiply}']] } } }
          job: { maps: { result: '{$self.output.data.doubled}' } }
      transitions:
        ch0: [ { to: a } ]
        a: [ { to: b } ]
        b: [ { to: c } ]
    # a worker, then a branch on its answer
    - subscribes: sq.start
      activities:
        t: { type: trigger, stats: { id: '{$self.input.data.name}' } }
        sq:
          type: worker
          topic: sq.work
          input: { maps: { n: '{t.output.data.n}' } }
          job: { maps: { sq: '{$self.output.data.sq}', _group: '{t.output.data.group}' } }
        big: { type: hook, job: { maps: { size: large } } }
        small: { type: hook, job: { maps: { size: small } } }
      transitions:
        t: [ { to: sq } ]
        sq:
          - to: big
            conditions: { match: [ { expected: true, actual: { '@pipe': [['{sq.output.data.sq}', 100], ['{@number.gte}']] } } ] }
          - to: small
            conditions: { match: [ { expected: true, actual: { '@pipe': [['{sq.output.data.sq}', 100], ['{@number.lt}']] } } ] }
    # an error branch for code 422
    - subscribes: risky.start
      activities:
        r0: { type: trigger }
        try: { type: worker, topic: risky.work }
        rescue: { type: hook, job: { maps: { rescued: '{try.output.metadata.$error.message}' } } }
      transitions:
        r0: [ { to: try } ]
        try: [ { to: rescue, conditions: { code: 422 } } ]
    # two branches at once
    - subscribes: fan.start
      activities:
        f0: { type: trigger }
        left: { type: worker, topic: fan.left }
        right: { type: worker, topic: fan.right }
      transitions:
        f0: [ { to: left }, { to: right } ]
    # a hook: a signal with a timeout (first wins), keyed by job id
    - subscribes: ask.start
      activities:
        a0: { type: trigger }
        wait:
          type: hook
          sleep: '{a0.output.data.timeout}'
          job: { maps: { answer: { '@pipe': [['{$self.hook.data.answer}', 'timeout'], ['{@conditional.nullish}']] } } }
      transitions:
        a0: [ { to: wait } ]
      hooks:
        ask.reply:
          - to: wait
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] }
    # a sleep alone, and a hook with neither sleep nor signal
    - subscribes: nap.start
      activities:
        np0: { type: trigger }
        nap: { type: hook, sleep: 5, job: { maps: { woke: true } } }
      transitions:
        np0: [ { to: nap } ]
    - subscribes: pass.start
      activities:
        ps0: { type: trigger }
        through: { type: hook, output: { maps: { v: 7 } }, job: { maps: { v: '{$self.output.data.v}' } } }
      transitions:
        ps0: [ { to: through } ]
    # a cycle: pivot runs again until i reaches n
    - subscribes: count.start
      activities:
        c0: { type: trigger }
        pivot: { type: hook, cycle: true, output: { maps: { i: 0 } }, job: { maps: { i: '{$self.output.data.i}' } } }
        next:
          type: cycle
          ancestor: pivot
          input: { maps: { i: { '@pipe': [['{pivot.output.data.i}', 1], ['{@math.add}']] } } }
      transitions:
        c0: [ { to: pivot } ]
        pivot:
          - to: next
            conditions: { match: [ { expected: true, actual: { '@pipe': [['{pivot.output.data.i}', '{c0.output.data.n}'], ['{@number.lt}']] } } ] }
    # await a child graph (or not), and a child that works
    - subscribes: parent.start
      activities:
        p0: { type: trigger }
        call:
          type: await
          topic: '{p0.output.data.child}'
          await: '{p0.output.data.wait}'
          input: { maps: { x: '{p0.output.data.x}' } }
          job: { maps: { child: '{$self.output.data}' } }
      transitions:
        p0: [ { to: call } ]
    - subscribes: child.double
      activities:
        d0: { type: trigger, job: { maps: { doubled: { '@pipe': [['{$self.output.data.x}', 2], ['{@math.multiply}']] } } } }
    - subscribes: child.slow
      activities:
        s0: { type: trigger }
        s1: { type: worker, topic: slow.work, job: { maps: { slow: '{$self.output.data.v}' } } }
      transitions:
        s0: [ { to: s1 } ]
    # interrupt: itself, or another job
    - subscribes: stop.self
      activities:
        i0: { type: trigger }
        halt: { type: interrupt, reason: 'stopped on purpose', code: 499 }
      transitions:
        i0: [ { to: halt } ]
    - subscribes: stop.other
      activities:
        o0: { type: trigger }
        kill: { type: interrupt, target: '{o0.output.data.target}', topic: child.slow }
        after: { type: hook, job: { maps: { went_on: true } } }
      transitions:
        o0: [ { to: kill } ]
        kill: [ { to: after } ]
    # signal: one hook of another job
    - subscribes: notify.start
      activities:
        n0: { type: trigger }
        tell:
          type: signal
          topic: ask.reply
          signal: { maps: { id: '{n0.output.data.target}', answer: 'from a signal activity' } }
      transitions:
        n0: [ { to: tell } ]
    # statusThreshold: the closer ends the job while the inbox still waits
    - subscribes: thr.start
      activities:
        h0: { type: trigger }
        main: { type: worker, topic: thr.work }
        inbox: { type: hook, job: { maps: { signalled: true } } }
        closer: { type: hook, statusThreshold: 2, job: { maps: { closer_ran: true } } }
      transitions:
        h0: [ { to: main }, { to: inbox } ]
        main: [ { to: closer } ]
      hooks:
        thr.signal:
          - to: inbox
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] }
    # emit: an interim result, then the job goes on
    - subscribes: emit.start
      publishes: emit.done
      activities:
        e0: { type: trigger }
        early: { type: hook, emit: true, job: { maps: { phase: early } } }
        late: { type: worker, topic: emit.work, job: { maps: { phase: late } } }
      transitions:
        e0: [ { to: early } ]
        early: [ { to: late } ]
"#;

fn store() -> MemoryStore {
    let s = MemoryStore::new();
    s.deploy(APP).expect("the test app deploys");
    s
}

fn start(s: &MemoryStore, topic: &str, data: Value) -> String {
    s.publish(topic, data, PubOptions::default())
        .expect("the job starts")
}

fn start_as(s: &MemoryStore, topic: &str, id: &str, data: Value) -> String {
    let o = PubOptions {
        id: Some(id.into()),
        ..Default::default()
    };
    s.publish(topic, data, o).expect("the job starts")
}

fn status_of(s: &MemoryStore, id: &str) -> i64 {
    s.job(id).expect("the job exists").status
}

fn data_of(s: &MemoryStore, id: &str) -> Value {
    Value::Object(s.job(id).expect("the job exists").data)
}

/// Applies a worker's answer to message `m` as the engine gets it, in one transaction
/// (`respond` takes the message first; this lets a test send what a stale or late
/// answer would carry).
fn apply_answer(s: &MemoryStore, m: &Message, gid: &str, token: &str, status: Status, code: i64) {
    let mut e = s.engine();
    e.push(Work {
        kind: Kind::Response,
        job_id: m.job_id.clone(),
        gid: gid.into(),
        aid: m.aid.clone(),
        dad: m.dad.clone(),
        token: Some(token.into()),
        data: json!({"n": 1}),
        status,
        code,
    });
    e.run();
}

fn one_message(s: &MemoryStore, topic: &str) -> Message {
    let mut ms = s.messages(topic);
    assert_eq!(ms.len(), 1, "one message on {topic}: {ms:?}");
    ms.remove(0)
}

// ---- the trigger and the job

#[test]
fn a_job_of_only_a_trigger_is_done_at_once_and_announced() {
    let s = store();
    let id = start(&s, "only.start", json!({"x": 5}));
    assert_eq!(status_of(&s, &id), 0);
    assert_eq!(data_of(&s, &id)["seen"], 5);
    assert_eq!(
        s.announced(),
        vec![(format!("hotmesh.job.{id}"), id.clone())]
    );
}

#[test]
fn the_published_data_is_the_triggers_input_and_output() {
    let s = store();
    let id = start(&s, "only.start", json!({"x": 1}));
    let t = s.activity(&id, "on0", ",0").expect("the trigger's row");
    assert_eq!(t.input, Some(json!({"x": 1})));
    assert_eq!(t.output, Some(json!({"x": 1})));
    assert_eq!(t.status, ActStatus::Done);
}

#[test]
fn a_live_jobs_id_is_a_duplicate() {
    let s = store();
    start_as(&s, "chain.start", "dup", json!({"n": 1}));
    let o = PubOptions {
        id: Some("dup".into()),
        ..Default::default()
    };
    let e = s.publish("chain.start", json!({}), o).unwrap_err();
    assert_eq!(e, EngineError::DuplicateJob("dup".into()));
}

#[test]
fn an_expired_jobs_id_can_be_used_again() {
    let s = store();
    start_as(&s, "only.start", "again", json!({"x": 1}));
    // a finished job is kept 1 s unless its graph says otherwise
    s.advance(1_500);
    assert!(s.job("again").is_none());
    start_as(&s, "only.start", "again", json!({"x": 2}));
    assert_eq!(data_of(&s, "again")["seen"], 2);
}

#[test]
fn a_topic_no_graph_subscribes_is_refused() {
    let s = store();
    let e = s
        .publish("nobody.start", json!({}), PubOptions::default())
        .unwrap_err();
    assert_eq!(e, EngineError::UnknownTopic("nobody.start".into()));
}

#[test]
fn the_triggers_stats_id_names_the_job() {
    let s = store();
    let id = start(&s, "sq.start", json!({"name": "nine", "n": 3}));
    assert_eq!(id, "nine");
}

#[test]
fn data_that_is_not_an_object_is_refused() {
    let s = store();
    let e = s
        .publish("only.start", json!([1]), PubOptions::default())
        .unwrap_err();
    assert!(
        matches!(e, EngineError::InvalidArgument { name: "data", .. }),
        "{e}"
    );
}

#[test]
fn a_pending_job_waits_with_status_minus_one() {
    let s = store();
    let o = PubOptions {
        pending: Some(30.0),
        ..Default::default()
    };
    let id = s.publish("chain.start", json!({"n": 1}), o).unwrap();
    assert_eq!(status_of(&s, &id), status::PENDING);
    assert!(s.messages("step.a").is_empty());
}

// ---- workers

#[test]
fn a_worker_puts_its_mapped_input_on_its_topic_and_announces_it() {
    let s = store();
    let id = start(&s, "chain.start", json!({"n": 4}));
    let m = one_message(&s, "step.a");
    assert_eq!(
        (m.job_id.as_str(), m.aid.as_str(), m.data.clone()),
        (id.as_str(), "a", json!({"n": 4}))
    );
    assert_eq!(s.work_announced(), vec!["step.a".to_string()]);
    let a = s.activity(&id, "a", ",0,0").expect("the worker's row");
    assert_eq!(a.status, ActStatus::Waiting);
    assert_eq!(a.wait_token, Some(m.id.to_string()));
}

#[test]
fn a_chain_of_three_workers_ends_after_three_answers_with_its_output_maps() {
    let s = store();
    let id = start(&s, "chain.start", json!({"n": 4}));
    for topic in ["step.a", "step.b", "step.c"] {
        assert_eq!(status_of(&s, &id), 1, "one branch open before {topic}");
        assert_eq!(s.work(topic, |d| d.clone()), 1);
    }
    assert_eq!(status_of(&s, &id), 0);
    assert_eq!(data_of(&s, &id)["result"], 8);
    assert_eq!(
        s.announced(),
        vec![
            (format!("chain.done.{id}"), id.clone()),
            ("chain.done".to_string(), id.clone())
        ]
    );
}

#[test]
fn an_answer_batch_reads_its_rows_in_one_load_and_ends_as_single_answers_do() {
    let s = store();
    let ids: Vec<String> = (1..=3)
        .map(|n| start(&s, "chain.start", json!({"n": n})))
        .collect();
    for topic in ["step.a", "step.b", "step.c"] {
        let ms: Vec<i64> = s.messages(topic).iter().map(|m| m.id).collect();
        assert_eq!(ms.len(), 3, "a message per job on {topic}");
        let before = s.act_loads();
        assert_eq!(s.respond_batch(&ms, json!({"n": 5})), 3);
        assert_eq!(
            s.act_loads() - before,
            1,
            "the batch on {topic} read its rows once"
        );
    }
    for id in &ids {
        assert_eq!(status_of(&s, id), 0, "{id} ended");
        assert_eq!(data_of(&s, id)["result"], 10);
    }
}

#[test]
fn an_answer_to_a_message_already_answered_changes_nothing() {
    let s = store();
    let id = start(&s, "chain.start", json!({"n": 1}));
    let m = one_message(&s, "step.a");
    assert!(s.respond(m.id, json!({"n": 1}), Status::Success, None));
    assert!(!s.respond(m.id, json!({"n": 99}), Status::Success, None));
    assert_eq!(s.messages("step.b").len(), 1);
    assert_eq!(
        s.activity(&id, "a", ",0,0").unwrap().output,
        Some(json!({"n": 1}))
    );
}

#[test]
fn an_answer_carrying_an_earlier_waits_token_is_dropped() {
    let s = store();
    let id = start(&s, "chain.start", json!({"n": 1}));
    let m = one_message(&s, "step.a");
    apply_answer(&s, &m, &m.gid, "not-the-message", Status::Success, 200);
    assert_eq!(
        s.activity(&id, "a", ",0,0").unwrap().status,
        ActStatus::Waiting
    );
}

#[test]
fn work_for_another_generation_of_the_job_is_dropped() {
    let s = store();
    let id = start(&s, "chain.start", json!({"n": 1}));
    let m = one_message(&s, "step.a");
    apply_answer(
        &s,
        &m,
        "an-older-generation",
        &m.id.to_string(),
        Status::Success,
        200,
    );
    assert_eq!(
        s.activity(&id, "a", ",0,0").unwrap().status,
        ActStatus::Waiting
    );
}

#[test]
fn a_transition_applied_twice_finds_its_row_and_does_nothing_more() {
    let s = store();
    let id = start(&s, "chain.start", json!({"n": 1}));
    let gid = s.job(&id).unwrap().gid;
    let mut e = s.engine();
    e.push(Work::transition(&id, &gid, "a", ",0,0"));
    e.run();
    assert_eq!(s.messages("step.a").len(), 1);
    assert_eq!(status_of(&s, &id), 1);
}

#[test]
fn the_answer_chooses_the_branch_whose_condition_passes() {
    let s = store();
    let big = start(&s, "sq.start", json!({"name": "b", "n": 12, "group": "g"}));
    s.respond(
        one_message(&s, "sq.work").id,
        json!({"sq": 144}),
        Status::Success,
        None,
    );
    let small = start(&s, "sq.start", json!({"name": "s", "n": 3, "group": "g"}));
    s.respond(
        one_message(&s, "sq.work").id,
        json!({"sq": 9}),
        Status::Success,
        None,
    );
    assert_eq!(data_of(&s, &big)["size"], "large");
    assert_eq!(data_of(&s, &small)["size"], "small");
    assert!(s.activity(&big, "small", ",0,0,0").is_none());
}

#[test]
fn job_maps_write_search_fields_apart_from_data() {
    let s = store();
    let id = start(
        &s,
        "sq.start",
        json!({"name": "g", "n": 2, "group": "blue"}),
    );
    s.respond(
        one_message(&s, "sq.work").id,
        json!({"sq": 4}),
        Status::Success,
        None,
    );
    let j = s.job(&id).unwrap();
    assert_eq!(j.search["group"], "blue");
    assert!(!j.data.contains_key("_group"));
    assert_eq!(j.data["sq"], 4);
}

#[test]
fn an_error_answer_no_transition_accepts_ends_the_job_with_it() {
    let s = store();
    // fan's workers have no transitions of their own: none accepts the error
    let id = start(&s, "fan.start", json!({}));
    let m = one_message(&s, "fan.left");
    s.respond(m.id, json!({"message": "broken"}), Status::Error, Some(500));
    let j = s.job(&id).unwrap();
    assert_eq!(j.status, 0);
    let err = j.error.expect("the job's error");
    assert_eq!(
        (err["code"].clone(), err["message"].clone()),
        (json!(500), json!("broken"))
    );
    assert_eq!(err["is_stream_error"], true);
    assert_eq!(
        s.activity(&id, "left", ",0,0").unwrap().status,
        ActStatus::Error
    );
    // the other branch's work is cancelled with the job
    assert!(s.messages("fan.right").is_empty());
    assert_eq!(
        s.activity(&id, "right", ",0,0").unwrap().status,
        ActStatus::Cancelled
    );
}

#[test]
fn an_error_answer_follows_a_transition_without_conditions() {
    let s = store();
    let id = start(&s, "chain.start", json!({"n": 1}));
    let m = one_message(&s, "step.a");
    s.respond(m.id, json!({"message": "broken"}), Status::Error, Some(500));
    assert_eq!(
        s.activity(&id, "a", ",0,0").unwrap().status,
        ActStatus::Error
    );
    assert_eq!(s.messages("step.b").len(), 1);
    assert!(s.job(&id).unwrap().error.is_none());
}

#[test]
fn an_error_answer_follows_the_transition_that_accepts_its_code() {
    let s = store();
    let id = start(&s, "risky.start", json!({}));
    let m = one_message(&s, "risky.work");
    s.respond(
        m.id,
        json!({"message": "bad input"}),
        Status::Error,
        Some(422),
    );
    let j = s.job(&id).unwrap();
    assert_eq!(j.status, 0);
    assert!(j.error.is_none());
    assert_eq!(j.data["rescued"], "bad input");
}

#[test]
fn pending_answers_keep_the_worker_open_and_start_its_children_per_answer() {
    let s = store();
    let id = start(&s, "chain.start", json!({"n": 1}));
    let m = one_message(&s, "step.a");
    // a 202 leaves the message's activity open; its children run in dimension 0
    apply_answer(&s, &m, &m.gid, &m.id.to_string(), Status::Pending, 202);
    let a = s.activity(&id, "a", ",0,0").unwrap();
    assert_eq!((a.status, a.answers), (ActStatus::Pending, 1));
    let b = one_message(&s, "step.b");
    assert_eq!(b.dad, ",0,0,0");
    // the activity's own count is not released: two branches open
    assert_eq!(status_of(&s, &id), 2);
}

// ---- the status semaphore

#[test]
fn the_status_counts_the_open_branches() {
    let s = store();
    let id = start(&s, "fan.start", json!({}));
    assert_eq!(status_of(&s, &id), 2);
    s.work("fan.left", |_| json!({}));
    assert_eq!(status_of(&s, &id), 1);
    s.work("fan.right", |_| json!({}));
    assert_eq!(status_of(&s, &id), 0);
}

#[test]
fn a_status_threshold_ends_the_job_while_a_hook_still_waits() {
    let s = store();
    let id = start(&s, "thr.start", json!({}));
    assert_eq!(status_of(&s, &id), 2);
    s.work("thr.work", |_| json!({}));
    let j = s.job(&id).unwrap();
    assert_eq!(j.status, 0);
    // the job ends as the closer enters: its own maps do not run (as the original)
    assert!(j.data.is_empty());
    assert_eq!(
        s.activity(&id, "closer", ",0,0,0").unwrap().status,
        ActStatus::Done
    );
    assert_eq!(
        s.activity(&id, "inbox", ",0,0").unwrap().status,
        ActStatus::Waiting
    );
    // the hook was still open; a signal to it now changes nothing
    s.signal("thr.signal", json!({"id": id}), Status::Success, 200)
        .unwrap();
    assert!(!data_of(&s, &id)
        .as_object()
        .unwrap()
        .contains_key("signalled"));
}

// ---- hooks and signals

#[test]
fn a_sleeping_hook_goes_on_when_its_timer_fires() {
    let s = store();
    let id = start(&s, "nap.start", json!({}));
    assert_eq!(s.scheduled().len(), 1);
    assert_eq!(s.advance(4_000), 0);
    assert_eq!(status_of(&s, &id), 1);
    assert_eq!(s.advance(1_000), 1);
    assert_eq!(status_of(&s, &id), 0);
    assert_eq!(data_of(&s, &id)["woke"], true);
}

#[test]
fn a_hook_without_sleep_or_signal_maps_and_goes_on() {
    let s = store();
    let id = start(&s, "pass.start", json!({}));
    assert_eq!(status_of(&s, &id), 0);
    assert_eq!(data_of(&s, &id)["v"], 7);
}

#[test]
fn a_signal_reaches_the_hook_registered_under_its_key() {
    let s = store();
    let id = start(&s, "ask.start", json!({"timeout": 60}));
    assert_eq!(
        s.hooks(),
        vec![("ask.reply".to_string(), id.clone(), id.clone())]
    );
    let reached = s
        .signal(
            "ask.reply",
            json!({"id": id, "answer": "yes"}),
            Status::Success,
            200,
        )
        .unwrap();
    assert_eq!(reached.as_deref(), Some(id.as_str()));
    assert_eq!(status_of(&s, &id), 0);
    assert_eq!(data_of(&s, &id)["answer"], "yes");
    // the timer that raced it is gone, and so is the registration
    assert!(s.scheduled().is_empty());
    assert!(s.hooks().is_empty());
}

#[test]
fn the_timer_wins_when_no_signal_comes() {
    let s = store();
    let id = start(&s, "ask.start", json!({"timeout": 2}));
    s.advance(2_000);
    assert_eq!(data_of(&s, &id)["answer"], "timeout");
    assert!(s.hooks().is_empty());
    let late = s
        .signal(
            "ask.reply",
            json!({"id": id, "answer": "late"}),
            Status::Success,
            200,
        )
        .unwrap();
    assert_eq!(late, None, "kept for a hook that will not come");
    assert_eq!(data_of(&s, &id)["answer"], "timeout");
}

#[test]
fn a_signal_before_its_hook_is_kept_and_delivered_when_the_hook_registers() {
    let s = store();
    let kept = s
        .signal(
            "ask.reply",
            json!({"id": "h2", "answer": "early"}),
            Status::Success,
            200,
        )
        .unwrap();
    assert_eq!(kept, None);
    assert_eq!(s.early_signals(), 1);
    start_as(&s, "ask.start", "h2", json!({"timeout": 60}));
    assert_eq!(s.early_signals(), 0);
    assert_eq!(status_of(&s, "h2"), 0);
    assert_eq!(data_of(&s, "h2")["answer"], "early");
}

#[test]
fn an_early_signal_past_its_expiry_is_not_delivered() {
    let s = store();
    s.signal(
        "ask.reply",
        json!({"id": "h3", "answer": "stale", "$expire": 1}),
        Status::Success,
        200,
    )
    .unwrap();
    s.advance(2_000);
    start_as(&s, "ask.start", "h3", json!({"timeout": 60}));
    assert_eq!(status_of(&s, "h3"), 1);
}

#[test]
fn a_signal_on_a_topic_no_hook_rule_names_is_refused() {
    let s = store();
    let e = s
        .signal("nobody.listens", json!({"id": "x"}), Status::Success, 200)
        .unwrap_err();
    assert_eq!(e, EngineError::NoHookRule("nobody.listens".into()));
}

#[test]
fn a_pending_signal_keeps_the_hook_open_for_more() {
    let s = store();
    let id = start(&s, "ask.start", json!({"timeout": 60}));
    s.signal(
        "ask.reply",
        json!({"id": id, "answer": "partial"}),
        Status::Pending,
        202,
    )
    .unwrap();
    assert_eq!(
        s.activity(&id, "wait", ",0,0").unwrap().status,
        ActStatus::Pending
    );
    assert_eq!(s.hooks().len(), 1);
    s.signal(
        "ask.reply",
        json!({"id": id, "answer": "final"}),
        Status::Success,
        200,
    )
    .unwrap();
    assert_eq!(
        s.activity(&id, "wait", ",0,0").unwrap().status,
        ActStatus::Done
    );
    assert_eq!(status_of(&s, &id), 0);
}

#[test]
fn a_signal_activity_reaches_another_jobs_hook() {
    let s = store();
    let waiting = start(&s, "ask.start", json!({"timeout": 60}));
    let sender = start(&s, "notify.start", json!({"target": waiting}));
    assert_eq!(status_of(&s, &sender), 0);
    let tell = s.activity(&sender, "tell", ",0,0").unwrap();
    assert_eq!(tell.output, Some(json!({"signaled": waiting})));
    assert_eq!(data_of(&s, &waiting)["answer"], "from a signal activity");
}

#[test]
fn signal_all_reaches_the_waiting_jobs_by_a_search_field() {
    let s = store();
    let o = |id: &str, region: &str| PubOptions {
        id: Some(id.into()),
        search: [("region".to_string(), json!(region))]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    s.publish("ask.start", json!({"timeout": 60}), o("eu1", "eu"))
        .unwrap();
    s.publish("ask.start", json!({"timeout": 60}), o("eu2", "eu"))
        .unwrap();
    s.publish("ask.start", json!({"timeout": 60}), o("us1", "us"))
        .unwrap();
    let reached = s
        .signal_all("ask.reply", json!({"answer": "all"}), "region", "eu")
        .unwrap();
    assert_eq!(reached, vec!["eu1".to_string(), "eu2".to_string()]);
    assert_eq!(data_of(&s, "eu2")["answer"], "all");
    assert_eq!(status_of(&s, "us1"), 1);
}

// ---- await

#[test]
fn await_starts_a_child_and_takes_its_result() {
    let s = store();
    let p = start(
        &s,
        "parent.start",
        json!({"child": "child.double", "wait": true, "x": 21}),
    );
    assert_eq!(status_of(&s, &p), 0);
    let child = s.activity(&p, "call", ",0,0").unwrap().wait_token.unwrap();
    assert_eq!(data_of(&s, &child)["doubled"], 42);
    assert_eq!(s.job(&child).unwrap().parent.unwrap().job_id, p);
    assert_eq!(data_of(&s, &p)["child"]["doubled"], 42);
}

#[test]
fn await_waits_while_the_child_runs() {
    let s = store();
    let p = start(
        &s,
        "parent.start",
        json!({"child": "child.slow", "wait": true}),
    );
    assert_eq!(status_of(&s, &p), 1);
    s.work("slow.work", |_| json!({"v": "done"}));
    assert_eq!(status_of(&s, &p), 0);
    assert_eq!(data_of(&s, &p)["child"]["slow"], "done");
}

#[test]
fn await_false_goes_on_at_once_with_the_childs_id() {
    let s = store();
    let p = start(
        &s,
        "parent.start",
        json!({"child": "child.slow", "wait": false}),
    );
    assert_eq!(status_of(&s, &p), 0);
    let child = data_of(&s, &p)["child"]["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(status_of(&s, &child), 1);
    s.work("slow.work", |_| json!({"v": 1}));
    assert_eq!(status_of(&s, &child), 0);
}

#[test]
fn a_child_that_fails_fails_its_parent() {
    let s = store();
    let p = start(
        &s,
        "parent.start",
        json!({"child": "child.slow", "wait": true}),
    );
    let m = one_message(&s, "slow.work");
    s.respond(
        m.id,
        json!({"message": "child broke"}),
        Status::Error,
        Some(500),
    );
    let err = s.job(&p).unwrap().error.expect("the parent's error");
    assert_eq!(err["message"], "child broke");
}

// ---- cycles

#[test]
fn a_cycle_runs_its_ancestor_again_in_a_new_dimension() {
    let s = store();
    let id = start(&s, "count.start", json!({"n": 3}));
    assert_eq!(status_of(&s, &id), 0);
    assert_eq!(data_of(&s, &id)["i"], 3);
    let pivots: Vec<String> = s
        .activities(&id)
        .into_iter()
        .filter(|(a, _, _)| a == "pivot")
        .map(|(_, d, _)| d)
        .collect();
    assert_eq!(pivots, [",0,0", ",0,1", ",0,2", ",0,3"]);
    assert_eq!(s.activity(&id, "pivot", ",0,0").unwrap().iterations, 3);
}

#[test]
fn past_the_step_budget_the_rest_waits_on_the_engine_stream() {
    let s = store();
    // 400 iterations of two steps each: more than one transaction's 500 steps
    let id = start(&s, "count.start", json!({"n": 400}));
    assert_eq!(status_of(&s, &id), 1);
    assert!(s.scheduled().iter().any(|(_, k)| *k != Kind::Timer));
    s.advance(0);
    assert_eq!(status_of(&s, &id), 0);
    assert_eq!(data_of(&s, &id)["i"], 400);
}

/// The durable collator's shape: `again` is reached from the pivot (depth 2) while items
/// remain, and from the worker below it (depth 3).
const TWO_PARENT_CYCLE: &str = r#"
app:
  id: twoparents
  version: '1'
  graphs:
    - subscribes: loop.start
      activities:
        l0: { type: trigger }
        pivot: { type: hook, cycle: true, output: { maps: { i: 0 } }, job: { maps: { i: '{$self.output.data.i}' } } }
        step: { type: worker, topic: loop.step, input: { maps: { i: '{pivot.output.data.i}' } } }
        again:
          type: cycle
          ancestor: pivot
          input: { maps: { i: { '@pipe': [['{pivot.output.data.i}', 1], ['{@math.add}']] } } }
      transitions:
        l0: [ { to: pivot } ]
        pivot:
          - to: again
            conditions: { match: [ { expected: true, actual: { '@pipe': [['{pivot.output.data.i}', 1], ['{@number.lt}']] } } ] }
          - to: step
            conditions: { match: [ { expected: true, actual: { '@pipe': [['{pivot.output.data.i}', 1], ['{@number.gte}']] } } ] }
        step:
          - to: again
            conditions: { match: [ { expected: true, actual: { '@pipe': [['{pivot.output.data.i}', 3], ['{@number.lt}']] } } ] }
"#;

/// The rows of `aid` in job `id`, by address.
fn rows_of(s: &MemoryStore, id: &str, aid: &str) -> Vec<String> {
    let mut d: Vec<String> = s
        .activities(id)
        .into_iter()
        .filter(|(a, _, _)| a == aid)
        .map(|(_, d, _)| d)
        .collect();
    d.sort();
    d
}

#[test]
fn a_cycle_reached_from_two_parents_reenters_its_pivot_from_either() {
    let s = MemoryStore::new();
    s.deploy(TWO_PARENT_CYCLE).unwrap();
    let id = start(&s, "loop.start", json!({}));
    // i = 0: straight back from the pivot; i = 1, 2: back through the worker
    for i in 1..=3 {
        let m = one_message(&s, "loop.step");
        assert_eq!(m.data["i"], i);
        assert!(s.respond(m.id, json!({}), Status::Success, None));
    }
    assert_eq!(status_of(&s, &id), 0);
    assert_eq!(data_of(&s, &id)["i"], 3);
    assert_eq!(rows_of(&s, &id, "pivot"), [",0,0", ",0,1", ",0,2", ",0,3"]);
    assert_eq!(
        rows_of(&s, &id, "again"),
        [",0,0,0", ",0,1,0,0", ",0,2,0,0"]
    );
    // every iteration is counted on the pivot's first row, whichever parent cycled
    assert_eq!(s.activity(&id, "pivot", ",0,0").unwrap().iterations, 3);
}

/// The original's own `durable` app, as its factory renders it (APP_VERSION 12).
const DURABLE: &str = include_str!("../../tests/compat/durable_original.yaml");

#[test]
fn the_originals_durable_app_runs_a_workflow_through_its_collator_graph() {
    let s = MemoryStore::new();
    s.deploy(DURABLE)
        .expect("the original's durable app deploys");
    let id = start_as(
        &s,
        "durable.execute",
        "wf1",
        json!({"workflowId": "wf1", "originJobId": "wf1", "taskQueue": "wfq", "workflowName": "wf", "workflowTopic": "wfq-wf", "arguments": [1], "signalIn": false}),
    );
    // the workflow function (on its task queue) asks for three activities at once
    // (Promise.all: code 589)
    let m = one_message(&s, "wfq");
    assert_eq!(m.data["workflowName"], "wf");
    let item = |i: u32| json!({"code": 591, "activityName": "act", "arguments": [i], "workflowDimension": "", "index": i, "originJobId": "wf1", "parentWorkflowId": "wf1", "workflowId": format!("wf1-a{i}"), "workflowTopic": "acts"});
    let collate = json!({"items": [item(0), item(1), item(2)], "size": 3, "workflowId": "-wf1-$-0", "originJobId": "wf1", "index": 0, "workflowDimension": ""});
    assert!(s.respond(m.id, collate, Status::Success, Some(589)));
    // the collator cycles over its items and calls each activity on its topic
    let calls = s.messages("acts");
    assert_eq!(calls.len(), 3);
    for (i, m) in calls.iter().enumerate() {
        assert_eq!(m.data["arguments"], json!([i]));
        assert_eq!(m.data["workflowId"], format!("wf1-a{i}"));
    }
    // the answers come back out of order; each writes its own slot of `response[25]`
    for i in [2, 0, 1] {
        let m = &calls[i];
        let answer = json!({"response": format!("r{}", m.data["arguments"][0])});
        assert!(s.respond(m.id, answer, Status::Success, None));
    }
    let coll = "-wf1-$-0";
    assert_eq!(status_of(&s, coll), 0);
    // one pivot row per item, then one per answer: `collator_proxyer` cycles back too
    assert_eq!(rows_of(&s, coll, "collator_cycle_hook").len(), 6);
    let response = &data_of(&s, coll)["response"];
    let slots: Vec<(&String, &Value, &Value)> = response
        .as_object()
        .expect("the collated response is an object")
        .iter()
        .map(|(k, v)| (k, &v["type"], &v["data"]))
        .collect();
    assert_eq!(
        slots,
        [
            (&"0".to_string(), &json!("proxy"), &json!("r0")),
            (&"1".to_string(), &json!("proxy"), &json!("r1")),
            (&"2".to_string(), &json!("proxy"), &json!("r2")),
        ]
    );
    // the workflow's `collator` marks each result by its replay index
    let job = s.job(&id).expect("the workflow job");
    for i in 0..3 {
        let mark = &job.marks[&format!("-proxy-{i}-")];
        assert_eq!(mark["data"], json!(format!("r{i}")), "{i}");
    }
    // collate_cycler took the workflow back to its pivot: the function runs again, and ends
    assert_eq!(rows_of(&s, &id, "cycle_hook"), [",0,0", ",0,1"]);
    let m = one_message(&s, "wfq");
    assert!(s.respond(m.id, json!({"response": "ok"}), Status::Success, None));
    assert_eq!(status_of(&s, &id), 0);
    let data = data_of(&s, &id);
    assert_eq!(
        (&data["done"], &data["response"]),
        (&json!(true), &json!("ok"))
    );
}

// ---- interrupts

#[test]
fn an_interrupt_ends_a_running_job_with_410_and_cancels_its_work() {
    let s = store();
    let id = start(&s, "chain.start", json!({"n": 1}));
    assert!(s.interrupt(&id, &InterruptOptions::default()).unwrap());
    let j = s.job(&id).unwrap();
    assert!(status::interrupted(j.status));
    assert_eq!(j.error.unwrap()["code"], 410);
    assert!(s.messages("step.a").is_empty());
    assert_eq!(
        s.activity(&id, "a", ",0,0").unwrap().status,
        ActStatus::Cancelled
    );
}

#[test]
fn interrupting_an_ended_job_is_an_error_unless_suppressed() {
    let s = store();
    let id = start(&s, "chain.start", json!({"n": 1}));
    s.interrupt(&id, &InterruptOptions::default()).unwrap();
    let e = s.interrupt(&id, &InterruptOptions::default()).unwrap_err();
    assert_eq!(e, EngineError::JobCompleted(id.clone()));
    let quiet = InterruptOptions {
        suppress: true,
        ..Default::default()
    };
    assert!(!s.interrupt(&id, &quiet).unwrap());
}

#[test]
fn an_interrupt_without_throw_ends_the_job_without_an_error() {
    let s = store();
    let id = start(&s, "chain.start", json!({"n": 1}));
    let o = InterruptOptions {
        throw: false,
        ..Default::default()
    };
    s.interrupt(&id, &o).unwrap();
    let j = s.job(&id).unwrap();
    assert!(status::interrupted(j.status));
    assert!(j.error.is_none());
}

#[test]
fn interrupting_a_parent_with_descend_interrupts_its_running_children() {
    let s = store();
    let p = start(
        &s,
        "parent.start",
        json!({"child": "child.slow", "wait": true}),
    );
    let child = s.activity(&p, "call", ",0,0").unwrap().wait_token.unwrap();
    let o = InterruptOptions {
        descend: true,
        ..Default::default()
    };
    s.interrupt(&p, &o).unwrap();
    assert!(status::interrupted(status_of(&s, &child)));
    assert!(s.messages("slow.work").is_empty());
}

#[test]
fn an_interrupt_activity_ends_its_own_job_with_its_code() {
    let s = store();
    let id = start(&s, "stop.self", json!({}));
    let j = s.job(&id).unwrap();
    assert!(status::interrupted(j.status));
    let err = j.error.unwrap();
    assert_eq!(
        (err["code"].clone(), err["message"].clone()),
        (json!(499), json!("stopped on purpose"))
    );
}

#[test]
fn an_interrupt_activity_can_end_another_job_and_go_on() {
    let s = store();
    let target = start(&s, "child.slow", json!({}));
    let killer = start(&s, "stop.other", json!({"target": target}));
    assert!(status::interrupted(status_of(&s, &target)));
    assert_eq!(status_of(&s, &killer), 0);
    assert_eq!(data_of(&s, &killer)["went_on"], true);
}

// ---- emit

#[test]
fn an_emit_announces_an_interim_result_and_the_job_goes_on() {
    let s = store();
    let id = start(&s, "emit.start", json!({}));
    assert_eq!(status_of(&s, &id), 1);
    assert_eq!(
        s.announced().len(),
        2,
        "on the job's channel and the publishes one"
    );
    s.work("emit.work", |_| json!({}));
    assert_eq!(status_of(&s, &id), 0);
    assert_eq!(data_of(&s, &id)["phase"], "late");
    assert_eq!(s.announced().len(), 4);
}
