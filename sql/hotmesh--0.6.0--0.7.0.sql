-- hotmesh 0.6.0 -> 0.7.0: MeshFlow's journal (the view hotmesh.journal), MeshCall from SQL
-- (hotmesh.meshcall_app, hotmesh.exec, hotmesh.cron, hotmesh.cron_stop, the view
-- hotmesh.crons, and SQL functions as workers: hotmesh.sql_targets, hotmesh.connect_sql,
-- hotmesh.disconnect_sql) and MeshData's search indexes (hotmesh.search_fields,
-- hotmesh.create_search_index, hotmesh.find_where, hotmesh.find_where_plan), exactly as a
-- fresh 0.7.0 install creates them (sql/journal.sql, sql/meshcall.sql, sql/meshdata.sql).
-- Released: never edit; a later release adds its own script.

CREATE FUNCTION hotmesh."meshcall_app"(
	"namespace" TEXT DEFAULT 'meshcall' /* & str */
) RETURNS TEXT /* String */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'meshcall_app_wrapper';

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

-- MeshData (docs/meshdata.md): jobs with an `entity` are records; their search fields
-- (`hotmesh.jobs.search`) are what MeshData reads and finds. A search index declares an
-- entity's fields and their types; each declared field gets a real index on the jobs of
-- that entity (a partial expression index), and hotmesh.find_where turns a query into one
-- parameterised statement those indexes serve.

-- The declared fields: TAG (exact values: =, !=, IN, prefix), TEXT (full-text match, and
-- = on the whole value), NUMERIC (comparisons and ranges); sortable ones may order results.
CREATE TABLE hotmesh.search_fields (
    entity     text    NOT NULL,
    field      text    NOT NULL,
    type       text    NOT NULL CHECK (type IN ('TAG', 'TEXT', 'NUMERIC')),
    sortable   boolean NOT NULL DEFAULT false,
    index_name text    NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, field)
);
COMMENT ON TABLE hotmesh.search_fields IS 'MeshData search indexes: the declared fields of each entity, their types and their index';

