-- Deploy, activate, the catalog views and hotmesh.map.
CREATE EXTENSION hotmesh;
\set SHOW_CONTEXT never

-- a two-graph app: worker, hook (signal with a timeout), await of the other graph, cycle
SELECT s->>'status' AS status, s->>'app_id' AS app, s->>'version' AS version, s->'activities' AS activities,
       jsonb_path_query_array(s, '$.graphs[*].subscribes') AS subscribes, s->'warnings' AS warnings
  FROM hotmesh.deploy($yaml$
app:
  id: shop
  version: '1'
  graphs:
    - subscribes: shop.order
      publishes: shop.ordered
      expire: 60
      activities:
        t1:
          type: trigger
          stats:
            id: '{$self.input.data.id}'
        quote:
          type: worker
          topic: shop.quote
          input:
            maps:
              qty: '{t1.output.data.qty}'
          job:
            maps:
              price: { '@pipe': [['{$self.output.data.unit}', '{t1.output.data.qty}'], ['{@math.multiply}']] }
        pivot:
          type: hook
          cycle: true
        approve:
          type: hook
          sleep: 3600
          job:
            maps:
              ok: { '@pipe': [['{$self.hook.data.ok}', false], ['{@conditional.nullish}']] }
        ship:
          type: await
          topic: shop.ship
        again:
          type: cycle
          ancestor: pivot
      transitions:
        t1: [{ to: quote }]
        quote: [{ to: pivot }]
        pivot: [{ to: approve }]
        approve:
          - to: ship
            conditions: { match: [{ expected: true, actual: '{approve.hook.data.ok}' }] }
          - to: again
            conditions: { match: [{ expected: false, actual: '{approve.hook.data.ok}' }] }
      hooks:
        shop.approve:
          - to: approve
            conditions: { match: [{ expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' }] }
    - subscribes: shop.ship
      activities:
        s1: { type: trigger }
$yaml$) AS s;

-- deployed, not active yet
SELECT app_id, version, status, graphs, activities, activated_at IS NULL AS never_activated FROM hotmesh.versions;
SELECT app_id, active_version, versions FROM hotmesh.apps;
SELECT count(*) AS active_graphs FROM hotmesh.graphs;

-- the same content again (other spacing, JSON even) is a no-op
SELECT hotmesh.deploy(manifest::text)->>'status' AS again FROM hotmesh.app_versions WHERE app_id = 'shop';

SELECT hotmesh.activate('shop', '1');
SELECT app_id, version, status, activated_at IS NOT NULL AS activated FROM hotmesh.versions;
SELECT app_id, active_version, versions FROM hotmesh.apps;
SELECT app_id, version, graph, subscribes, publishes, trigger, activities, expire FROM hotmesh.graphs ORDER BY graph;
SELECT topic, kind, app_id, version, activity_id, graph FROM hotmesh.topics ORDER BY topic, kind;

-- version 2 deploys beside it; activating it switches atomically, and a rollback keeps 1
SELECT hotmesh.deploy($yaml$
app:
  id: shop
  version: '2'
  graphs:
    - subscribes: shop.order
      activities:
        t1: { type: trigger }
$yaml$)->>'status' AS v2;
BEGIN;
SELECT hotmesh.activate('shop', '2');
SELECT active_version FROM hotmesh.apps WHERE app_id = 'shop';
ROLLBACK;
SELECT active_version FROM hotmesh.apps WHERE app_id = 'shop';
SELECT hotmesh.activate('shop', '2');
SELECT version, status FROM hotmesh.versions WHERE app_id = 'shop' ORDER BY version;
-- activating the active version again is harmless
SELECT hotmesh.activate('shop', '2');
-- and back
SELECT hotmesh.activate('shop', '1');
SELECT version, status FROM hotmesh.versions WHERE app_id = 'shop' ORDER BY version;

-- validate compiles without storing
SELECT v->>'app_id' AS app, v->'activities' AS activities, v->'warnings' AS warnings
  FROM hotmesh.validate($yaml$
app:
  id: draft
  version: '1'
  graphs:
    - subscribes: draft.go
      activities:
        t: { type: trigger }
        lonely: { type: hook }
$yaml$) AS v;
SELECT count(*) AS drafts_stored FROM hotmesh.versions WHERE app_id = 'draft';

-- hotmesh.map: references, literals, pipes, fan-in, reduce
SELECT hotmesh.map('"{a.output.data.x}"', '{"a": {"output": {"data": {"x": 42}}}}');
SELECT hotmesh.map('{"total": {"@pipe": [["{a.output.data.x}", 2], ["{@math.multiply}"]]}, "label": "fixed"}',
                   '{"a": {"output": {"data": {"x": 21}}}}');
SELECT hotmesh.map('{"@pipe": [{"@pipe": [["{$job.data.first}"], ["{@string.toUpperCase}"]]}, {"@pipe": [[" "]]}, {"@pipe": [["{$job.data.last}"]]}, ["{@string.concat}"]]}',
                   '{"data": {"first": "ada", "last": "Lovelace"}}');
SELECT hotmesh.map('{"@pipe": [["{$job.data.nums}", 0], {"@reduce": [["{$output}", "{$item}"], ["{@math.add}"]]}]}',
                   '{"data": {"nums": [1, 2, 3, 4]}}');
SELECT hotmesh.map('{"@pipe": [[1700000000000], ["{@date.toISOString}"]]}');
-- a row's extra cells come after its function's result: toFixed gets (0.30000000000000004, 2)
SELECT hotmesh.map('{"@pipe": [[0.1, 0.2], ["{@math.add}", 2], ["{@number.toFixed}"]]}');
SELECT hotmesh.map('{"@pipe": [["{$job.metadata.jid}", "-", "{$job.data.n}"], ["{@string.concat}"]]}', '{"metadata": {"jid": "j1"}, "data": {"n": 7}}');
SELECT hotmesh.map('{"@pipe": [[10, 3], ["{@math.divide}"], ["{@math.round}"]]}');
SELECT hotmesh.map('"{a.missing}"', '{}') IS NULL AS undefined_is_null;
SELECT hotmesh.map('{"@pipe": [["{a.b}"], ["{@string.toUpperCase}"]]}', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT hotmesh.map('"{@string.shout}"');
\echo :LAST_ERROR_SQLSTATE

DROP EXTENSION hotmesh;
