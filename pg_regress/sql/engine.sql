-- The engine: jobs, every activity type, the worker protocol, signals, timers,
-- interrupts and the queries. Asynchronous results (timers, the router) are awaited
-- with hotmesh.wait_for_job, so the output is deterministic.
CREATE EXTENSION hotmesh;
\set SHOW_CONTEXT never
SELECT hotmesh.wait_for_engine();

SELECT hotmesh.deploy($yaml$
app:
  id: eng
  version: '1'
  graphs:
    # worker, then a branch on its answer
    - subscribes: sq.start
      publishes: sq.done
      expire: 120
      activities:
        t: { type: trigger, stats: { key: '{$self.input.data.group}' } }
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
    # a worker with a legacy retry policy and an error branch for code 422
    - subscribes: risky.start
      activities:
        r0: { type: trigger }
        try:
          type: worker
          topic: risky.work
          retry: { '500': [2] }
          job: { maps: { result: '{$self.output.data.v}' } }
        rescue: { type: hook, job: { maps: { rescued: '{try.output.metadata.$error.message}' } } }
      transitions:
        r0: [ { to: try } ]
        try: [ { to: rescue, conditions: { code: 422 } } ]
    # a hook: signal with a timeout (first wins), keyed by job id
    - subscribes: ask.start
      expire: 0
      activities:
        a0: { type: trigger, stats: { id: '{$self.input.data.id}' } }
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
    # await a child graph (or not), and a child that fails
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
    # signal: one hook, and every hook whose job has a search field
    - subscribes: notify.start
      activities:
        n0: { type: trigger }
        tell:
          type: signal
          topic: ask.reply
          signal: { maps: { id: '{n0.output.data.target}', answer: 'from a signal activity' } }
      transitions:
        n0: [ { to: tell } ]
$yaml$)->>'status' AS deployed;
SELECT hotmesh.activate('eng', '1');

-- 1. worker: pub, dequeue, respond; the branch follows the answer
SELECT hotmesh.pub('sq.start', '{"n": 12, "group": "g1"}', '{"id": "w1"}');
SELECT id, status, key, data FROM hotmesh.jobs WHERE id = 'w1';
SELECT job_id, activity_id, dad, data, attempt, deliveries FROM hotmesh.dequeue('sq.work', 10);
SELECT id AS w1_message FROM hotmesh.worker_stream WHERE job_id = 'w1' \gset
SELECT hotmesh.respond(:w1_message, '{"sq": 144}');
SELECT id, status, data, search, error FROM hotmesh.jobs WHERE id = 'w1';
SELECT activity_id, dad, type, status, input, output FROM hotmesh.activities WHERE job_id = 'w1' ORDER BY dad, activity_id;
SELECT count(*) AS messages_left FROM hotmesh.worker_stream WHERE job_id = 'w1';
-- a second answer to the same message changes nothing
SELECT hotmesh.respond(:w1_message, '{"sq": 1}') AS again;
SELECT hotmesh.respond(999999, '{"sq": 1}') AS unknown_message;
SELECT data FROM hotmesh.jobs WHERE id = 'w1';

-- 2. pub runs in the caller's transaction: a rollback leaves no job and no message
BEGIN;
SELECT hotmesh.pub('sq.start', '{"n": 3}', '{"id": "w2"}');
SELECT count(*) FROM hotmesh.worker_stream WHERE job_id = 'w2';
ROLLBACK;
SELECT count(*) AS jobs, (SELECT count(*) FROM hotmesh.worker_stream WHERE job_id = 'w2') AS messages FROM hotmesh.jobs WHERE id = 'w2';

-- 3. pub options and errors
SELECT hotmesh.pub('sq.start', '{"n": 3}', '{"id": "w1"}');
SELECT hotmesh.pub('no.such.topic', '{}');
SELECT hotmesh.pub('sq.start', '[1, 2]');
SELECT hotmesh.pub('sq.start', '{}', '{"colour": "red"}');
SELECT hotmesh.pub('sq.start', '{}', '{"marker": {"x": 1}}');
SELECT hotmesh.pub('sq.start', '{}', '{"pending": -1}');
SELECT hotmesh.pub('ask.start', '{"timeout": 5}');
SELECT hotmesh.pub('sq.start', '{"n": 2}', '{"id": "w3", "pending": 60, "search": {"region": "eu"}, "marker": {"-seen-": 1}, "entity": "order", "expire": 5}');
SELECT status, entity, search, marks, expire_seconds, expired_at > now() + interval '50 s' AS expires_later,
       (SELECT count(*) FROM hotmesh.worker_stream WHERE job_id = 'w3') AS messages
  FROM hotmesh.jobs WHERE id = 'w3';
