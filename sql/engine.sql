-- The engine's state: jobs, the state of each activity per dimension, the engine stream,
-- the worker streams, and the signal registry. Written by the engine's functions
-- (hotmesh.pub, hotmesh.respond, hotmesh.signal, … and the engine worker); read with
-- plain SQL.

-- Jobs and their activity rows live in a ring of eight partitions (`part` 0 to 7). New
-- jobs go into the current part; the engine worker moves the ring on once the current
-- part has been current for its span (hotmesh.ring.span, by default hotmesh.retention
-- divided by 6) and empties the part it moves into with TRUNCATE: expired jobs leave
-- without a DELETE, its WAL or dead tuples. A job in that part still within its
-- retention (still running, or expired less than hotmesh.retention ago) is moved to the
-- part before first. The step path names a job's partition in each statement
-- (src/store/ring.rs): through the parent, PostgreSQL 15 would lock and open every
-- partition for each lookup by id. ARCHITECTURE.md, "Retention".
CREATE TABLE hotmesh.ring (
    one       boolean     PRIMARY KEY DEFAULT true CHECK (one),
    current   smallint    NOT NULL DEFAULT 0 CHECK (current BETWEEN 0 AND 7),
    opened_at timestamptz NOT NULL DEFAULT now(),  -- when `current` became current
    span      interval,                            -- how long a part stays current; null: hotmesh.retention / 6
    turns     bigint      NOT NULL DEFAULT 0       -- how often the ring moved on
);
INSERT INTO hotmesh.ring DEFAULT VALUES;
COMMENT ON TABLE hotmesh.ring IS 'The ring of partitions of hotmesh.jobs and hotmesh.activities: which one new jobs go into';

-- The part new jobs go into (the default of `part` for rows written by hand).
CREATE FUNCTION hotmesh.current_part() RETURNS smallint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS 'SELECT current FROM hotmesh.ring';

-- One row per job. `status` is the semaphore: > 0 running, 0 done, -1 pending,
-- <= -100000000 interrupted. A job is live until `expired_at` passes (soft delete);
-- it is kept at least hotmesh.retention longer, until the ring empties its part.
CREATE TABLE hotmesh.jobs (
    id              text        NOT NULL,
    gid             text        NOT NULL,          -- generation: a reused id gets a new one
    app_id          text        NOT NULL,
    version         text        NOT NULL,          -- the app version the job runs on, for life
    topic           text        NOT NULL,          -- the topic that started it (graph subscribes)
    key             text,                          -- trigger stats.key
    entity          text,
    status          integer     NOT NULL,
    data            jsonb       NOT NULL DEFAULT '{}',  -- job data (job.maps)
    search          jsonb       NOT NULL DEFAULT '{}',  -- search fields (pub option, `_x` job maps)
    marks           jsonb       NOT NULL DEFAULT '{}',  -- markers (`-x`)
    error           jsonb,                         -- {code, message, ...} when the job failed or was interrupted
    parent_job_id   text,                          -- set for a child started by an await activity
    parent_gid      text,
    parent_activity text,
    parent_dad      text,
    severed         boolean     NOT NULL DEFAULT false, -- the parent does not wait (await: false)
    expire_seconds  double precision,              -- kept this long after completion (null: 1 s)
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    expired_at      timestamptz,
    part            smallint    NOT NULL DEFAULT hotmesh.current_part(),  -- its partition in the ring
    PRIMARY KEY (id, part)
) PARTITION BY LIST (part);
CREATE INDEX jobs_app_status ON hotmesh.jobs (app_id, status);
CREATE INDEX jobs_expired ON hotmesh.jobs (expired_at) WHERE expired_at IS NOT NULL;
CREATE INDEX jobs_parent ON hotmesh.jobs (parent_job_id) WHERE parent_job_id IS NOT NULL;
CREATE INDEX jobs_key ON hotmesh.jobs (key) WHERE key IS NOT NULL;
CREATE INDEX jobs_entity ON hotmesh.jobs (entity, created_at DESC) WHERE entity IS NOT NULL;
CREATE INDEX jobs_search ON hotmesh.jobs USING gin (search jsonb_path_ops);
COMMENT ON TABLE hotmesh.jobs IS 'HotMesh jobs: one row per job, with its data, status semaphore and error';

