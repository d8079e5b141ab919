//! Worker retry policies. An activity's `retry` is either structured
//! (`{maximumAttempts, backoffCoefficient, maximumInterval, initialInterval}`) or the
//! legacy per-code form (`{'500': [3]}`: up to 3 retries of code 500, after 10, 100 and
//! 1000 ms). Without one, a worker error goes to the engine at once (the original calls
//! the worker once too).

use serde_json::Value;

/// The policy columns of a worker message.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Total attempts, the first included (1: no retry).
    pub max_attempts: i32,
    pub backoff_coefficient: f64,
    /// Seconds.
    pub maximum_interval: f64,
    /// Seconds.
    pub initial_interval: f64,
    /// Legacy: code -> retries.
    pub codes: Option<serde_json::Map<String, Value>>,
}

/// Retries of the legacy form are capped like the original's HMSH_MAX_RETRIES.
pub const LEGACY_MAX_RETRIES: i64 = 3;
/// A message handed out this many times without an answer is poison (dead-lettered),
/// unless its policy allows more attempts.
pub const POISON_DELIVERIES: i32 = 5;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 1,
            backoff_coefficient: 10.0,
            maximum_interval: 120.0,
            initial_interval: 1.0,
            codes: None,
        }
    }
}

/// Seconds from a number or a duration string (`"120s"`, `"5m"`, `"1h"`, `"250ms"`).
pub fn seconds(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            let split = s
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(s.len());
            let n: f64 = s[..split].parse().ok()?;
            let mult = match s[split..].trim() {
                "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
                "ms" => 0.001,
                "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
                "h" | "hr" | "hour" | "hours" => 3600.0,
                "d" | "day" | "days" => 86400.0,
                _ => return None,
            };
            Some(n * mult)
        }
        _ => None,
    }
}

impl Policy {
    /// The policy of an activity's `retry` setting (None or null: no retries).
    pub fn from_config(retry: Option<&Value>) -> Result<Policy, String> {
        let mut p = Policy::default();
        let Some(Value::Object(m)) = retry else {
            return match retry {
                None | Some(Value::Null) => Ok(p),
                Some(other) => Err(format!("retry must be an object, found {other}")),
            };
        };
        let structured = [
            "maximumAttempts",
            "backoffCoefficient",
            "maximumInterval",
            "initialInterval",
        ];
        if m.keys().any(|k| structured.contains(&k.as_str())) {
            p.max_attempts = 3;
            if let Some(v) = m.get("maximumAttempts") {
                p.max_attempts = v
                    .as_f64()
                    .filter(|n| *n >= 1.0)
                    .ok_or("retry.maximumAttempts must be a number >= 1")?
                    as i32;
            }
            if let Some(v) = m.get("backoffCoefficient") {
                p.backoff_coefficient = v
                    .as_f64()
                    .filter(|n| *n >= 1.0)
                    .ok_or("retry.backoffCoefficient must be a number >= 1")?;
            }
            if let Some(v) = m.get("maximumInterval") {
                p.maximum_interval = seconds(v)
                    .filter(|n| *n >= 0.0)
                    .ok_or("retry.maximumInterval must be seconds or a duration like '120s'")?;
            }
            if let Some(v) = m.get("initialInterval") {
                p.initial_interval = seconds(v)
                    .filter(|n| *n >= 0.0)
                    .ok_or("retry.initialInterval must be seconds or a duration like '1s'")?;
            }
            return Ok(p);
        }
        let mut codes = serde_json::Map::new();
        for (code, v) in m {
            if code.parse::<u16>().is_err() {
                return Err(format!("retry.{code}: expected a status code (like '500') or maximumAttempts/backoffCoefficient/maximumInterval/initialInterval"));
            }
            let n = match v {
                Value::Array(a) => a.first().and_then(Value::as_i64),
                other => other.as_i64(),
            }
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("retry.{code}: expected [retries]"))?;
            codes.insert(code.clone(), n.min(LEGACY_MAX_RETRIES).into());
        }
        p.max_attempts = 1 + codes.values().filter_map(Value::as_i64).max().unwrap_or(0) as i32;
        p.codes = Some(codes);
        Ok(p)
    }

    /// Whether a failure with `code` after `attempt` retries gets another try, and after
    /// how many seconds.
    pub fn next(&self, code: i64, attempt: i32) -> Option<f64> {
        let k = attempt + 1; // the retry this would be
        match &self.codes {
            Some(codes) => {
                let allowed = codes
                    .get(&code.to_string())
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                (i64::from(k) <= allowed).then(|| 10f64.powi(k) / 1000.0)
            }
            None => (k < self.max_attempts).then(|| {
                (self.initial_interval * self.backoff_coefficient.powi(k))
                    .min(self.maximum_interval)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn structured() {
        let p = Policy::from_config(Some(
            &json!({"maximumAttempts": 3, "backoffCoefficient": 2, "maximumInterval": "5s"}),
        ))
        .unwrap();
        assert_eq!(p.next(500, 0), Some(2.0));
        assert_eq!(p.next(500, 1), Some(4.0));
        assert_eq!(p.next(500, 2), None);
        let p = Policy::from_config(Some(
            &json!({"maximumAttempts": 10, "backoffCoefficient": 10, "maximumInterval": 30}),
        ))
        .unwrap();
        assert_eq!(p.next(500, 4), Some(30.0));
    }

    #[test]
    fn legacy() {
        let p = Policy::from_config(Some(&json!({"500": [2], "503": [9]}))).unwrap();
        assert_eq!(p.next(500, 0), Some(0.01));
        assert_eq!(p.next(500, 1), Some(0.1));
        assert_eq!(p.next(500, 2), None);
        assert_eq!(p.next(404, 0), None);
        assert_eq!(p.next(503, 2), Some(1.0));
        assert_eq!(p.next(503, 3), None, "capped at 3 retries");
        assert_eq!(p.max_attempts, 4);
    }

    #[test]
    fn none_and_bad() {
        assert_eq!(Policy::from_config(None).unwrap().next(500, 0), None);
        assert!(Policy::from_config(Some(&json!("x"))).is_err());
        assert!(Policy::from_config(Some(&json!({"abc": [1]}))).is_err());
        assert!(Policy::from_config(Some(&json!({"maximumAttempts": 0}))).is_err());
        assert_eq!(seconds(&json!("2m")), Some(120.0));
        assert_eq!(seconds(&json!("250ms")), Some(0.25));
        assert_eq!(seconds(&json!("2 weeks")), None);
    }
}