SELECT hotmesh.get_status('w3'), hotmesh.get_query_state('w3', ARRAY['region', 'missing']);

-- 4. errors: no matching transition ends the job with the error; a policy retries first
SELECT hotmesh.pub('risky.start', '{}', '{"id": "r1"}');
-- one transaction: the retry is due 10 ms after the answer's now(), which a slow machine
-- passes between two statements
BEGIN;
SELECT hotmesh.respond((SELECT id FROM hotmesh.worker_stream WHERE job_id = 'r1'), '{"message": "flaky"}', 'error', 500);
SELECT attempt, visible_at > now() AS delayed, last_error FROM hotmesh.worker_stream WHERE job_id = 'r1';
COMMIT;
SELECT status FROM hotmesh.jobs WHERE id = 'r1';
SELECT hotmesh.fail((SELECT id FROM hotmesh.worker_stream WHERE job_id = 'r1'), '{"message": "broken for good"}', 503);
SELECT status, data, error FROM hotmesh.jobs WHERE id = 'r1';
-- an error code with a transition goes on along it
SELECT hotmesh.pub('risky.start', '{}', '{"id": "r2"}');
SELECT hotmesh.respond((SELECT id FROM hotmesh.worker_stream WHERE job_id = 'r2'), '{"message": "bad input"}', 'error', 422);
SELECT status, data, error FROM hotmesh.jobs WHERE id = 'r2';
SELECT activity_id, status, error FROM hotmesh.activities WHERE job_id = 'r2' ORDER BY dad;
-- 202: the activity stays open and takes more answers
SELECT hotmesh.pub('risky.start', '{}', '{"id": "r3"}');
SELECT hotmesh.respond((SELECT id FROM hotmesh.worker_stream WHERE job_id = 'r3'), '{"v": "half"}', 'pending');
SELECT status, data FROM hotmesh.jobs WHERE id = 'r3';
SELECT * FROM hotmesh.dequeue('risky.work', 10);
SELECT hotmesh.respond((SELECT id FROM hotmesh.worker_stream WHERE job_id = 'r3'), '{"v": "more"}', 'pending');
SELECT hotmesh.respond((SELECT id FROM hotmesh.worker_stream WHERE job_id = 'r3'), '{"v": "all"}');
SELECT status, data FROM hotmesh.jobs WHERE id = 'r3';
SELECT hotmesh.respond(1, '{}', 'maybe');
SELECT hotmesh.respond(1, '{}', 'error', 42);
-- respond_batch: several answers in one call, each applied as respond applies it; the
-- ids applied come back (a repeated id is a duplicate answer: not applied twice)
SELECT hotmesh.pub('sq.start', '{"n": 2}', '{"id": "b1"}') AS b1, hotmesh.pub('sq.start', '{"n": 11}', '{"id": "b2"}') AS b2,
       hotmesh.pub('risky.start', '{}', '{"id": "b3"}') AS b3;
SELECT (SELECT id FROM hotmesh.worker_stream WHERE job_id = 'b1') AS b1m, (SELECT id FROM hotmesh.worker_stream WHERE job_id = 'b2') AS b2m,
       (SELECT id FROM hotmesh.worker_stream WHERE job_id = 'b3') AS b3m \gset
SELECT hotmesh.respond_batch(ARRAY[:b1m, :b2m, :b3m, :b1m],
                             ARRAY['{"sq": 4}', '{"sq": 121}', '{"message": "bad input"}', '{"sq": 0}']::jsonb[],
                             ARRAY['success', NULL, 'error', 'success'], ARRAY[NULL, NULL, 422, NULL]::int[])
       = ARRAY[:b1m, :b2m, :b3m]::bigint[] AS applied_once_each;
