-- hotmesh 0.10.0 -> 0.11.0: a hand-out (hotmesh.dequeue, hotmesh.heartbeat) moves its
-- message's visible_at to the reservation's lapse, so that the messages handed out leave
-- the front of the ready index (dequeue's reads start past them). What reads visible_at
-- follows: the view hotmesh.streams counts a reserved message as reserved, not delayed,
-- and hotmesh.release makes the message visible at once. Exactly as a fresh 0.11.0
-- install creates them (sql/engine.sql, sql/quorum.sql). Messages reserved before the
-- update keep their visible_at: they are found as before, past their reservations' filter.
-- Released: never edit; a later release adds its own script.

CREATE OR REPLACE VIEW hotmesh.streams AS
SELECT topic, count(*) FILTER (WHERE dead_lettered_at IS NULL AND visible_at <= now()
                                AND (reserved_until IS NULL OR reserved_until < now())) AS ready,
       count(*) FILTER (WHERE reserved_until >= now() AND dead_lettered_at IS NULL) AS reserved,
       count(*) FILTER (WHERE visible_at > now() AND dead_lettered_at IS NULL
                                AND (reserved_until IS NULL OR reserved_until < now())) AS delayed,
       count(*) FILTER (WHERE dead_lettered_at IS NOT NULL) AS dead
  FROM hotmesh.worker_stream GROUP BY topic;

CREATE OR REPLACE FUNCTION hotmesh.release(message_id bigint, reservation bigint DEFAULT NULL) RETURNS boolean
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
