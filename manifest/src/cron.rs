//! Cron expressions for `{@cron.nextDelay}`: five fields (minute hour day month weekday)
//! or six (with seconds first), in UTC. Lists, ranges, steps, `*`, `?` and month/day
//! names are understood. When both day fields are restricted, either may match (as in
//! Vixie cron and the original's cron-parser). [`next_delay`], the catalog's
//! `{@cron.nextDelay}`, first narrows this to what the original's isValidCron accepts.

use crate::date::civil_from_days;

#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    seconds: Vec<bool>,
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    days_any: bool,
    weekdays_any: bool,
}

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn value(s: &str, names: &[&str], offset: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + offset);
    }
    s.parse::<u32>()
        .map_err(|_| format!("invalid cron value '{s}'"))
}

/// One field into a table of allowed values `lo..=hi`; `any` tells whether it was `*`/`?`.
fn field(
    spec: &str,
    lo: u32,
    hi: u32,
    names: &[&str],
    name_offset: u32,
) -> Result<(Vec<bool>, bool), String> {
    let mut table = vec![false; hi as usize + 1];
    let any = spec == "*" || spec == "?";
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("invalid cron step '{s}'"))?;
                if step == 0 {
                    return Err("cron step must be positive".into());
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" || range == "?" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, name_offset)?, value(b, names, name_offset)?)
        } else {
            let a = value(range, names, name_offset)?;
            (a, if part.contains('/') { hi } else { a })
        };
        if a < lo || b > hi || a > b {
            return Err(format!("cron value out of range in '{part}' ({lo}-{hi})"));
        }
        let mut v = a;
        while v <= b {
            table[v as usize] = true;
            v += step;
        }
    }
    Ok((table, any))
}

/// Whether a listed month is long enough (February counting 29 days) for a listed day.
fn some_month_has_a_day(days: &[bool], months: &[bool]) -> bool {
    const LONGEST: [usize; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let first_day = days.iter().position(|&d| d).unwrap_or(usize::MAX);
    (1..=12).any(|m| months[m] && LONGEST[m - 1] >= first_day)
}

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let f: Vec<&str> = match fields.len() {
            5 => std::iter::once("0").chain(fields.iter().copied()).collect(),
            6 => fields,
            n => return Err(format!("a cron expression has 5 or 6 fields, not {n}")),
        };
        let (seconds, _) = field(f[0], 0, 59, &[], 0)?;
        let (minutes, _) = field(f[1], 0, 59, &[], 0)?;
        let (hours, _) = field(f[2], 0, 23, &[], 0)?;
        let (days, days_any) = field(f[3], 1, 31, &[], 0)?;
        let (months, _) = field(f[4], 1, 12, &MONTH_NAMES, 1)?;
        let (mut weekdays, weekdays_any) = field(f[5], 0, 7, &DAY_NAMES, 0)?;
        if !days_any && !some_month_has_a_day(&days, &months) {
            // cron-parser refuses this even when the weekday field could match
            return Err("Invalid explicit day of month definition".into());
        }
        if weekdays[7] {
            weekdays[0] = true;
        }
        Ok(Cron {
            seconds,
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_any,
            weekdays_any,
        })
    }

    fn day_matches(&self, day: i64, month: i64, weekday: i64) -> bool {
        if !self.months[month as usize] {
            return false;
        }
        let d = self.days[day as usize];
        let w = self.weekdays[weekday as usize];
        match (self.days_any, self.weekdays_any) {
            (true, true) => true,
            (false, true) => d,
            (true, false) => w,
            (false, false) => d || w,
        }
    }

    /// The first fire time strictly after `after_ms`, in ms; None within eight years.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let start_s = after_ms.div_euclid(1000) + 1;
        let mut day = start_s.div_euclid(86_400);
        let mut from = start_s.rem_euclid(86_400);
        for _ in 0..(366 * 8) {
            let (_, m, d) = civil_from_days(day);
            let weekday = (day + 4).rem_euclid(7);
            if self.day_matches(d, m, weekday) {
                for h in (from / 3600)..24 {
                    if !self.hours[h as usize] {
                        continue;
                    }
                    for mi in 0..60 {
                        if !self.minutes[mi as usize] {
                            continue;
                        }
                        for s in 0..60 {
                            let at = h * 3600 + mi * 60 + s;
                            if at >= from && self.seconds[s as usize] {
                                return Some((day * 86_400 + at) * 1000);
                            }
                        }
                    }
                }
            }
            day += 1;
            from = 0;
        }
        None
    }
}

