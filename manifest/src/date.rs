//! JavaScript Date arithmetic and formatting. The local time zone is UTC: a database has
//! no per-user zone, and the original's examples assume UTC servers.

const MS_PER_DAY: f64 = 86_400_000.0;
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1..=12, day) of a day number.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The broken-down fields of a valid time value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parts {
    pub year: i64,
    /// 0..=11, as JavaScript counts months
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    pub ms: i64,
    /// 0 = Sunday
    pub weekday: i64,
}

pub fn parts(t: f64) -> Option<Parts> {
    if !t.is_finite() {
        return None;
    }
    let t = t as i64;
    let days = t.div_euclid(86_400_000);
    let in_day = t.rem_euclid(86_400_000);
    let (year, m, day) = civil_from_days(days);
    Some(Parts {
        year,
        month: m - 1,
        day,
        hour: in_day / 3_600_000,
        minute: in_day / 60_000 % 60,
        second: in_day / 1000 % 60,
        ms: in_day % 1000,
        weekday: (days + 4).rem_euclid(7),
    })
}

/// MakeDay: the day number of year/month/date, with month and date overflowing as in
/// JavaScript (month 12 is January of the next year).
pub fn make_day(year: f64, month: f64, date: f64) -> f64 {
    if !(year.is_finite() && month.is_finite() && date.is_finite()) {
        return f64::NAN;
    }
    let (y, m, dt) = (year.trunc(), month.trunc(), date.trunc());
    let ym = y + (m / 12.0).floor();
    if ym.abs() > 400_000.0 {
        return f64::NAN;
    }
    let mn = m.rem_euclid(12.0);
    days_from_civil(ym as i64, mn as i64 + 1, 1) as f64 + dt - 1.0
}

pub fn make_time(h: f64, m: f64, s: f64, ms: f64) -> f64 {
    if !(h.is_finite() && m.is_finite() && s.is_finite() && ms.is_finite()) {
        return f64::NAN;
    }
    h.trunc() * 3_600_000.0 + m.trunc() * 60_000.0 + s.trunc() * 1000.0 + ms.trunc()
}

pub fn make_date(day: f64, time: f64) -> f64 {
    if !(day.is_finite() && time.is_finite()) {
        return f64::NAN;
    }
    day * MS_PER_DAY + time
}

/// TimeClip: out of JavaScript's range (±8.64e15 ms) is an invalid date.
pub fn time_clip(t: f64) -> f64 {
    if !t.is_finite() || t.abs() > 8.64e15 {
        f64::NAN
    } else {
        t.trunc() + 0.0
    }
}

fn year_iso(y: i64) -> String {
    if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y < 0 {
        format!("-{:06}", -y)
    } else {
        format!("+{y:06}")
    }
}

fn year_plain(y: i64) -> String {
    if y < 0 {
        format!("-{:04}", -y)
    } else {
        format!("{y:04}")
    }
}

/// toISOString; None for an invalid date (JavaScript throws a RangeError).
pub fn iso_string(t: f64) -> Option<String> {
    let p = parts(t)?;
    Some(format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        year_iso(p.year),
        p.month + 1,
        p.day,
        p.hour,
        p.minute,
        p.second,
        p.ms
    ))
}

/// toString (with `time`) or toDateString.
pub fn to_date_string(t: f64, time: bool) -> String {
    let Some(p) = parts(t) else {
        return "Invalid Date".into();
    };
    let date = format!(
        "{} {} {:02} {}",
        DAYS[p.weekday as usize],
        MONTHS[p.month as usize],
        p.day,
        year_plain(p.year)
    );
    if !time {
        return date;
    }
    format!(
        "{date} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        p.hour, p.minute, p.second
    )
}

/// toLocaleDateString / toLocaleTimeString / toLocaleString for en-US, as Node (ICU)
/// prints them: `11/21/2026, 3:04:05 PM`.
pub fn locale_string(t: f64, date: bool, time: bool) -> String {
    let Some(p) = parts(t) else {
        return "Invalid Date".into();
    };
    let d = if p.year > 0 {
        format!("{}/{}/{}", p.month + 1, p.day, p.year)
    } else {
        // ICU shows years before 1 AD as the era year
        format!("{}/{}/{}", p.month + 1, p.day, 1 - p.year)
    };
    let h12 = if p.hour % 12 == 0 { 12 } else { p.hour % 12 };
    let ampm = if p.hour < 12 { "AM" } else { "PM" };
    let tm = format!("{h12}:{:02}:{:02} {ampm}", p.minute, p.second);
    match (date, time) {
        (true, true) => format!("{d}, {tm}"),
        (true, false) => d,
        _ => tm,
    }
}

