-- What a worker and a caller see, as the original shows it: stats measures recorded per
-- time bucket and read with get_stats / get_ids, a signal activity with `subtype: all`
-- resolving jobs through an index, the metadata of dequeued messages, raw field names in
-- get_query_state, scrub of a running job, pubsub in a transaction block, and the errors.
CREATE EXTENSION hotmesh;
\set SHOW_CONTEXT never
\set VERBOSITY default
SELECT hotmesh.wait_for_engine();

SELECT hotmesh.deploy($yaml$
app:
  id: fid
  version: '1'
  graphs:
    # orders: counted by region, their totals summed, averaged, ranged and
    # their median taken, per hour; each indexed under its customer
    - subscribes: fid.order
      expire: 600
      activities:
        o:
          type: trigger
          stats:
            id: '{$self.input.data.id}'
            key: '{$self.input.data.shop}'
            granularity: 1h
            measures:
              - { measure: count, target: '{$self.input.data.region}' }
              - { measure: sum, target: '{$self.input.data.total}' }
              - { measure: avg, target: '{$self.input.data.total}' }
              - { measure: max, target: '{$self.input.data.total}' }
              - { measure: min, target: '{$self.input.data.total}' }
              - { measure: mdn, target: '{$self.input.data.total}' }
              - { measure: index, target: '{$self.input.data.customer}' }
          job: { maps: { total: '{$self.output.data.total}' } }
        pack: { type: worker, topic: fid.pack, input: { maps: { total: '{o.output.data.total}', workflowName: packing } } }
      transitions:
        o: [ { to: pack } ]
    # children wait for a resume signal; their parent's signal activity reaches them all
    - subscribes: fid.parent
      expire: 600
      activities:
        p: { type: trigger, stats: { id: '{$self.input.data.id}' } }
        kids: { type: hook, sleep: 0.3 }
        wake_all:
          type: signal
          subtype: all
          topic: fid.resume
          key_name: parent
          key_value: '{$job.metadata.jid}'
          resolver: { maps: { data: { parent: '{$job.metadata.jid}' }, scrub: true } }
          signal: { maps: { go: true } }
      transitions:
        p: [ { to: kids } ]
        kids: [ { to: wake_all } ]
    - subscribes: fid.child
      expire: 600
      activities:
        c:
          type: trigger
          stats:
            id: '{$self.input.data.id}'
            key: '{$self.input.data.parent}'
            granularity: infinity
            measures: [ { measure: index, target: '{$self.input.data.parent}' } ]
        resume: { type: hook, job: { maps: { woken: '{$self.hook.data.go}' } } }
      transitions:
        c: [ { to: resume } ]
      hooks:
        fid.resume:
          - to: resume
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] }
    # waiters found by a search field (their trigger records no stats), and a graph that
    # signals them all
    - subscribes: fid.wait
      expire: 600
      activities:
        w0: { type: trigger, stats: { id: '{$self.input.data.id}' } }
        flag: { type: hook, job: { maps: { flagged: '{$self.hook.data.flag}' } } }
      transitions:
        w0: [ { to: flag } ]
      hooks:
        fid.flag:
          - to: flag
            conditions: { match: [ { expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' } ] }
    - subscribes: fid.flag_all
      expire: 600
      activities:
        f0: { type: trigger }
        raise:
          type: signal
          subtype: all
          topic: fid.flag
          key_name: batch
          key_value: '{f0.output.data.batch}'
          signal: { maps: { flag: raised } }
      transitions:
        f0: [ { to: raise } ]
$yaml$)->>'status';
SELECT hotmesh.activate('fid', '1');

-- 1. stats: three orders of one shop, two of another (recorded in pub's transaction)
SELECT hotmesh.pub('fid.order', '{"id": "o1", "shop": "north", "region": "eu", "total": 10, "customer": "ann"}');
SELECT hotmesh.pub('fid.order', '{"id": "o2", "shop": "north", "region": "eu", "total": 30, "customer": "bob"}');
SELECT hotmesh.pub('fid.order', '{"id": "o3", "shop": "north", "region": "us", "total": 50, "customer": "ann"}');
SELECT hotmesh.pub('fid.order', '{"id": "o4", "shop": "south", "region": "us", "total": 7, "customer": "ann"}');
-- a target that resolves to nothing records nothing for that measure (the job runs)
SELECT hotmesh.pub('fid.order', '{"id": "o5", "shop": "south"}');
SELECT measure, target, facet, value, job_id FROM hotmesh.stats WHERE key = 'north' ORDER BY job_id, measure, target;
-- the report of the last hour: counts by region, sum, avg, max, min, median
SELECT s->'key' AS key, s->'granularity' AS granularity, s->'count' AS count,
       jsonb_path_query_array(s, '$.measures[*] ? (@.type != "none")') AS measures,
       jsonb_array_length(s->'segments') AS segments
  FROM hotmesh.get_stats('fid.order', '{"data": {"shop": "north"}, "range": "1h", "end": "NOW", "sparse": false}') s;
SELECT hotmesh.get_stats('fid.order', '{"data": {"shop": "south"}, "range": "1h", "end": "NOW", "sparse": true}');
-- the jobs indexed under a facet
SELECT s->'counts' AS counts, jsonb_path_query_array(s, '$.segments[*].measures[*].ids') AS ids
  FROM hotmesh.get_ids('fid.order', '{"data": {"shop": "north"}, "range": "1h", "end": "NOW"}', ARRAY['customer:ann']) s;
-- a time window the original's rule rejects, and a bad granularity at deploy
SELECT hotmesh.get_stats('fid.order', '{"data": {"shop": "north"}}');
SELECT hotmesh.get_stats('fid.order', '{"data": {"shop": "north"}, "range": "1w", "end": "NOW"}');
SELECT hotmesh.validate($yaml$
app:
  id: fid_bad
  version: '1'
  graphs:
    - subscribes: fid.bad
      activities:
        t: { type: trigger, stats: { key: k, granularity: 2h, measures: [ { measure: count, target: '{$self.input.data.a}' } ] } }
$yaml$);
SELECT hotmesh.validate($yaml$
app:
  id: fid_bad
  version: '1'
  graphs:
    - subscribes: fid.bad
      activities:
        t: { type: trigger, stats: { key: k, measures: [ { measure: median, target: '{$self.input.data.a}' } ] } }
$yaml$);

-- 2. a dequeued message carries the original's metadata (wfn: its data's workflowName)
SELECT job_id, data, metadata - 'guid' - 'gid' AS metadata, metadata->>'guid' = id::text AS guid_is_the_id,
       metadata->>'gid' = (SELECT gid FROM hotmesh.jobs WHERE id = job_id) AS gid
  FROM hotmesh.dequeue('fid.pack', 10) ORDER BY job_id;

-- 3. get_query_state: plain names are search fields; quoted ones raw names (":" the status)
SELECT hotmesh.pub('fid.order', '{"id": "q1", "shop": "west", "total": 1}', '{"search": {"fred": "flintstone", "barney": 2}, "marker": {"-seen-": 1}}');
SELECT hotmesh.get_query_state('q1', ARRAY['fred', 'barney', 'wilma', '":"', '"-seen-"', '"total"', '"_fred"']);

-- 4. scrub refuses a running job, and deletes it once it ended
SELECT hotmesh.scrub('q1');
SELECT hotmesh.interrupt('fid.order', 'q1');
SELECT hotmesh.scrub('q1');
SELECT hotmesh.scrub('q1');

-- 5. interrupting an ended job, and `suppress`
SELECT hotmesh.interrupt('fid.order', 'q1');
SELECT hotmesh.interrupt('fid.order', 'o5');
SELECT hotmesh.interrupt('fid.order', 'o5');
SELECT hotmesh.interrupt('fid.order', 'o5', '{"suppress": true}');

-- 6. pubsub: an unknown topic, and inside a transaction block
CALL hotmesh.pubsub('fid.nowhere', '{}');
BEGIN;
CALL hotmesh.pubsub('fid.order', '{"id": "tx1", "shop": "west"}');
ROLLBACK;

-- 7. signal-all through the index: three children of one parent, one of another
SELECT hotmesh.pub('fid.child', '{"id": "k1", "parent": "pa"}');
SELECT hotmesh.pub('fid.child', '{"id": "k2", "parent": "pa"}');
SELECT hotmesh.pub('fid.child', '{"id": "k3", "parent": "pa"}');
SELECT hotmesh.pub('fid.child', '{"id": "k4", "parent": "pb"}');
SELECT hotmesh.pub('fid.parent', '{"id": "pa"}');
SELECT (hotmesh.wait_for_job('pa', 10000))->'metadata'->'js' AS parent_js;
SELECT id, status, data FROM hotmesh.jobs WHERE id LIKE 'k_' ORDER BY id;
-- scrub: the index under pa is gone, pb's stays
SELECT key, facet, job_id FROM hotmesh.stats WHERE measure = 'index' AND app_id = 'fid' AND target = 'parent' ORDER BY key, job_id;
-- the activity says whom it reached
SELECT output FROM hotmesh.activities WHERE job_id = 'pa' AND activity_id = 'wake_all';
-- and signal_all from SQL reaches jobs by the index too (any key): k4
SELECT hotmesh.signal_all('fid.resume', '{"go": "sql"}', 'parent', 'pb');
SELECT data FROM hotmesh.jobs WHERE id = 'k4';
-- 8. a signal-all activity whose hooks' trigger records no stats: by search field
SELECT hotmesh.pub('fid.wait', '{"id": "w1"}', '{"search": {"batch": "b1"}}'),
       hotmesh.pub('fid.wait', '{"id": "w2"}', '{"search": {"batch": "b1"}}'),
       hotmesh.pub('fid.wait', '{"id": "w3"}', '{"search": {"batch": "b2"}}');
SELECT hotmesh.pub('fid.flag_all', '{"batch": "b1"}', '{"id": "fa1"}');
SELECT output FROM hotmesh.activities WHERE job_id = 'fa1' AND activity_id = 'raise';
SELECT id, status, data FROM hotmesh.jobs WHERE id LIKE 'w_' ORDER BY id;
DROP EXTENSION hotmesh;
