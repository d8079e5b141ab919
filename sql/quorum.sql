-- The quorum: every client process (an engine handle or a worker) registers itself and
-- beats; hotmesh.roll_call lists the live ones; hotmesh.throttle slows, pauses or resumes
-- workers, kept in a table so a worker that starts later obeys it too. Changes are
-- announced on the channel hotmesh.quorum_channel(<app>) (payload JSON:
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
    SELECT hotmesh._authorize(app, 'any');
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
    -- a worker works on the app; a client (engine) may hold any privilege on it
    PERFORM hotmesh._authorize(app, CASE role WHEN 'worker' THEN 'work' ELSE 'any' END);
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
    SELECT hotmesh._authorize(q.app_id, 'any') FROM hotmesh.quorum q WHERE q.guid = quorum_leave.guid;
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
    SELECT hotmesh._authorize(app, 'read');
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
    PERFORM hotmesh._authorize(app, 'deploy');
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
    PERFORM pg_notify(hotmesh.quorum_channel(app),
                      json_build_object('type', 'throttle', 'throttle', throttle, 'guid', guid, 'topic', topic)::text);
    RETURN throttle;
END
$$;

-- Gives a reserved message back at once, not counted as a delivery (a worker that shuts
-- down before it could run it). False if it is not reserved (answered, or gone).
CREATE FUNCTION hotmesh.release(message_id bigint, reservation bigint DEFAULT NULL) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT hotmesh._authorize(w.app_id, 'work') FROM hotmesh.worker_stream w WHERE w.id = message_id;
    WITH r AS (
        UPDATE hotmesh.worker_stream w
           SET reserved_until = NULL, reserved_by = NULL, reservation = NULL, deliveries = greatest(w.deliveries - 1, 0),
               visible_at = now()
         WHERE w.id = message_id AND w.dead_lettered_at IS NULL
           AND w.reserved_until IS NOT NULL AND w.reserved_until <> 'infinity'
           AND (release.reservation IS NULL OR w.reservation = release.reservation)
        RETURNING w.topic)
    SELECT count(*) > 0 FROM r, LATERAL (SELECT pg_notify(hotmesh.work_channel(r.topic), r.topic)) n
$$;
