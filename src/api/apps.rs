//! HotMesh apps in SQL: `hotmesh.deploy`, `hotmesh.activate`, `hotmesh.validate` and
//! `hotmesh.map`. Parsing, validation and compilation live in the pgrx-free
//! `hotmesh-manifest` crate; this module stores the result (sql/catalog.sql).

use pgrx::prelude::*;

/// Catalog changes (deploy, activate) take this transaction lock, so the topic checks
/// see every committed activation. Deploys are rare; the step path never takes it.
pub const CATALOG_LOCK: i64 = 0x484D_5348_0001;

#[pg_schema]
mod hotmesh {
    use super::CATALOG_LOCK;
    use crate::error::{HotmeshError, Raise};
    use crate::json::Json;
    use crate::store::grants::{self, Privilege};
    use hotmesh_engine::error::EngineError;
    use hotmesh_manifest::compile::deploy_plan;
    use hotmesh_manifest::CompiledApp;
    use pgrx::prelude::*;
    use pgrx::JsonB;

    fn compile(manifest: &str) -> (CompiledApp, String, serde_json::Value) {
        let plan = deploy_plan(manifest).unwrap_or_else(|e| HotmeshError::Manifest(e).raise());
        check_topic_names(&plan.0);
        plan
    }

    /// Every literal topic must be usable as a channel name and a NOTIFY payload (see
    /// `hotmesh_engine::limits::topic`); the error names where the topic is written.
    fn check_topic_names(app: &CompiledApp) {
        if let Err(problem) = hotmesh_engine::limits::app_topics(app) {
            EngineError::InvalidArgument {
                name: "manifest",
                problem,
            }
            .raise();
        }
    }

    fn spi<T>(r: Result<T, pgrx::spi::Error>) -> T {
        r.unwrap_or_else(|e| EngineError::Internal(e.to_string()).raise())
    }

    /// The first row's first two columns, or None when there is no row.
    fn first_row<A: FromDatum + IntoDatum, B: FromDatum + IntoDatum>(
        query: &str,
        args: &[pgrx::datum::DatumWithOid],
    ) -> Option<(Option<A>, Option<B>)> {
        spi(Spi::connect(|client| {
            let t = client.select(query, Some(1), args)?;
            if t.is_empty() {
                return Ok(None);
            }
            let row = t.first();
            Ok(Some((
                row.get::<A>(1)?,
                if row.columns()? > 1 {
                    row.get::<B>(2)?
                } else {
                    None
                },
            )))
        }))
    }

    /// Serializes catalog changes for the rest of the transaction.
    fn lock_catalog() {
        spi(Spi::run_with_args(
            "SELECT pg_advisory_xact_lock($1)",
            &[CATALOG_LOCK.into()],
        ));
    }

    /// Raises when a topic that this stored version subscribes to belongs to another
    /// app's active version. One query over the catalog, for deploy and activate alike;
    /// the error points at the graph's `subscribes` line.
    fn check_topics(app_id: &str, version: &str) {
        let hit = spi(Spi::connect(|client| {
            let t = client.select(
                "SELECT g.ordinality::int - 1, (g.value->>'line')::int, mine.topic, other.app_id, other.version
                   FROM hotmesh.app_topics mine
                   JOIN hotmesh.topics other ON other.topic = mine.topic AND other.kind = 'subscribes' AND other.app_id <> mine.app_id
                   JOIN hotmesh.app_versions v ON v.app_id = mine.app_id AND v.version = mine.version
                  CROSS JOIN LATERAL jsonb_array_elements(v.compiled->'graphs') WITH ORDINALITY AS g(value, ordinality)
                  WHERE mine.app_id = $1 AND mine.version = $2 AND mine.kind = 'subscribes' AND g.value->>'subscribes' = mine.topic
                  ORDER BY 1 LIMIT 1",
                Some(1),
                &[app_id.into(), version.into()],
            )?;
            if t.is_empty() {
                return Ok(None);
            }
            let r = t.first();
            Ok(Some((
                r.get::<i32>(1)?,
                r.get::<i32>(2)?,
                r.get::<String>(3)?,
                r.get::<String>(4)?,
                r.get::<String>(5)?,
            )))
        }));
        if let Some((i, line, Some(topic), Some(app), Some(version))) = hit {
            let i = i.unwrap_or(0);
            HotmeshError::TopicTaken {
                path: format!("app.graphs[{i}].subscribes"),
                line: line.unwrap_or(0) as usize,
                topic,
                app,
                version,
            }
            .raise();
        }
    }

    /// MeshCall's graphs for `namespace` (docs/meshcall.md): what the Rust client
    /// deploys, and what `hotmesh.exec` and `hotmesh.cron` deploy on first use.
    #[pg_extern(immutable, parallel_safe)]
    fn meshcall_app(namespace: default!(&str, "'meshcall'")) -> String {
        hotmesh_engine::apps::meshcall(namespace)
    }

