-- One start through the engine.
SELECT hotmesh.pub('bench.three', '{"n": 1}');