SELECT id, status, data, error IS NOT NULL AS failed FROM hotmesh.jobs WHERE id IN ('b1', 'b2', 'b3') ORDER BY id;
SELECT hotmesh.respond_batch('{}') AS nothing_to_do;
SELECT hotmesh.respond_batch(ARRAY[1, 2], ARRAY['{}']::jsonb[]);
SELECT hotmesh.respond_batch(ARRAY[1, NULL]);
SELECT hotmesh.respond_batch(NULL);
SELECT hotmesh.respond_batch(ARRAY[1], statuses => ARRAY['maybe']);
SELECT hotmesh.respond_batch(ARRAY[1], codes => ARRAY[1000]);

-- 5. hooks: a signal first, a signal before the hook exists, a timer
SELECT hotmesh.pub('ask.start', '{"id": "h1", "timeout": 60}');
SELECT hotmesh.signal('ask.reply', '{"id": "h1", "answer": "yes"}');
SELECT status, data FROM hotmesh.jobs WHERE id = 'h1';
SELECT count(*) AS timers_left FROM hotmesh.engine_stream WHERE job_id = 'h1';
SELECT hotmesh.signal('ask.reply', '{"id": "h2", "answer": "early"}') AS reached;
SELECT topic, key, data FROM hotmesh.pending_signals;
SELECT hotmesh.pub('ask.start', '{"id": "h2", "timeout": 60}');
SELECT status, data FROM hotmesh.jobs WHERE id = 'h2';
SELECT count(*) AS pending_left FROM hotmesh.pending_signals;
SELECT hotmesh.pub('ask.start', '{"id": "h3", "timeout": 0.2}');
SELECT hotmesh.wait_for_job('h3', 5000)->'data' AS timed_out;
SELECT hotmesh.signal('no.rule', '{}');
-- a signal activity reaches another job's hook
SELECT hotmesh.pub('ask.start', '{"id": "h4", "timeout": 60}');
SELECT hotmesh.pub('notify.start', '{"target": "h4"}', '{"id": "n1"}');
SELECT id, status, data FROM hotmesh.jobs WHERE id IN ('h4', 'n1') ORDER BY id;

-- 6. a cycle of 100 iterations: every iteration keeps its own rows
SELECT hotmesh.pub('count.start', '{"n": 100}', '{"id": "c1"}');
SELECT hotmesh.wait_for_job('c1', 20000)->'data' AS data;
SELECT count(*) AS pivot_rows, count(DISTINCT dad) AS dimensions FROM hotmesh.activities WHERE job_id = 'c1' AND activity_id = 'pivot';
SELECT dad, output FROM hotmesh.activities WHERE job_id = 'c1' AND activity_id = 'pivot' ORDER BY length(dad), dad LIMIT 3;

-- 7. await: the parent gets the child's data; with await false only its id
SELECT hotmesh.pub('parent.start', '{"x": 21, "child": "child.double"}', '{"id": "p1"}');
SELECT status, data FROM hotmesh.jobs WHERE id = 'p1';
SELECT status, data, parent_job_id, parent_activity FROM hotmesh.jobs WHERE parent_job_id = 'p1';
SELECT hotmesh.pub('parent.start', '{"x": 1, "child": "child.slow", "wait": false}', '{"id": "p2"}');
SELECT status, data ? 'child' AS has_child, data->'child' ? 'job_id' AS child_id FROM hotmesh.jobs WHERE id = 'p2';
SELECT status, severed FROM hotmesh.jobs WHERE parent_job_id = 'p2';

