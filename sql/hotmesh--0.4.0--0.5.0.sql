-- hotmesh 0.4.0 -> 0.5.0: hardening. Per-app privileges (hotmesh.grant_app /
-- revoke_app, the grants view, every function checks the caller's app); deploy and
-- activate run as SECURITY DEFINER; worker answers and heartbeats carry the reservation
-- dequeue handed out, so a late one is refused. Exactly as a fresh 0.5.0 install
-- creates them. Released: never edit; a later release adds its own script.

-- each hand-out's token
ALTER TABLE hotmesh.worker_stream ADD COLUMN reservation bigint;

-- housekeeping removes expired early signals through an index
CREATE INDEX pending_signals_expires ON hotmesh.pending_signals (expires_at);

-- privileges per app (sql/grants.sql as released in 0.5.0)
-- Privileges per app (docs/security.md). Roles are granted what they may do with an
-- app, not functions: `deploy` (deploy and activate its versions, throttle it, scrub
-- its jobs), `start` (start its jobs, signal and interrupt them), `work` (take and answer
-- the messages of its worker activities), `read` (read its jobs and stats). The app
-- '*' means every app. Superusers and members of the extension's owner may do all.
-- hotmesh.grant_app also grants EXECUTE on the functions that privilege needs, so one call
-- sets a role up.
CREATE TABLE hotmesh.app_grants (
    app_id     text        NOT NULL,   -- an app id, or '*' for every app
    grantee    oid         NOT NULL,   -- the role (pg_authid); its members inherit
    privilege  text        NOT NULL CHECK (privilege IN ('deploy', 'start', 'work', 'read')),
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, privilege, grantee)
);
COMMENT ON TABLE hotmesh.app_grants IS 'What roles may do with each app: deploy, start, work, read (hotmesh.grant_app / hotmesh.revoke_app)';

-- The routines a privilege needs EXECUTE on.
CREATE FUNCTION hotmesh._privilege_routines(privilege text) RETURNS SETOF regprocedure
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.oid::regprocedure FROM pg_proc p
     WHERE p.pronamespace = 'hotmesh'::regnamespace
       AND p.proname = ANY (CASE privilege
             WHEN 'deploy' THEN ARRAY['deploy', 'activate', 'scrub', 'throttle']
             WHEN 'start'  THEN ARRAY['pub', 'pubsub', 'signal', 'signal_all', 'interrupt']
             WHEN 'work'   THEN ARRAY['dequeue', 'respond', 'respond_batch', 'retry', 'fail', 'heartbeat',
                                      'release', 'quorum_beat', 'quorum_leave', 'throttle_for']
             WHEN 'read'   THEN ARRAY['get_status', 'get_state', 'get_query_state', 'get_raw', 'export',
                                      'wait_for_job', 'get_stats', 'get_ids', 'roll_call']
           END)
$$;

