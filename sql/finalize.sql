-- Run last by CREATE EXTENSION: privileges, then tell the launcher.

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
