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
