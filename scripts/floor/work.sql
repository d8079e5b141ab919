-- A worker's turn, by hand: reserve up to :batch messages (one transaction), then answer
-- them (another): each message leaves, its job row is updated, its activity rows are
-- read, its activity row is finished and the next one's written, and the next worker's
-- message is queued (a, then b, then c; c ends the job). The rows an answer batch
-- writes, in one statement, with no engine. Run with nested loops only (as the engine's
-- batch statements are planned): PGOPTIONS="-c enable_hashjoin=off -c enable_mergejoin=off -c enable_seqscan=off".
\set me random(1, 1000000000)
WITH c AS (
  SELECT id FROM hotmesh.worker_stream
   WHERE topic = 'bench.step' AND dead_lettered_at IS NULL AND visible_at <= now()
     AND (reserved_until IS NULL OR reserved_until < now())
   ORDER BY priority DESC, visible_at, id LIMIT :batch FOR UPDATE SKIP LOCKED),
u AS (
  UPDATE hotmesh.worker_stream w
     SET reserved_by = 'floor', reserved_until = now() + interval '30 s', deliveries = w.deliveries + 1, reservation = :me
    FROM c WHERE w.id = c.id RETURNING w.id, w.data)
SELECT coalesce(array_agg(id), '{}') AS ids, count(*) AS n, max(data::text) AS data FROM u
\gset
\if :n = 0
\sleep 2 ms
\else
WITH m AS (
  DELETE FROM hotmesh.worker_stream WHERE id = ANY (:ids::int8[]) RETURNING id, job_id, gid, activity_id, dad),
following (cur, aid, dad) AS (VALUES ('a', 'b', ',0,0,0'), ('b', 'c', ',0,0,0,0')),
acts AS (
  SELECT count(*) AS k FROM hotmesh.activities_p0 WHERE job_id IN (SELECT job_id FROM m)),
jobs AS (
  UPDATE hotmesh.jobs_p0 j
     SET status = j.status - 1, data = j.data || '{"done": true}', updated_at = now(),
         completed_at = CASE WHEN m.activity_id = 'c' THEN now() END
    FROM m WHERE j.id = m.job_id),
written AS (
  INSERT INTO hotmesh.activities_p0 AS x (job_id, activity_id, dad, type, status, input, output, answers, finished_at, wait_token, part)
  SELECT m.job_id, m.activity_id, m.dad, 'worker', 'done', '{"n": 1}'::jsonb, '{"n": 1}'::jsonb, 1, now(), m.id::text, 0 FROM m
  UNION ALL
  SELECT m.job_id, n.aid, n.dad, 'worker', 'waiting', '{"n": 1}'::jsonb, NULL::jsonb, 0, NULL::timestamptz, NULL, 0
    FROM m JOIN following n ON n.cur = m.activity_id
  ON CONFLICT (job_id, activity_id, dad, part) DO UPDATE
     SET status = excluded.status, output = excluded.output, answers = excluded.answers,
         finished_at = excluded.finished_at, wait_token = excluded.wait_token, updated_at = now())
INSERT INTO hotmesh.worker_stream (topic, app_id, job_id, gid, activity_id, dad, data, max_attempts)
SELECT 'bench.step', 'bench', m.job_id, m.gid, n.aid, n.dad, '{"n": 1}', 1
  FROM m JOIN following n ON n.cur = m.activity_id CROSS JOIN (SELECT k FROM acts) r;
\endif
