//! A trigger's `stats`: the measures recorded, per time bucket, when a job starts (the
//! original's stats indexes). Compiled at deploy; [`Stats::record`] turns a new job's
//! context into the rows to write, and [`Granularity::buckets`] the buckets a query reads.
//!
//! ```yaml
//! t:
//!   type: trigger
//!   stats:
//!     key: '{$self.input.data.customer}'      # no key: nothing is recorded (as the original)
//!     granularity: 5m                         # 5m (default), 10m, 15m, 30m, 1h or infinity
//!     measures:
//!       - { measure: count, target: '{$self.input.data.region}' }   # count:region:<value>
//!       - { measure: sum, target: '{$self.input.data.total}' }      # sum:total
//!       - { measure: index, target: '{$self.input.data.parent}' }   # this job's id under index:parent:<value>
//! ```

use serde::{Deserialize, Serialize};

use crate::error::ManifestError;
use crate::expr::{Env, Expr};
use crate::js;
use crate::yaml::{Kind, Node};

/// What a measure records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeasureKind {
    /// One per job under the resolved value (`count:<path>:<value>`).
    Count,
    /// The resolved number, added up.
    Sum,
    /// The resolved number, averaged (the original adds it up like `sum`).
    Avg,
    /// The median of the resolved numbers (the original keeps only the last one).
    Mdn,
    /// The largest resolved number (the original drops it).
    Max,
    /// The smallest resolved number (the original drops it).
    Min,
    /// The job's id, listed under the resolved value (`index:<path>:<value>`): what a
    /// `signal` activity with `subtype: all` finds jobs by.
    Index,
}

impl MeasureKind {
    pub fn parse(s: &str) -> Option<MeasureKind> {
        Some(match s {
            "count" => MeasureKind::Count,
            "sum" => MeasureKind::Sum,
            "avg" => MeasureKind::Avg,
            "mdn" => MeasureKind::Mdn,
            "max" => MeasureKind::Max,
            "min" => MeasureKind::Min,
            "index" => MeasureKind::Index,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            MeasureKind::Count => "count",
            MeasureKind::Sum => "sum",
            MeasureKind::Avg => "avg",
            MeasureKind::Mdn => "mdn",
            MeasureKind::Max => "max",
            MeasureKind::Min => "min",
            MeasureKind::Index => "index",
        }
    }

    /// Count and index record a value as a facet; the others record a number.
    pub fn is_cardinal(self) -> bool {
        matches!(self, MeasureKind::Count | MeasureKind::Index)
    }
}

/// The width of a time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One bucket for all time (`'0'`).
    Infinity,
    /// Buckets of this many minutes (5, 10, 15, 30 or 60).
    Minutes(u32),
}

impl Default for Granularity {
    fn default() -> Self {
        Granularity::Minutes(5)
    }
}

impl Granularity {
    /// `5m`, `10m`, `15m`, `30m`, `1h` or `infinity`: what the original's reports read.
    pub fn parse(s: &str) -> Option<Granularity> {
        Some(match s {
            "infinity" => Granularity::Infinity,
            "5m" => Granularity::Minutes(5),
            "10m" => Granularity::Minutes(10),
            "15m" => Granularity::Minutes(15),
            "30m" => Granularity::Minutes(30),
            "1h" => Granularity::Minutes(60),
            _ => return None,
        })
    }

    pub fn name(self) -> String {
        match self {
            Granularity::Infinity => "infinity".into(),
            Granularity::Minutes(60) => "1h".into(),
            Granularity::Minutes(m) => format!("{m}m"),
        }
    }

    /// The bucket of a time (unix ms): `YYYYMMDDHHmm` in UTC with the minute floored
    /// to the granularity, or `0` for infinity.
    pub fn bucket(self, ms: i64) -> String {
        match self {
            Granularity::Infinity => "0".into(),
            Granularity::Minutes(m) => {
                let minutes = ms.div_euclid(60_000);
                let floored = minutes - minutes.rem_euclid(m as i64);
                let Some(t) = crate::date::parts(floored as f64 * 60_000.0) else {
                    return "0".into();
                };
                format!(
                    "{:04}{:02}{:02}{:02}{:02}",
                    t.year,
                    t.month + 1,
                    t.day,
                    t.hour,
                    t.minute
                )
            }
        }
    }

    /// The buckets from `start_ms` to `end_ms` (unix ms), the first floored to the
    /// granularity, each `m` minutes later until past the end; `['0']` for infinity.
    /// At most `limit` (a year of 5-minute buckets is 105,120): None beyond.
    pub fn buckets(self, start_ms: i64, end_ms: i64, limit: usize) -> Option<Vec<String>> {
        let Granularity::Minutes(m) = self else {
            return Some(vec!["0".into()]);
        };
        let step = m as i64 * 60_000;
        let mut t = start_ms.div_euclid(step) * step;
        let mut out = vec![];
        while t <= end_ms {
            if out.len() >= limit {
                return None;
            }
            out.push(self.bucket(t));
            t += step;
        }
        Some(out)
    }
}

/// One `measures` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    pub kind: MeasureKind,
    /// The target's path with its first three segments dropped (`{$self.input.data.a.b}`
    /// is `a/b`), as the original names it.
    pub path: String,
    pub target: Expr,
}

