-- hotmesh.journal: what MeshFlow workflows recorded, one row per durable operation
-- (docs/meshflow.md). A workflow's results are marks of its job (`hotmesh.jobs.marks`,
-- keys `-<kind><dim>-<index>-`, `<dim>` `$<generation>` after continue-as-new); a join's
-- results are one mark (`-collate…-`) whose items each become a row here. The original's
-- keys and values (`data`, `$error`) read too. Owner-only, as the jobs it reads.
CREATE VIEW hotmesh.journal AS
SELECT j.id AS job_id,
       coalesce(substring(m.key FROM '^-[a-z]+[$]([0-9]+)-')::integer, 0) AS generation,
       e.index,
       e.kind,
       e.entry ->> 'n' AS name,
       coalesce(e.entry -> 'd', e.entry -> 'data') AS result,
       coalesce(e.entry -> 'e', e.entry -> '$error') AS error,
       CASE WHEN e.entry ->> 'au' ~ '^[0-9]{14}[.][0-9]{3}$'
            THEN pg_catalog.to_timestamp(e.entry ->> 'au', 'YYYYMMDDHH24MISS.MS')::timestamp AT TIME ZONE 'UTC'
       END AS recorded_at,
       m.key AS mark
  FROM hotmesh.jobs j
 CROSS JOIN LATERAL pg_catalog.jsonb_each(j.marks) m
 CROSS JOIN LATERAL (
        SELECT substring(m.key FROM '-([0-9]+)-$')::integer AS index,
               substring(m.key FROM '^-([a-z]+)') AS kind,
               m.value AS entry
         WHERE m.key !~ '^-collate' AND m.key ~ '^-[a-z]+([$][0-9]{1,9})?-[0-9]{1,9}-$'
        UNION ALL
        SELECT (r.value ->> 'i')::integer, r.value ->> 'k', r.value
          FROM pg_catalog.jsonb_each(CASE WHEN pg_catalog.jsonb_typeof(m.value -> 'd') = 'object'
                                          THEN m.value -> 'd' ELSE '{}'::pg_catalog.jsonb END) r
         WHERE m.key ~ '^-collate' AND r.key ~ '^r[0-9]+$' AND r.value ->> 'i' ~ '^[0-9]{1,9}$'
       ) e
 WHERE j.marks IS NOT NULL AND m.key ~ '^-[a-z]+([$][0-9]{1,9})?-[0-9]{1,9}-$';
COMMENT ON VIEW hotmesh.journal IS 'What MeshFlow workflows recorded: one row per durable operation (kind, name, result or error, when), from the marks of their jobs';
REVOKE ALL ON hotmesh.journal FROM PUBLIC;
