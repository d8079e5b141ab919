-- hotmesh 0.2.0 -> 0.3.0: the engine. Its tables, its functions, the pubsub procedure
-- and their privileges, exactly as a fresh 0.3.0 install creates them. Released: never
-- edit; a later release adds its own script.

-- the engine's tables (sql/engine.sql as released in 0.3.0)
-- The engine's state: jobs, the state of each activity per dimension, the engine stream,
-- the worker streams, and the signal registry. Written by the engine's functions
-- (hotmesh.pub, hotmesh.respond, hotmesh.signal, … and the engine worker); read with
-- plain SQL.

-- One row per job. `status` is the semaphore: > 0 running, 0 done, -1 pending,
-- <= -100000000 interrupted. A job is live until `expired_at` passes (soft delete);
-- the engine worker deletes expired rows after hotmesh.retention.
CREATE TABLE hotmesh.jobs (
    id              text        PRIMARY KEY,
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
    expired_at      timestamptz
);
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
    PRIMARY KEY (job_id, activity_id, dad)
);
COMMENT ON TABLE hotmesh.activities IS 'The state of each activity of each job, per dimension';

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
    visible_at          timestamptz NOT NULL DEFAULT now(),
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
    dead_lettered_at    timestamptz
);
CREATE INDEX worker_stream_ready ON hotmesh.worker_stream (topic, priority DESC, visible_at, id) WHERE dead_lettered_at IS NULL;
CREATE INDEX worker_stream_job ON hotmesh.worker_stream (job_id);
CREATE INDEX worker_stream_due ON hotmesh.worker_stream (visible_at) WHERE dead_lettered_at IS NULL;
CREATE INDEX worker_stream_reserved ON hotmesh.worker_stream (reserved_until) WHERE reserved_until IS NOT NULL AND dead_lettered_at IS NULL;
COMMENT ON TABLE hotmesh.worker_stream IS 'Messages for workers, per topic: reserved by hotmesh.dequeue, removed by hotmesh.respond';

-- Deleting jobs deletes their activity rows and hook registrations. A statement-level
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

CREATE VIEW hotmesh.dead_letters AS
SELECT 'worker'::text AS stream, id, topic, job_id, activity_id, dad, data, deliveries, attempt,
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
       count(*) FILTER (WHERE visible_at > now() AND dead_lettered_at IS NULL) AS delayed,
       count(*) FILTER (WHERE dead_lettered_at IS NOT NULL) AS dead
  FROM hotmesh.worker_stream GROUP BY topic;
COMMENT ON VIEW hotmesh.streams IS 'Depth of each worker topic: ready, reserved, delayed and dead-lettered messages';

-- the engine's functions
-- src/engine/api.rs:314
-- hotmesh::engine::api::hotmesh::get_status
CREATE  FUNCTION hotmesh."get_status"(
	"job_id" TEXT /* & str */
) RETURNS bigint /* i64 */
STRICT STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'get_status_wrapper';

-- src/engine/api.rs:356
-- hotmesh::engine::api::hotmesh::scrub
CREATE  FUNCTION hotmesh."scrub"(
	"job_id" TEXT /* & str */
) RETURNS bool /* bool */
STRICT SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scrub_wrapper';

-- src/engine/api.rs:365
-- hotmesh::engine::api::hotmesh::wait_for_job
CREATE  FUNCTION hotmesh."wait_for_job"(
	"job_id" TEXT, /* & str */
	"timeout_ms" INT DEFAULT 10000 /* i32 */
) RETURNS jsonb /* JsonB */
STRICT VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'wait_for_job_wrapper';

-- src/engine/api.rs:342
-- hotmesh::engine::api::hotmesh::get_raw
CREATE  FUNCTION hotmesh."get_raw"(
	"job_id" TEXT /* & str */
) RETURNS jsonb /* JsonB */
STRICT STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'get_raw_wrapper';

