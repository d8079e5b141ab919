-- hotmesh 0.7.0 -> 0.8.0: MeshData's records views (schema hotmesh_records, a view per
-- entity with declared search fields, made by hotmesh.create_search_index through
-- hotmesh._records_view; hotmesh.search_fields.position keeps the declaration order),
-- exactly as a fresh 0.8.0 install creates them (sql/meshdata.sql); then the view of each
-- entity declared already.
-- Released: never edit; a later release adds its own script.

ALTER TABLE hotmesh.search_fields ADD COLUMN position bigint GENERATED ALWAYS AS IDENTITY;

-- The schema of the records views (created by hotmesh.create_search_index). USAGE for all:
-- the views read with their reader's privileges on hotmesh.jobs.
CREATE SCHEMA hotmesh_records;
COMMENT ON SCHEMA hotmesh_records IS 'MeshData: one view per entity with declared search fields (hotmesh.create_search_index)';
GRANT USAGE ON SCHEMA hotmesh_records TO PUBLIC;
-- The records of each entity with declared fields, as a view: hotmesh_records."<entity>",
-- one row per record (its job), with columns id, status, created_at, updated_at,
-- completed_at, search (every search field), then one column per declared field in
-- declaration order: NUMERIC as numeric, TAG and TEXT as text. A field named like a fixed
-- column stays in `search` only. Each column is the expression its field's index is built
-- on, so `WHERE age > 30` on the view uses that index. security_invoker: the view reads
-- hotmesh.jobs with the reader's privileges, so it gives no one more than they had (a
-- view with its owner's rights could not be a boundary between entities: as a
-- security_barrier it would keep every index out of use, since ->> and numeric comparisons
-- are not leakproof; without the barrier, a function of the reader's in a WHERE could see
-- other entities' rows). Members of the extension, like its tables: DROP EXTENSION drops
-- them, and pg_dump leaves them out as it leaves out the jobs they read.
CREATE FUNCTION hotmesh._records_view(entity text) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f record;
    cols text := '';
    view_name text := format('hotmesh_records.%I', entity);
BEGIN
    FOR f IN SELECT s.field, s.type FROM hotmesh.search_fields s
              WHERE s.entity = _records_view.entity
                AND s.field NOT IN ('id', 'status', 'created_at', 'updated_at', 'completed_at', 'search')
              ORDER BY s.position LOOP
        cols := cols || format(', %s AS %I',
                               CASE f.type WHEN 'NUMERIC' THEN format('hotmesh.search_number(j.search -> %L)', f.field)
                                           ELSE format('(j.search ->> %L)', f.field) END,
                               f.field);
    END LOOP;
    EXECUTE format('CREATE OR REPLACE VIEW %s WITH (security_invoker = true) AS
                    SELECT j.id, j.status, j.created_at, j.updated_at, j.completed_at, j.search%s
                      FROM hotmesh.jobs j WHERE j.entity = %L', view_name, cols, entity);
    EXECUTE format('GRANT SELECT ON %s TO PUBLIC', view_name);
    -- a member of the extension, as what its scripts make: DROP EXTENSION takes it along
    -- (a view made by the install or upgrade script is one already)
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                      AND d.objid = view_name::pg_catalog.regclass
                      AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
                      AND d.deptype = 'e') THEN
        EXECUTE format('ALTER EXTENSION hotmesh ADD VIEW %s', view_name);
    END IF;
    EXECUTE format('COMMENT ON VIEW %s IS %L', view_name,
                   format('MeshData: the records of entity %s, one column per declared search field (hotmesh.create_search_index)', entity));
    RETURN view_name;
END;
$$;


CREATE OR REPLACE FUNCTION hotmesh.create_search_index(entity text, schema jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    f record;
    kind text;
    sortable boolean;
    known hotmesh.search_fields;
    idx text;
    expr text;
    method text;
    out jsonb := '{}';
BEGIN
    IF entity IS NULL OR entity !~ '^[A-Za-z0-9_.:-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid argument entity: 1 to 63 letters, digits, _ . : -, got %', coalesce(entity, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF schema IS NULL OR jsonb_typeof(schema) <> 'object' OR schema = '{}' THEN
        RAISE EXCEPTION 'invalid argument schema: an object of fields, {"field": {"type": "TAG"}}'
            USING ERRCODE = '22023';
    END IF;
    IF (SELECT count(*) FROM jsonb_object_keys(schema)) > 64 THEN
        RAISE EXCEPTION 'invalid argument schema: at most 64 fields' USING ERRCODE = '22023';
    END IF;
    FOR f IN SELECT key, value FROM jsonb_each(schema) ORDER BY key LOOP
        IF f.key !~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$' THEN
            RAISE EXCEPTION 'invalid argument schema.%: a field name is a letter or _, then letters, digits or _ (63 at most)', f.key
                USING ERRCODE = '22023';
        END IF;
        kind := upper(coalesce(CASE WHEN jsonb_typeof(f.value) = 'object' THEN f.value ->> 'type' END, ''));
        IF kind NOT IN ('TAG', 'TEXT', 'NUMERIC') THEN
            RAISE EXCEPTION 'invalid argument schema.%.type: TAG, TEXT or NUMERIC, got %', f.key, coalesce(f.value ->> 'type', 'nothing')
                USING ERRCODE = '22023';
        END IF;
        sortable := coalesce((f.value ->> 'sortable')::boolean, false);
        SELECT * INTO known FROM hotmesh.search_fields s WHERE s.entity = create_search_index.entity AND s.field = f.key;
        IF FOUND AND known.type <> kind THEN
            RAISE EXCEPTION 'search field %.% is declared as %, not %', entity, f.key, known.type, kind
                USING ERRCODE = '42710';
        END IF;
        idx := 'jobs_search_' || substr(md5(entity || '/' || f.key || '/' || kind), 1, 20);
        expr := CASE kind
            WHEN 'TAG' THEN format('(search ->> %L)', f.key)
            WHEN 'NUMERIC' THEN format('hotmesh.search_number(search -> %L)', f.key)
            ELSE format('hotmesh.search_text(search -> %L)', f.key) END;
        method := CASE kind WHEN 'TEXT' THEN 'gin' ELSE 'btree' END;
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON hotmesh.jobs USING %s ((%s)) WHERE entity = %L',
                       idx, method, expr, entity);
        INSERT INTO hotmesh.search_fields AS s (entity, field, type, sortable, index_name)
        VALUES (entity, f.key, kind, sortable, idx)
        ON CONFLICT (entity, field) DO UPDATE SET sortable = s.sortable OR excluded.sortable;
        out := out || jsonb_build_object(f.key, jsonb_build_object('type', kind, 'sortable', sortable, 'index', idx));
    END LOOP;
    PERFORM hotmesh._records_view(entity);
    RETURN out;
END;
$$;

REVOKE ALL ON FUNCTION hotmesh._records_view(text) FROM PUBLIC;
SELECT hotmesh._records_view(e.entity) FROM (SELECT DISTINCT s.entity FROM hotmesh.search_fields s) e;
