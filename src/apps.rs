//! HotMesh apps in SQL: `hotmesh.deploy`, `hotmesh.activate`, `hotmesh.validate` and
//! `hotmesh.map`. Parsing, validation and compilation live in the pgrx-free
//! `hotmesh-manifest` crate; this module stores the result (sql/catalog.sql).

use pgrx::prelude::*;

/// Catalog changes (deploy, activate) take this transaction lock, so the topic checks
/// see every committed activation. Deploys are rare; the step path never takes it.
pub const CATALOG_LOCK: i64 = 0x484D_5348_0001;

#[pg_schema]
mod hotmesh {
    use crate::apps::CATALOG_LOCK;
    use crate::error::HotmeshError;
    use hotmesh_manifest::manifest::deploy_plan;
    use hotmesh_manifest::CompiledApp;
    use pgrx::prelude::*;
    use pgrx::JsonB;

    fn compile(manifest: &str) -> (CompiledApp, String, serde_json::Value) {
        deploy_plan(manifest).unwrap_or_else(|e| HotmeshError::Manifest(e).raise())
    }

    fn spi<T>(r: Result<T, pgrx::spi::Error>) -> T {
        r.unwrap_or_else(|e| HotmeshError::Internal(e.to_string()).raise())
    }

    /// The first row's first two columns, or None when there is no row.
    fn first_row<A: FromDatum + IntoDatum, B: FromDatum + IntoDatum>(query: &str, args: &[pgrx::datum::DatumWithOid]) -> Option<(Option<A>, Option<B>)> {
        spi(Spi::connect(|client| {
            let t = client.select(query, Some(1), args)?;
            if t.is_empty() {
                return Ok(None);
            }
            let row = t.first();
            Ok(Some((row.get::<A>(1)?, if row.columns()? > 1 { row.get::<B>(2)? } else { None })))
        }))
    }

    /// Another app's active version that subscribes to one of `app`'s topics.
    fn topic_conflict(app: &CompiledApp) -> Option<(usize, String, String, String)> {
        for (i, g) in app.graphs.iter().enumerate() {
            let hit = first_row::<String, String>(
                "SELECT t.app_id, t.version FROM hotmesh.topics t WHERE t.topic = $1 AND t.kind = 'subscribes' AND t.app_id <> $2 LIMIT 1",
                &[g.subscribes.as_str().into(), app.id.as_str().into()],
            );
            if let Some((Some(other), Some(version))) = hit {
                return Some((i, g.subscribes.clone(), other, version));
            }
        }
        None
    }

    fn raise_topic_conflict(app: &CompiledApp, c: (usize, String, String, String)) -> ! {
        let (i, topic, other, version) = c;
        HotmeshError::TopicTaken { path: format!("app.graphs[{i}].subscribes"), line: app.graphs[i].line, topic, app: other, version }.raise()
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
    #[pg_extern(volatile)]
    fn deploy(manifest: &str) -> JsonB {
        let (app, digest, json) = compile(manifest);
        spi(Spi::run_with_args("SELECT pg_advisory_xact_lock($1)", &[CATALOG_LOCK.into()]));
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
            HotmeshError::VersionExists { app: app.id, version: app.version }.raise();
        }
        if let Some(c) = topic_conflict(&app) {
            raise_topic_conflict(&app, c);
        }
        let compiled = serde_json::to_value(&app).unwrap_or_else(|e| HotmeshError::Internal(e.to_string()).raise());
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
        summary["status"] = "deployed".into();
        JsonB(summary)
    }

    /// Makes `version` the active version of `app_id`. Jobs started after this
    /// transaction commits use it; running jobs finish on the version they started with.
    #[pg_extern(volatile)]
    fn activate(app_id: &str, version: &str) -> bool {
        spi(Spi::run_with_args("SELECT pg_advisory_xact_lock($1)", &[CATALOG_LOCK.into()]));
        let compiled = first_row::<JsonB, JsonB>(
            "SELECT compiled FROM hotmesh.app_versions WHERE app_id = $1 AND version = $2",
            &[app_id.into(), version.into()],
        )
        .and_then(|r| r.0);
        let Some(JsonB(compiled)) = compiled else {
            let known = spi(Spi::get_one_with_args::<bool>("SELECT EXISTS (SELECT 1 FROM hotmesh.app_versions WHERE app_id = $1)", &[app_id.into()]));
            HotmeshError::NoSuchVersion { app: app_id.into(), version: version.into(), app_known: known == Some(true) }.raise();
        };
        let app: CompiledApp = serde_json::from_value(compiled).unwrap_or_else(|e| HotmeshError::Internal(format!("stored app does not load: {e}")).raise());
        if let Some(c) = topic_conflict(&app) {
            raise_topic_conflict(&app, c);
        }
        let current = first_row::<String, String>("SELECT version FROM hotmesh.app_active WHERE app_id = $1", &[app_id.into()]).and_then(|r| r.0);
        if current.as_deref() == Some(version) {
            // already active: nothing changes, nobody needs telling
            return true;
        }
        spi(Spi::run_with_args(
            "INSERT INTO hotmesh.app_active (app_id, version, activated_at) VALUES ($1, $2, now())
             ON CONFLICT (app_id) DO UPDATE SET version = excluded.version, activated_at = excluded.activated_at",
            &[app_id.into(), version.into()],
        ));
        spi(Spi::run_with_args("UPDATE hotmesh.app_versions SET activated_at = now() WHERE app_id = $1 AND version = $2", &[app_id.into(), version.into()]));
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
    fn map(expression: JsonB, context: default!(JsonB, "'{}'")) -> Option<JsonB> {
        match hotmesh_manifest::expr::map_once(&expression.0, &context.0) {
            Ok(v) => v.map(JsonB),
            Err(e) => HotmeshError::Map(e).raise(),
        }
    }
}