-- A search value as a number: JSON numbers, and strings that read as one; else null (an
-- index expression must not fail on a record whose field holds something else). Plain SQL
-- with every name qualified and no SET clause, so the planner inlines it (in the index
-- expressions and in the queries alike: they match, and no call per row is made).
CREATE FUNCTION hotmesh.search_number(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'number'
            THEN (v OPERATOR(pg_catalog.#>>) '{}')::pg_catalog.numeric
        WHEN pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'string'
             AND (v OPERATOR(pg_catalog.#>>) '{}') OPERATOR(pg_catalog.~)
                 '^\s*[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]{1,3})?\s*$'
            THEN (v OPERATOR(pg_catalog.#>>) '{}')::pg_catalog.numeric
    END
$$;

-- A search value as text to match: the same configuration for the index and the query.
CREATE FUNCTION hotmesh.search_text(v jsonb) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.to_tsvector('pg_catalog.simple'::pg_catalog.regconfig,
                                  COALESCE(v OPERATOR(pg_catalog.#>>) '{}', ''))
$$;

-- Declares `entity`'s fields and builds their indexes (idempotent: a field declared again
-- with the same type keeps its index; another type is an error). `schema`:
-- {"field": {"type": "TAG" | "TEXT" | "NUMERIC", "sortable": true}, ...}. Returns the
-- fields and their indexes. CREATE INDEX on a large jobs table takes a while and blocks
-- writes to it meanwhile: declare fields before the records pile up.
CREATE FUNCTION hotmesh.create_search_index(entity text, schema jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    f record;
    kind text;
    sortable boolean;
    known hotmesh.search_fields;
    idx text;
    expr text;
    method text;
    out jsonb := '{}';
BEGIN
    IF entity IS NULL OR entity !~ '^[A-Za-z0-9_.:-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid argument entity: 1 to 63 letters, digits, _ . : -, got %', coalesce(entity, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF schema IS NULL OR jsonb_typeof(schema) <> 'object' OR schema = '{}' THEN
        RAISE EXCEPTION 'invalid argument schema: an object of fields, {"field": {"type": "TAG"}}'
            USING ERRCODE = '22023';
    END IF;
    IF (SELECT count(*) FROM jsonb_object_keys(schema)) > 64 THEN
        RAISE EXCEPTION 'invalid argument schema: at most 64 fields' USING ERRCODE = '22023';
    END IF;
    FOR f IN SELECT key, value FROM jsonb_each(schema) ORDER BY key LOOP
        IF f.key !~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$' THEN
            RAISE EXCEPTION 'invalid argument schema.%: a field name is a letter or _, then letters, digits or _ (63 at most)', f.key
                USING ERRCODE = '22023';
        END IF;
        kind := upper(coalesce(CASE WHEN jsonb_typeof(f.value) = 'object' THEN f.value ->> 'type' END, ''));
        IF kind NOT IN ('TAG', 'TEXT', 'NUMERIC') THEN
            RAISE EXCEPTION 'invalid argument schema.%.type: TAG, TEXT or NUMERIC, got %', f.key, coalesce(f.value ->> 'type', 'nothing')
                USING ERRCODE = '22023';
        END IF;
        sortable := coalesce((f.value ->> 'sortable')::boolean, false);
        SELECT * INTO known FROM hotmesh.search_fields s WHERE s.entity = create_search_index.entity AND s.field = f.key;
        IF FOUND AND known.type <> kind THEN
            RAISE EXCEPTION 'search field %.% is declared as %, not %', entity, f.key, known.type, kind
                USING ERRCODE = '42710';
        END IF;
        idx := 'jobs_search_' || substr(md5(entity || '/' || f.key || '/' || kind), 1, 20);
        expr := CASE kind
            WHEN 'TAG' THEN format('(search ->> %L)', f.key)
            WHEN 'NUMERIC' THEN format('hotmesh.search_number(search -> %L)', f.key)
            ELSE format('hotmesh.search_text(search -> %L)', f.key) END;
        method := CASE kind WHEN 'TEXT' THEN 'gin' ELSE 'btree' END;
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON hotmesh.jobs USING %s ((%s)) WHERE entity = %L',
                       idx, method, expr, entity);
        INSERT INTO hotmesh.search_fields AS s (entity, field, type, sortable, index_name)
        VALUES (entity, f.key, kind, sortable, idx)
        ON CONFLICT (entity, field) DO UPDATE SET sortable = s.sortable OR excluded.sortable;
        out := out || jsonb_build_object(f.key, jsonb_build_object('type', kind, 'sortable', sortable, 'index', idx));
    END LOOP;
    RETURN out;
END;
$$;

-- The records of `entity` whose search fields match `query`, an array of conditions
-- {"field": f, "is": op, "value": v} (all must hold): op is one of = != < <= > >=,
-- "[]" (a range: value [low, high], both included), "in" (value: a list), "prefix" (TAG:
-- the value starts with it) or "match" (TEXT: every word of the value, full-text).
-- `options`: {"limit": {"start": 0, "size": 100}, "sort": {"field": f, "order": "asc" |
-- "desc"} (a sortable field; default: newest record first), "return": [fields]}. Each row:
-- the record's id and its search fields (those `return` names, else all). One statement,
-- its values passed as parameters, its field names as literals (so the planner matches
-- the declared indexes). An undeclared field is compared as TAG, without an index.
CREATE FUNCTION hotmesh._find_where_sql(entity text, query jsonb, options jsonb,
                                        OUT statement text, OUT vals jsonb, OUT ret jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c jsonb;
    i integer := 0;
    fname text;
    op text;
    kind text;
    lhs text;
    conds text[] := ARRAY['j.entity = $1'];
    v jsonb;
    sort_field text := options #>> '{sort,field}';
    sort_dir text := lower(coalesce(options #>> '{sort,order}', 'asc'));
    order_by text := 'j.created_at DESC, j.id';
    start bigint := 0;
    size bigint := 100;
BEGIN
    vals := '[]';
    ret := options -> 'return';
    IF entity IS NULL THEN
        RAISE EXCEPTION 'invalid argument entity: must not be null' USING ERRCODE = '22023';
    END IF;
    IF query IS NULL OR jsonb_typeof(query) <> 'array' THEN
        RAISE EXCEPTION 'invalid argument query: an array of {"field", "is", "value"}' USING ERRCODE = '22023';
    END IF;
    IF jsonb_array_length(query) > 32 THEN
        RAISE EXCEPTION 'invalid argument query: at most 32 conditions' USING ERRCODE = '22023';
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'invalid argument options: an object' USING ERRCODE = '22023';
    END IF;
    FOR c IN SELECT value FROM jsonb_array_elements(query) LOOP
        i := i + 1;
        fname := c ->> 'field';
        op := lower(coalesce(c ->> 'is', '='));
        v := c -> 'value';
        IF fname IS NULL OR fname !~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$' THEN
            RAISE EXCEPTION 'invalid argument query[%].field: a field name, got %', i - 1, coalesce(c ->> 'field', 'nothing')
                USING ERRCODE = '22023';
        END IF;
        IF v IS NULL OR v = 'null' THEN
            RAISE EXCEPTION 'invalid argument query[%].value: missing', i - 1 USING ERRCODE = '22023';
        END IF;
        SELECT s.type INTO kind FROM hotmesh.search_fields s WHERE s.entity = $1 AND s.field = fname;
        kind := coalesce(kind, 'TAG');
        lhs := CASE kind
            WHEN 'NUMERIC' THEN format('hotmesh.search_number(j.search -> %L)', fname)
            WHEN 'TEXT' THEN format('hotmesh.search_text(j.search -> %L)', fname)
            ELSE format('(j.search ->> %L)', fname) END;
        -- each value is element k of parameter $2 (a jsonb array)
        vals := vals || jsonb_build_array(v);
        IF op IN ('=', '!=', '<', '<=', '>', '>=') THEN
            IF kind = 'NUMERIC' THEN
                conds := conds || format('%s %s hotmesh.search_number($2 -> %s)', lhs, CASE op WHEN '!=' THEN '<>' ELSE op END, jsonb_array_length(vals) - 1);
            ELSIF kind = 'TEXT' AND op IN ('=', '!=') THEN
                conds := conds || format('(j.search ->> %L) %s ($2 ->> %s)', fname, CASE op WHEN '!=' THEN '<>' ELSE op END, jsonb_array_length(vals) - 1);
            ELSIF kind = 'TAG' THEN
                conds := conds || format('%s %s ($2 ->> %s)', lhs, CASE op WHEN '!=' THEN '<>' ELSE op END, jsonb_array_length(vals) - 1);
            ELSE
                RAISE EXCEPTION 'invalid argument query[%].is: % does not compare a TEXT field (use match, = or !=)', i - 1, op
                    USING ERRCODE = '22023';
            END IF;
        ELSIF op = '[]' THEN
            IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) <> 2 THEN
                RAISE EXCEPTION 'invalid argument query[%].value: a range is [low, high]', i - 1 USING ERRCODE = '22023';
            END IF;
            IF kind = 'NUMERIC' THEN
                conds := conds || format('%s BETWEEN hotmesh.search_number($2 -> %s -> 0) AND hotmesh.search_number($2 -> %s -> 1)',
                                         lhs, jsonb_array_length(vals) - 1, jsonb_array_length(vals) - 1);
            ELSE
                conds := conds || format('(j.search ->> %L) BETWEEN ($2 -> %s ->> 0) AND ($2 -> %s ->> 1)',
                                         fname, jsonb_array_length(vals) - 1, jsonb_array_length(vals) - 1);
            END IF;
        ELSIF op = 'in' THEN
            IF jsonb_typeof(v) <> 'array' THEN
                RAISE EXCEPTION 'invalid argument query[%].value: in takes a list', i - 1 USING ERRCODE = '22023';
            END IF;
            IF kind = 'NUMERIC' THEN
                conds := conds || format('%s IN (SELECT hotmesh.search_number(x) FROM jsonb_array_elements($2 -> %s) x)', lhs, jsonb_array_length(vals) - 1);
            ELSE
                conds := conds || format('(j.search ->> %L) IN (SELECT x FROM jsonb_array_elements_text($2 -> %s) x)', fname, jsonb_array_length(vals) - 1);
            END IF;
        ELSIF op = 'prefix' AND kind = 'TAG' THEN
            conds := conds || format('starts_with(%s, ($2 ->> %s))', lhs, jsonb_array_length(vals) - 1);
        ELSIF op = 'match' AND kind = 'TEXT' THEN
            conds := conds || format('%s @@ plainto_tsquery(''pg_catalog.simple''::regconfig, ($2 ->> %s))', lhs, jsonb_array_length(vals) - 1);
        ELSE
            RAISE EXCEPTION 'invalid argument query[%].is: % (=, !=, <, <=, >, >=, [], in; prefix for TAG fields, match for TEXT fields)', i - 1, op
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    IF sort_field IS NOT NULL THEN
        SELECT s.type INTO kind FROM hotmesh.search_fields s
         WHERE s.entity = $1 AND s.field = sort_field AND s.sortable;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'invalid argument options.sort.field: % is not a sortable field of %', sort_field, entity
                USING ERRCODE = '22023';
        END IF;
        IF sort_dir NOT IN ('asc', 'desc') THEN
            RAISE EXCEPTION 'invalid argument options.sort.order: asc or desc' USING ERRCODE = '22023';
        END IF;
        order_by := format('%s %s NULLS LAST, j.id',
                           CASE kind WHEN 'NUMERIC' THEN format('hotmesh.search_number(j.search -> %L)', sort_field)
                                     ELSE format('(j.search ->> %L)', sort_field) END,
                           sort_dir);
    END IF;
    IF options -> 'limit' IS NOT NULL THEN
        start := coalesce((options #>> '{limit,start}')::bigint, 0);
        size := coalesce((options #>> '{limit,size}')::bigint, 100);
    END IF;
    IF start < 0 OR size < 0 OR size > 10000 THEN
        RAISE EXCEPTION 'invalid argument options.limit: start >= 0, size 0 to 10000' USING ERRCODE = '22023';
    END IF;
    IF ret IS NOT NULL AND (jsonb_typeof(ret) <> 'array' OR EXISTS (
            SELECT FROM jsonb_array_elements(ret) r WHERE jsonb_typeof(r) <> 'string')) THEN
        RAISE EXCEPTION 'invalid argument options.return: a list of field names' USING ERRCODE = '22023';
    END IF;
    statement := format('SELECT j.id, CASE WHEN $3 IS NULL THEN j.search
                        ELSE (SELECT coalesce(pg_catalog.jsonb_object_agg(r, j.search -> r), ''{}'') FROM pg_catalog.jsonb_array_elements_text($3) r) END
                     FROM hotmesh.jobs j WHERE %s ORDER BY %s LIMIT %s OFFSET %s',
                  array_to_string(conds, ' AND '), order_by, size, start);
END;
$$;

CREATE FUNCTION hotmesh.find_where(entity text, query jsonb DEFAULT '[]', options jsonb DEFAULT '{}')
RETURNS TABLE (id text, fields jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q record;
BEGIN
    q := hotmesh._find_where_sql(entity, query, options);
    RETURN QUERY EXECUTE q.statement USING entity, q.vals, q.ret;
END;
$$;

-- The plan of that statement with these values (EXPLAIN): to see which index a query uses.
CREATE FUNCTION hotmesh.find_where_plan(entity text, query jsonb DEFAULT '[]', options jsonb DEFAULT '{}')
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q record;
BEGIN
    q := hotmesh._find_where_sql(entity, query, options);
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || q.statement USING entity, q.vals, q.ret;
END;
$$;
REVOKE ALL ON hotmesh.search_fields FROM PUBLIC;
REVOKE ALL ON FUNCTION hotmesh.create_search_index(text, jsonb), hotmesh.find_where(text, jsonb, jsonb),
                       hotmesh.find_where_plan(text, jsonb, jsonb), hotmesh._find_where_sql(text, jsonb, jsonb)
  FROM PUBLIC;