-- One row per activity per dimension (a cycle runs its activities again under a new
-- dimension; earlier iterations keep their rows).
CREATE TABLE hotmesh.activities (
    job_id      text        NOT NULL,              -- hotmesh.jobs (id); see jobs_cascade
    activity_id text        NOT NULL,
    dad         text        NOT NULL,              -- dimensional address: ',0', ',0,1', …
    type        text        NOT NULL,
    status      text        NOT NULL,              -- waiting, pending, done, error or cancelled
    input       jsonb,
    output      jsonb,
    hook        jsonb,                             -- signal data received by a hook
    error       jsonb,
    wait_token  text,                              -- the message, timer or child this activity waits for
    iterations  integer     NOT NULL DEFAULT 0,    -- cycle target: iterations so far
    answers     integer     NOT NULL DEFAULT 0,    -- results it took (several with 202): its children's dimension
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    part        smallint    NOT NULL DEFAULT hotmesh.current_part(),  -- its job's part
    PRIMARY KEY (job_id, activity_id, dad, part)
) PARTITION BY LIST (part);
COMMENT ON TABLE hotmesh.activities IS 'The state of each activity of each job, per dimension';

DO $$
BEGIN
    FOR p IN 0..7 LOOP
        EXECUTE format('CREATE TABLE hotmesh.%I PARTITION OF hotmesh.jobs FOR VALUES IN (%s)', 'jobs_p' || p, p);
        EXECUTE format('CREATE TABLE hotmesh.%I PARTITION OF hotmesh.activities FOR VALUES IN (%s)', 'activities_p' || p, p);
    END LOOP;
END
$$;

-- The engine stream: work for the engine worker (timers, cycles, spilled steps). A row
-- is deleted in the transaction that applies it.
CREATE TABLE hotmesh.engine_stream (
    id               bigserial   PRIMARY KEY,
    type             text        NOT NULL,         -- transition, timehook, cycle, result, response, webhook
    job_id           text        NOT NULL,
    gid              text        NOT NULL,
    activity_id      text        NOT NULL,
    dad              text        NOT NULL,
    token            text,
    data             jsonb,
    status           text        NOT NULL DEFAULT 'success',
    code             integer     NOT NULL DEFAULT 200,
    priority         integer     NOT NULL DEFAULT 0,
    visible_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL DEFAULT 0,  -- failed tries (an ERROR while applying it)
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    dead_lettered_at timestamptz
);
CREATE INDEX engine_stream_ready ON hotmesh.engine_stream (priority DESC, visible_at, id) WHERE dead_lettered_at IS NULL;
CREATE INDEX engine_stream_job ON hotmesh.engine_stream (job_id);
CREATE INDEX engine_stream_due ON hotmesh.engine_stream (visible_at) WHERE dead_lettered_at IS NULL;
COMMENT ON TABLE hotmesh.engine_stream IS 'Work for the engine worker: due timers, cycles and steps, applied and deleted in one transaction';

-- Worker streams: one table, one logical stream per topic. Consumed with
-- hotmesh.dequeue / hotmesh.respond from any language.
CREATE TABLE hotmesh.worker_stream (
    id                  bigserial   PRIMARY KEY,
    topic               text        NOT NULL,
    app_id              text        NOT NULL,
    job_id              text        NOT NULL,
    gid                 text        NOT NULL,
    activity_id         text        NOT NULL,
    dad                 text        NOT NULL,
    data                jsonb       NOT NULL DEFAULT '{}',
    priority            integer     NOT NULL DEFAULT 0,
    visible_at          timestamptz NOT NULL DEFAULT now(),  -- a hand-out moves it to its lapse
    reserved_by         text,
    reserved_until      timestamptz,               -- the reservation (visibility timeout) ends
    deliveries          integer     NOT NULL DEFAULT 0,  -- times handed out by hotmesh.dequeue
    attempt             integer     NOT NULL DEFAULT 0,  -- retries so far
    max_attempts        integer     NOT NULL DEFAULT 3,  -- total attempts (retry policy)
    backoff_coefficient double precision NOT NULL DEFAULT 10,
    maximum_interval    double precision NOT NULL DEFAULT 120, -- seconds
    initial_interval    double precision NOT NULL DEFAULT 1,   -- seconds
    retry_codes         jsonb,                     -- legacy per-code policy {"500": 3}
    last_error          jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    dead_lettered_at    timestamptz,
    reservation         bigint                     -- this hand-out's token (random): answers carrying another are stale
);
CREATE INDEX worker_stream_ready ON hotmesh.worker_stream (topic, priority DESC, visible_at, id) WHERE dead_lettered_at IS NULL;
CREATE INDEX worker_stream_job ON hotmesh.worker_stream (job_id);
CREATE INDEX worker_stream_due ON hotmesh.worker_stream (visible_at) WHERE dead_lettered_at IS NULL;
CREATE INDEX worker_stream_reserved ON hotmesh.worker_stream (reserved_until) WHERE reserved_until IS NOT NULL AND dead_lettered_at IS NULL;
COMMENT ON TABLE hotmesh.worker_stream IS 'Messages for workers, per topic: reserved by hotmesh.dequeue, removed by hotmesh.respond';

