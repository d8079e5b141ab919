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
    -- COMMIT would fail there with a message that does not say what to do instead
    PERFORM hotmesh._outside_transaction_block('CALL hotmesh.pubsub');
    job := hotmesh.pub(topic, data);
    COMMIT;
    result := hotmesh.wait_for_job(job, timeout_ms);
END
$$;
COMMENT ON PROCEDURE hotmesh.pubsub(text, jsonb, integer, jsonb) IS 'Starts a job and returns its {metadata, data} when it ends';
