-- hotmesh.crons: MeshCall's crons (docs/meshcall.md), one row per cron job: its schedule,
-- runs so far, the next and the last run, failed runs. A cron's job carries the search
-- field meshcall = cron (found through the jobs_search index, not a scan of every job).
CREATE VIEW hotmesh.crons AS
SELECT j.id,
       j.app_id AS namespace,
       j.data ->> 'topic' AS topic,
       CASE WHEN pg_catalog.jsonb_typeof(j.data -> 'interval') = 'number'
                 AND (j.data ->> 'interval')::pg_catalog.float8 > 0
            THEN (j.data ->> 'interval')::pg_catalog.float8 END AS interval_seconds,
       j.data ->> 'cron' AS cron,
       CASE WHEN pg_catalog.jsonb_typeof(j.data -> 'cycles') = 'number'
            THEN (j.data ->> 'cycles')::pg_catalog.numeric END AS cycles,
       CASE WHEN pg_catalog.jsonb_typeof(j.data -> 'maxCycles') = 'number'
            THEN (j.data ->> 'maxCycles')::pg_catalog.numeric END AS max_cycles,
       (SELECT pg_catalog.min(e.visible_at) FROM hotmesh.engine_stream e
         WHERE e.job_id = j.id AND e.type = 'timehook' AND e.dead_lettered_at IS NULL) AS next_run,
       (SELECT pg_catalog.max(a.finished_at) FROM hotmesh.activities a
         WHERE a.job_id = j.id AND a.activity_id = 'cron_call') AS last_run,
       (SELECT pg_catalog.count(*) FROM hotmesh.activities a
         WHERE a.job_id = j.id AND a.activity_id = 'cron_call' AND a.status = 'error') AS failed_runs,
       j.status > 0 AS running,
       j.created_at AS started_at
  FROM hotmesh.jobs j
 WHERE j.search @> '{"meshcall": "cron"}';
COMMENT ON VIEW hotmesh.crons IS 'MeshCall crons: schedule, runs so far, next and last run, failed runs';
REVOKE ALL ON hotmesh.crons FROM PUBLIC;
