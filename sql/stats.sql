-- Stats: what a trigger's `stats.measures` record when a job starts (the original's
-- stats indexes), one row per job and measure, in the job's time bucket. Rows are only
-- inserted (no counter row that every new job would update and lock): reading sums them.
-- They leave with their job (jobs_cascade), or when a signal with `scrub` consumes an
-- index.
CREATE TABLE hotmesh.stats (
    app_id     text        NOT NULL,
    key        text        NOT NULL,             -- the trigger's stats.key, resolved
    bucket     text        NOT NULL,             -- 'YYYYMMDDHHmm' (UTC, floored to the granularity) or '0' (infinity)
    measure    text        NOT NULL,             -- count, sum, avg, mdn, max, min or index
    target     text        NOT NULL,             -- the target's path ('a/b' for {$self.input.data.a.b}); '' for the job count
    facet      text        NOT NULL DEFAULT '',  -- count and index: the resolved value
    value      double precision,                 -- sum, avg, mdn, max, min: the resolved number
    job_id     text        NOT NULL,             -- hotmesh.jobs (id); see jobs_cascade
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stats_lookup ON hotmesh.stats (app_id, key, bucket, measure, target, facet);
CREATE INDEX stats_facet ON hotmesh.stats (app_id, measure, target, facet) WHERE measure = 'index';
CREATE INDEX stats_job ON hotmesh.stats (job_id);
COMMENT ON TABLE hotmesh.stats IS 'What triggers'' stats.measures recorded: one row per job and measure, per time bucket';