-- Deleting jobs deletes their activity rows, hook registrations and stats rows (the
-- table is created by sql/stats.sql, before any job can be deleted). A statement-level
-- trigger rather than foreign keys: the engine writes these rows under the job's row
-- lock, and a foreign key would add a check to every activity write on the step path.
CREATE FUNCTION hotmesh.jobs_cascade() RETURNS trigger
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

-- Hooks waiting for a signal: topic + resolved key -> the activity.
CREATE TABLE hotmesh.signal_hooks (
    app_id      text        NOT NULL,
    topic       text        NOT NULL,
    key         text        NOT NULL,
    job_id      text        NOT NULL,              -- hotmesh.jobs (id); see jobs_cascade
    gid         text        NOT NULL,
    activity_id text        NOT NULL,
    dad         text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (app_id, topic, key)
);
CREATE INDEX signal_hooks_job ON hotmesh.signal_hooks (job_id);
CREATE TRIGGER jobs_cascade AFTER DELETE ON hotmesh.jobs
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION hotmesh.jobs_cascade();

-- Signals that arrived before their hook registered, kept until it does (or they expire).
CREATE TABLE hotmesh.pending_signals (
    id         bigserial   PRIMARY KEY,
    app_id     text        NOT NULL,
    topic      text        NOT NULL,
    key        text        NOT NULL,
    data       jsonb       NOT NULL,
    status     text        NOT NULL,
    code       integer     NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX pending_signals_key ON hotmesh.pending_signals (app_id, topic, key);
-- housekeeping removes the expired ones (an index: signals that come early can pile up)
CREATE INDEX pending_signals_expires ON hotmesh.pending_signals (expires_at);

CREATE VIEW hotmesh.dead_letters AS
SELECT 'worker'::pg_catalog.text AS stream, id, topic, job_id, activity_id, dad, data, deliveries, attempt,
       last_error, created_at, dead_lettered_at
  FROM hotmesh.worker_stream WHERE dead_lettered_at IS NOT NULL
UNION ALL
SELECT 'engine', id, type, job_id, activity_id, dad, data, attempts, attempts,
       to_jsonb(last_error), created_at, dead_lettered_at
  FROM hotmesh.engine_stream WHERE dead_lettered_at IS NOT NULL;
COMMENT ON VIEW hotmesh.dead_letters IS 'Messages given up on: poison worker messages and engine steps that kept failing';

CREATE VIEW hotmesh.streams AS
SELECT topic, count(*) FILTER (WHERE dead_lettered_at IS NULL AND visible_at <= now()
                                AND (reserved_until IS NULL OR reserved_until < now())) AS ready,
       count(*) FILTER (WHERE reserved_until >= now() AND dead_lettered_at IS NULL) AS reserved,
       count(*) FILTER (WHERE visible_at > now() AND dead_lettered_at IS NULL
                                AND (reserved_until IS NULL OR reserved_until < now())) AS delayed,
       count(*) FILTER (WHERE dead_lettered_at IS NOT NULL) AS dead
  FROM hotmesh.worker_stream GROUP BY topic;
COMMENT ON VIEW hotmesh.streams IS 'Depth of each worker topic: ready, reserved, delayed and dead-lettered messages';
