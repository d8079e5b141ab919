-- The quorum: processes beat, roll_call lists them, throttles are persisted (the
-- narrowest scope wins) and hotmesh.release gives a reservation back.
CREATE EXTENSION hotmesh;
\set SHOW_CONTEXT never
SELECT hotmesh.quorum_beat('g1', 'shop', 'worker', 'shop.charge') AS throttle;
SELECT hotmesh.quorum_beat('e1', 'shop', 'engine') AS throttle;
SELECT guid, role, topic, throttle, stream_depth FROM hotmesh.roll_call('shop');
SELECT hotmesh.throttle('shop', -1, topic => 'shop.charge');
SELECT hotmesh.quorum_beat('g1', 'shop', 'worker', 'shop.charge', processed => 3) AS paused;
SELECT hotmesh.throttle('shop', 500, guid => 'g1');
SELECT hotmesh.throttle_for('shop', 'shop.charge', 'g1') AS narrowest_wins,
       hotmesh.throttle_for('shop', 'shop.charge', 'g2') AS by_topic,
       hotmesh.throttle_for('shop', 'shop.other', 'g3') AS none;
SELECT app_id, scope, throttle FROM hotmesh.throttles ORDER BY scope;
SELECT guid, processed, throttle FROM hotmesh.roll_call('shop') WHERE role = 'worker';
-- resuming the whole app clears the narrower throttles too
SELECT hotmesh.throttle('shop', 0);
SELECT count(*) AS throttles_left FROM hotmesh.throttles;
SELECT hotmesh.quorum_leave('g1') AS left, hotmesh.quorum_leave('g1') AS again;
SELECT guid FROM hotmesh.roll_call('shop');
SELECT count(*) AS stale_ones_are_not_live FROM hotmesh.roll_call('shop', 0);
-- bad input
SELECT hotmesh.throttle('shop', -2);
SELECT hotmesh.throttle('', 0);
SELECT hotmesh.throttle('shop', 1, 'g', 't');
SELECT hotmesh.quorum_beat('g', 'shop', 'boss');
SELECT hotmesh.quorum_beat('', 'shop', 'worker');
-- release: only a reserved message
SELECT hotmesh.release(12345);
SELECT hotmesh.channel('hotmesh.work.short'), hotmesh.channel(repeat('x', 64)) LIKE 'hm:%' AS hashed;
DROP EXTENSION hotmesh;
