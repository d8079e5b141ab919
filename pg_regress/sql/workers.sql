-- The engine worker catches errors and goes on; wake-ups are counted.
CREATE EXTENSION hotmesh;
SELECT hotmesh.wait_for_engine(20);

-- waits until the worker's error count reaches `n` (at most 10 s)
CREATE FUNCTION pg_temp.wait_for_errors(n bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE got bigint;
BEGIN
  FOR i IN 1..500 LOOP
    SELECT errors INTO got FROM hotmesh.workers() WHERE database = current_database();
    EXIT WHEN got >= n;
    PERFORM pg_sleep(0.02);
  END LOOP;
  RETURN got;
END $$;

CREATE TEMP TABLE before AS
  SELECT pid, errors FROM hotmesh.workers() WHERE database = current_database();

SELECT hotmesh.debug_fail_worker('regress: first failure');
SELECT pg_temp.wait_for_errors((SELECT errors + 1 FROM before)) - (SELECT errors FROM before) AS new_errors;
SELECT hotmesh.debug_fail_worker('regress: second failure');
SELECT pg_temp.wait_for_errors((SELECT errors + 2 FROM before)) - (SELECT errors FROM before) AS new_errors;

-- same process, still running, last error kept
SELECT w.pid = b.pid AS same_pid, w.state, w.last_error, w.last_error_at IS NOT NULL AS has_time
  FROM hotmesh.workers() w, before b WHERE w.database = current_database();

-- wake_engine returns the loop count before the wake
SELECT hotmesh.wake_engine() >= 0 AS has_worker;

DROP EXTENSION hotmesh;