-- 8. interrupt: a parent whose child is still running; then the child
SELECT hotmesh.pub('parent.start', '{"x": 1, "child": "child.slow"}', '{"id": "p3"}');
SELECT status FROM hotmesh.jobs WHERE parent_job_id = 'p3';
SELECT hotmesh.interrupt('parent.start', 'p3', '{"reason": "cancelled by the user"}');
SELECT status < -100000000 AS interrupted, error FROM hotmesh.jobs WHERE id = 'p3';
SELECT status FROM hotmesh.jobs WHERE parent_job_id = 'p3';
SELECT hotmesh.interrupt('parent.start', 'p3');
SELECT hotmesh.interrupt('parent.start', 'p3', '{"suppress": true}');
SELECT hotmesh.interrupt('parent.start', 'nobody');
SELECT hotmesh.interrupt('parent.start', 'p3', '{"bogus": 1}');
-- the child finishes later: its result reaches an ended parent and changes nothing
SELECT hotmesh.respond((SELECT w.id FROM hotmesh.worker_stream w JOIN hotmesh.jobs j ON j.id = w.job_id WHERE j.parent_job_id = 'p3'), '{"v": 1}');
SELECT status < -100000000 AS still_interrupted, data FROM hotmesh.jobs WHERE id = 'p3';
-- descend: the children are interrupted too
SELECT hotmesh.pub('parent.start', '{"x": 1, "child": "child.slow"}', '{"id": "p4"}');
SELECT hotmesh.interrupt('parent.start', 'p4', '{"descend": true}');
SELECT status < -100000000 AS child_interrupted, (SELECT count(*) FROM hotmesh.worker_stream w WHERE w.job_id = j.id) AS messages
  FROM hotmesh.jobs j WHERE parent_job_id = 'p4';
-- the interrupt activity: itself, and another job
SELECT hotmesh.pub('stop.self', '{}', '{"id": "i1"}');
SELECT status < -100000000 AS interrupted, error FROM hotmesh.jobs WHERE id = 'i1';
-- get_state builds the metadata the engine's maps see (one builder): err a compact JSON string
SELECT hotmesh.get_state(NULL, 'i1')->'metadata'->>'err' AS err, hotmesh.get_state(NULL, 'i1')->'metadata'->>'jid' AS jid;
SELECT hotmesh.pub('child.slow', '{}', '{"id": "victim"}');
SELECT hotmesh.pub('stop.other', '{"target": "victim"}', '{"id": "i2"}');
SELECT id, status < -100000000 AS interrupted, status, data FROM hotmesh.jobs WHERE id IN ('victim', 'i2') ORDER BY id;

-- statusThreshold: an activity entering when the status is at most T ends the job,
-- though a signal hook is still open (Durable's closer); above T it runs as usual
SELECT hotmesh.deploy($yaml$
app:
  id: thr
  version: '1'
  graphs:
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
$yaml$)->>'status' AS deployed;
SELECT hotmesh.activate('thr', '1');
SELECT hotmesh.pub('thr.start', '{}', '{"id": "thr1"}'), hotmesh.get_status('thr1');
SELECT hotmesh.respond((SELECT id FROM hotmesh.worker_stream WHERE job_id = 'thr1'), '{}');
SELECT status, data, completed_at IS NOT NULL AS completed FROM hotmesh.jobs WHERE id = 'thr1';
SELECT activity_id, status FROM hotmesh.activities WHERE job_id = 'thr1' ORDER BY activity_id;
-- the hook was still open; a signal to it now changes nothing
SELECT hotmesh.signal('thr.signal', '{"id": "thr1"}');
SELECT status, data FROM hotmesh.jobs WHERE id = 'thr1';
-- the hook answered first: the closer enters at status 1 (<= 2) and ends the job
SELECT hotmesh.pub('thr.start', '{}', '{"id": "thr2"}');
SELECT hotmesh.signal('thr.signal', '{"id": "thr2"}');
SELECT hotmesh.respond((SELECT id FROM hotmesh.worker_stream WHERE job_id = 'thr2'), '{}');
SELECT status, data FROM hotmesh.jobs WHERE id = 'thr2';

-- hook rules per version: a job started on version 1 is found under version 1's rule
-- after version 2 (another rule for the topic) is active
SELECT hotmesh.deploy($yaml$
app:
  id: ver
  version: '1'
  graphs:
    - subscribes: ver.start
      activities:
        v0: { type: trigger }
        wait: { type: hook, job: { maps: { got: '{$self.hook.data.answer}' } } }
      transitions:
        v0: [ { to: wait } ]
      hooks:
        ver.reply:
          - to: wait
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] }
$yaml$)->>'status' AS deployed;
SELECT hotmesh.activate('ver', '1');
SELECT hotmesh.pub('ver.start', '{}', '{"id": "old1"}');
SELECT hotmesh.deploy($yaml$
app:
  id: ver
  version: '2'
  graphs:
    - subscribes: ver.start
      activities:
        v0: { type: trigger }
        wait: { type: hook, job: { maps: { got: '{$self.hook.data.answer}' } } }
      transitions:
        v0: [ { to: wait } ]
      hooks:
        ver.reply:
          - to: wait
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.ref}' } ] }
$yaml$)->>'status' AS deployed;
SELECT hotmesh.activate('ver', '2');
SELECT hotmesh.pub('ver.start', '{}', '{"id": "new1"}');
SELECT hotmesh.signal('ver.reply', '{"id": "old1", "answer": "by the old rule"}');
SELECT hotmesh.signal('ver.reply', '{"ref": "new1", "answer": "by the new rule"}');
SELECT id, version, status, data FROM hotmesh.jobs WHERE id IN ('old1', 'new1') ORDER BY id;

