-- Hostile and careless input: each gets a clean ERROR with its own SQLSTATE, and
-- nothing crashes, hangs or stops the engine.
CREATE EXTENSION hotmesh;
\set SHOW_CONTEXT never
\set VERBOSITY default
\set ON_ERROR_STOP 0
SELECT hotmesh.wait_for_engine();

SELECT hotmesh.deploy($y$
app:
  id: hostile
  version: '1'
  graphs:
    - subscribes: h.start
      expire: '{t.output.data.expire}'
      activities:
        t: { type: trigger }
        w: { type: worker, topic: h.work, job: { maps: { got: '{$self.output.data}' } } }
        nap: { type: hook, sleep: '{t.output.data.sleep}' }
      transitions:
        t: [ { to: w } ]
        w: [ { to: nap } ]
    - subscribes: h.deep
      activities:
        dt: { type: trigger }
        dw: { type: worker, topic: h.deep.work, job: { maps: { got: $y$ || repeat('{ a: ', 30) || $y$'{$self.output.data}'$y$ || repeat(' }', 30) || $y$ } } }
      transitions:
        dt: [ { to: dw } ]
    - subscribes: h.nap
      activities:
        st: { type: trigger }
        sleeper: { type: hook, sleep: 0.3 }
      transitions:
        st: [ { to: sleeper } ]
    - subscribes: h.poison
      activities:
        pt: { type: trigger }
        pw: { type: worker, topic: h.poison.work, retry: { maximumAttempts: 1 } }
      transitions:
        pt: [ { to: pw } ]
$y$)->>'status';
SELECT hotmesh.activate('hostile', '1');

