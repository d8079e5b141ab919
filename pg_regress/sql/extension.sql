-- CREATE EXTENSION, the SQL API's shape, privileges, errors, and a clean DROP.
CREATE EXTENSION hotmesh;

SELECT hotmesh.version() ~ '^[0-9]+\.[0-9]+\.[0-9]+$' AS semver;

-- every object the extension owns, by kind (a new object must be added here on purpose)
SELECT pg_describe_object(classid, objid, 0) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'hotmesh')
 ORDER BY 1;

-- privileges: monitoring and fault injection are not for PUBLIC
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'hotmesh' ORDER BY 1;

-- the engine worker of this database starts on its own (blocking wait, so deterministic)
SELECT hotmesh.wait_for_engine(20);
SELECT state, pid IS NOT NULL AS has_pid, starts >= 1 AS started
  FROM hotmesh.workers() WHERE database = current_database();

-- bad input gets a clear error
SELECT hotmesh.wait_for_engine(-1);
SELECT hotmesh.wait_for_engine('NaN');
SELECT hotmesh.debug_fail_worker('');

-- DROP EXTENSION leaves nothing behind
DROP EXTENSION hotmesh;
SELECT count(*) AS hotmesh_schemas FROM pg_namespace WHERE nspname = 'hotmesh';
SELECT count(*) AS hotmesh_functions FROM pg_proc WHERE probin LIKE '%hotmesh%';
SELECT hotmesh.version();
