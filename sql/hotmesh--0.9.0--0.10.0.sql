-- hotmesh 0.9.0 -> 0.10.0: jobs and their activity rows in a ring of eight partitions,
-- emptied by TRUNCATE instead of DELETE: hotmesh.ring, hotmesh.current_part(),
-- hotmesh.turn_ring(); hotmesh.jobs and hotmesh.activities partitioned by LIST (part),
-- with a last column `part`, primary keys (id, part) and (job_id, activity_id, dad, part),
-- partitions jobs_p0 .. jobs_p7 and activities_p0 .. activities_p7; exactly as a fresh
-- 0.10.0 install creates them (sql/engine.sql, sql/finalize.sql).
-- The rows are kept: the old tables become the partitions jobs_p0 and activities_p0 (the
-- ring starts at part 0). What was made on the old tables moves to the new parents: every
-- index (the extension's and MeshData's search indexes, hotmesh.create_search_index) under
-- its own name, part 0 keeping its built index; triggers (jobs_cascade); grants and
-- comments. Every view that reads them (hotmesh.journal, hotmesh.crons, the records views
-- of schema hotmesh_records, views of your own) is made to read the parent, keeping its
-- options, owner and grants.
-- Released: never edit; a later release adds its own script.

-- The ring (sql/engine.sql as released in 0.10.0).
CREATE TABLE hotmesh.ring (
    one       boolean     PRIMARY KEY DEFAULT true CHECK (one),
    current   smallint    NOT NULL DEFAULT 0 CHECK (current BETWEEN 0 AND 7),
    opened_at timestamptz NOT NULL DEFAULT now(),  -- when `current` became current
    span      interval,                            -- how long a part stays current; null: hotmesh.retention / 6
    turns     bigint      NOT NULL DEFAULT 0       -- how often the ring moved on
);
INSERT INTO hotmesh.ring DEFAULT VALUES;
COMMENT ON TABLE hotmesh.ring IS 'The ring of partitions of hotmesh.jobs and hotmesh.activities: which one new jobs go into';

-- The part new jobs go into (the default of `part` for rows written by hand).
CREATE FUNCTION hotmesh.current_part() RETURNS smallint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS 'SELECT current FROM hotmesh.ring';

-- Turns the ring now (administrators; the engine worker turns it by itself).
CREATE FUNCTION hotmesh."turn_ring"(
	"force" bool DEFAULT false /* bool */
) RETURNS bool /* bool */
STRICT
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'turn_ring_wrapper';

-- hotmesh.jobs and hotmesh.activities become partitioned tables; the old tables, rows
-- and all, become their part 0. In one block: what is made on the old tables is read
-- before they are renamed (so each definition names hotmesh.jobs or hotmesh.activities,
-- and made again it lands on the new parent).
DO $$
DECLARE
    saved_path text := pg_catalog.current_setting('search_path');
    t text;
    p integer;
    r record;
    a record;
    c record;
    grantee text;
    new_name text;
    indexes jsonb := '[]';   -- {tbl, name, def, comment}: made again on the parent
    triggers jsonb := '[]';  -- {tbl, name, def}: dropped from part 0, made on the parent
    views jsonb := '[]';     -- {view, def, options}: made to read the parent
    leftover text;
    outsider boolean;