-- src/engine/api.rs:205
-- hotmesh::engine::api::hotmesh::fail
CREATE  FUNCTION hotmesh."fail"(
	"message_id" bigint, /* i64 */
	"error" jsonb DEFAULT '{}', /* JsonB */
	"code" INT DEFAULT 500 /* i32 */
) RETURNS bool /* bool */
STRICT SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'fail_wrapper';

-- src/engine/api.rs:349
-- hotmesh::engine::api::hotmesh::export
CREATE  FUNCTION hotmesh."export"(
	"job_id" TEXT /* & str */
) RETURNS jsonb /* JsonB */
STRICT STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'export_wrapper';

-- src/engine/api.rs:55
-- hotmesh::engine::api::hotmesh::pub
CREATE  FUNCTION hotmesh."pub"(
	"topic" TEXT, /* & str */
	"data" jsonb DEFAULT '{}', /* JsonB */
	"options" jsonb DEFAULT '{}' /* JsonB */
) RETURNS TEXT /* String */
STRICT SECURITY DEFINER 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'pub_job_wrapper';

-- src/engine/api.rs:186
-- hotmesh::engine::api::hotmesh::retry
CREATE  FUNCTION hotmesh."retry"(
	"message_id" bigint, /* i64 */
	"delay_seconds" double precision DEFAULT NULL, /* Option < f64 > */
	"error" jsonb DEFAULT '{}' /* JsonB */
) RETURNS bool /* bool */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'retry_wrapper';

-- src/engine/api.rs:164
-- hotmesh::engine::api::hotmesh::respond
CREATE  FUNCTION hotmesh."respond"(
	"message_id" bigint, /* i64 */
	"data" jsonb DEFAULT '{}', /* JsonB */
	"status" TEXT DEFAULT 'success', /* & str */
	"code" INT DEFAULT NULL /* Option < i32 > */
) RETURNS bool /* bool */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'respond_wrapper';

-- src/engine/api.rs:335
-- hotmesh::engine::api::hotmesh::get_query_state
CREATE  FUNCTION hotmesh."get_query_state"(
	"job_id" TEXT, /* & str */
	"fields" TEXT[] /* Vec < String > */
) RETURNS jsonb /* JsonB */
STRICT STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'get_query_state_wrapper';

-- src/engine/api.rs:97
-- hotmesh::engine::api::hotmesh::dequeue
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
	"deliveries" INT  /* i32 */
)
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'dequeue_wrapper';

-- src/engine/api.rs:220
-- hotmesh::engine::api::hotmesh::heartbeat
CREATE  FUNCTION hotmesh."heartbeat"(
	"message_id" bigint, /* i64 */
	"reservation_seconds" double precision DEFAULT 30.0 /* f64 */
) RETURNS bool /* bool */
STRICT SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'heartbeat_wrapper';