-- 9. queries
SELECT hotmesh.get_state('sq.start', 'w1')->'data' AS data, hotmesh.get_state(NULL, 'w1')->'metadata'->>'js' AS js;
SELECT jsonb_object_keys(hotmesh.get_state('sq.start', 'w1')->'metadata') AS metadata_keys ORDER BY 1;
SELECT e->>'activity' AS activity, e->>'dimension' AS dimension, e->>'status' AS status
  FROM jsonb_array_elements(hotmesh.export('w1')->'timeline') e;
SELECT jsonb_object_keys(hotmesh.get_raw('w1')) ORDER BY 1;
SELECT hotmesh.get_status('nobody');
SELECT hotmesh.get_state('sq.start', 'nobody');
SELECT hotmesh.get_state('ask.start', 'w1');
SELECT hotmesh.scrub('w1'), hotmesh.scrub('w1');
SELECT count(*) FROM hotmesh.activities WHERE job_id = 'w1';
SELECT hotmesh.wait_for_job('r3', 0)->'data';
SELECT hotmesh.wait_for_job('victim', -1);

-- 10. pubsub: start and wait, for psql users
DO $$
DECLARE r jsonb;
BEGIN
  CALL hotmesh.pubsub('parent.start', '{"x": 5, "child": "child.double"}', 5000, r);
  RAISE NOTICE 'pubsub: % (status %)', r->'data', r->'metadata'->'js';
END $$;
BEGIN;
CALL hotmesh.pubsub('parent.start', '{"x": 5, "child": "child.double"}');
ROLLBACK;

