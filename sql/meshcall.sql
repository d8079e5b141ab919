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

-- MeshCall from SQL. The graphs are the client's (hotmesh.meshcall_app(namespace)); the
-- first call in a namespace deploys and activates them (that needs the `deploy` privilege
-- on the namespace's app: the extension's owner has it).
CREATE FUNCTION hotmesh._meshcall_ready(ns text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    yaml text := hotmesh.meshcall_app(ns);
    v text := substring(yaml FROM 'version: ''([^'']+)''');
BEGIN
    IF ns IS NULL OR ns !~ '^[A-Za-z0-9_.:-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid argument namespace: 1 to 63 letters, digits, _ . : -, got %', coalesce(ns, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT FROM hotmesh.apps a WHERE a.app_id = ns AND a.active_version = v) THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT FROM hotmesh.versions x WHERE x.app_id = ns AND x.version = v) THEN
        PERFORM hotmesh.deploy(yaml);
    END IF;
    PERFORM hotmesh.activate(ns, v);
END;
$$;

-- Seconds of a PostgreSQL interval given as text ('15 minutes', '1 day', '500 ms') or of a
-- number of seconds; `what` names the argument in the error.
CREATE FUNCTION hotmesh._meshcall_seconds(v jsonb, what text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(v) = 'number' THEN
        RETURN (v #>> '{}')::double precision;
    END IF;
    RETURN extract(epoch FROM (v #>> '{}')::interval);
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow
          OR invalid_text_representation OR numeric_value_out_of_range THEN
    RAISE EXCEPTION 'invalid argument %: a number of seconds or an interval (''15 minutes'', ''1 day''), got %', what, v #>> '{}'
        USING ERRCODE = '22023';
END;
$$;

-- Starts cron `id`: the function linked to `topic` runs every `every` (an interval,
-- '30 seconds' or longer than 100 ms, or a five-field cron expression as the original reads
-- them) with `args`. False when a cron with that id runs already (so a start-up script may
-- call it every time). `options`: maxCycles (default 100000), delay (before the first run:
-- seconds or an interval), namespace (default 'meshcall'). In the caller's transaction.
CREATE FUNCTION hotmesh.cron(topic text, id text, every text, args jsonb DEFAULT '{}', options jsonb DEFAULT '{}')
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ns text := coalesce(options ->> 'namespace', 'meshcall');
    secs double precision := 0;
    expr text;
    cycles bigint;
    data jsonb;
BEGIN
    IF topic IS NULL OR topic = '' OR id IS NULL OR id = '' THEN
        RAISE EXCEPTION 'invalid argument topic/id: both are needed' USING ERRCODE = '22023';
    END IF;
    IF every ~ '^(\*|([0-5]?\d)) (\*|([01]?\d|2[0-3])) (\*|([12]?\d|3[01])) (\*|([1-9]|1[0-2])) (\*|([0-6](-[0-6])?(,[0-6])?))$' THEN
        expr := every;
    ELSE
        secs := hotmesh._meshcall_seconds(to_jsonb(every), 'every');
        IF secs IS NULL OR secs < 0.1 THEN
            RAISE EXCEPTION 'invalid argument every: at least 100 ms, or a cron expression (''0 0 * * *''), got %', every
                USING ERRCODE = '22023';
        END IF;
    END IF;
    cycles := coalesce((options ->> 'maxCycles')::bigint, 100000);
    IF cycles < 1 THEN
        RAISE EXCEPTION 'invalid argument options.maxCycles: at least 1' USING ERRCODE = '22023';
    END IF;
    PERFORM hotmesh._meshcall_ready(ns);
    data := jsonb_build_object('topic', topic, 'args', coalesce(args, '{}'), 'interval', secs, 'cron', expr,
                               'maxCycles', cycles,
                               'delay', CASE WHEN options ? 'delay' THEN hotmesh._meshcall_seconds(options -> 'delay', 'options.delay') END);
    FOR attempt IN 1..2 LOOP
        BEGIN
            PERFORM hotmesh.pub(ns || '.cron', data,
                                jsonb_build_object('id', id, 'search', jsonb_build_object('meshcall', 'cron')));
            RETURN true;
        EXCEPTION WHEN unique_violation THEN
            -- an ended cron keeps its id a moment: it gives it up; a running one wins
            IF hotmesh.get_status(id) > 0 THEN
                RETURN false;
            END IF;
            PERFORM hotmesh.scrub(id);
        END;
    END LOOP;
    RETURN false;
END;
$$;

-- Stops cron `id`; false when it was not running.
CREATE FUNCTION hotmesh.cron_stop(id text, namespace text DEFAULT 'meshcall') RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN hotmesh.interrupt(namespace || '.cron', id, '{"throw": false, "suppress": true, "reason": "cron stopped"}');
EXCEPTION WHEN no_data_found THEN
    RETURN false;
END;
$$;

-- A cached call's state: none, running, fresh (ended well, not expired: with its response)
-- or stale (expired or failed). For hotmesh.exec, which may not read the jobs table.
CREATE FUNCTION hotmesh._meshcall_cached(ns text, call_id text, OUT state text, OUT response jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM hotmesh._authorize(ns, 'read');
    SELECT CASE WHEN j.completed_at IS NULL THEN 'running'
                WHEN j.error IS NULL AND (j.expired_at IS NULL OR j.expired_at > now()) THEN 'fresh'
                ELSE 'stale' END,
           j.data -> 'response'
      INTO state, response
      FROM hotmesh.jobs j WHERE j.id = call_id AND j.app_id = ns;
    state := coalesce(state, 'none');
END;
$$;

-- Calls the function linked to `topic` with `args` and returns its result:
-- CALL hotmesh.exec('my.demo.function', '"something"');
-- `options`: id and ttl (seconds or an interval; 'infinity' keeps it until flushed) make it
-- cached, as the client's exec; timeout_ms (default 10000); namespace (default 'meshcall').
-- A procedure, as hotmesh.pubsub: the call must commit before a worker can take it, so it
-- cannot run inside a transaction block; every name in it is schema-qualified.
CREATE PROCEDURE hotmesh.exec(topic text, args jsonb DEFAULT 'null', options jsonb DEFAULT '{}',
                              INOUT result jsonb DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    ns text := COALESCE(options OPERATOR(pg_catalog.->>) 'namespace', 'meshcall');
    id text := options OPERATOR(pg_catalog.->>) 'id';
    ttl double precision := 1;
    timeout integer := COALESCE((options OPERATOR(pg_catalog.->>) 'timeout_ms')::pg_catalog.int4, 10000);
    job text;
    st jsonb;
    err jsonb;
    cached text;
BEGIN
    PERFORM hotmesh._outside_transaction_block('CALL hotmesh.exec');
    PERFORM hotmesh._meshcall_ready(ns);
    IF options OPERATOR(pg_catalog.?) 'ttl' THEN
        ttl := CASE WHEN (options OPERATOR(pg_catalog.->>) 'ttl') OPERATOR(pg_catalog.=) 'infinity' THEN -1
                    ELSE hotmesh._meshcall_seconds(options OPERATOR(pg_catalog.->) 'ttl', 'options.ttl') END;
    END IF;
    IF id IS NOT NULL AND options OPERATOR(pg_catalog.?) 'ttl' THEN
        -- a finished call that has not expired and did not fail: its result
        SELECT c.state, c.response INTO cached, st FROM hotmesh._meshcall_cached(ns, id) c;
        IF cached OPERATOR(pg_catalog.=) 'fresh' THEN
            result := st;
            RETURN;
        ELSIF cached OPERATOR(pg_catalog.=) 'stale' THEN
            PERFORM hotmesh.scrub(id);
            COMMIT;
        END IF;
    END IF;
    BEGIN
        job := hotmesh.pub(ns OPERATOR(pg_catalog.||) '.call',
                           pg_catalog.jsonb_build_object('topic', topic, 'args', args, 'ttl', ttl),
                           CASE WHEN id IS NULL THEN '{}'::pg_catalog.jsonb ELSE pg_catalog.jsonb_build_object('id', id) END);
    EXCEPTION WHEN unique_violation THEN
        -- the same call runs now: wait for it
        job := id;
    END;
    COMMIT;
    st := hotmesh.wait_for_job(job, timeout);
    err := st OPERATOR(pg_catalog.#>) '{metadata,err}';
    IF err IS NOT NULL THEN
        RAISE EXCEPTION '%', COALESCE(err OPERATOR(pg_catalog.->>) 'message', 'the call failed')
            USING DETAIL = err::pg_catalog.text, ERRCODE = 'P0001';
    END IF;
    result := st OPERATOR(pg_catalog.#>) '{data,response}';
END
$$;
COMMENT ON PROCEDURE hotmesh.exec(text, jsonb, jsonb, jsonb) IS 'MeshCall: calls the function linked to a topic and returns its result (cached by id and ttl)';
REVOKE ALL ON FUNCTION hotmesh._meshcall_ready(text), hotmesh.cron(text, text, text, jsonb, jsonb),
                       hotmesh.cron_stop(text, text), hotmesh._meshcall_seconds(jsonb, text),
                       hotmesh._meshcall_cached(text, text) FROM PUBLIC;
REVOKE ALL ON PROCEDURE hotmesh.exec(text, jsonb, jsonb, jsonb) FROM PUBLIC;

-- SQL functions as workers: the engine worker answers the messages of a connected topic
-- itself, calling the function as the role that connected it (src/bgworkers/targets.rs).
-- The function is kept by its signature (text, not an oid: dumps and pg_upgrade keep it).
CREATE TABLE hotmesh.sql_targets (
    topic      text        PRIMARY KEY,
    function   text        NOT NULL,
    run_as     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE hotmesh.sql_targets IS 'Topics whose messages the engine worker answers by calling a SQL function (hotmesh.connect_sql)';

-- Connects `topic` to `fn(args jsonb) → jsonb`: calls and crons of the topic run it in the
-- database, as the session's role (which must be able to execute it). Replaces an earlier
-- connection of the topic.
CREATE FUNCTION hotmesh.connect_sql(topic text, fn regprocedure) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p pg_proc;
    sig text;
BEGIN
    IF topic IS NULL OR topic = '' OR length(topic) > 255 THEN
        RAISE EXCEPTION 'invalid argument topic: 1 to 255 characters' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO p FROM pg_proc WHERE oid = fn;
    IF p.pronargs <> 1 OR p.proargtypes[0] <> 'jsonb'::regtype OR p.prorettype <> 'jsonb'::regtype
       OR p.prokind <> 'f' OR p.proretset THEN
        RAISE EXCEPTION 'invalid argument fn: % must take one jsonb and return one jsonb', fn
            USING ERRCODE = '22023';
    END IF;
    IF NOT has_function_privilege(session_user, fn, 'EXECUTE') THEN
        RAISE EXCEPTION 'permission denied: % may not execute %', session_user, fn USING ERRCODE = '42501';
    END IF;
    sig := format('%I.%I(jsonb)', (SELECT nspname FROM pg_namespace WHERE oid = p.pronamespace), p.proname);
    INSERT INTO hotmesh.sql_targets AS t (topic, function, run_as)
    VALUES (connect_sql.topic, sig, session_user)
    ON CONFLICT (topic) DO UPDATE SET function = excluded.function, run_as = excluded.run_as, created_at = now();
    PERFORM hotmesh.wake_engine();
    RETURN true;
END;
$$;

-- Disconnects `topic`; false when it was not connected.
CREATE FUNCTION hotmesh.disconnect_sql(topic text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (DELETE FROM hotmesh.sql_targets t WHERE t.topic = disconnect_sql.topic RETURNING 1)
    SELECT EXISTS (SELECT FROM gone)
$$;
REVOKE ALL ON hotmesh.sql_targets FROM PUBLIC;
REVOKE ALL ON FUNCTION hotmesh.connect_sql(text, regprocedure), hotmesh.disconnect_sql(text) FROM PUBLIC;
