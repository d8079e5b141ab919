//! Stats: the rows a trigger's `stats.measures` record in the pub's transaction, and
//! the reports over them (`hotmesh.get_stats`, `hotmesh.get_ids`), as the original's
//! getStats / getIds / resolveQuery: a query's `data` resolves the job key through the
//! graph's trigger (`stats.key`), and `range`/`start`/`end` pick the time buckets.

use super::db;
use super::spi::{key_text, Engine};
use crate::error::HotmeshError;
use hotmesh_engine::error::EngineError;
use hotmesh_manifest::model::Activity;
use hotmesh_manifest::stats::{Granularity, Row};
use hotmesh_manifest::CompiledApp;
use serde_json::{json, Map, Value};

/// Buckets one report may read (a year of 5-minute buckets).
const MAX_BUCKETS: usize = 105_120;

/// Records a new job's rows (its trigger `def` has `stats.measures` and its job a key).
pub fn record(app_id: &str, key: &str, bucket: &str, job_id: &str, rows: &[Row]) {
    let text = |f: &dyn Fn(&Row) -> String| -> Vec<String> { rows.iter().map(f).collect() };
    let values: Vec<Option<f64>> = rows.iter().map(|r| r.value).collect();
    db::exec(
        "INSERT INTO hotmesh.stats (app_id, key, bucket, measure, target, facet, value, job_id)
         SELECT $1, $2, $3, unnest($4::text[]), unnest($5::text[]), unnest($6::text[]), unnest($7::float8[]), $8",
        &[
            app_id.into(),
            key.into(),
            bucket.into(),
            text(&|r| r.measure.to_string()).into(),
            text(&|r| r.target.clone()).into(),
            text(&|r| r.facet.clone()).into(),
            values.into(),
            job_id.into(),
        ],
    );
}

pub use hotmesh_engine::options::StatsQuery as Query;

fn bad(name: &'static str, problem: impl Into<String>) -> HotmeshError {
    EngineError::InvalidArgument {
        name,
        problem: problem.into(),
    }
    .into()
}

/// A query resolved against a graph: whose rows, which buckets.
#[derive(Debug)]
pub struct Scope {
    pub app_id: String,
    pub key: String,
    pub granularity: Granularity,
    pub buckets: Vec<String>,
}

/// The graph's trigger, if it records stats.
fn trigger<'a>(app: &'a CompiledApp, topic: &str) -> Result<&'a Activity, HotmeshError> {
    let g = app
        .graph_for(topic)
        .ok_or_else(|| HotmeshError::from(EngineError::UnknownTopic(topic.into())))?;
    app.activities.get(&g.trigger).ok_or_else(|| {
        HotmeshError::from(EngineError::Internal(format!(
            "trigger {} missing",
            g.trigger
        )))
    })
}

/// Whether the trigger of the graph `topic` starts records stats (has `stats.measures`).
pub fn records(app: &CompiledApp, topic: &str) -> bool {
    trigger(app, topic).is_ok_and(|t| t.stats.is_some())
}

/// Resolves `q` for the graph that `topic` starts in `app` (the original's
/// resolveQuery): the key from `q.data` through the trigger's `stats.key`, the buckets
/// from the trigger's granularity and `q`'s times.
pub fn scope(
    app: &CompiledApp,
    topic: &str,
    q: &Query,
    now_ms: i64,
) -> Result<Scope, HotmeshError> {
    let t = trigger(app, topic)?;
    let granularity = t.stats.as_ref().map(|s| s.granularity).unwrap_or_default();
    let mut ctx = Map::new();
    ctx.insert(
        t.id.clone(),
        json!({"input": {"data": q.data}, "output": {"data": q.data}}),
    );
    let ctx = Value::Object(ctx);
    let key = match Engine::setting(&ctx, t, "stats.key") {
        Ok(Some(v)) if !v.is_null() => key_text(&v),
        Ok(_) => String::new(),
        Err(f) => return Err(EngineError::Map(format!("trigger {}: {}", t.id, f.message)).into()),
    };
    let buckets = match granularity {
        Granularity::Infinity => vec!["0".to_string()],
        g => {
            let (start, end) = window(q, now_ms)?;
            g.buckets(start, end, MAX_BUCKETS).ok_or_else(|| {
                bad(
                    "query",
                    format!("the time window spans more than {MAX_BUCKETS} buckets"),
                )
            })?
        }
    };
    Ok(Scope {
        app_id: app.id.clone(),
        key,
        granularity,
        buckets,
    })
}

