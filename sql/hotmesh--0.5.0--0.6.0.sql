-- hotmesh 0.5.0 -> 0.6.0: NOTIFY channel names in one place. hotmesh.work_channel(topic)
-- and hotmesh.quorum_channel(app) name the channels the engine sends on (a worker in any
-- language LISTENs on work_channel(topic)); throttle and release use them instead of
-- spelling the names. Exactly as a fresh 0.6.0 install creates them. Released: never
-- edit; a later release adds its own script.

CREATE FUNCTION hotmesh."work_channel"(
	"topic" TEXT /* & str */
) RETURNS TEXT /* String */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'work_channel_wrapper';

CREATE FUNCTION hotmesh."quorum_channel"(
	"app" TEXT /* & str */
) RETURNS TEXT /* String */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'quorum_channel_wrapper';

-- sql/quorum.sql as released in 0.6.0
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
    PERFORM pg_notify(hotmesh.quorum_channel(app),
                      json_build_object('type', 'throttle', 'throttle', throttle, 'guid', guid, 'topic', topic)::text);
    RETURN throttle;
END
$$;

CREATE OR REPLACE FUNCTION hotmesh.release(message_id bigint, reservation bigint DEFAULT NULL) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT hotmesh._authorize(w.app_id, 'work') FROM hotmesh.worker_stream w WHERE w.id = message_id;
    WITH r AS (
        UPDATE hotmesh.worker_stream w
           SET reserved_until = NULL, reserved_by = NULL, reservation = NULL, deliveries = greatest(w.deliveries - 1, 0)
         WHERE w.id = message_id AND w.dead_lettered_at IS NULL
           AND w.reserved_until IS NOT NULL AND w.reserved_until <> 'infinity'
           AND (release.reservation IS NULL OR w.reservation = release.reservation)
        RETURNING w.topic)
    SELECT count(*) > 0 FROM r, LATERAL (SELECT pg_notify(hotmesh.work_channel(r.topic), r.topic)) n
$$;
