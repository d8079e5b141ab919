-- hotmesh 0.3.0 -> 0.4.0: stats (what triggers' stats.measures record, read with
-- get_stats / get_ids, and what a signal activity with `subtype: all` finds jobs by),
-- dequeue rows carry the original's message metadata, pubsub refuses a transaction
-- block with a clear error. Exactly as a fresh 0.4.0 install creates them. Released:
-- never edit; a later release adds its own script.

-- stats (sql/stats.sql as released in 0.4.0)
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

-- jobs take their stats rows with them
CREATE OR REPLACE FUNCTION hotmesh.jobs_cascade() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- most deletes (housekeeping's, each few seconds) find nothing: touch no other table
    IF NOT EXISTS (SELECT 1 FROM gone) THEN
        RETURN NULL;
    END IF;
    DELETE FROM hotmesh.activities a USING gone g WHERE a.job_id = g.id;
    DELETE FROM hotmesh.signal_hooks h USING gone g WHERE h.job_id = g.id;
    DELETE FROM hotmesh.stats s USING gone g WHERE s.job_id = g.id;
    RETURN NULL;
END
$$;

-- dequeue returns the message metadata too: a new result type, so drop and create
DROP FUNCTION hotmesh.dequeue(text, integer, double precision, text);
CREATE  FUNCTION hotmesh."dequeue"(
	"topic" TEXT, /* & str */
	"batch" INT DEFAULT 1, /* i32 */
	"reservation_seconds" double precision DEFAULT 30.0, /* f64 */
	"consumer" TEXT DEFAULT NULL /* Option < String > */
) RETURNS TABLE (
	"id" bigint,  /* i64 */
	"job_id" TEXT,  /* String */
	"activity_id" TEXT,  /* String */
	"dad" TEXT,  /* String */
	"data" jsonb,  /* JsonB */
	"attempt" INT,  /* i32 */
	"deliveries" INT,  /* i32 */
	"metadata" jsonb  /* JsonB */
)
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'dequeue_wrapper';

CREATE  FUNCTION hotmesh."get_stats"(
	"topic" TEXT, /* & str */
	"query" jsonb DEFAULT '{}' /* JsonB */
) RETURNS jsonb /* JsonB */
STRICT STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'get_stats_wrapper';

CREATE  FUNCTION hotmesh."get_ids"(
	"topic" TEXT, /* & str */
	"query" jsonb DEFAULT '{}', /* JsonB */
	"facets" TEXT[] DEFAULT '{}' /* Vec < String > */
) RETURNS jsonb /* JsonB */
STRICT STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'get_ids_wrapper';

CREATE  FUNCTION hotmesh."_outside_transaction_block"(
	"what" TEXT /* & str */
) RETURNS void
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_outside_transaction_block_wrapper';

-- pubsub checks it runs outside a transaction block (sql/pubsub.sql as released in 0.4.0)
-- Starts a job and waits for its result, for psql users: CALL hotmesh.pubsub('topic', '{"n": 2}');
-- A procedure, because the job must commit before the engine (and workers) can run it;
-- so it cannot be called inside a transaction block, and has no SET clause (that forbids
-- COMMIT): every name in it is schema-qualified. A timeout is an error (code 504).
CREATE OR REPLACE PROCEDURE hotmesh.pubsub(topic text, data jsonb DEFAULT '{}', timeout_ms integer DEFAULT 10000,
                                INOUT result jsonb DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    job text;
BEGIN
    -- COMMIT would fail there with a message that does not say what to do instead
    PERFORM hotmesh._outside_transaction_block('CALL hotmesh.pubsub');
    job := hotmesh.pub(topic, data);
    COMMIT;
    result := hotmesh.wait_for_job(job, timeout_ms);
END
$$;
COMMENT ON PROCEDURE hotmesh.pubsub(text, jsonb, integer, jsonb) IS 'Starts a job and returns its {metadata, data} when it ends';

-- privileges, as sql/finalize.sql gives them
REVOKE ALL ON hotmesh.stats FROM PUBLIC;
REVOKE ALL ON FUNCTION
    hotmesh.dequeue(text, integer, double precision, text),
    hotmesh.get_stats(text, jsonb), hotmesh.get_ids(text, jsonb, text[])
  FROM PUBLIC;