-- Lets `role` do `privilege` ('deploy', 'start', 'work' or 'read') with app `app_id`
-- ('*': every app), and grants it EXECUTE on the functions that needs. True if it was
-- new. Only superusers and the extension's owner call it (EXECUTE is not granted).
CREATE FUNCTION hotmesh.grant_app(app_id text, role regrole, privilege text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r regprocedure;
    added boolean;
BEGIN
    IF privilege IS NULL OR privilege NOT IN ('deploy', 'start', 'work', 'read') THEN
        RAISE EXCEPTION 'invalid argument privilege: must be deploy, start, work or read, got %', coalesce(privilege, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF app_id IS NULL OR app_id = '' OR role IS NULL THEN
        RAISE EXCEPTION 'invalid argument app_id/role: must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO hotmesh.app_grants AS g (app_id, grantee, privilege)
    VALUES (grant_app.app_id, grant_app.role::oid, grant_app.privilege)
    ON CONFLICT DO NOTHING;
    added := FOUND;
    FOR r IN SELECT * FROM hotmesh._privilege_routines(privilege) LOOP
        EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I', r, role::text);
    END LOOP;
    RETURN added;
END
$$;

-- Takes back what hotmesh.grant_app gave; EXECUTE goes too once the role holds that
-- privilege on no app. True if there was such a grant.
CREATE FUNCTION hotmesh.revoke_app(app_id text, role regrole, privilege text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r regprocedure;
    removed boolean;
BEGIN
    DELETE FROM hotmesh.app_grants g
     WHERE g.app_id = revoke_app.app_id AND g.grantee = revoke_app.role::oid AND g.privilege = revoke_app.privilege;
    removed := FOUND;
    IF NOT EXISTS (SELECT 1 FROM hotmesh.app_grants g WHERE g.grantee = revoke_app.role::oid AND g.privilege = revoke_app.privilege) THEN
        FOR r IN SELECT * FROM hotmesh._privilege_routines(privilege) LOOP
            EXECUTE format('REVOKE EXECUTE ON ROUTINE %s FROM %I', r, role::text);
        END LOOP;
    END IF;
    RETURN removed;
END
$$;

-- Who may do what, by role name (a dropped role's grants show its oid).
CREATE VIEW hotmesh.grants AS
SELECT g.app_id, coalesce(r.rolname, g.grantee::pg_catalog.text) AS role, g.privilege, g.granted_at
  FROM hotmesh.app_grants g LEFT JOIN pg_catalog.pg_roles r ON r.oid = g.grantee;
COMMENT ON VIEW hotmesh.grants IS 'Per-app privileges of roles (hotmesh.grant_app)';

-- Roles that could call the engine's functions keep what they could do, on every app:
-- until now EXECUTE alone was the privilege. Read before those functions are replaced
-- (dropping a function drops its grants); EXECUTE is granted again below.
INSERT INTO hotmesh.app_grants (app_id, grantee, privilege)
SELECT DISTINCT '*', r.oid, p.privilege
  FROM pg_catalog.pg_roles r
 CROSS JOIN (VALUES ('deploy', 'hotmesh.deploy(text)'), ('start', 'hotmesh.pub(text, jsonb, jsonb)'),
                    ('work', 'hotmesh.dequeue(text, integer, double precision, text)'),
                    ('read', 'hotmesh.get_state(text, text)')) AS p(privilege, routine)
 WHERE NOT r.rolsuper AND r.rolname NOT LIKE 'pg\_%'
   AND pg_catalog.has_function_privilege(r.oid, p.routine, 'EXECUTE')
ON CONFLICT DO NOTHING;

-- the worker protocol: new signatures (the reservation), so dropped and created again
DROP FUNCTION hotmesh.dequeue(text, integer, double precision, text);
DROP FUNCTION hotmesh.respond(bigint, jsonb, text, integer);
DROP FUNCTION hotmesh.respond_batch(bigint[], jsonb[], text[], integer[]);
DROP FUNCTION hotmesh.retry(bigint, double precision, jsonb);
DROP FUNCTION hotmesh.fail(bigint, jsonb, integer);
DROP FUNCTION hotmesh.heartbeat(bigint, double precision);
DROP FUNCTION hotmesh.release(bigint);

CREATE FUNCTION hotmesh."dequeue"(
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
	"metadata" jsonb,  /* JsonB */
	"reservation" bigint  /* i64 */
)
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'dequeue_wrapper';

CREATE FUNCTION hotmesh."respond"(
	"message_id" bigint, /* i64 */
	"data" jsonb DEFAULT '{}', /* Json */
	"status" TEXT DEFAULT 'success', /* & str */
	"code" INT DEFAULT NULL, /* Option < i32 > */
	"reservation" bigint DEFAULT NULL /* Option < i64 > */
) RETURNS bool /* bool */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'respond_wrapper';

CREATE FUNCTION hotmesh."respond_batch"(
	"message_ids" bigint[], /* :: std :: option :: Option < Vec < Option < i64 > > > */
	"data" jsonb[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < Json > > > */
	"statuses" TEXT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < String > > > */
	"codes" INT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < i32 > > > */
	"reservations" bigint[] DEFAULT NULL /* :: std :: option :: Option < Vec < Option < i64 > > > */
) RETURNS bigint[] /* Vec < i64 > */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'respond_batch_wrapper';

CREATE FUNCTION hotmesh."retry"(
	"message_id" bigint, /* i64 */
	"delay_seconds" double precision DEFAULT NULL, /* Option < f64 > */
	"error" jsonb DEFAULT '{}', /* Json */
	"reservation" bigint DEFAULT NULL /* Option < i64 > */
) RETURNS bool /* bool */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'retry_wrapper';

CREATE FUNCTION hotmesh."fail"(
	"message_id" bigint, /* i64 */
	"error" jsonb DEFAULT '{}', /* Json */
	"code" INT DEFAULT 500, /* i32 */
	"reservation" bigint DEFAULT NULL /* Option < i64 > */
) RETURNS bool /* bool */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'fail_wrapper';

CREATE FUNCTION hotmesh."heartbeat"(
	"message_id" bigint, /* i64 */
	"reservation_seconds" double precision DEFAULT 30.0, /* f64 */
	"reservation" bigint DEFAULT NULL /* Option < i64 > */
) RETURNS bool /* bool */
SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'heartbeat_wrapper';

-- the privilege check the SQL-language functions call
CREATE FUNCTION hotmesh."_authorize"(
	"app" TEXT, /* Option < & str > */
	"privilege" TEXT /* & str */
) RETURNS void
STABLE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'authorize_wrapper';

-- deploy and activate write the catalog: SECURITY DEFINER, as every engine function
CREATE OR REPLACE FUNCTION hotmesh."deploy"(
	"manifest" TEXT /* & str */
) RETURNS jsonb /* JsonB */
STRICT VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'deploy_wrapper';

CREATE OR REPLACE FUNCTION hotmesh."activate"(
	"app_id" TEXT, /* & str */
	"version" TEXT /* & str */
) RETURNS bool /* bool */
STRICT VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'activate_wrapper';

-- the quorum and release check the caller's app (sql/quorum.sql as released in 0.5.0)
CREATE OR REPLACE FUNCTION hotmesh.throttle_for(app text, topic text DEFAULT NULL, guid text DEFAULT NULL)
RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT hotmesh._authorize(app, 'any');
    SELECT coalesce(
        (SELECT t.throttle FROM hotmesh.throttles t WHERE t.app_id = app AND t.scope = 'guid:' || guid),
        (SELECT t.throttle FROM hotmesh.throttles t WHERE t.app_id = app AND t.scope = 'topic:' || topic),
        (SELECT t.throttle FROM hotmesh.throttles t WHERE t.app_id = app AND t.scope = '*'),
        0)
$$;

CREATE OR REPLACE FUNCTION hotmesh.quorum_beat(guid text, app text, role text, topic text DEFAULT NULL,
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

CREATE OR REPLACE FUNCTION hotmesh.quorum_leave(guid text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT hotmesh._authorize(q.app_id, 'any') FROM hotmesh.quorum q WHERE q.guid = quorum_leave.guid;
    WITH d AS (DELETE FROM hotmesh.quorum q WHERE q.guid = quorum_leave.guid RETURNING 1)
    SELECT count(*) > 0 FROM d
$$;

CREATE OR REPLACE FUNCTION hotmesh.roll_call(app text, max_age_seconds double precision DEFAULT 30)
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

CREATE OR REPLACE FUNCTION hotmesh.throttle(app text, throttle integer, guid text DEFAULT NULL, topic text DEFAULT NULL)
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
    PERFORM pg_notify(hotmesh.channel('hotmesh.quorum.' || app),
                      json_build_object('type', 'throttle', 'throttle', throttle, 'guid', guid, 'topic', topic)::text);
    RETURN throttle;
END
$$;

CREATE FUNCTION hotmesh.release(message_id bigint, reservation bigint DEFAULT NULL) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT hotmesh._authorize(w.app_id, 'work') FROM hotmesh.worker_stream w WHERE w.id = message_id;
    WITH r AS (
        UPDATE hotmesh.worker_stream w
           SET reserved_until = NULL, reserved_by = NULL, reservation = NULL, deliveries = greatest(w.deliveries - 1, 0)
         WHERE w.id = message_id AND w.dead_lettered_at IS NULL
           AND w.reserved_until IS NOT NULL AND w.reserved_until <> 'infinity'
           AND (release.reservation IS NULL OR w.reservation = release.reservation)
        RETURNING w.topic)
    SELECT count(*) > 0 FROM r, LATERAL (SELECT pg_notify(hotmesh.channel('hotmesh.work.' || r.topic), r.topic)) n
$$;

-- privileges (sql/finalize.sql as released in 0.5.0)
REVOKE ALL ON FUNCTION
    hotmesh.dequeue(text, integer, double precision, text),
    hotmesh.respond(bigint, jsonb, text, integer, bigint),
    hotmesh.respond_batch(bigint[], jsonb[], text[], integer[], bigint[]),
    hotmesh.retry(bigint, double precision, jsonb, bigint),
    hotmesh.fail(bigint, jsonb, integer, bigint), hotmesh.heartbeat(bigint, double precision, bigint),
    hotmesh.release(bigint, bigint)
  FROM PUBLIC;
REVOKE ALL ON hotmesh.app_grants FROM PUBLIC;
REVOKE ALL ON FUNCTION hotmesh.grant_app(text, regrole, text), hotmesh.revoke_app(text, regrole, text),
                       hotmesh._privilege_routines(text)
  FROM PUBLIC;
GRANT SELECT ON hotmesh.grants TO PUBLIC;

-- the roles kept above get EXECUTE on what their privileges need, the new functions too
SELECT hotmesh.grant_app(g.app_id, g.grantee::pg_catalog.regrole, g.privilege) FROM hotmesh.app_grants g;
