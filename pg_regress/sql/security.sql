-- Privileges per app: a deployer, a starter, a worker and a reader of one app reach that
-- app only; the documented grants work as documented; answers are fenced by their
-- reservation; completion payloads carry references, not job data.
CREATE EXTENSION hotmesh;
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT hotmesh.wait_for_engine();

-- roles of a cluster are shared by its databases: start from none
SET client_min_messages = warning;
DROP ROLE IF EXISTS hm_deployer, hm_starter, hm_worker, hm_reader, hm_team, hm_member, hm_nobody;
RESET client_min_messages;
CREATE ROLE hm_deployer; CREATE ROLE hm_starter; CREATE ROLE hm_worker; CREATE ROLE hm_reader;
CREATE ROLE hm_team; CREATE ROLE hm_member IN ROLE hm_team; CREATE ROLE hm_nobody;

-- two apps with one worker topic each, and a shared worker topic
SELECT hotmesh.deploy($y$
app:
  id: sec_a
  version: '1'
  graphs:
    - subscribes: sa.start
      activities:
        t: { type: trigger }
        w: { type: worker, topic: sa.work, input: { maps: { x: '{t.output.data.x}' } }, job: { maps: { y: '{$self.output.data.y}' } } }
        s: { type: worker, topic: shared.work }
        h: { type: hook, hook: { type: signal, topic: sa.signal }, job: { maps: { said: '{$self.hook.data.said}' } } }
      transitions:
        t: [ { to: w } ]
        w: [ { to: s } ]
        s: [ { to: h } ]
      hooks:
        sa.signal: [ { to: h, conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] } } ]
$y$)->>'status';
SELECT hotmesh.deploy($y$
app:
  id: sec_b
  version: '1'
  graphs:
    - subscribes: sb.start
      activities:
        t: { type: trigger }
        s: { type: worker, topic: shared.work }
      transitions:
        t: [ { to: s } ]
$y$)->>'status';
SELECT hotmesh.activate('sec_b', '1');

-- nothing granted: refused, with the app named
SET ROLE hm_deployer;
SELECT hotmesh.activate('sec_a', '1');
RESET ROLE;
-- EXECUTE on deploy/activate alone (the grant_app call gives it) is enough to use them
SELECT hotmesh.grant_app('sec_a', 'hm_deployer', 'deploy');
SELECT hotmesh.grant_app('sec_a', 'hm_starter', 'start');
SELECT hotmesh.grant_app('sec_a', 'hm_worker', 'work');
SELECT hotmesh.grant_app('sec_a', 'hm_reader', 'read');
SELECT hotmesh.grant_app('sec_b', 'hm_team', 'work');
SELECT hotmesh.grant_app('sec_a', 'hm_deployer', 'deploy');  -- again: nothing new
SELECT app_id, role, privilege FROM hotmesh.grants WHERE role LIKE 'hm\_%' ORDER BY 1, 2, 3;
SELECT hotmesh.grant_app('sec_a', 'hm_reader', 'own');
SELECT hotmesh.grant_app('sec_a', 'hm_not_a_role', 'read');

SET ROLE hm_deployer;
SELECT hotmesh.activate('sec_a', '1');
SELECT hotmesh.activate('sec_b', '1');
SELECT hotmesh.deploy($y$
app:
  id: sec_b
  version: '2'
  graphs:
    - subscribes: sb.start
      activities: { t: { type: trigger } }
$y$)->>'status';
SELECT hotmesh.pub('sa.start', '{"x": 1}');
RESET ROLE;

-- the starter starts sec_a's jobs, not sec_b's, and reads nothing
SET ROLE hm_starter;
SELECT hotmesh.pub('sa.start', '{"x": 1}', '{"id": "sa1"}');
SELECT hotmesh.pub('sa.start', '{"x": 2}', '{"id": "sa2"}');
SELECT hotmesh.pub('sb.start', '{}', '{"id": "sb1"}');
SELECT hotmesh.get_status('sa1');
RESET ROLE;
SELECT hotmesh.pub('sb.start', '{}', '{"id": "sb1"}');

-- the worker takes sec_a's messages only, even on a topic sec_b shares
SET ROLE hm_worker;
SELECT job_id, activity_id FROM hotmesh.dequeue('sa.work', 10, 0.5) ORDER BY job_id;
RESET ROLE;
-- sb1's message on the shared topic: the worker of sec_a cannot answer it
SELECT id AS sb1_message FROM hotmesh.worker_stream WHERE job_id = 'sb1' \gset
SET ROLE hm_worker;
SELECT hotmesh.respond(:sb1_message, '{}');
SELECT hotmesh.heartbeat(:sb1_message);
SELECT hotmesh.fail(:sb1_message);
SELECT hotmesh.retry(:sb1_message);
SELECT hotmesh.release(:sb1_message);
RESET ROLE;
-- a member of a granted role inherits it
SET ROLE hm_member;
SELECT job_id FROM hotmesh.dequeue('shared.work', 10);
RESET ROLE;
SET ROLE hm_nobody;
SELECT * FROM hotmesh.dequeue('sa.work');
RESET ROLE;

