//! Bounds on the numbers and names callers hand the engine. A value outside them is
//! refused where it enters (the error names the option), so nothing later fails on it:
//! a job whose expiry cannot be a timestamp would fail every step that touches it, the
//! engine worker's included. Durations computed at run time (a mapped sleep, a signal's
//! `$expire`) are clamped instead: a job's data must not stop its own steps.

/// The longest duration anything waits: 100 years, in seconds. Postgres intervals and
/// timestamps hold far more; this keeps `now() + duration` valid whatever `now()` is.
pub const MAX_SECONDS: f64 = 100.0 * 365.25 * 86_400.0;

/// The longest topic, in bytes. Topics are channel names and NOTIFY payloads (8000
/// bytes at most), and keys of the catalog's indexes.
pub const MAX_TOPIC_BYTES: usize = 255;

/// How deep JSON may nest where it enters the engine: what serde_json reads (its
/// recursion limit lets 127 arrays or objects nest). What the engine stores is held
/// under it, so everything stored can be read back.
pub const MAX_JSON_DEPTH: usize = 127;

/// Whether `v` nests deeper than `max` levels (a scalar is level 0, `[1]` level 1).
/// Without recursion, and stops at the first path that is too deep.
pub fn json_too_deep(v: &serde_json::Value, max: usize) -> bool {
    use serde_json::Value;
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Array(a) => {
                if depth >= max {
                    return true;
                }
                stack.extend(a.iter().map(|c| (c, depth + 1)));
            }
            Value::Object(o) => {
                if depth >= max {
                    return true;
                }
                stack.extend(o.values().map(|c| (c, depth + 1)));
            }
            _ => {}
        }
    }
    false
}

/// A caller's duration in seconds: finite, `0..=MAX_SECONDS`. The error says what was
/// wrong, for the caller to prefix with the option's name.
pub fn seconds(v: f64) -> Result<f64, String> {
    if v.is_finite() && (0.0..=MAX_SECONDS).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "must be a number of seconds between 0 and {MAX_SECONDS}, got {}",
            shown(v)
        ))
    }
}

/// A job's `expire`: seconds as [`seconds`], or a negative number (never expires).
pub fn expire(v: f64) -> Result<f64, String> {
    if v.is_finite() && v <= MAX_SECONDS {
        Ok(v)
    } else {
        Err(format!(
            "must be a number of seconds up to {MAX_SECONDS} (0 or less: never), got {}",
            shown(v)
        ))
    }
}

/// A number as an error message shows it: huge ones in exponent form.
fn shown(v: f64) -> String {
    if v.is_finite() && v.abs() >= 1e12 {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// A duration computed at run time, made usable: NaN and negatives wait 0 s, longer than
/// [`MAX_SECONDS`] waits that long.
pub fn clamp_seconds(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(0.0, MAX_SECONDS)
    }
}

/// Whether every literal topic of `app` can be a topic (a channel name and a NOTIFY
/// payload): the error names where the topic is written. What deploy checks, and what
/// the command line's offline `validate` checks with it.
pub fn app_topics(app: &hotmesh_manifest::model::CompiledApp) -> Result<(), String> {
    for t in app.topics() {
        if let Err(problem) = topic(&t.topic) {
            let g = app
                .graphs
                .iter()
                .position(|g| g.subscribes == t.graph)
                .unwrap_or(0);
            let path = match (&t.activity, t.kind) {
                (_, "subscribes" | "publishes") => format!("app.graphs[{g}].{}", t.kind),
                (Some(a), _) => format!("app.graphs[{g}].activities.{a}.topic"),
                (None, kind) => format!("app.graphs[{g}] ({kind})"),
            };
            return Err(format!("{path}: the topic {problem}"));
        }
    }
    Ok(())
}

/// Whether `topic` can be a topic: 1 to [`MAX_TOPIC_BYTES`] bytes, no control characters.
pub fn topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("must not be empty".into());
    }
    if topic.len() > MAX_TOPIC_BYTES {
        return Err(format!(
            "is {} bytes long; at most {MAX_TOPIC_BYTES}",
            topic.len()
        ));
    }
    if topic.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_past_a_century_are_refused_at_the_entry() {
        assert_eq!(seconds(30.0), Ok(30.0));
        assert!(seconds(1e15).unwrap_err().ends_with("got 1e15"));
        assert!(seconds(-1.0).is_err());
        assert!(seconds(f64::NAN).is_err());
        assert!(seconds(f64::INFINITY).is_err());
    }

    #[test]
    fn a_negative_expire_means_never_but_a_huge_one_is_refused() {
        assert_eq!(expire(-1.0), Ok(-1.0));
        assert!(expire(1e15).is_err());
    }

    #[test]
    fn durations_computed_at_run_time_are_clamped() {
        assert_eq!(clamp_seconds(1e15), MAX_SECONDS);
        assert_eq!(clamp_seconds(-5.0), 0.0);
        assert_eq!(clamp_seconds(f64::NAN), 0.0);
        assert_eq!(clamp_seconds(f64::INFINITY), MAX_SECONDS);
    }

    #[test]
    fn json_depth_counts_containers_not_scalars() {
        use serde_json::json;
        assert!(!json_too_deep(&json!(1), 0));
        assert!(!json_too_deep(&json!([1]), 1));
        assert!(json_too_deep(&json!([[1]]), 1));
        assert!(!json_too_deep(&json!({"a": {"b": []}}), 3));
        assert!(json_too_deep(&json!({"a": {"b": [[]]}}), 3));
        // a wide value is not deep
        assert!(!json_too_deep(&json!(vec![vec![0; 1000]; 1000]), 2));
    }

    #[test]
    fn topics_are_short_printable_names() {
        assert!(topic("orders.done").is_ok());
        assert!(topic("").is_err());
        assert!(topic(&"t".repeat(256)).unwrap_err().contains("256"));
        assert!(topic("a\nb").is_err());
    }
}