/// The minimum delay nextDelay reports, as the original's HMSH_FIDELITY_SECONDS.
pub const FIDELITY_SECONDS: f64 = 5.0;

/// The original's isValidCron, which nextDelay checks first: five single-space fields,
/// each `*` or one number (weekday: one, a range, and one more), so steps, lists, names
/// and a seconds field are invalid there.
pub fn is_valid_cron(expr: &str) -> bool {
    static SHAPE: std::sync::OnceLock<regress::Regex> = std::sync::OnceLock::new();
    SHAPE
        .get_or_init(|| {
            regress::Regex::new(
                r"^(\*|([0-5]?\d)) (\*|([01]?\d|2[0-3])) (\*|([12]?\d|3[01])) (\*|([1-9]|1[0-2])) (\*|([0-6](?:-[0-6])?(?:,[0-6])?))$",
            )
            .expect("a valid pattern")
        })
        .find(expr)
        .is_some()
}

/// The original's nextDelay of a string: an error unless [`is_valid_cron`] (or if
/// cron-parser rejects it, as it does day 0 or a day no listed month has), else the
/// seconds from `now_ms` to the next UTC fire, rounded, and at least FIDELITY_SECONDS.
pub fn next_delay(expr: &str, now_ms: i64) -> Result<f64, String> {
    if !is_valid_cron(expr) {
        return Err(format!("Invalid cron expression: {expr}"));
    }
    let next = Cron::parse(expr)?
        .next_after(now_ms)
        .ok_or_else(|| format!("no time matches the cron expression {expr}"))?;
    let delay = (next - now_ms) as f64 / 1000.0;
    Ok(delay.round().max(FIDELITY_SECONDS))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_763_683_509_007; // 2025-11-21T00:05:09.007Z, a Friday

    #[test]
    fn next_fire_times() {
        let at = |e: &str| {
            crate::date::iso_string(Cron::parse(e).unwrap().next_after(T0).unwrap() as f64).unwrap()
        };
        assert_eq!(at("* * * * *"), "2025-11-21T00:06:00.000Z");
        assert_eq!(at("0 0 * * *"), "2025-11-22T00:00:00.000Z");
        assert_eq!(at("*/15 * * * *"), "2025-11-21T00:15:00.000Z");
        assert_eq!(at("0 9 * * MON"), "2025-11-24T09:00:00.000Z");
        assert_eq!(at("0 0 1 JAN *"), "2026-01-01T00:00:00.000Z");
        assert_eq!(at("*/10 * * * * *"), "2025-11-21T00:05:10.000Z");
        assert_eq!(at("0 0 13 * 5"), "2025-11-28T00:00:00.000Z");
        assert_eq!(at("0 0 29 2 *"), "2028-02-29T00:00:00.000Z");
        assert_eq!(at("0 0 31 * *"), "2025-12-31T00:00:00.000Z");
    }

    #[test]
    fn delays_and_errors() {
        assert_eq!(next_delay("* * * * *", T0).unwrap(), 51.0);
        assert_eq!(next_delay("0 0 * * *", T0).unwrap(), 86_091.0);
        // 2 s away: the fidelity floor
        assert_eq!(next_delay("6 0 * * *", T0 + 48_993).unwrap(), 5.0);
        for bad in [
            "61 * * * *",
            "* * *",
            "a b c d e",
            // valid cron, but not the original's isValidCron shape
            "*/10 * * * *",
            "0 0 * * * *",
            "0 9 * * MON",
            "0 0 1,15 * *",
            "0  0 * * *",
            // the shape, but cron-parser refuses it
            "0 0 31 2 *",
            "0 0 30 2 1",
            "0 0 0 * *",
            "0 0 * * 6-1",
        ] {
            assert!(next_delay(bad, T0).is_err(), "{bad}");
        }
    }
}