/// A trigger's compiled `stats` (its `measures` and `granularity`; `id` and `key` are
/// settings of the trigger).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub granularity: Granularity,
    pub measures: Vec<Measure>,
}

/// A row to record for a new job: `measure`, `target` (a path), `facet` (count and
/// index: the resolved value), `value` (the others: the resolved number).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub measure: &'static str,
    pub target: String,
    pub facet: String,
    pub value: Option<f64>,
}

impl Stats {
    /// Compiles a trigger's `stats` node (at `path`), each target with `compile`. None
    /// when it has no `measures` (then nothing is recorded, as in the original).
    pub fn compile(
        stats: &Node,
        path: &str,
        compile: &mut dyn FnMut(&Node, &str) -> Result<Expr, ManifestError>,
    ) -> Result<Option<Stats>, ManifestError> {
        let Some(list) = stats.get("measures") else {
            return Ok(None);
        };
        let granularity = match stats.get("granularity") {
            None => Granularity::default(),
            Some(n) => {
                let text = n.scalar_text().unwrap_or_default();
                Granularity::parse(&text).ok_or_else(|| {
                    ManifestError::invalid(
                        format!("{path}.granularity"),
                        n.line,
                        format!(
                            "'{text}' is not a granularity (5m, 10m, 15m, 30m, 1h or infinity)"
                        ),
                    )
                })?
            }
        };
        let items: &[Node] = match &list.kind {
            Kind::Seq(items) => items,
            Kind::Null => &[],
            _ => {
                return Err(ManifestError::invalid(
                    format!("{path}.measures"),
                    list.line,
                    format!(
                        "expected a list of {{measure, target}}, found {}",
                        list.type_name()
                    ),
                ))
            }
        };
        let mut measures = vec![];
        for (i, m) in items.iter().enumerate() {
            let mpath = format!("{path}.measures[{i}]");
            let name = m
                .get("measure")
                .and_then(Node::scalar_text)
                .unwrap_or_default();
            let kind = MeasureKind::parse(&name).ok_or_else(|| {
                ManifestError::invalid(
                    format!("{mpath}.measure"),
                    m.get("measure").map_or(m.line, |n| n.line),
                    format!("'{name}' is not a measure (count, sum, avg, mdn, max, min or index)"),
                )
            })?;
            let t = m.get("target").ok_or_else(|| {
                ManifestError::invalid(
                    format!("{mpath}.target"),
                    m.line,
                    "missing: a measure needs a target",
                )
            })?;
            let text = t.scalar_text().unwrap_or_default();
            let inner = text
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .filter(|s| !s.starts_with('@'))
                .ok_or_else(|| {
                    ManifestError::invalid(
                        format!("{mpath}.target"),
                        t.line,
                        format!("'{text}' is not a reference like '{{$self.input.data.x}}'"),
                    )
                })?;
            let path = inner.split('.').skip(3).collect::<Vec<_>>().join("/");
            measures.push(Measure {
                kind,
                path,
                target: compile(t, &format!("{mpath}.target"))?,
            });
        }
        Ok(Some(Stats {
            granularity,
            measures,
        }))
    }

    /// The rows a new job records, its context in `env`: one `count` for the job, then
    /// one per measure. A measure whose target resolves to nothing (or, for a number,
    /// to something that is not one) records nothing: the original would fail the
    /// trigger and leave the job stuck.
    pub fn record(&self, env: &Env) -> Vec<Row> {
        let mut rows = vec![Row {
            measure: "count",
            target: String::new(),
            facet: String::new(),
            value: None,
        }];
        for m in &self.measures {
            let v = match m.target.eval(env) {
                Ok(v) if !v.is_nullish() => v,
                _ => continue,
            };
            if m.kind.is_cardinal() {
                rows.push(Row {
                    measure: m.kind.name(),
                    target: m.path.clone(),
                    facet: js::to_string(&v),
                    value: None,
                });
            } else {
                let x = js::to_number(&v);
                if x.is_finite() {
                    rows.push(Row {
                        measure: m.kind.name(),
                        target: m.path.clone(),
                        facet: String::new(),
                        value: Some(x),
                    });
                }
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_floor_to_the_granularity() {
        // 2026-11-25T21:57:31Z
        let t = 1_795_643_851_000;
        assert_eq!(Granularity::Minutes(5).bucket(t), "202611252155");
        assert_eq!(Granularity::Minutes(15).bucket(t), "202611252145");
        assert_eq!(Granularity::Minutes(60).bucket(t), "202611252100");
        assert_eq!(Granularity::Infinity.bucket(t), "0");
    }

    #[test]
    fn an_hour_of_five_minute_buckets_is_thirteen() {
        let end = 1_795_643_851_000;
        let b = Granularity::Minutes(5)
            .buckets(end - 3_600_000, end, 1000)
            .unwrap();
        assert_eq!(b.len(), 13);
        assert_eq!(b[0], "202611252055");
        assert_eq!(b[12], "202611252155");
        assert!(Granularity::Minutes(5).buckets(0, end, 1000).is_none());
    }

    #[test]
    fn granularity_names_round_trip() {
        for g in ["5m", "10m", "15m", "30m", "1h", "infinity"] {
            assert_eq!(Granularity::parse(g).unwrap().name(), g);
        }
        assert!(Granularity::parse("2h").is_none());
    }
}