-- 11. one answer batch, one write-back: answers to two messages of the same job in one
-- respond_batch (the second sees what the first changed: the job keeps both maps), a
-- fan-out whose next messages are written together (each activity row keeps its own
-- message's id), and a job that ends inside the batch (its other message goes with it)
SELECT hotmesh.deploy($yaml$
app:
  id: fan
  version: '1'
  graphs:
    - subscribes: fan.start
      expire: 120
      activities:
        t: { type: trigger }
        a: { type: worker, topic: fan.work, input: { maps: { who: a } }, job: { maps: { a: '{$self.output.data.v}' } } }
        b: { type: worker, topic: fan.work, input: { maps: { who: b } }, job: { maps: { b: '{$self.output.data.v}' } } }
        c: { type: worker, topic: fan.work, input: { maps: { who: c, a: '{a.output.data.v}' } } }
        d: { type: worker, topic: fan.work, input: { maps: { who: d } } }
        done: { type: hook, job: { maps: { done: true } } }
      transitions:
        t: [ { to: a }, { to: b } ]
        a: [ { to: c }, { to: d } ]
        c: [ { to: done } ]
    - subscribes: fan.stop
      expire: 120
      activities:
        s: { type: trigger }
        x: { type: worker, topic: fan.work, input: { maps: { who: x } } }
        y: { type: worker, topic: fan.work, input: { maps: { who: y } } }
      transitions:
        s: [ { to: x }, { to: y } ]
$yaml$) IS NOT NULL AS deployed;
SELECT hotmesh.activate('fan', '1');
SELECT hotmesh.pub('fan.start', '{}', '{"id": "fan1"}');
SELECT id AS fa FROM hotmesh.worker_stream WHERE job_id = 'fan1' AND activity_id = 'a' \gset
SELECT id AS fb FROM hotmesh.worker_stream WHERE job_id = 'fan1' AND activity_id = 'b' \gset
SELECT cardinality(hotmesh.respond_batch(ARRAY[:fa, :fb], ARRAY['{"v": 2}', '{"v": 3}']::jsonb[])) AS applied;
-- c's and d's messages were written in one statement
SELECT activity_id, data FROM hotmesh.worker_stream WHERE job_id = 'fan1' ORDER BY activity_id;
SELECT data FROM hotmesh.jobs WHERE id = 'fan1';
SELECT count(*) = 2 AS each_row_names_its_message FROM hotmesh.activities a JOIN hotmesh.worker_stream w
    ON w.id::text = a.wait_token AND w.activity_id = a.activity_id WHERE a.job_id = 'fan1';
SELECT id AS fc FROM hotmesh.worker_stream WHERE job_id = 'fan1' AND activity_id = 'c' \gset
SELECT id AS fd FROM hotmesh.worker_stream WHERE job_id = 'fan1' AND activity_id = 'd' \gset
SELECT cardinality(hotmesh.respond_batch(ARRAY[:fd, :fc])) AS applied;
SELECT status, data FROM hotmesh.jobs WHERE id = 'fan1';
-- an error answer ends the job in the batch: the job's other message, answered after it
-- in the same batch, is not applied and leaves the stream
SELECT hotmesh.pub('fan.stop', '{}', '{"id": "fan2"}');
SELECT id AS fx FROM hotmesh.worker_stream WHERE job_id = 'fan2' AND activity_id = 'x' \gset
SELECT id AS fy FROM hotmesh.worker_stream WHERE job_id = 'fan2' AND activity_id = 'y' \gset
SELECT hotmesh.respond_batch(ARRAY[:fx, :fy], ARRAY['{"message": "no"}', '{}']::jsonb[], ARRAY['error', 'success'], ARRAY[422, NULL]::int[])
       = ARRAY[:fx]::bigint[] AS only_the_error_applied;
SELECT status, error->>'code' AS code, completed_at IS NOT NULL AS ended FROM hotmesh.jobs WHERE id = 'fan2';
SELECT count(*) AS messages_left FROM hotmesh.worker_stream WHERE job_id = 'fan2';
-- the same when the first answer of the batch started next activities: their messages,
-- not written yet when the second answer ends the job, are never written
SELECT hotmesh.pub('fan.start', '{}', '{"id": "fan3"}');
SELECT id AS fa FROM hotmesh.worker_stream WHERE job_id = 'fan3' AND activity_id = 'a' \gset
SELECT id AS fb FROM hotmesh.worker_stream WHERE job_id = 'fan3' AND activity_id = 'b' \gset
SELECT cardinality(hotmesh.respond_batch(ARRAY[:fa, :fb], ARRAY['{"v": 2}', '{"message": "no"}']::jsonb[],
                                         ARRAY['success', 'error'], ARRAY[NULL, 422]::int[])) AS applied;
SELECT status, error->>'code' AS code, completed_at IS NOT NULL AS ended FROM hotmesh.jobs WHERE id = 'fan3';
SELECT count(*) AS messages_left FROM hotmesh.worker_stream WHERE job_id = 'fan3';
SELECT activity_id, status FROM hotmesh.activities WHERE job_id = 'fan3' ORDER BY activity_id;

-- a batch of successes takes its messages and locks their jobs in one statement, and
-- each answer is still judged alone: one with a stale reservation is refused (its
-- message stays with its holder), one to a message its job's interrupt removed is not
-- applied, and the rest go on
SELECT hotmesh.pub('fan.stop', '{}', '{"id": "fan4"}') AS f4, hotmesh.pub('fan.stop', '{}', '{"id": "fan5"}') AS f5;
CREATE TEMP TABLE dq AS SELECT id, job_id, activity_id, reservation FROM hotmesh.dequeue('fan.work', 100, 30)
  WHERE job_id IN ('fan4', 'fan5');
SELECT hotmesh.interrupt('fan.stop', 'fan5') IS NOT NULL AS interrupted;
SELECT hotmesh.respond_batch(array_agg(id ORDER BY job_id DESC, activity_id), NULL, NULL, NULL,
         array_agg(CASE WHEN job_id = 'fan4' AND activity_id = 'y' THEN reservation + 1 ELSE reservation END
                   ORDER BY job_id DESC, activity_id))
       = (SELECT array_agg(id) FROM dq WHERE job_id = 'fan4' AND activity_id = 'x') AS only_the_held_one_applied
  FROM dq;
SELECT job_id, activity_id, reservation = (SELECT reservation FROM dq WHERE dq.id = w.id) AS still_held
  FROM hotmesh.worker_stream w WHERE job_id IN ('fan4', 'fan5') ORDER BY 1, 2;
SELECT a.job_id, a.activity_id, a.status FROM hotmesh.activities a
 WHERE a.job_id IN ('fan4', 'fan5') AND a.activity_id IN ('x', 'y') ORDER BY 1, 2;
DROP TABLE dq;

-- a hand-out moves its message's visible_at to the lapse (dequeue then reads past the
-- messages held): hotmesh.streams counts them as reserved, not delayed; a heartbeat moves
-- it on; release makes the message visible at once; a lapsed one is handed out again
SELECT hotmesh.pub('fan.stop', '{}', '{"id": "fan6"}');
CREATE TEMP TABLE dq AS SELECT id, activity_id, reservation FROM hotmesh.dequeue('fan.work', 100, 30)
  WHERE job_id = 'fan6';