BEGIN
    -- definitions as pg_get_*def print them with every name outside pg_catalog qualified
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

    FOREACH t IN ARRAY ARRAY['jobs', 'activities'] LOOP
        -- indexes, but those of constraints (the primary key goes; the parent has its own)
        FOR r IN SELECT i.indexrelid, ic.relname, i.indisunique,
                        pg_catalog.pg_get_indexdef(i.indexrelid) AS def,
                        pg_catalog.obj_description(i.indexrelid, 'pg_class') AS comment,
                        EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid
                                   AND k.conrelid = i.indrelid) AS of_constraint
                   FROM pg_catalog.pg_index i
                   JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                  WHERE i.indrelid = pg_catalog.format('hotmesh.%I', t)::pg_catalog.regclass
                  ORDER BY ic.relname LOOP
            IF r.of_constraint THEN
                CONTINUE;
            ELSIF r.indisunique THEN
                -- a unique index of a partitioned table must hold the partition key
                RAISE WARNING 'hotmesh 0.10.0: unique index hotmesh.% stays on hotmesh.%_p0 only (a unique index of the partitioned hotmesh.% must include column part)',
                    r.relname, t, t;
                CONTINUE;
            END IF;
            indexes := indexes || pg_catalog.jsonb_build_object(
                'tbl', t, 'name', r.relname, 'def', r.def, 'comment', r.comment);
        END LOOP;
        FOR r IN SELECT g.tgname, pg_catalog.pg_get_triggerdef(g.oid) AS def
                   FROM pg_catalog.pg_trigger g
                  WHERE g.tgrelid = pg_catalog.format('hotmesh.%I', t)::pg_catalog.regclass
                    AND NOT g.tgisinternal
                  ORDER BY g.tgname LOOP
            triggers := triggers || pg_catalog.jsonb_build_object(
                'tbl', t, 'name', r.tgname, 'def', r.def);
        END LOOP;
        -- views reading the table (hotmesh.crons reads both: once)
        FOR r IN SELECT DISTINCT v.oid, v.reloptions
                   FROM pg_catalog.pg_depend d
                   JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid
                   JOIN pg_catalog.pg_class v ON v.oid = w.ev_class
                  WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                    AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                    AND d.refobjid = pg_catalog.format('hotmesh.%I', t)::pg_catalog.regclass
                    AND v.relkind = 'v' LOOP
            IF NOT views @> pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('view', r.oid::pg_catalog.regclass::pg_catalog.text)) THEN
                views := views || pg_catalog.jsonb_build_object(
                    'view', r.oid::pg_catalog.regclass::pg_catalog.text,
                    'def', pg_catalog.pg_get_viewdef(r.oid),
                    'options', COALESCE(pg_catalog.to_jsonb(r.reloptions), '[]'));
            END IF;
        END LOOP;
    END LOOP;

    -- The old tables become part 0: renamed (their indexes too, freeing the names for the
    -- parent's), without their triggers and primary key, with the column `part`.
    FOREACH t IN ARRAY ARRAY['jobs', 'activities'] LOOP
        EXECUTE pg_catalog.format('ALTER TABLE hotmesh.%I RENAME TO %I', t, t || '_p0');
        FOR r IN SELECT x.value ->> 'name' AS name FROM pg_catalog.jsonb_array_elements(indexes) x
                  WHERE x.value ->> 'tbl' = t LOOP
            new_name := pg_catalog.left(r.name, 60) || '_p0';
            p := 0;
            WHILE EXISTS (SELECT FROM pg_catalog.pg_class k
                           WHERE k.relnamespace = 'hotmesh'::pg_catalog.regnamespace AND k.relname = new_name) LOOP
                p := p + 1;
                new_name := pg_catalog.left(r.name, 55) || '_p0_' || p;
            END LOOP;
            EXECUTE pg_catalog.format('ALTER INDEX hotmesh.%I RENAME TO %I', r.name, new_name);
        END LOOP;
        FOR r IN SELECT x.value ->> 'name' AS name FROM pg_catalog.jsonb_array_elements(triggers) x
                  WHERE x.value ->> 'tbl' = t LOOP
            EXECUTE pg_catalog.format('DROP TRIGGER %I ON hotmesh.%I', r.name, t || '_p0');
        END LOOP;
        -- rows written so far are part 0; later ones written to the partition by hand take
        -- the current part, as in every partition
        EXECUTE pg_catalog.format('ALTER TABLE hotmesh.%I ADD COLUMN part smallint NOT NULL DEFAULT 0', t || '_p0');
        EXECUTE pg_catalog.format('ALTER TABLE hotmesh.%I ALTER COLUMN part SET DEFAULT hotmesh.current_part()', t || '_p0');
        FOR r IN SELECT k.conname, k.conkey FROM pg_catalog.pg_constraint k
                  WHERE k.conrelid = pg_catalog.format('hotmesh.%I', t || '_p0')::pg_catalog.regclass
                    AND k.contype = 'p' LOOP
            -- the key's columns stay NOT NULL, as in the parent
            FOR a IN SELECT att.attname FROM pg_catalog.pg_attribute att
                      WHERE att.attrelid = pg_catalog.format('hotmesh.%I', t || '_p0')::pg_catalog.regclass
                        AND att.attnum = ANY (r.conkey) LOOP
                EXECUTE pg_catalog.format('ALTER TABLE hotmesh.%I ALTER COLUMN %I SET NOT NULL', t || '_p0', a.attname);
            END LOOP;
            EXECUTE pg_catalog.format('ALTER TABLE hotmesh.%I DROP CONSTRAINT %I', t || '_p0', r.conname);
        END LOOP;
    END LOOP;

    -- The parents, as sql/engine.sql makes them in 0.10.0.
    CREATE TABLE hotmesh.jobs (
        id              text        NOT NULL,
        gid             text        NOT NULL,          -- generation: a reused id gets a new one
        app_id          text        NOT NULL,
        version         text        NOT NULL,          -- the app version the job runs on, for life
        topic           text        NOT NULL,          -- the topic that started it (graph subscribes)
        key             text,                          -- trigger stats.key
        entity          text,
        status          integer     NOT NULL,
        data            jsonb       NOT NULL DEFAULT '{}',  -- job data (job.maps)
        search          jsonb       NOT NULL DEFAULT '{}',  -- search fields (pub option, `_x` job maps)
        marks           jsonb       NOT NULL DEFAULT '{}',  -- markers (`-x`)
        error           jsonb,                         -- {code, message, ...} when the job failed or was interrupted
        parent_job_id   text,                          -- set for a child started by an await activity
        parent_gid      text,
        parent_activity text,
        parent_dad      text,
        severed         boolean     NOT NULL DEFAULT false, -- the parent does not wait (await: false)
        expire_seconds  double precision,              -- kept this long after completion (null: 1 s)
        created_at      timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now(),
        completed_at    timestamptz,
        expired_at      timestamptz,
        part            smallint    NOT NULL DEFAULT hotmesh.current_part(),  -- its partition in the ring
        PRIMARY KEY (id, part)
    ) PARTITION BY LIST (part);

    CREATE TABLE hotmesh.activities (
        job_id      text        NOT NULL,              -- hotmesh.jobs (id); see jobs_cascade
        activity_id text        NOT NULL,
        dad         text        NOT NULL,              -- dimensional address: ',0', ',0,1', …
        type        text        NOT NULL,
        status      text        NOT NULL,              -- waiting, pending, done, error or cancelled
        input       jsonb,
        output      jsonb,
        hook        jsonb,                             -- signal data received by a hook
        error       jsonb,
        wait_token  text,                              -- the message, timer or child this activity waits for
        iterations  integer     NOT NULL DEFAULT 0,    -- cycle target: iterations so far
        answers     integer     NOT NULL DEFAULT 0,    -- results it took (several with 202): its children's dimension
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        part        smallint    NOT NULL DEFAULT hotmesh.current_part(),  -- its job's part
        PRIMARY KEY (job_id, activity_id, dad, part)
    ) PARTITION BY LIST (part);

    FOREACH t IN ARRAY ARRAY['jobs', 'activities'] LOOP
        -- part 0 (one scan checks its rows are part 0; the primary key's index is built
        -- on it), then the empty parts 1 to 7
        EXECUTE pg_catalog.format('ALTER TABLE hotmesh.%I ATTACH PARTITION hotmesh.%I FOR VALUES IN (0)', t, t || '_p0');
        FOR p IN 1..7 LOOP
            EXECUTE pg_catalog.format('CREATE TABLE hotmesh.%I PARTITION OF hotmesh.%I FOR VALUES IN (%s)', t || '_p' || p, t, p);
        END LOOP;

        -- the indexes under their names: part 0's index of the same definition is
        -- attached, not built again
        FOR r IN SELECT x.value ->> 'name' AS name, x.value ->> 'def' AS def, x.value ->> 'comment' AS comment
                   FROM pg_catalog.jsonb_array_elements(indexes) x WHERE x.value ->> 'tbl' = t LOOP
            EXECUTE r.def;
            IF r.comment IS NOT NULL THEN
                EXECUTE pg_catalog.format('COMMENT ON INDEX hotmesh.%I IS %L', r.name, r.comment);
            END IF;
        END LOOP;
        FOR r IN SELECT x.value ->> 'def' AS def FROM pg_catalog.jsonb_array_elements(triggers) x
                  WHERE x.value ->> 'tbl' = t LOOP
            EXECUTE r.def;
        END LOOP;

        -- the owner, grants and comments of the old table are the parent's; the
        -- partitions have none of their own (as in a fresh install)
        FOR r IN SELECT o.relowner, o.relacl FROM pg_catalog.pg_class o
                  WHERE o.oid = pg_catalog.format('hotmesh.%I', t || '_p0')::pg_catalog.regclass LOOP
            IF r.relowner <> (SELECT n.relowner FROM pg_catalog.pg_class n
                               WHERE n.oid = pg_catalog.format('hotmesh.%I', t)::pg_catalog.regclass) THEN
                EXECUTE pg_catalog.format('ALTER TABLE hotmesh.%I OWNER TO %s', t, r.relowner::pg_catalog.regrole);
                FOR p IN 1..7 LOOP
                    EXECUTE pg_catalog.format('ALTER TABLE hotmesh.%I OWNER TO %s', t || '_p' || p, r.relowner::pg_catalog.regrole);
                END LOOP;
            END IF;
            IF r.relacl IS NOT NULL THEN
                EXECUTE pg_catalog.format('REVOKE ALL ON hotmesh.%I FROM PUBLIC', t);
            END IF;
            FOR a IN SELECT g.grantee, g.privilege_type, g.is_grantable
                       FROM pg_catalog.aclexplode(r.relacl) g WHERE g.grantee <> r.relowner LOOP
                grantee := CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                ELSE a.grantee::pg_catalog.regrole::pg_catalog.text END;
                EXECUTE pg_catalog.format('GRANT %s ON hotmesh.%I TO %s%s', a.privilege_type, t, grantee,
                                          CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
                EXECUTE pg_catalog.format('REVOKE %s ON hotmesh.%I FROM %s CASCADE', a.privilege_type, t || '_p0', grantee);
            END LOOP;
        END LOOP;
        FOR c IN SELECT att.attname, att.attacl, o.relowner FROM pg_catalog.pg_attribute att
                   JOIN pg_catalog.pg_class o ON o.oid = att.attrelid
                  WHERE att.attrelid = pg_catalog.format('hotmesh.%I', t || '_p0')::pg_catalog.regclass
                    AND att.attnum > 0 AND NOT att.attisdropped AND att.attacl IS NOT NULL LOOP
            FOR a IN SELECT g.grantee, g.privilege_type, g.is_grantable
                       FROM pg_catalog.aclexplode(c.attacl) g WHERE g.grantee <> c.relowner LOOP
                grantee := CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                ELSE a.grantee::pg_catalog.regrole::pg_catalog.text END;
                EXECUTE pg_catalog.format('GRANT %s (%I) ON hotmesh.%I TO %s%s', a.privilege_type, c.attname, t, grantee,
                                          CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
                EXECUTE pg_catalog.format('REVOKE %s (%I) ON hotmesh.%I FROM %s CASCADE', a.privilege_type, c.attname, t || '_p0', grantee);
            END LOOP;
        END LOOP;
        EXECUTE pg_catalog.format('COMMENT ON TABLE hotmesh.%I IS %L', t,
            pg_catalog.obj_description(pg_catalog.format('hotmesh.%I', t || '_p0')::pg_catalog.regclass, 'pg_class'));
        EXECUTE pg_catalog.format('COMMENT ON TABLE hotmesh.%I IS NULL', t || '_p0');
        FOR c IN SELECT att.attname, pg_catalog.col_description(att.attrelid, att.attnum) AS comment
                   FROM pg_catalog.pg_attribute att
                  WHERE att.attrelid = pg_catalog.format('hotmesh.%I', t || '_p0')::pg_catalog.regclass
                    AND att.attnum > 0 AND NOT att.attisdropped
                    AND pg_catalog.col_description(att.attrelid, att.attnum) IS NOT NULL LOOP
            EXECUTE pg_catalog.format('COMMENT ON COLUMN hotmesh.%I.%I IS %L', t, c.attname, c.comment);
            EXECUTE pg_catalog.format('COMMENT ON COLUMN hotmesh.%I.%I IS NULL', t || '_p0', c.attname);
        END LOOP;
    END LOOP;

    -- The views read the parents: the same query (its names now find the parents), the
    -- same options (security_invoker of the records views, check_option); CREATE OR
    -- REPLACE keeps the view's owner, grants and comments.
    FOR r IN SELECT x.value ->> 'view' AS view, x.value ->> 'def' AS def,
                    (SELECT pg_catalog.string_agg(pg_catalog.format('%I = %L', pg_catalog.split_part(o, '=', 1),
                                                                    pg_catalog.substr(o, pg_catalog.strpos(o, '=') + 1)), ', ')
                       FROM pg_catalog.jsonb_array_elements_text(x.value -> 'options') o) AS options
               FROM pg_catalog.jsonb_array_elements(views) x
              WHERE pg_catalog.to_regclass(x.value ->> 'view') IS NOT NULL LOOP
        -- an extension script may replace only the extension's own objects: a view of
        -- yours is its member for the moment of the replacement
        outsider := NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                                 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                   AND d.objid = r.view::pg_catalog.regclass
                                   AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
                                   AND d.deptype = 'e');
        BEGIN
            IF outsider THEN
                EXECUTE pg_catalog.format('ALTER EXTENSION hotmesh ADD VIEW %s', r.view);
            END IF;
            EXECUTE pg_catalog.format('CREATE OR REPLACE VIEW %s%s AS %s', r.view,
                                      CASE WHEN r.options IS NULL THEN '' ELSE ' WITH (' || r.options || ')' END,
                                      pg_catalog.regexp_replace(r.def, ';\s*$', ''));
            IF outsider THEN
                EXECUTE pg_catalog.format('ALTER EXTENSION hotmesh DROP VIEW %s', r.view);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'hotmesh 0.10.0: view % (reading hotmesh.jobs or hotmesh.activities) could not be made to read the partitioned table: %',
                r.view, SQLERRM
                USING HINT = 'Drop the view, run ALTER EXTENSION hotmesh UPDATE, then create it again.';
        END;
    END LOOP;

    -- what still reads part 0 by itself (materialized views, SQL-standard function bodies)
    SELECT pg_catalog.string_agg(DISTINCT pg_catalog.pg_describe_object(d.classid, d.objid, 0), ', ')
      INTO leftover
      FROM pg_catalog.pg_depend d
     WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.refobjid IN ('hotmesh.jobs_p0'::pg_catalog.regclass, 'hotmesh.activities_p0'::pg_catalog.regclass)
       AND d.classid IN ('pg_catalog.pg_rewrite'::pg_catalog.regclass, 'pg_catalog.pg_proc'::pg_catalog.regclass);
    IF leftover IS NOT NULL THEN
        RAISE WARNING 'hotmesh 0.10.0: these read only part 0 now (hotmesh.jobs_p0, hotmesh.activities_p0: the old tables): %', leftover
            USING HINT = 'Create them again so that they read hotmesh.jobs and hotmesh.activities.';
    END IF;

    PERFORM pg_catalog.set_config('search_path', saved_path, true);
END
$$;


-- sql/finalize.sql as released in 0.10.0 (the partitioned tables got the old tables' grants)
REVOKE ALL ON hotmesh.ring FROM PUBLIC;
REVOKE ALL ON FUNCTION hotmesh.current_part(), hotmesh.turn_ring(boolean) FROM PUBLIC;