/// The time window of a query (unix ms): `start` + `range`, `end` − `range`, or
/// `start` to `end`; exactly one of those pairs (the original's rule).
fn window(q: &Query, now_ms: i64) -> Result<(i64, i64), HotmeshError> {
    let time = |name: &str, s: &str| -> Result<i64, HotmeshError> {
        if s == "NOW" {
            return Ok(now_ms);
        }
        let t = hotmesh_manifest::date::parse(s);
        if t.is_finite() {
            Ok(t as i64)
        } else {
            Err(bad(
                "query",
                format!("{name} '{s}' is not a time (an ISO date-time or NOW)"),
            ))
        }
    };
    let range = |s: &str| -> Result<i64, HotmeshError> {
        let unit = match s.chars().last() {
            Some('m') => 60_000,
            Some('h') => 3_600_000,
            Some('d') => 86_400_000,
            _ => {
                return Err(bad(
                    "query",
                    format!("range '{s}' is not a range (like 30m, 2h or 7d)"),
                ))
            }
        };
        match s[..s.len() - 1].parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n * unit),
            _ => Err(bad(
                "query",
                format!("range '{s}' is not a range (like 30m, 2h or 7d)"),
            )),
        }
    };
    match (&q.start, &q.end, &q.range) {
        (Some(s), None, Some(r)) => {
            let s = time("start", s)?;
            Ok((s, s + range(r)?))
        }
        (None, Some(e), Some(r)) => {
            let e = time("end", e)?;
            Ok((e - range(r)?, e))
        }
        (Some(s), Some(e), None) => Ok((time("start", s)?, time("end", e)?)),
        _ => Err(bad(
            "query",
            "give start and end, end and range, or start and range (granularity infinity needs none)",
        )),
    }
}

/// The report of a scope (the original's getStats, with the other measures too):
/// `{key, granularity, range, end, start, count, measures: [{target, type, value}],
/// segments: [{time, count, measures}]}`. Count measures are named `path:value`; sum,
/// avg, mdn, max and min by their path.
pub fn report(s: &Scope, q: &Query) -> Value {
    let rows = db::query(
        "SELECT bucket, measure, target, facet,
                CASE measure WHEN 'count' THEN count(*)::float8 WHEN 'index' THEN count(*)::float8
                             WHEN 'sum' THEN sum(value) WHEN 'avg' THEN avg(value) WHEN 'max' THEN max(value)
                             WHEN 'min' THEN min(value)
                             ELSE percentile_cont(0.5) WITHIN GROUP (ORDER BY value) END,
                count(*)::float8, sum(value)
           FROM hotmesh.stats
          WHERE app_id = $1 AND key = $2 AND bucket = ANY ($3)
          GROUP BY bucket, measure, target, facet
          ORDER BY bucket, measure, target, facet",
        &[s.app_id.as_str().into(), s.key.as_str().into(), s.buckets.clone().into()],
        |t| {
            let mut v = vec![];
            for r in t {
                v.push((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<String>(2)?.unwrap_or_default(),
                    r.get::<String>(3)?.unwrap_or_default(),
                    r.get::<String>(4)?.unwrap_or_default(),
                    r.get::<f64>(5)?.unwrap_or(0.0),
                    r.get::<f64>(6)?.unwrap_or(0.0),
                    r.get::<f64>(7)?,
                ));
            }
            Ok(v)
        },
    );
    let name = |measure: &str, target: &str, facet: &str| match measure {
        "count" | "index" => format!("{target}:{facet}"),
        _ => target.to_string(),
    };
    // totals across buckets: counts and sums add, an average weighs by its count, and
    // max and min take the extreme; a median is only exact per bucket, so the total is
    // the median of the bucket medians
    let mut total_count = 0.0;
    let mut totals: indexmap::IndexMap<(String, String), (f64, f64, f64)> =
        indexmap::IndexMap::new();
    let mut medians: indexmap::IndexMap<String, Vec<f64>> = indexmap::IndexMap::new();
    let mut segments: indexmap::IndexMap<String, (f64, Vec<Value>)> = s
        .buckets
        .iter()
        .map(|b| (b.clone(), (0.0, vec![])))
        .collect();
    for (bucket, measure, target, facet, value, n, sum) in rows {
        if measure == "index" {
            continue; // listed by get_ids
        }
        let seg = segments.entry(bucket).or_default();
        if measure == "count" && target.is_empty() {
            total_count += value;
            seg.0 += value;
            continue;
        }
        let label = name(&measure, &target, &facet);
        seg.1
            .push(json!({"target": label, "type": measure, "value": number(&measure, value)}));
        if measure == "mdn" {
            medians.entry(label).or_default().push(value);
            continue;
        }
        let e = totals
            .entry((measure.clone(), label))
            .or_insert((f64::NAN, 0.0, 0.0));
        e.0 = match measure.as_str() {
            "max" => e.0.max(value),
            "min" => e.0.min(value),
            _ => value + if e.0.is_nan() { 0.0 } else { e.0 },
        };
        e.1 += n;
        e.2 += sum.unwrap_or(0.0);
    }
    let mut measures: Vec<Value> = totals
        .into_iter()
        .map(|((measure, label), (v, n, sum))| {
            let value = if measure == "avg" { sum / n } else { v };
            json!({"target": label, "type": measure, "value": number(&measure, value)})
        })
        .collect();
    for (label, mut m) in medians {
        m.sort_by(f64::total_cmp);
        let mid = m.len() / 2;
        let value = if m.len() % 2 == 1 {
            m[mid]
        } else {
            (m[mid - 1] + m[mid]) / 2.0
        };
        measures.push(json!({"target": label, "type": "mdn", "value": value}));
    }
    let mut out = json!({
        "key": s.key,
        "granularity": s.granularity.name(),
        "count": total_count as i64,
        "measures": measures,
    });
    for (k, v) in [("range", &q.range), ("start", &q.start), ("end", &q.end)] {
        if let Some(v) = v {
            out[k] = v.clone().into();
        }
    }
    if !q.sparse {
        out["segments"] = segments
            .into_iter()
            .map(|(b, (count, measures))| json!({"time": time_of(&b), "count": count as i64, "measures": measures}))
            .collect();
    }
    out
}