SELECT count(*) AS held, bool_and(w.visible_at = w.reserved_until AND w.visible_at > now() + interval '20 s') AS visible_at_the_lapse
  FROM hotmesh.worker_stream w JOIN dq USING (id);
SELECT ready, reserved, delayed FROM hotmesh.streams WHERE topic = 'fan.work';
SELECT hotmesh.heartbeat(id, 600, reservation) AS extended FROM dq WHERE activity_id = 'y';
SELECT w.visible_at = w.reserved_until AND w.visible_at > now() + interval '500 s' AS moved_on
  FROM hotmesh.worker_stream w JOIN dq USING (id) WHERE dq.activity_id = 'y';
SELECT hotmesh.release(id, reservation) AS released FROM dq WHERE activity_id = 'x';
SELECT ready, reserved, delayed FROM hotmesh.streams WHERE topic = 'fan.work';
SELECT activity_id, deliveries FROM hotmesh.dequeue('fan.work', 100, 0.1) WHERE job_id = 'fan6';
SELECT pg_sleep(0.3);
SELECT activity_id, deliveries FROM hotmesh.dequeue('fan.work', 100, 30) WHERE job_id = 'fan6';
DROP TABLE dq;

-- hotmesh.journal: the marks of MeshFlow workflows as rows, one per durable operation (a
-- join's items each their own; the original's `data`/`$error` read too); other marks, and
-- indexes too large for an integer, are not rows
SELECT hotmesh.pub('sq.start', '{"n": 1}', $o${"id": "jr1", "marker": {
  "-proxy-1-": {"k": "proxy", "n": "charge", "d": {"ok": true}, "au": "20261126090000.250"},
  "-sleep-2-": {"k": "sleep", "n": 5},
  "-collate-3-": {"k": "collate", "d": {"slot": 2, "r0": {"i": 3, "k": "proxy", "n": "a", "d": 9},
                                         "r1": {"i": 4, "k": "wait", "n": "go", "e": {"code": 597}}, "rx": {"i": 8}}},
  "-proxy$1-1-": {"k": "proxy", "n": "again", "d": 1, "au": "not a time"},
  "-child-5-": {"data": "from the original", "$error": {"code": 598}},
  "-seen-": 1, "-proxy-99999999999-": {"d": 1}, "-collate-9-": {"d": [1]}}}$o$);
SELECT generation, index, kind, name, result, error, recorded_at, mark
  FROM hotmesh.journal WHERE job_id = 'jr1' ORDER BY generation, index;

DROP EXTENSION hotmesh;
