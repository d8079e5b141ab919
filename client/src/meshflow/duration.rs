//! Human durations, as the original's `sleepFor("1 week")` reads them (the `ms`
//! package's forms): a number and a unit, with or without a space, long or short unit
//! names, singular or plural. A bare number is milliseconds.

use std::time::Duration;

/// A duration a workflow sleeps or waits for: a [`Duration`] or a human string
/// (`"1 week"`, `"2 hours"`, `"30 minutes"`, `"90s"`, `"1.5h"`, `"500 ms"`).
///
/// ```
/// use hotmesh_client::meshflow::Span;
/// use std::time::Duration;
/// assert_eq!(Span::from("2 hours").seconds(), Ok(7200.0));
/// assert_eq!(Span::from(Duration::from_millis(1500)).seconds(), Ok(1.5));
/// assert!(Span::from("soon").seconds().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Span {
    /// An exact duration.
    Exact(Duration),
    /// A human string, read when the operation runs.
    Text(String),
}

impl From<Duration> for Span {
    fn from(d: Duration) -> Span {
        Span::Exact(d)
    }
}

impl From<&str> for Span {
    fn from(s: &str) -> Span {
        Span::Text(s.to_string())
    }
}

impl From<String> for Span {
    fn from(s: String) -> Span {
        Span::Text(s)
    }
}

impl Span {
    /// Its length in seconds, or why the text does not read as a duration.
    pub fn seconds(&self) -> Result<f64, String> {
        match self {
            Span::Exact(d) => Ok(d.as_secs_f64()),
            Span::Text(t) => parse(t).map(|d| d.as_secs_f64()),
        }
    }
}

/// Reads a human duration (see [`Span`]).
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(t.len());
    let (number, unit) = (t[..split].trim(), t[split..].trim());
    let bad = || {
        format!("'{text}' is not a duration (a number and a unit: \"30 seconds\", \"2 hours\", \"1 week\", \"500ms\")")
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "" | "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 0.001,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "week" | "weeks" => 604_800.0,
        "y" | "yr" | "yrs" | "year" | "years" => 31_557_600.0,
        _ => return Err(bad()),
    };
    let secs = n * scale;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("'{text}' is not a duration of zero or more"));
    }
    // the engine keeps timers to a year or so at most (its limits clamp longer ones)
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_originals_forms_read_as_their_seconds() {
        for (text, secs) in [
            ("1 week", 604_800.0),
            ("2 hours", 7200.0),
            ("30 minutes", 1800.0),
            ("1 minute", 60.0),
            ("5s", 5.0),
            ("5 seconds", 5.0),
            ("1.5h", 5400.0),
            ("2 days", 172_800.0),
            ("500ms", 0.5),
            ("250", 0.25),
            ("1m", 60.0),
            ("1 Year", 31_557_600.0),
            (" 3 Weeks ", 1_814_400.0),
        ] {
            assert_eq!(parse(text).map(|d| d.as_secs_f64()), Ok(secs), "{text}");
        }
    }

    #[test]
    fn other_text_is_refused_with_the_forms_it_takes() {
        for text in ["", "soon", "1 fortnight", "hours", "-1 hour", "1e400 s"] {
            let e = parse(text).unwrap_err();
            assert!(e.contains("duration"), "{text}: {e}");
        }
    }
}