-- src/engine/api.rs:235
-- hotmesh::engine::api::hotmesh::respond_batch
CREATE  FUNCTION hotmesh."respond_batch"(
	"message_ids" bigint[], /* :: std :: option :: Option < Vec < Option < i64 > > > */
	"data" jsonb[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < JsonB > > > */
	"statuses" TEXT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < String > > > */
	"codes" INT[] DEFAULT NULL /* :: std :: option :: Option < Vec < Option < i32 > > > */
) RETURNS bigint[] /* Vec < i64 > */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'respond_batch_wrapper';

-- hotmesh::engine::api::hotmesh::signal
CREATE  FUNCTION hotmesh."signal"(
	"topic" TEXT, /* & str */
	"data" jsonb DEFAULT '{}', /* JsonB */
	"status" TEXT DEFAULT 'success', /* & str */
	"code" INT DEFAULT NULL /* Option < i32 > */
) RETURNS TEXT /* Option < String > */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'signal_wrapper';

-- src/engine/api.rs:322
-- hotmesh::engine::api::hotmesh::get_state
CREATE  FUNCTION hotmesh."get_state"(
	"topic" TEXT, /* Option < & str > */
	"job_id" TEXT /* & str */
) RETURNS jsonb /* JsonB */
STABLE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'get_state_wrapper';

-- src/engine/api.rs:274
-- hotmesh::engine::api::hotmesh::interrupt
CREATE  FUNCTION hotmesh."interrupt"(
	"topic" TEXT, /* & str */
	"job_id" TEXT, /* & str */
	"options" jsonb DEFAULT '{}' /* JsonB */
) RETURNS bool /* bool */
STRICT SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'interrupt_wrapper';

-- src/engine/api.rs:257
-- hotmesh::engine::api::hotmesh::signal_all
CREATE  FUNCTION hotmesh."signal_all"(
	"topic" TEXT, /* & str */
	"data" jsonb, /* JsonB */
	"key_name" TEXT, /* & str */
	"key_value" TEXT /* & str */
) RETURNS TEXT[] /* Vec < String > */
STRICT SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'signal_all_wrapper';

-- the pubsub procedure (sql/pubsub.sql)
-- Starts a job and waits for its result, for psql users: CALL hotmesh.pubsub('topic', '{"n": 2}');
-- A procedure, because the job must commit before the engine (and workers) can run it;
-- so it cannot be called inside a transaction block, and has no SET clause (that forbids
-- COMMIT): every name in it is schema-qualified. A timeout is an error (code 504).
CREATE PROCEDURE hotmesh.pubsub(topic text, data jsonb DEFAULT '{}', timeout_ms integer DEFAULT 10000,
                                INOUT result jsonb DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    job text;
BEGIN
    job := hotmesh.pub(topic, data);
    COMMIT;
    result := hotmesh.wait_for_job(job, timeout_ms);
END
$$;
COMMENT ON PROCEDURE hotmesh.pubsub(text, jsonb, integer, jsonb) IS 'Starts a job and returns its {metadata, data} when it ends';

-- The engine: its tables are written only by its functions. Those are SECURITY DEFINER
-- with a fixed search_path, and not for PUBLIC: the owner grants them role by role,
-- e.g. a worker role gets dequeue, respond, retry, fail and heartbeat, nothing else.
REVOKE ALL ON hotmesh.jobs, hotmesh.activities, hotmesh.engine_stream, hotmesh.worker_stream,
              hotmesh.signal_hooks, hotmesh.pending_signals, hotmesh.dead_letters, hotmesh.streams FROM PUBLIC;
REVOKE ALL ON FUNCTION
    hotmesh.pub(text, jsonb, jsonb), hotmesh.dequeue(text, integer, double precision, text),
    hotmesh.respond(bigint, jsonb, text, integer), hotmesh.respond_batch(bigint[], jsonb[], text[], integer[]),
    hotmesh.retry(bigint, double precision, jsonb),
    hotmesh.fail(bigint, jsonb, integer), hotmesh.heartbeat(bigint, double precision),
    hotmesh.signal(text, jsonb, text, integer), hotmesh.signal_all(text, jsonb, text, text),
    hotmesh.interrupt(text, text, jsonb), hotmesh.get_status(text), hotmesh.get_state(text, text),
    hotmesh.get_query_state(text, text[]), hotmesh.get_raw(text), hotmesh.export(text),
    hotmesh.scrub(text), hotmesh.wait_for_job(text, integer), hotmesh.jobs_cascade()
  FROM PUBLIC;
REVOKE ALL ON PROCEDURE hotmesh.pubsub(text, jsonb, integer, jsonb) FROM PUBLIC;

-- hotmesh::engine::api::hotmesh::channel
CREATE  FUNCTION hotmesh."channel"(
	"name" TEXT /* & str */
) RETURNS TEXT /* String */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'channel_wrapper';

-- The quorum: every client process (an engine handle or a worker) registers itself and
-- beats; hotmesh.roll_call lists the live ones; hotmesh.throttle slows, pauses or resumes
-- workers, kept in a table so a worker that starts later obeys it too. Changes are
-- announced on the channel hotmesh.channel('hotmesh.quorum.<app>') (payload JSON:
-- {type, ...}).

CREATE TABLE hotmesh.quorum (
    guid         text        PRIMARY KEY,          -- the process's HotMesh guid
    app_id       text        NOT NULL,
    role         text        NOT NULL,             -- engine or worker
    topic        text,                             -- a worker's topic
    version      text,                             -- the app version the process knows
    pid          integer,                          -- the client's process id
    host         text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    processed    bigint      NOT NULL DEFAULT 0,   -- messages a worker answered
    errors       bigint      NOT NULL DEFAULT 0,   -- of those, error answers and failures
    details      jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX quorum_app ON hotmesh.quorum (app_id, heartbeat_at);
COMMENT ON TABLE hotmesh.quorum IS 'Client processes (engines and workers) and their last heartbeat';

-- scope: '*' (every worker of the app), 'topic:<topic>' or 'guid:<guid>'; the narrowest wins
CREATE TABLE hotmesh.throttles (
    app_id     text        NOT NULL,
    scope      text        NOT NULL,
    throttle   integer     NOT NULL,               -- -1 paused, 0 full speed, > 0 ms between messages
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, scope)
);
COMMENT ON TABLE hotmesh.throttles IS 'Persisted throttles: -1 pauses, 0 resumes, > 0 waits that many ms per message';

-- The throttle that applies to a worker of `app` on `topic` with `guid`.
CREATE FUNCTION hotmesh.throttle_for(app text, topic text DEFAULT NULL, guid text DEFAULT NULL)
RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(
        (SELECT t.throttle FROM hotmesh.throttles t WHERE t.app_id = app AND t.scope = 'guid:' || guid),
        (SELECT t.throttle FROM hotmesh.throttles t WHERE t.app_id = app AND t.scope = 'topic:' || topic),
        (SELECT t.throttle FROM hotmesh.throttles t WHERE t.app_id = app AND t.scope = '*'),
        0)
$$;

-- Registers or refreshes a process; returns the throttle it must obey.
CREATE FUNCTION hotmesh.quorum_beat(guid text, app text, role text, topic text DEFAULT NULL,
                                    version text DEFAULT NULL, pid integer DEFAULT NULL,
                                    host text DEFAULT NULL, processed bigint DEFAULT 0,
                                    errors bigint DEFAULT 0, details jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF guid IS NULL OR guid = '' OR app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'invalid argument guid/app: must not be empty' USING ERRCODE = '22023';
    END IF;
    IF role IS NULL OR role NOT IN ('engine', 'worker') THEN
        RAISE EXCEPTION 'invalid argument role: must be ''engine'' or ''worker'', got %', coalesce(role, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO hotmesh.quorum AS q (guid, app_id, role, topic, version, pid, host, processed, errors, details)
    VALUES (guid, app, role, topic, version, pid, host, coalesce(processed, 0), coalesce(errors, 0), coalesce(details, '{}'))
    ON CONFLICT ON CONSTRAINT quorum_pkey DO UPDATE
       SET version = excluded.version, heartbeat_at = now(), processed = excluded.processed,
           errors = excluded.errors, details = excluded.details;
    RETURN hotmesh.throttle_for(app, topic, guid);
END
$$;

-- A process that stops says so (roll_call would drop it once its heartbeat is stale).
CREATE FUNCTION hotmesh.quorum_leave(guid text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH d AS (DELETE FROM hotmesh.quorum q WHERE q.guid = quorum_leave.guid RETURNING 1)
    SELECT count(*) > 0 FROM d
$$;

-- The live processes of `app` (heartbeat within `max_age_seconds`), with each worker's
-- throttle and the depth of its topic's stream (messages not yet answered).
CREATE FUNCTION hotmesh.roll_call(app text, max_age_seconds double precision DEFAULT 30)
RETURNS TABLE (guid text, role text, topic text, version text, pid integer, host text,
               started_at timestamptz, heartbeat_at timestamptz, processed bigint, errors bigint,
               throttle integer, stream_depth bigint, details jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT q.guid, q.role, q.topic, q.version, q.pid, q.host, q.started_at, q.heartbeat_at,
           q.processed, q.errors,
           hotmesh.throttle_for(q.app_id, q.topic, q.guid),
           CASE WHEN q.topic IS NOT NULL THEN
               (SELECT count(*) FROM hotmesh.worker_stream w WHERE w.topic = q.topic AND w.dead_lettered_at IS NULL)
           END,
           q.details
      FROM hotmesh.quorum q
     WHERE q.app_id = app AND q.heartbeat_at > now() - make_interval(secs => max_age_seconds)
     ORDER BY q.role, q.topic NULLS FIRST, q.started_at, q.guid
$$;

-- Sets a throttle (persisted) and announces it: -1 pauses, 0 resumes (and removes the
-- row), > 0 waits that many ms between messages. `guid` or `topic` narrow it.
CREATE FUNCTION hotmesh.throttle(app text, throttle integer, guid text DEFAULT NULL, topic text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s text;
BEGIN
    IF app IS NULL OR app = '' THEN
        RAISE EXCEPTION 'invalid argument app: must not be empty' USING ERRCODE = '22023';
    END IF;
    IF throttle IS NULL OR throttle < -1 THEN
        RAISE EXCEPTION 'invalid argument throttle: must be -1 (pause), 0 (resume) or ms > 0, got %', coalesce(throttle::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF guid IS NOT NULL AND topic IS NOT NULL THEN
        RAISE EXCEPTION 'invalid argument guid/topic: give one or neither' USING ERRCODE = '22023';
    END IF;
    s := CASE WHEN guid IS NOT NULL THEN 'guid:' || guid WHEN topic IS NOT NULL THEN 'topic:' || topic ELSE '*' END;
    IF throttle = 0 THEN
        DELETE FROM hotmesh.throttles t WHERE t.app_id = app AND t.scope = s;
        IF s = '*' THEN
            -- resuming everything clears the narrower throttles too
            DELETE FROM hotmesh.throttles t WHERE t.app_id = app;
        END IF;
    ELSE
        INSERT INTO hotmesh.throttles AS t (app_id, scope, throttle) VALUES (app, s, throttle)
        ON CONFLICT (app_id, scope) DO UPDATE SET throttle = excluded.throttle, updated_at = now();
    END IF;
    PERFORM pg_notify(hotmesh.channel('hotmesh.quorum.' || app),
                      json_build_object('type', 'throttle', 'throttle', throttle, 'guid', guid, 'topic', topic)::text);
    RETURN throttle;
END
$$;

-- Gives a reserved message back at once, not counted as a delivery (a worker that shuts
-- down before it could run it). False if it is not reserved (answered, or gone).
CREATE FUNCTION hotmesh.release(message_id bigint) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH r AS (
        UPDATE hotmesh.worker_stream w
           SET reserved_until = NULL, reserved_by = NULL, deliveries = greatest(w.deliveries - 1, 0)
         WHERE w.id = message_id AND w.dead_lettered_at IS NULL
           AND w.reserved_until IS NOT NULL AND w.reserved_until <> 'infinity'
        RETURNING w.topic)
    SELECT count(*) > 0 FROM r, LATERAL (SELECT pg_notify(hotmesh.channel('hotmesh.work.' || r.topic), r.topic)) n
$$;

-- The quorum: client processes write their rows through the functions only.
REVOKE ALL ON hotmesh.quorum, hotmesh.throttles FROM PUBLIC;
REVOKE ALL ON FUNCTION
    hotmesh.throttle_for(text, text, text),
    hotmesh.quorum_beat(text, text, text, text, text, integer, text, bigint, bigint, jsonb),
    hotmesh.quorum_leave(text), hotmesh.roll_call(text, double precision),
    hotmesh.throttle(text, integer, text, text), hotmesh.release(bigint)
  FROM PUBLIC;