-- JSON nested deeper than the engine reads back: 54001, not an internal error
SELECT hotmesh.pub('h.start', (repeat('[', 150) || repeat(']', 150))::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT hotmesh.map((repeat('{"a":', 300) || '1' || repeat('}', 300))::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT hotmesh.respond(1, (repeat('[', 1000) || repeat(']', 1000))::jsonb);
\echo :LAST_ERROR_SQLSTATE

-- numbers out of range name their option
SELECT hotmesh.pub('h.start', '{}', '{"expire": 1e15}');
SELECT hotmesh.pub('h.start', '{}', '{"pending": 1e15}');
SELECT hotmesh.pub('h.start', '{}', '{"pending": -1}');
SELECT hotmesh.pub('h.start', '{}', '{"id": ""}');
SELECT hotmesh.interrupt('h.start', 'nobody', '{"expire": 1e300}');
SELECT hotmesh.signal('h.signal', '{}', 'success', 99);
SELECT hotmesh.dequeue('h.work', 0);
SELECT hotmesh.heartbeat(1, 1e9);

-- a topic that cannot be a channel name or a NOTIFY payload is refused at deploy
SELECT hotmesh.validate($y$
app: { id: long, version: '1', graphs: [ { subscribes: long.start, publishes: $y$ || repeat('x', 300) || $y$, activities: { t: { type: trigger } } } ] }
$y$);
SELECT hotmesh.validate($y$
app:
  id: long
  version: '1'
  graphs:
    - subscribes: long.start
      activities:
        t: { type: trigger }
        w: { type: worker, topic: "a\u0007b" }
      transitions: { t: [ { to: w } ] }
$y$);

-- a job's own data (a huge expiry or sleep, computed at run time) cannot stop its
-- steps, nor the engine worker: durations are clamped
SELECT hotmesh.pub('h.start', '{"expire": 1e15, "sleep": 1e15}', '{"id": "huge"}');
SELECT hotmesh.respond(id, '{"ok": true}') FROM hotmesh.dequeue('h.work', 10) WHERE job_id = 'huge';
SELECT status > 0 AS waits, (SELECT count(*) FROM hotmesh.engine_stream WHERE job_id = 'huge') AS timers
  FROM hotmesh.jobs WHERE id = 'huge';
SELECT hotmesh.interrupt('h.start', 'huge');
SELECT status < 0 AS interrupted, expired_at > now() + interval '50 years' AS expires_late
  FROM hotmesh.jobs WHERE id = 'huge';

-- a mapping that nests a job's data deeper than can be stored fails that step, cleanly
-- (the answer is refused; the message stays for a later answer)
SELECT hotmesh.pub('h.deep', '{}', '{"id": "deep"}');
SELECT hotmesh.respond(id, (repeat('{"a":', 95) || '1' || repeat('}', 95))::jsonb)
  FROM hotmesh.dequeue('h.deep.work', 10) WHERE job_id = 'deep';
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS waiting FROM hotmesh.worker_stream WHERE job_id = 'deep';
SELECT hotmesh.respond(id, '{"small": true}') FROM hotmesh.worker_stream WHERE job_id = 'deep';
SELECT data->'got' FROM hotmesh.jobs WHERE id = 'deep';

-- manifests: an alias bomb, nesting past any parser's stack, huge documents
SELECT hotmesh.validate('a: &a ["' || repeat('x', 1000) || '"]' || E'\n' || 'b: &b [' || repeat('*a,', 1000) || '*a]' || E'\n' || 'c: &c [' || repeat('*b,', 1000) || '*b]' || E'\n' || 'd: [' || repeat('*c,', 100) || '*c]');
SELECT hotmesh.deploy(repeat('- ', 100000) || 'x');
SELECT hotmesh.validate(repeat('[', 100000));
SELECT hotmesh.validate(repeat('{a: ', 100000));
\echo :LAST_ERROR_SQLSTATE

-- maps: a backtracking regex runs in linear time; sizes are checked before allocating
SELECT hotmesh.map('{"@pipe": [["{$job.data.s}", "(a+)+$"], ["{@string.search}"]]}',
                   jsonb_build_object('data', jsonb_build_object('s', repeat('a', 28) || 'b')));
SELECT hotmesh.map('{"@pipe": [["{$job.data.s}", "(a)\\1"], ["{@string.search}"]]}', '{"data": {"s": "aa"}}');
SELECT hotmesh.map('{"@pipe": [["x", 100000000], ["{@string.repeat}"]]}');
SELECT hotmesh.map('{"@pipe": [["{$job.data.s}", "{$job.data.s}", "{$job.data.s}", "{$job.data.s}", "{$job.data.s}", "{$job.data.s}"], ["{@string.concat}"]]}',
                   jsonb_build_object('data', jsonb_build_object('s', repeat('y', 50000000))));

-- a long evaluation answers statement_timeout at once (a fold over a million items takes
-- seconds; canceled within a second)
SET statement_timeout = '200ms';
DO $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM hotmesh.map(jsonb_build_object('@pipe', jsonb_build_array(
            jsonb_build_array('{$job.data.s}', ''), jsonb_build_array('{@string.split}'),
            jsonb_build_object('@reduce', jsonb_build_array(jsonb_build_array('{$output}', 1), jsonb_build_array('{@math.add}'))))),
          jsonb_build_object('data', jsonb_build_object('s', repeat('a', 1500000))));
  RAISE NOTICE 'not canceled';
EXCEPTION WHEN query_canceled THEN
  RAISE NOTICE 'canceled within a second: %', clock_timestamp() - t0 < interval '1 second';
END $$;
RESET statement_timeout;

-- so does compiling an app of 20,000 activities (about 0.6 s in a release build)
CREATE TEMP TABLE big_app AS
SELECT 'app:
  id: big
  version: ''1''
  graphs:
    - subscribes: big.start
      activities:
        t: { type: trigger }
' || string_agg('        w' || i || ': { type: worker, topic: big.w }', E'\n') || '
      transitions:
        t: [' || string_agg('{ to: w' || i || ' }', ', ') || ']
' AS src FROM generate_series(1, 20000) i;
SET statement_timeout = '200ms';
DO $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM hotmesh.validate(src) FROM big_app;
  RAISE NOTICE 'not canceled';
EXCEPTION WHEN query_canceled THEN
  RAISE NOTICE 'canceled within a second: %', clock_timestamp() - t0 < interval '1 second';
END $$;
RESET statement_timeout;
DROP TABLE big_app;

-- one job the engine cannot step (here a trigger refuses its row) does not stop the
-- engine worker: its poison message is dead-lettered with why, and a timer due in the same
-- pass fires
CREATE FUNCTION public.refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'job % refused by a trigger', NEW.id; END $$;
CREATE TRIGGER refuse_bad BEFORE UPDATE ON hotmesh.jobs FOR EACH ROW WHEN (NEW.id = 'bad')
  EXECUTE FUNCTION public.refuse_bad();
SELECT hotmesh.pub('h.poison', '{}', '{"id": "bad"}');
-- handed out five times, never answered: poison (each hand-out in a transaction of its
-- own: a reservation lapses by the clock of a later transaction)
SELECT count(*) AS taken, pg_sleep(0.15) FROM hotmesh.dequeue('h.poison.work', 1, 0.1);
SELECT count(*) AS taken, pg_sleep(0.15) FROM hotmesh.dequeue('h.poison.work', 1, 0.1);
SELECT count(*) AS taken, pg_sleep(0.15) FROM hotmesh.dequeue('h.poison.work', 1, 0.1);
SELECT count(*) AS taken, pg_sleep(0.15) FROM hotmesh.dequeue('h.poison.work', 1, 0.1);
SELECT count(*) AS taken, pg_sleep(0.15) FROM hotmesh.dequeue('h.poison.work', 1, 0.1);
SELECT hotmesh.pub('h.nap', '{}', '{"id": "timely"}');
SELECT hotmesh.wait_for_job('timely', 10000)->'metadata'->>'js' AS timely_done;
-- (a procedure: each look commits, so it sees what the engine worker committed since)
CREATE PROCEDURE public.wait_dead_lettered(job text) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..100 LOOP
    EXIT WHEN EXISTS (SELECT 1 FROM hotmesh.worker_stream WHERE job_id = job AND dead_lettered_at IS NOT NULL);
    PERFORM hotmesh.wake_engine();
    COMMIT;
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
CALL public.wait_dead_lettered('bad');
DROP PROCEDURE public.wait_dead_lettered(text);
SELECT dead_lettered_at IS NOT NULL AS dead_lettered, last_error->>'message' AS why
  FROM hotmesh.worker_stream WHERE job_id = 'bad';
SELECT status > 0 AS bad_still_running FROM hotmesh.jobs WHERE id = 'bad';
DROP TRIGGER refuse_bad ON hotmesh.jobs;
DROP FUNCTION public.refuse_bad();

-- MeshData: names that could reach SQL text are refused; values only ever travel as
-- parameters, so a value that looks like SQL finds nothing and harms nothing
SELECT hotmesh.create_search_index('user"; DROP TABLE hotmesh.jobs; --', '{"a": {"type": "TAG"}}');
SELECT hotmesh.create_search_index('user', '{"a'') ; DROP TABLE hotmesh.jobs; --": {"type": "TAG"}}');
SELECT hotmesh.create_search_index('user', '{"a": {"type": "VECTOR"}}');
SELECT hotmesh.create_search_index('user', '[]');
SELECT hotmesh.create_search_index('user', '{"a": {"type": "TAG"}, "n": {"type": "NUMERIC", "sortable": true}}');
SELECT * FROM hotmesh.find_where('user', '[{"field": "a", "is": "=", "value": "x''; DROP TABLE hotmesh.jobs; --"}]');
SELECT * FROM hotmesh.find_where('user', '[{"field": "a;", "is": "=", "value": 1}]');
SELECT * FROM hotmesh.find_where('user', '[{"field": "a", "is": "like", "value": 1}]');
SELECT * FROM hotmesh.find_where('user', '[{"field": "n", "is": "[]", "value": 1}]');
SELECT * FROM hotmesh.find_where('user', '[{"field": "a"}]');
SELECT * FROM hotmesh.find_where('user', '{}');
SELECT * FROM hotmesh.find_where('user', '[]', '{"limit": {"start": 0, "size": 100000}}');
SELECT * FROM hotmesh.find_where('user', '[]', '{"sort": {"field": "a; DROP TABLE x"}}');
SELECT * FROM hotmesh.find_where('user', (SELECT jsonb_agg('{"field": "a", "value": 1}'::jsonb) FROM generate_series(1, 33)));
SELECT count(*) AS jobs_table_still_there FROM hotmesh.jobs WHERE false;

-- the engine worker runs on, error free
SELECT hotmesh.wake_engine() >= 0;
SELECT pg_sleep(0.3);
SELECT state, errors FROM hotmesh.workers() WHERE database = current_database();

DROP EXTENSION hotmesh;

-- text reaches the engine as UTF-8: a database in another encoding is refused up front
-- (in SQL_ASCII, invalid UTF-8 could otherwise reach it)
CREATE DATABASE hotmesh_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c hotmesh_ascii
CREATE EXTENSION hotmesh;
\echo :LAST_ERROR_SQLSTATE
\c hotmesh_regress
DROP DATABASE hotmesh_ascii;