fn digits(s: &str, at: usize, n: usize) -> Option<i64> {
    let part = s.get(at..at + n)?;
    if part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

/// Date.parse: the ECMAScript date-time format (date-only forms are UTC; local is UTC
/// here anyway) and the forms toString/toUTCString print. Anything else is NaN.
pub fn parse(s: &str) -> f64 {
    parse_iso(s)
        .or_else(|| parse_printed(s))
        .map(time_clip)
        .unwrap_or(f64::NAN)
}

fn parse_iso(s: &str) -> Option<f64> {
    let (year, mut i) = match s.as_bytes().first()? {
        b'+' | b'-' => {
            let y = digits(s, 1, 6)?;
            if s.starts_with('-') && y == 0 {
                return None;
            }
            (if s.starts_with('-') { -y } else { y }, 7)
        }
        _ => (digits(s, 0, 4)?, 4),
    };
    let mut month = 1;
    let mut day = 1;
    if s[i..].starts_with('-') {
        month = digits(s, i + 1, 2)?;
        i += 3;
        if s[i..].starts_with('-') {
            day = digits(s, i + 1, 2)?;
            i += 3;
        }
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (mut h, mut mi, mut sec, mut ms) = (0, 0, 0, 0.0);
    let mut offset_min = 0;
    if i < s.len() {
        if !s[i..].starts_with('T') {
            return None;
        }
        h = digits(s, i + 1, 2)?;
        if s.get(i + 3..i + 4)? != ":" {
            return None;
        }
        mi = digits(s, i + 4, 2)?;
        i += 6;
        if s[i..].starts_with(':') {
            sec = digits(s, i + 1, 2)?;
            i += 3;
            if s[i..].starts_with('.') || s[i..].starts_with(',') {
                let start = i + 1;
                let mut j = start;
                while j < s.len() && s.as_bytes()[j].is_ascii_digit() {
                    j += 1;
                }
                if j == start {
                    return None;
                }
                let frac = &s[start..j.min(start + 3)];
                ms = frac.parse::<f64>().ok()? * 10f64.powi(3 - frac.len() as i32);
                i = j;
            }
        }
        if s[i..].starts_with('Z') {
            i += 1;
        } else if s[i..].starts_with('+') || s[i..].starts_with('-') {
            let sign = if s[i..].starts_with('-') { -1 } else { 1 };
            let oh = digits(s, i + 1, 2)?;
            if s.get(i + 3..i + 4)? != ":" {
                return None;
            }
            let om = digits(s, i + 4, 2)?;
            offset_min = sign * (oh * 60 + om);
            i += 6;
        }
        if h > 24 || mi > 59 || sec > 59 || (h == 24 && (mi > 0 || sec > 0 || ms > 0.0)) {
            return None;
        }
    }
    if i != s.len() {
        return None;
    }
    let dayn = make_day(year as f64, (month - 1) as f64, day as f64);
    let t = make_date(dayn, make_time(h as f64, mi as f64, sec as f64, ms));
    Some(t - offset_min as f64 * 60_000.0)
}

/// `Sat Nov 21 2026 10:00:00 GMT+0000 (…)`, `Sat, 21 Nov 2026 10:00:00 GMT`, `Nov 21 2026`.
fn parse_printed(s: &str) -> Option<f64> {
    let cleaned: String = s.split('(').next()?.replace(',', " ");
    let mut words: Vec<&str> = cleaned.split_whitespace().collect();
    if words
        .first()
        .map(|w| DAYS.iter().any(|d| w.eq_ignore_ascii_case(d)))
        == Some(true)
    {
        words.remove(0);
    }
    let month_of = |w: &str| {
        MONTHS
            .iter()
            .position(|m| w.len() >= 3 && m.eq_ignore_ascii_case(&w[..3]))
    };
    let (month, day, year, rest) = match words.as_slice() {
        [m, d, y, rest @ ..] if month_of(m).is_some() => (
            month_of(m)?,
            d.parse::<i64>().ok()?,
            y.parse::<i64>().ok()?,
            rest,
        ),
        [d, m, y, rest @ ..] if month_of(m).is_some() => (
            month_of(m)?,
            d.parse::<i64>().ok()?,
            y.parse::<i64>().ok()?,
            rest,
        ),
        _ => return None,
    };
    let (mut h, mut mi, mut sec, mut off) = (0i64, 0i64, 0i64, 0i64);
    for w in rest {
        if w.contains(':') {
            let f: Vec<&str> = w.split(':').collect();
            h = f.first()?.parse().ok()?;
            mi = f.get(1)?.parse().ok()?;
            sec = f.get(2).map(|x| x.parse().ok()).unwrap_or(Some(0))?;
        } else if let Some(z) = w
            .strip_prefix("GMT")
            .or_else(|| w.strip_prefix("UTC"))
            .or_else(|| (*w == "Z").then_some(""))
        {
            if !z.is_empty() {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let n: i64 = z[1..].replace(':', "").parse().ok()?;
                off = sign * (n / 100 * 60 + n % 100);
            }
        } else {
            return None;
        }
    }
    let dayn = make_day(year as f64, month as f64, day as f64);
    Some(make_date(dayn, make_time(h as f64, mi as f64, sec as f64, 0.0)) - off as f64 * 60_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for d in [-800_000i64, -1, 0, 1, 59, 365, 10_957, 20_000, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(iso_string(0.0).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso_string(-62198755200000.0).unwrap(),
            "-000001-01-01T00:00:00.000Z"
        );
        assert_eq!(
            to_date_string(1_763_683_509_007.0, true),
            "Fri Nov 21 2025 00:05:09 GMT+0000 (Coordinated Universal Time)"
        );
    }

    #[test]
    fn parses_what_it_prints() {
        for t in [0.0, 1_763_683_509_007.0, -1.0e12] {
            assert_eq!(parse(&iso_string(t).unwrap()), t);
            assert_eq!(
                parse(&to_date_string(t, true)),
                (t / 1000.0).floor() * 1000.0
            );
        }
        assert_eq!(parse("2020-01-01"), 1_577_836_800_000.0);
        assert_eq!(parse("2020-01-01T00:00:00+01:00"), 1_577_833_200_000.0);
        assert!(parse("2020-13-01").is_nan());
        assert!(parse("yesterday").is_nan());
    }
}