-- fencing: an answer or heartbeat carrying an older reservation is refused
SELECT pg_sleep(0.6);  -- sa1/sa2's reservations (0.5 s) lapse
SET ROLE hm_worker;
CREATE TEMP TABLE first_take AS SELECT id, job_id, reservation FROM hotmesh.dequeue('sa.work', 10, 30);
RESET ROLE;
SELECT job_id, count(*) FROM first_take GROUP BY 1 ORDER BY 1;
-- the message is handed out again (its reservation given back): the old token is stale
SELECT hotmesh.release(id) FROM first_take WHERE job_id = 'sa1';
SET ROLE hm_worker;
CREATE TEMP TABLE second_take AS SELECT id, job_id, reservation FROM hotmesh.dequeue('sa.work', 10, 30);
SELECT hotmesh.heartbeat(f.id, 30, f.reservation) AS stale_heartbeat FROM first_take f WHERE job_id = 'sa1';
SELECT hotmesh.respond(f.id, '{"y": 1}', 'success', NULL, f.reservation) AS stale_answer FROM first_take f WHERE job_id = 'sa1';
SELECT hotmesh.respond(f.id, '{"y": 1}', 'success', NULL, 42) AS forged_answer FROM first_take f WHERE job_id = 'sa2';
SELECT hotmesh.heartbeat(s.id, 30, s.reservation) AS current_heartbeat FROM second_take s;
SELECT hotmesh.respond(s.id, '{"y": 2}', 'success', NULL, s.reservation) AS current_answer FROM second_take s;
SELECT hotmesh.respond(f.id, '{"y": 3}', 'success', NULL, f.reservation) AS own_answer FROM first_take f WHERE job_id = 'sa2';
RESET ROLE;
SELECT id, data->'y' AS y FROM hotmesh.jobs WHERE id IN ('sa1', 'sa2') ORDER BY 1;

-- the reader reads sec_a's jobs, and only reads
SET ROLE hm_reader;
SELECT hotmesh.get_status('sa1') > 0 AS running;
SELECT hotmesh.get_state(NULL, 'sa1')->'data';
SELECT hotmesh.get_query_state('sa1', ARRAY['"y"']);
SELECT hotmesh.get_status('sb1');
SELECT hotmesh.export('sb1');
SELECT hotmesh.pub('sa.start', '{}');
SELECT hotmesh.signal('sa.signal', '{"id": "sa1"}');
SELECT hotmesh.interrupt('sa.start', 'sa1');
SELECT hotmesh.scrub('sa1');
SELECT count(*) FROM hotmesh.jobs;
RESET ROLE;

-- the starter signals and interrupts its app's jobs
SET ROLE hm_starter;
SELECT hotmesh.interrupt('sa.start', 'sa2');
SELECT hotmesh.interrupt('sb.start', 'sb1');
SELECT hotmesh.signal('sa.signal', '{"id": "sa1"}', 'success', 1000);
RESET ROLE;

-- revoking takes the privilege away, and EXECUTE with the last app
SELECT hotmesh.revoke_app('sec_a', 'hm_reader', 'read');
SELECT hotmesh.revoke_app('sec_a', 'hm_reader', 'read');
SELECT has_function_privilege('hm_reader', 'hotmesh.get_state(text, text)', 'EXECUTE');
SET ROLE hm_reader;
SELECT hotmesh.get_status('sa1');
RESET ROLE;
-- '*': every app
SELECT hotmesh.grant_app('*', 'hm_reader', 'read');
SET ROLE hm_reader;
SELECT hotmesh.get_status('sb1') AS sb1_status;
RESET ROLE;

-- grants are the owner's: nobody else manages them
SET ROLE hm_deployer;
SELECT hotmesh.grant_app('sec_a', 'hm_deployer', 'work');
SELECT * FROM hotmesh.app_grants;
RESET ROLE;

-- validate and map stay open to everyone (bounded: see hostile.sql)
SET ROLE hm_nobody;
SELECT hotmesh.map('{"@pipe": [[1, 2], ["{@math.add}"]]}');
SELECT hotmesh.validate($y$
app: { id: v, version: '1', graphs: [ { subscribes: v.start, activities: { t: { type: trigger } } } ] }
$y$)->>'app_id';
RESET ROLE;

-- SECURITY DEFINER functions fix their search_path, every one
SELECT p.oid::regprocedure FROM pg_proc p
 WHERE p.pronamespace = 'hotmesh'::regnamespace AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');

DROP TABLE first_take, second_take;
DROP EXTENSION hotmesh;
DROP ROLE hm_deployer, hm_starter, hm_worker, hm_reader, hm_member, hm_team, hm_nobody;