    /// Validates and compiles a manifest without storing it: the summary deploy would
    /// return, with its warnings.
    #[pg_extern(volatile, parallel_safe)]
    fn validate(manifest: &str) -> JsonB {
        let (app, digest, _) = compile(manifest);
        let mut s = app.summary();
        s["digest"] = digest.into();
        JsonB(s)
    }

    /// Deploys a HotMesh app manifest (YAML or JSON) as a new version, not yet active.
    /// The same content again is a no-op; other content under an existing version is
    /// an error.
    #[pg_extern(volatile, security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn deploy(manifest: &str) -> JsonB {
        let (app, digest, json) = compile(manifest);
        grants::require(&app.id, Privilege::Deploy);
        lock_catalog();
        let existing = first_row::<String, String>(
            "SELECT digest FROM hotmesh.app_versions WHERE app_id = $1 AND version = $2",
            &[app.id.as_str().into(), app.version.as_str().into()],
        )
        .and_then(|r| r.0);
        let mut summary = app.summary();
        summary["digest"] = digest.clone().into();
        if let Some(old) = existing {
            if old == digest {
                summary["status"] = "unchanged".into();
                return JsonB(summary);
            }
            HotmeshError::VersionExists {
                app: app.id,
                version: app.version,
            }
            .raise();
        }
        let compiled = serde_json::to_value(&app)
            .unwrap_or_else(|e| EngineError::Internal(e.to_string()).raise());
        spi(Spi::run_with_args(
            "INSERT INTO hotmesh.app_versions (app_id, version, source, manifest, compiled, digest) VALUES ($1, $2, $3, $4, $5, $6)",
            &[app.id.as_str().into(), app.version.as_str().into(), manifest.into(), JsonB(json).into(), JsonB(compiled).into(), digest.as_str().into()],
        ));
        let topics = serde_json::to_value(app.topics()).unwrap_or_default();
        spi(Spi::run_with_args(
            "INSERT INTO hotmesh.app_topics (app_id, version, topic, kind, activity_id, graph)
             SELECT $1, $2, t->>'topic', t->>'kind', t->>'activity', t->>'graph' FROM jsonb_array_elements($3) t",
            &[app.id.as_str().into(), app.version.as_str().into(), JsonB(topics).into()],
        ));
        // an error here rolls the inserts back with the rest of the statement
        check_topics(&app.id, &app.version);
        crate::store::apps::changed_at_commit();
        summary["status"] = "deployed".into();
        JsonB(summary)
    }

    /// Makes `version` the active version of `app_id`. Jobs started after this
    /// transaction commits use it; running jobs finish on the version they started with.
    #[pg_extern(volatile, security_definer)]
    #[search_path(pg_catalog, pg_temp)]
    fn activate(app_id: &str, version: &str) -> bool {
        grants::require(app_id, Privilege::Deploy);
        lock_catalog();
        let exists = first_row::<bool, bool>(
            "SELECT true, EXISTS (SELECT 1 FROM hotmesh.app_active WHERE app_id = $1 AND version = $2)
               FROM hotmesh.app_versions WHERE app_id = $1 AND version = $2",
            &[app_id.into(), version.into()],
        );
        match exists {
            None => {
                let known = first_row::<bool, bool>(
                    "SELECT true FROM hotmesh.app_versions WHERE app_id = $1 LIMIT 1",
                    &[app_id.into()],
                )
                .is_some();
                HotmeshError::NoSuchVersion {
                    app: app_id.into(),
                    version: version.into(),
                    app_known: known,
                }
                .raise();
            }
            // already active: nothing changes, nobody needs telling
            Some((_, Some(true))) => return true,
            Some(_) => {}
        }
        check_topics(app_id, version);
        spi(Spi::run_with_args(
            "INSERT INTO hotmesh.app_active (app_id, version, activated_at) VALUES ($1, $2, now())
             ON CONFLICT (app_id) DO UPDATE SET version = excluded.version, activated_at = excluded.activated_at",
            &[app_id.into(), version.into()],
        ));
        spi(Spi::run_with_args("UPDATE hotmesh.app_versions SET activated_at = now() WHERE app_id = $1 AND version = $2", &[app_id.into(), version.into()]));
        // every backend's cached topic lookup forgets the version it had, at commit
        crate::store::apps::changed_at_commit();
        // one notice per activation, delivered at commit (clients refresh their caches)
        spi(Spi::run_with_args(
            "SELECT pg_notify('hotmesh_activated', json_build_object('app_id', $1::text, 'version', $2::text)::text)",
            &[app_id.into(), version.into()],
        ));
        true
    }

    /// Evaluates a mapping expression (a value of `maps`: a `{reference}`, a literal, an
    /// object of maps, or `{"@pipe": [...]}`) against a job context, for debugging maps.
    /// The context looks like a job's: `{"data": …, "metadata": …, "<activity>": {…}}`.
    #[pg_extern(volatile, parallel_safe)]
    fn map(expression: Json, context: default!(Json, "'{}'")) -> Option<JsonB> {
        match hotmesh_manifest::expr::map_once(&expression.0, &context.0) {
            Ok(v) => v.map(JsonB),
            Err(e) => EngineError::Map(e).raise(),
        }
    }
}
