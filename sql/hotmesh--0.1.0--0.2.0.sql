-- hotmesh 0.1.0 -> 0.2.0: YAML apps. The app catalog (tables and views), deploy,
-- validate, activate and map, and their privileges.

-- The app catalog: deployed manifests by version, the active version of each app, and
-- the topics each version uses. Written by hotmesh.deploy / hotmesh.activate; read
-- through the views below.

CREATE TABLE hotmesh.app_versions (
    app_id       text        NOT NULL,
    version      text        NOT NULL,
    source       text        NOT NULL,              -- the manifest as deployed (YAML or JSON)
    manifest     jsonb       NOT NULL,              -- the same, as JSON
    compiled     jsonb       NOT NULL,              -- what the engine runs (hotmesh_manifest::CompiledApp)
    digest       text        NOT NULL,              -- sha-256 of the manifest's content
    deployed_at  timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,                       -- last activation, if any
    PRIMARY KEY (app_id, version)
);
COMMENT ON TABLE hotmesh.app_versions IS 'HotMesh app manifests, one row per deployed version';

CREATE TABLE hotmesh.app_active (
    app_id       text        PRIMARY KEY,
    version      text        NOT NULL,
    activated_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (app_id, version) REFERENCES hotmesh.app_versions (app_id, version)
);
COMMENT ON TABLE hotmesh.app_active IS 'The active version of each app: jobs started after an activation commits use it';

CREATE TABLE hotmesh.app_topics (
    app_id      text NOT NULL,
    version     text NOT NULL,
    topic       text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('subscribes', 'publishes', 'worker', 'await', 'signal', 'hook')),
    activity_id text,
    graph       text NOT NULL,                      -- the subscribes topic of the graph it belongs to
    FOREIGN KEY (app_id, version) REFERENCES hotmesh.app_versions (app_id, version) ON DELETE CASCADE
);
CREATE INDEX app_topics_topic ON hotmesh.app_topics (topic, kind);
CREATE INDEX app_topics_version ON hotmesh.app_topics (app_id, version);

CREATE VIEW hotmesh.apps AS
SELECT v.app_id,
       a.version           AS active_version,
       a.activated_at,
       count(*)::int       AS versions,
       max(v.deployed_at)  AS last_deployed_at
  FROM hotmesh.app_versions v
  LEFT JOIN hotmesh.app_active a USING (app_id)
 GROUP BY v.app_id, a.version, a.activated_at;
COMMENT ON VIEW hotmesh.apps IS 'Each app: its active version and how many versions it has';

CREATE VIEW hotmesh.versions AS
SELECT v.app_id,
       v.version,
       CASE WHEN a.version IS NOT NULL THEN 'active'
            WHEN v.activated_at IS NOT NULL THEN 'inactive'
            ELSE 'deployed' END                               AS status,
       v.deployed_at,
       v.activated_at,
       jsonb_array_length(v.compiled -> 'graphs')              AS graphs,
       (SELECT count(*) FROM jsonb_object_keys(v.compiled -> 'activities'))::int AS activities,
       v.digest
  FROM hotmesh.app_versions v
  LEFT JOIN hotmesh.app_active a ON a.app_id = v.app_id AND a.version = v.version;
COMMENT ON VIEW hotmesh.versions IS 'Every deployed version: deployed, active, or inactive (was active once), and when';

CREATE VIEW hotmesh.graphs AS
SELECT a.app_id,
       a.version,
       g.ordinality::int - 1                                    AS graph,
       g.value ->> 'subscribes'                                 AS subscribes,
       g.value ->> 'publishes'                                  AS publishes,
       g.value ->> 'trigger'                                    AS trigger,
       jsonb_array_length(g.value -> 'activities')              AS activities,
       v.manifest -> 'app' -> 'graphs' -> (g.ordinality::int - 1) -> 'expire' AS expire
  FROM hotmesh.app_active a
  JOIN hotmesh.app_versions v USING (app_id, version)
 CROSS JOIN LATERAL jsonb_array_elements(v.compiled -> 'graphs') WITH ORDINALITY AS g(value, ordinality);
COMMENT ON VIEW hotmesh.graphs IS 'The graphs of each active version';

CREATE VIEW hotmesh.topics AS
SELECT t.topic, t.kind, t.app_id, t.version, t.activity_id, t.graph
  FROM hotmesh.app_topics t
  JOIN hotmesh.app_active a ON a.app_id = t.app_id AND a.version = t.version;
COMMENT ON VIEW hotmesh.topics IS 'The topics of each active version: what starts a job, what it publishes, worker, await, signal and hook topics';

CREATE  FUNCTION hotmesh."validate"(
	"manifest" TEXT /* & str */
) RETURNS jsonb /* JsonB */
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'validate_wrapper';

CREATE  FUNCTION hotmesh."activate"(
	"app_id" TEXT, /* & str */
	"version" TEXT /* & str */
) RETURNS bool /* bool */
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'activate_wrapper';

CREATE  FUNCTION hotmesh."map"(
	"expression" jsonb, /* JsonB */
	"context" jsonb DEFAULT '{}' /* JsonB */
) RETURNS jsonb /* Option < JsonB > */
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'map_wrapper';

CREATE  FUNCTION hotmesh."deploy"(
	"manifest" TEXT /* & str */
) RETURNS jsonb /* JsonB */
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'deploy_wrapper';

REVOKE ALL ON hotmesh.app_versions, hotmesh.app_active, hotmesh.app_topics FROM PUBLIC;
GRANT SELECT ON hotmesh.apps, hotmesh.versions, hotmesh.graphs, hotmesh.topics TO PUBLIC;
REVOKE ALL ON FUNCTION hotmesh.deploy(text), hotmesh.activate(text, text) FROM PUBLIC;
