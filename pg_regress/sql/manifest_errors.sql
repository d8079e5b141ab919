-- Every rule a manifest can break: the error names the YAML path and the line, and
-- has its SQLSTATE (42601 for YAML syntax, 22023 for a broken rule, 42710 for a
-- conflict, 42704 for an unknown version). Nothing is stored by a failed deploy.
CREATE EXTENSION hotmesh;
\set SHOW_CONTEXT never

-- unparsable YAML
SELECT hotmesh.deploy($yaml$
app:
  id: [broken
$yaml$);
\echo :LAST_ERROR_SQLSTATE
-- duplicated key
SELECT hotmesh.deploy($yaml$
app:
  id: a
  id: b
$yaml$);
\echo :LAST_ERROR_SQLSTATE
-- missing app id, missing version
SELECT hotmesh.deploy($yaml$
app:
  version: '1'
  graphs: []
$yaml$);
\echo :LAST_ERROR_SQLSTATE
SELECT hotmesh.deploy($yaml$
app:
  id: bad
  graphs: []
$yaml$);
-- unknown activity type
SELECT hotmesh.deploy($yaml$
app:
  id: bad
  version: '1'
  graphs:
    - subscribes: bad.go
      activities:
        t: { type: trigger }
        w:
          type: wrker
          topic: x
$yaml$);
\echo :LAST_ERROR_SQLSTATE
-- activity ids duplicated across graphs
SELECT hotmesh.deploy($yaml$
app:
  id: bad
  version: '1'
  graphs:
    - subscribes: bad.one
      activities:
        t: { type: trigger }
    - subscribes: bad.two
      activities:
        t: { type: trigger }
$yaml$);
-- a transition to an unknown activity
SELECT hotmesh.deploy($yaml$
app:
  id: bad
  version: '1'
  graphs:
    - subscribes: bad.go
      activities:
        t: { type: trigger }
      transitions:
        t:
          - to: nowhere
$yaml$);
-- a loop of transitions (an activity with several parents deploys; a loop does not)
SELECT hotmesh.deploy($yaml$
app:
  id: bad
  version: '1'
  graphs:
    - subscribes: bad.go
      activities:
        t: { type: trigger }
        a: { type: hook }
        b: { type: hook }
      transitions:
        t: [{ to: a }]
        a: [{ to: b }]
        b: [{ to: a }]
$yaml$);
-- no trigger; two triggers
SELECT hotmesh.deploy($yaml$
app:
  id: bad
  version: '1'
  graphs:
    - subscribes: bad.go
      activities:
        h: { type: hook }
$yaml$);
SELECT hotmesh.deploy($yaml$
app:
  id: bad
  version: '1'
  graphs:
    - subscribes: bad.go
      activities:
        t1: { type: trigger }
        t2: { type: trigger }
$yaml$);
-- a cycle whose ancestor is not an ancestor
SELECT hotmesh.deploy($yaml$
app:
  id: bad
  version: '1'
  graphs:
    - subscribes: bad.go
      activities:
        t: { type: trigger }
        a: { type: hook }
        b: { type: hook }
        loop:
          type: cycle
          ancestor: b
      transitions:
        t: [{ to: a }, { to: b }]
        a: [{ to: loop }]
$yaml$);
-- an unknown @pipe function
SELECT hotmesh.deploy($yaml$
app:
  id: bad
  version: '1'
  graphs:
    - subscribes: bad.go
      activities:
        t:
          type: trigger
          job:
            maps:
              x:
                '@pipe':
                  - ['{$self.input.data.x}']
                  - ['{@string.shout}']
$yaml$);
-- malformed references
SELECT hotmesh.deploy($yaml$
app:
  id: bad
  version: '1'
  graphs:
    - subscribes: bad.go
      activities:
        t:
          type: trigger
          job:
            maps:
              x: '{t..output}'
$yaml$);
SELECT hotmesh.deploy($yaml$
app:
  id: bad
  version: '1'
  graphs:
    - subscribes: bad.go
      activities:
        t:
          type: trigger
          job:
            maps:
              x: '{ghost.output.data.x}'
$yaml$);

-- a topic another active app subscribes to
SELECT hotmesh.deploy($yaml$
app:
  id: first
  version: '1'
  graphs:
    - subscribes: shared.topic
      activities:
        t: { type: trigger }
$yaml$)->>'status' AS first;
SELECT hotmesh.activate('first', '1');
SELECT hotmesh.deploy($yaml$
app:
  id: second
  version: '1'
  graphs:
    - subscribes: shared.topic
      activities:
        t: { type: trigger }
$yaml$);
\echo :LAST_ERROR_SQLSTATE

-- a version that exists with other content; the same content is a no-op
SELECT hotmesh.deploy($yaml$
app:
  id: first
  version: '1'
  graphs:
    - subscribes: shared.topic
      activities:
        t: { type: trigger, title: changed }
$yaml$);
\echo :LAST_ERROR_SQLSTATE
SELECT hotmesh.deploy('{"app": {"id": "first", "version": "1", "graphs": [{"subscribes": "shared.topic", "activities": {"t": {"type": "trigger"}}}]}}')->>'status' AS same;

-- activating what does not exist
SELECT hotmesh.activate('first', '9');
\echo :LAST_ERROR_SQLSTATE
SELECT hotmesh.activate('nobody', '1');

-- nothing of the failures was stored
SELECT app_id, version FROM hotmesh.versions ORDER BY 1, 2;

DROP EXTENSION hotmesh;
