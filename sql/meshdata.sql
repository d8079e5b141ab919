-- MeshData (docs/meshdata.md): jobs with an `entity` are records; their search fields
-- (`hotmesh.jobs.search`) are what MeshData reads and finds. A search index declares an
-- entity's fields and their types; each declared field gets a real index on the jobs of
-- that entity (a partial expression index), and hotmesh.find_where turns a query into one
-- parameterised statement those indexes serve.

-- The declared fields: TAG (exact values: =, !=, IN, prefix), TEXT (full-text match, and
-- = on the whole value), NUMERIC (comparisons and ranges); sortable ones may order results.
CREATE TABLE hotmesh.search_fields (
    entity     text    NOT NULL,
    field      text    NOT NULL,
    type       text    NOT NULL CHECK (type IN ('TAG', 'TEXT', 'NUMERIC')),
    sortable   boolean NOT NULL DEFAULT false,
    index_name text    NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- declaration order: the records view's columns keep it (a new field is a new last
    -- column, so CREATE OR REPLACE VIEW keeps the old ones and their grants)
    position   bigint  GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (entity, field)
);
COMMENT ON TABLE hotmesh.search_fields IS 'MeshData search indexes: the declared fields of each entity, their types and their index';

-- A search value as a number: JSON numbers, and strings that read as one; else null (an
-- index expression must not fail on a record whose field holds something else). Plain SQL
-- with every name qualified and no SET clause, so the planner inlines it (in the index
-- expressions and in the queries alike: they match, and no call per row is made).
CREATE FUNCTION hotmesh.search_number(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'number'
            THEN (v OPERATOR(pg_catalog.#>>) '{}')::pg_catalog.numeric
        WHEN pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'string'
             AND (v OPERATOR(pg_catalog.#>>) '{}') OPERATOR(pg_catalog.~)
                 '^\s*[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]{1,3})?\s*$'
            THEN (v OPERATOR(pg_catalog.#>>) '{}')::pg_catalog.numeric
    END
$$;

-- A search value as text to match: the same configuration for the index and the query.
CREATE FUNCTION hotmesh.search_text(v jsonb) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.to_tsvector('pg_catalog.simple'::pg_catalog.regconfig,
                                  COALESCE(v OPERATOR(pg_catalog.#>>) '{}', ''))
$$;

-- Declares `entity`'s fields and builds their indexes (idempotent: a field declared again
-- with the same type keeps its index; another type is an error). `schema`:
-- {"field": {"type": "TAG" | "TEXT" | "NUMERIC", "sortable": true}, ...}. Returns the
-- fields and their indexes. CREATE INDEX on a large jobs table takes a while and blocks
-- writes to it meanwhile: declare fields before the records pile up.
CREATE FUNCTION hotmesh.create_search_index(entity text, schema jsonb) RETURNS jsonb
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

-- The records of `entity` whose search fields match `query`, an array of conditions
-- {"field": f, "is": op, "value": v} (all must hold): op is one of = != < <= > >=,
-- "[]" (a range: value [low, high], both included), "in" (value: a list), "prefix" (TAG:
-- the value starts with it) or "match" (TEXT: every word of the value, full-text).
-- `options`: {"limit": {"start": 0, "size": 100}, "sort": {"field": f, "order": "asc" |
-- "desc"} (a sortable field; default: newest record first), "return": [fields]}. Each row:
-- the record's id and its search fields (those `return` names, else all). One statement,
-- its values passed as parameters, its field names as literals (so the planner matches
-- the declared indexes). An undeclared field is compared as TAG, without an index.
CREATE FUNCTION hotmesh._find_where_sql(entity text, query jsonb, options jsonb,
                                        OUT statement text, OUT vals jsonb, OUT ret jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c jsonb;
    i integer := 0;
    fname text;
    op text;
    kind text;
    lhs text;
    conds text[] := ARRAY['j.entity = $1'];
    v jsonb;
    sort_field text := options #>> '{sort,field}';
    sort_dir text := lower(coalesce(options #>> '{sort,order}', 'asc'));
    order_by text := 'j.created_at DESC, j.id';
    start bigint := 0;
    size bigint := 100;
BEGIN
    vals := '[]';
    ret := options -> 'return';
    IF entity IS NULL THEN
        RAISE EXCEPTION 'invalid argument entity: must not be null' USING ERRCODE = '22023';
    END IF;
    IF query IS NULL OR jsonb_typeof(query) <> 'array' THEN
        RAISE EXCEPTION 'invalid argument query: an array of {"field", "is", "value"}' USING ERRCODE = '22023';
    END IF;
    IF jsonb_array_length(query) > 32 THEN
        RAISE EXCEPTION 'invalid argument query: at most 32 conditions' USING ERRCODE = '22023';
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'invalid argument options: an object' USING ERRCODE = '22023';
    END IF;
    FOR c IN SELECT value FROM jsonb_array_elements(query) LOOP
        i := i + 1;
        fname := c ->> 'field';
        op := lower(coalesce(c ->> 'is', '='));
        v := c -> 'value';
        IF fname IS NULL OR fname !~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$' THEN
            RAISE EXCEPTION 'invalid argument query[%].field: a field name, got %', i - 1, coalesce(c ->> 'field', 'nothing')
                USING ERRCODE = '22023';
        END IF;
        IF v IS NULL OR v = 'null' THEN
            RAISE EXCEPTION 'invalid argument query[%].value: missing', i - 1 USING ERRCODE = '22023';
        END IF;
        SELECT s.type INTO kind FROM hotmesh.search_fields s WHERE s.entity = $1 AND s.field = fname;
        kind := coalesce(kind, 'TAG');
        lhs := CASE kind
            WHEN 'NUMERIC' THEN format('hotmesh.search_number(j.search -> %L)', fname)
            WHEN 'TEXT' THEN format('hotmesh.search_text(j.search -> %L)', fname)
            ELSE format('(j.search ->> %L)', fname) END;
        -- each value is element k of parameter $2 (a jsonb array)
        vals := vals || jsonb_build_array(v);
        IF op IN ('=', '!=', '<', '<=', '>', '>=') THEN
            IF kind = 'NUMERIC' THEN
                conds := conds || format('%s %s hotmesh.search_number($2 -> %s)', lhs, CASE op WHEN '!=' THEN '<>' ELSE op END, jsonb_array_length(vals) - 1);
            ELSIF kind = 'TEXT' AND op IN ('=', '!=') THEN
                conds := conds || format('(j.search ->> %L) %s ($2 ->> %s)', fname, CASE op WHEN '!=' THEN '<>' ELSE op END, jsonb_array_length(vals) - 1);
            ELSIF kind = 'TAG' THEN
                conds := conds || format('%s %s ($2 ->> %s)', lhs, CASE op WHEN '!=' THEN '<>' ELSE op END, jsonb_array_length(vals) - 1);
            ELSE
                RAISE EXCEPTION 'invalid argument query[%].is: % does not compare a TEXT field (use match, = or !=)', i - 1, op
                    USING ERRCODE = '22023';
            END IF;
        ELSIF op = '[]' THEN
            IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) <> 2 THEN
                RAISE EXCEPTION 'invalid argument query[%].value: a range is [low, high]', i - 1 USING ERRCODE = '22023';
            END IF;
            IF kind = 'NUMERIC' THEN
                conds := conds || format('%s BETWEEN hotmesh.search_number($2 -> %s -> 0) AND hotmesh.search_number($2 -> %s -> 1)',
                                         lhs, jsonb_array_length(vals) - 1, jsonb_array_length(vals) - 1);
            ELSE
                conds := conds || format('(j.search ->> %L) BETWEEN ($2 -> %s ->> 0) AND ($2 -> %s ->> 1)',
                                         fname, jsonb_array_length(vals) - 1, jsonb_array_length(vals) - 1);
            END IF;
        ELSIF op = 'in' THEN
            IF jsonb_typeof(v) <> 'array' THEN
                RAISE EXCEPTION 'invalid argument query[%].value: in takes a list', i - 1 USING ERRCODE = '22023';
            END IF;
            IF kind = 'NUMERIC' THEN
                conds := conds || format('%s IN (SELECT hotmesh.search_number(x) FROM jsonb_array_elements($2 -> %s) x)', lhs, jsonb_array_length(vals) - 1);
            ELSE
                conds := conds || format('(j.search ->> %L) IN (SELECT x FROM jsonb_array_elements_text($2 -> %s) x)', fname, jsonb_array_length(vals) - 1);
            END IF;
        ELSIF op = 'prefix' AND kind = 'TAG' THEN
            conds := conds || format('starts_with(%s, ($2 ->> %s))', lhs, jsonb_array_length(vals) - 1);
        ELSIF op = 'match' AND kind = 'TEXT' THEN
            conds := conds || format('%s @@ plainto_tsquery(''pg_catalog.simple''::regconfig, ($2 ->> %s))', lhs, jsonb_array_length(vals) - 1);
        ELSE
            RAISE EXCEPTION 'invalid argument query[%].is: % (=, !=, <, <=, >, >=, [], in; prefix for TAG fields, match for TEXT fields)', i - 1, op
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    IF sort_field IS NOT NULL THEN
        SELECT s.type INTO kind FROM hotmesh.search_fields s
         WHERE s.entity = $1 AND s.field = sort_field AND s.sortable;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'invalid argument options.sort.field: % is not a sortable field of %', sort_field, entity
                USING ERRCODE = '22023';
        END IF;
        IF sort_dir NOT IN ('asc', 'desc') THEN
            RAISE EXCEPTION 'invalid argument options.sort.order: asc or desc' USING ERRCODE = '22023';
        END IF;
        order_by := format('%s %s NULLS LAST, j.id',
                           CASE kind WHEN 'NUMERIC' THEN format('hotmesh.search_number(j.search -> %L)', sort_field)
                                     ELSE format('(j.search ->> %L)', sort_field) END,
                           sort_dir);
    END IF;
    IF options -> 'limit' IS NOT NULL THEN
        start := coalesce((options #>> '{limit,start}')::bigint, 0);
        size := coalesce((options #>> '{limit,size}')::bigint, 100);
    END IF;
    IF start < 0 OR size < 0 OR size > 10000 THEN
        RAISE EXCEPTION 'invalid argument options.limit: start >= 0, size 0 to 10000' USING ERRCODE = '22023';
    END IF;
    IF ret IS NOT NULL AND (jsonb_typeof(ret) <> 'array' OR EXISTS (
            SELECT FROM jsonb_array_elements(ret) r WHERE jsonb_typeof(r) <> 'string')) THEN
        RAISE EXCEPTION 'invalid argument options.return: a list of field names' USING ERRCODE = '22023';
    END IF;
    statement := format('SELECT j.id, CASE WHEN $3 IS NULL THEN j.search
                        ELSE (SELECT coalesce(pg_catalog.jsonb_object_agg(r, j.search -> r), ''{}'') FROM pg_catalog.jsonb_array_elements_text($3) r) END
                     FROM hotmesh.jobs j WHERE %s ORDER BY %s LIMIT %s OFFSET %s',
                  array_to_string(conds, ' AND '), order_by, size, start);
END;
$$;

CREATE FUNCTION hotmesh.find_where(entity text, query jsonb DEFAULT '[]', options jsonb DEFAULT '{}')
RETURNS TABLE (id text, fields jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q record;
BEGIN
    q := hotmesh._find_where_sql(entity, query, options);
    RETURN QUERY EXECUTE q.statement USING entity, q.vals, q.ret;
END;
$$;

-- The plan of that statement with these values (EXPLAIN): to see which index a query uses.
CREATE FUNCTION hotmesh.find_where_plan(entity text, query jsonb DEFAULT '[]', options jsonb DEFAULT '{}')
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q record;
BEGIN
    q := hotmesh._find_where_sql(entity, query, options);
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || q.statement USING entity, q.vals, q.ret;
END;
$$;
-- The schema of the records views (created by hotmesh.create_search_index). USAGE for all:
-- the views read with their reader's privileges on hotmesh.jobs.
CREATE SCHEMA hotmesh_records;
COMMENT ON SCHEMA hotmesh_records IS 'MeshData: one view per entity with declared search fields (hotmesh.create_search_index)';
GRANT USAGE ON SCHEMA hotmesh_records TO PUBLIC;
REVOKE ALL ON hotmesh.search_fields FROM PUBLIC;
REVOKE ALL ON FUNCTION hotmesh.create_search_index(text, jsonb), hotmesh.find_where(text, jsonb, jsonb),
                       hotmesh.find_where_plan(text, jsonb, jsonb), hotmesh._find_where_sql(text, jsonb, jsonb),
                       hotmesh._records_view(text)
  FROM PUBLIC;
