-- Run last by CREATE EXTENSION: privileges, then tell the launcher.

-- Text reaches the engine as Rust strings, which are UTF-8: in a database of another
-- encoding a non-ASCII argument could not be read. Refused here, once, with why.
DO $$
BEGIN
  IF pg_catalog.getdatabaseencoding() <> 'UTF8' THEN
    RAISE EXCEPTION 'hotmesh needs a database with encoding UTF8; this one is %', pg_catalog.getdatabaseencoding()
      USING ERRCODE = 'feature_not_supported',
            HINT = 'CREATE DATABASE ... ENCODING ''UTF8'' TEMPLATE template0, then CREATE EXTENSION hotmesh there.';
  END IF;
END $$;

COMMENT ON SCHEMA hotmesh IS 'HotMesh durable workflow engine';

-- Monitoring functions show every database's worker: monitoring roles only.
REVOKE ALL ON FUNCTION hotmesh.workers() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hotmesh.workers() TO pg_monitor;
-- Fault injection is for administrators.
REVOKE ALL ON FUNCTION hotmesh.debug_fail_worker(text) FROM PUBLIC;
-- Internal.
REVOKE ALL ON FUNCTION hotmesh._extension_created() FROM PUBLIC;

GRANT USAGE ON SCHEMA hotmesh TO PUBLIC;

-- Start this database's engine worker once the CREATE EXTENSION commits.
SELECT hotmesh._extension_created();

-- The catalog: readable by everyone through the views; changed only through
-- hotmesh.deploy / hotmesh.activate, by roles the owner grants them to.
REVOKE ALL ON hotmesh.app_versions, hotmesh.app_active, hotmesh.app_topics FROM PUBLIC;
GRANT SELECT ON hotmesh.apps, hotmesh.versions, hotmesh.graphs, hotmesh.topics TO PUBLIC;
REVOKE ALL ON FUNCTION hotmesh.deploy(text), hotmesh.activate(text, text) FROM PUBLIC;

-- The engine: its tables are written only by its functions. Those are SECURITY DEFINER
-- with a fixed search_path, and not for PUBLIC: hotmesh.grant_app(app, role, privilege)
-- grants a role what it may do with one app (and EXECUTE on what that needs); every
-- function checks the app (docs/security.md).
REVOKE ALL ON hotmesh.jobs, hotmesh.activities, hotmesh.engine_stream, hotmesh.worker_stream,
              hotmesh.signal_hooks, hotmesh.pending_signals, hotmesh.dead_letters, hotmesh.streams,
              hotmesh.stats, hotmesh.ring FROM PUBLIC;
REVOKE ALL ON FUNCTION hotmesh.current_part(), hotmesh.turn_ring(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION
    hotmesh.pub(text, jsonb, jsonb), hotmesh.dequeue(text, integer, double precision, text),
    hotmesh.respond(bigint, jsonb, text, integer, bigint),
    hotmesh.respond_batch(bigint[], jsonb[], text[], integer[], bigint[]),
    hotmesh.retry(bigint, double precision, jsonb, bigint),
    hotmesh.fail(bigint, jsonb, integer, bigint), hotmesh.heartbeat(bigint, double precision, bigint),
    hotmesh.signal(text, jsonb, text, integer), hotmesh.signal_all(text, jsonb, text, text),
    hotmesh.interrupt(text, text, jsonb), hotmesh.get_status(text), hotmesh.get_state(text, text),
    hotmesh.get_query_state(text, text[]), hotmesh.get_raw(text), hotmesh.export(text),
    hotmesh.scrub(text), hotmesh.wait_for_job(text, integer), hotmesh.jobs_cascade(),
    hotmesh.get_stats(text, jsonb), hotmesh.get_ids(text, jsonb, text[])
  FROM PUBLIC;
REVOKE ALL ON PROCEDURE hotmesh.pubsub(text, jsonb, integer, jsonb) FROM PUBLIC;
-- The quorum: client processes write their rows through the functions only.
REVOKE ALL ON hotmesh.quorum, hotmesh.throttles FROM PUBLIC;
REVOKE ALL ON FUNCTION
    hotmesh.throttle_for(text, text, text),
    hotmesh.quorum_beat(text, text, text, text, text, integer, text, bigint, bigint, jsonb),
    hotmesh.quorum_leave(text), hotmesh.roll_call(text, double precision),
    hotmesh.throttle(text, integer, text, text), hotmesh.release(bigint, bigint)
  FROM PUBLIC;
-- Privileges per app: managed by superusers and the extension's owner only; the
-- grants view is readable by all (whoever may do what is not a secret in a database
-- where roles are visible in pg_roles).
REVOKE ALL ON hotmesh.app_grants FROM PUBLIC;
REVOKE ALL ON FUNCTION hotmesh.grant_app(text, regrole, text), hotmesh.revoke_app(text, regrole, text),
                       hotmesh._privilege_routines(text)
  FROM PUBLIC;
GRANT SELECT ON hotmesh.grants TO PUBLIC;
