-- Transports (docs/transports.md): each row names a Redis or NATS server and what a bridge
-- relays there. This database's engine worker starts one bridge background worker while
-- an enabled row exists; the bridge worker reads the rows when they change (and every
-- second) and starts, restarts (a row changed) or stops (a row gone or disabled) the
-- bridge of each.

CREATE TABLE hotmesh.transports (
    name     text     PRIMARY KEY
             CONSTRAINT transports_name CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    -- redis://, rediss://, nats:// or tls:// (NATS: a list separated by commas); it may
    -- hold a password, so the table is for administrators (hotmesh.bridges shows it redacted)
    url      text     NOT NULL
             CONSTRAINT transports_url CHECK (url ~ '^(redis|rediss|nats|tls)://' AND length(url) <= 2048),
    -- worker topics whose messages go to the transport, answers come back
    topics   text[]   NOT NULL DEFAULT '{}',
    -- publishes topics (psub patterns: * any run of characters) whose completions and
    -- emits go out as events on the subject named by the topic
    events   text[]   NOT NULL DEFAULT '{}',
    -- apps whose quorum messages (throttles, roll calls, activations) cross both ways
    quorum   text[]   NOT NULL DEFAULT '{}',
    -- the role the bridge connects as: it needs `work` on the topics' apps (and `read`
    -- for events); whoever writes the row must be a member of it
    role     name     NOT NULL DEFAULT current_user,
    -- how long a message on the transport stays reserved without the bridge's heartbeat
    hold     interval NOT NULL DEFAULT '60 seconds'
             CONSTRAINT transports_hold CHECK (hold BETWEEN '3 seconds' AND '1 day'),
    enabled  boolean  NOT NULL DEFAULT true,
    CONSTRAINT transports_something CHECK (cardinality(topics) + cardinality(events) + cardinality(quorum) > 0),
    CONSTRAINT transports_sizes CHECK (cardinality(topics) <= 256 AND cardinality(events) <= 64 AND cardinality(quorum) <= 64)
);
COMMENT ON TABLE hotmesh.transports IS 'Redis and NATS servers, and what the bridge background worker relays to each';

-- Whoever writes a row must be able to act as its role: a bridge acts with the role's
-- privileges, so naming another role would be a way to borrow them.
CREATE FUNCTION hotmesh._transports_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT pg_catalog.pg_has_role(NEW.role, 'MEMBER') THEN
        RAISE EXCEPTION 'hotmesh.transports: role % may not run a bridge as role %', current_user, NEW.role
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'name a role you are a member of in column "role"';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.unnest(NEW.topics || NEW.events || NEW.quorum) t(v)
                WHERE t.v IS NULL OR t.v = '' OR length(t.v) > 255 OR t.v ~ '\s') THEN
        RAISE EXCEPTION 'hotmesh.transports: topics, events and quorum need non-empty names of at most 255 characters without whitespace'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER transports_check BEFORE INSERT OR UPDATE ON hotmesh.transports
    FOR EACH ROW EXECUTE FUNCTION hotmesh._transports_check();

-- When a change commits, the engine worker starts (or lets go) the bridge worker and the
-- bridge worker reads the rows again: no waiting for a poll.
CREATE FUNCTION hotmesh._transports_wake() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM hotmesh._transports_changed();
    RETURN NULL;
END
$$;
CREATE TRIGGER transports_wake AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON hotmesh.transports
    FOR EACH STATEMENT EXECUTE FUNCTION hotmesh._transports_wake();

-- What each running bridge reports, written by the bridge worker about once a second.
-- UNLOGGED: counters of a running process, not worth WAL; empty after a crash, refilled
-- by the next bridge worker.
CREATE UNLOGGED TABLE hotmesh.bridge_status (
    name        text        PRIMARY KEY,
    pid         integer,                -- the bridge worker
    state       text        NOT NULL,   -- starting, running, retrying, stopped
    connected   boolean     NOT NULL DEFAULT false,
    relayed     bigint      NOT NULL DEFAULT 0,
    answered    bigint      NOT NULL DEFAULT 0,
    in_flight   bigint      NOT NULL DEFAULT 0,
    published   bigint      NOT NULL DEFAULT 0,   -- events published
    quorum_relayed bigint   NOT NULL DEFAULT 0,   -- quorum messages relayed, both ways
    errors      bigint      NOT NULL DEFAULT 0,
    last_error  text,
    started_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE hotmesh.bridge_status IS 'Written by the bridge worker: the state and counters of each bridge';

-- One row per transport: its configuration (URL redacted), the bridge's state, and the
-- lag: messages of its topics waiting in PostgreSQL for the bridge (not reserved, due).
CREATE VIEW hotmesh.bridges AS
SELECT t.name,
       -- user and password hidden: the part between :// and @ of each URL in the list
       pg_catalog.regexp_replace(t.url, '://[^@/,]*@', '://***@', 'g') AS transport,
       t.topics, t.events, t.quorum, t.role, t.enabled,
       s.pid,
       coalesce(s.state, CASE WHEN t.enabled THEN 'starting' ELSE 'disabled' END) AS state,
       coalesce(s.connected, false) AS connected,
       (SELECT count(*) FROM hotmesh.worker_stream w
         WHERE w.topic = ANY (t.topics) AND w.dead_lettered_at IS NULL
           AND w.visible_at <= now()
           AND (w.reserved_until IS NULL OR w.reserved_until < now())) AS lag,
       coalesce(s.relayed, 0) AS relayed, coalesce(s.answered, 0) AS answered,
       coalesce(s.in_flight, 0) AS in_flight, coalesce(s.published, 0) AS published,
       coalesce(s.quorum_relayed, 0) AS quorum_relayed, coalesce(s.errors, 0) AS errors,
       s.last_error, s.started_at, s.updated_at
  FROM hotmesh.transports t
  LEFT JOIN hotmesh.bridge_status s ON s.name = t.name;
COMMENT ON VIEW hotmesh.bridges IS 'The bridges to Redis and NATS: configuration, state, lag and counters';

-- Administrators configure transports; monitoring roles see the bridges (URLs redacted).
REVOKE ALL ON hotmesh.transports, hotmesh.bridge_status, hotmesh.bridges FROM PUBLIC;
REVOKE ALL ON FUNCTION hotmesh._transports_check(), hotmesh._transports_wake(),
                        hotmesh._transports_changed() FROM PUBLIC;
GRANT SELECT ON hotmesh.bridges TO pg_monitor;