/// A measure's value as JSON: counts are whole numbers.
fn number(measure: &str, v: f64) -> Value {
    if measure == "count" {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// A bucket's time as the original prints it: `YYYY-MM-DDTHH:MMZ`, or `0`.
fn time_of(bucket: &str) -> String {
    if bucket.len() != 12 {
        return bucket.to_string();
    }
    let b = bucket.as_bytes();
    let s = |r: std::ops::Range<usize>| std::str::from_utf8(&b[r]).unwrap_or("");
    format!(
        "{}-{}-{}T{}:{}Z",
        s(0..4),
        s(4..6),
        s(6..8),
        s(8..10),
        s(10..12)
    )
}

/// The job ids indexed under `facet` (`path:value`) in the scope, per bucket.
pub fn ids(s: &Scope, facet: &str) -> Vec<(String, String)> {
    let (target, value) = facet.split_once(':').unwrap_or((facet, ""));
    db::texts::<2>(
        "SELECT bucket, job_id FROM hotmesh.stats
          WHERE app_id = $1 AND key = $2 AND bucket = ANY ($3) AND measure = 'index' AND target = $4 AND facet = $5
          ORDER BY bucket, created_at, job_id",
        &[s.app_id.as_str().into(), s.key.as_str().into(), s.buckets.clone().into(), target.into(), value.into()],
    )
    .into_iter()
    .map(|[b, j]| (b, j))
    .collect()
}

/// The original's getIds: `{key, facets, granularity, range, start, end, counts:
/// [{facet, count}], segments: [{time, measures: [{type: 'ids', target, time, count,
/// ids}]}]}`. Without facets, those of the scope's count measures.
pub fn ids_report(s: &Scope, q: &Query, facets: Vec<String>) -> Value {
    let facets = if facets.is_empty() {
        db::texts::<1>(
            "SELECT DISTINCT target || ':' || facet FROM hotmesh.stats
              WHERE app_id = $1 AND key = $2 AND bucket = ANY ($3) AND measure = 'count' AND target <> ''
              ORDER BY 1",
            &[s.app_id.as_str().into(), s.key.as_str().into(), s.buckets.clone().into()],
        )
        .into_iter()
        .map(|[f]| f)
        .collect()
    } else {
        facets
    };
    let mut counts = vec![];
    let mut segments: indexmap::IndexMap<String, Vec<Value>> = indexmap::IndexMap::new();
    for f in &facets {
        let found = ids(s, f);
        counts.push(json!({"facet": f, "count": found.len()}));
        let mut per_bucket: indexmap::IndexMap<String, Vec<String>> = indexmap::IndexMap::new();
        for (b, j) in found {
            per_bucket.entry(b).or_default().push(j);
        }
        for (b, list) in per_bucket {
            let time = time_of(&b);
            segments.entry(time.clone()).or_default().push(json!({
                "type": "ids", "target": f, "time": time, "count": list.len(), "ids": list,
            }));
        }
    }
    let mut out = json!({
        "key": s.key,
        "facets": facets,
        "granularity": s.granularity.name(),
        "counts": counts,
        "segments": segments.into_iter().map(|(time, measures)| json!({"time": time, "measures": measures})).collect::<Vec<_>>(),
    });
    for (k, v) in [("range", &q.range), ("start", &q.start), ("end", &q.end)] {
        if let Some(v) = v {
            out[k] = v.clone().into();
        }
    }
    out
}

/// After a signal with `scrub` used an index: its rows, and the scope's job counts in
/// those buckets (the original deletes the bucket's counters with the index list).
pub fn scrub(s: &Scope, facet: &str) {
    let (target, value) = facet.split_once(':').unwrap_or((facet, ""));
    db::exec(
        "DELETE FROM hotmesh.stats
          WHERE app_id = $1 AND key = $2 AND bucket = ANY ($3)
            AND ((measure = 'index' AND target = $4 AND facet = $5) OR measure = 'count')",
        &[
            s.app_id.as_str().into(),
            s.key.as_str().into(),
            s.buckets.clone().into(),
            target.into(),
            value.into(),
        ],
    );
}

/// Job ids indexed under `target:value` by any trigger of `app_id`, any key and bucket.
pub fn indexed_anywhere(app_id: &str, target: &str, value: &str) -> Vec<String> {
    db::texts::<1>(
        "SELECT DISTINCT job_id FROM hotmesh.stats
          WHERE app_id = $1 AND measure = 'index' AND target = $2 AND facet = $3",
        &[app_id.into(), target.into(), value.into()],
    )
    .into_iter()
    .map(|[j]| j)
    .collect()
}
