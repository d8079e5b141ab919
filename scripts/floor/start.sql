-- One start of the engine benchmark's 3-step graph, by hand: the rows hotmesh.pub
-- writes (the job, the trigger's and the first worker's activity rows, the worker's
-- message), in one statement, with no engine. A fresh database's current part is 0.
\set r random(1, 1000000000000)
WITH j AS (
  INSERT INTO hotmesh.jobs_p0 (id, gid, app_id, version, topic, status, data, search, marks, expire_seconds, part)
  VALUES ('floor-' || :r, 'g-' || :r, 'bench', '1', 'bench.three', 2, '{}', '{}', '{}', 60, 0)
  RETURNING id, gid),
a AS (
  INSERT INTO hotmesh.activities_p0 (job_id, activity_id, dad, type, status, input, output, answers, finished_at, part)
  SELECT j.id, v.aid, v.dad, v.type, v.status, '{"n": 1}', v.output::jsonb, v.answers, v.finished, 0
    FROM j, (VALUES ('t', ',0', 'trigger', 'done', '{"n": 1}', 1, now()),
                    ('a', ',0,0', 'worker', 'waiting', NULL, 0, NULL)) v(aid, dad, type, status, output, answers, finished))
INSERT INTO hotmesh.worker_stream (topic, app_id, job_id, gid, activity_id, dad, data, max_attempts)
SELECT 'bench.step', 'bench', j.id, j.gid, 'a', ',0,0', '{"n": 1}', 1 FROM j;
