//! Job ids, generations, and the compact timestamps of job metadata.

const ALPHABET: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-";

/// A HotMesh guid: `H` and 22 random characters (about 132 bits), as the original's
/// `HotMesh.guid()`.
pub fn guid() -> String {
    let mut bytes = [0u8; 22];
    if getrandom::fill(&mut bytes).is_err() {
        // no OS randomness: fall back to the clock and a counter (unique, not secret)
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ N.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed.rotate_left(i as u32 * 7) >> 3) as u8 ^ i as u8;
        }
    }
    let mut s = String::with_capacity(23);
    s.push('H');
    s.extend(bytes.iter().map(|b| ALPHABET[(b & 63) as usize] as char));
    s
}

/// Whether `id` can be a job id: 1 to 255 characters, no control characters.
pub fn valid_job_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && !id.chars().any(char::is_control)
}

/// Unix milliseconds as the compact ISO form of job metadata (`jc`, `ju`):
/// `YYYYMMDDhhmmss.mmm`, UTC.
pub fn compact_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}.{milli:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        let a = guid();
        assert_eq!(a.len(), 23);
        assert!(a.starts_with('H'));
        assert_ne!(a, guid());
        assert!(
            valid_job_id("order-1")
                && !valid_job_id("")
                && !valid_job_id("a\nb")
                && !valid_job_id(&"x".repeat(256))
        );
    }

    #[test]
    fn times() {
        assert_eq!(compact_time(0), "19700101000000.000");
        assert_eq!(compact_time(1_700_000_000_123), "20231114221320.123");
        assert_eq!(compact_time(951_782_400_000), "20000229000000.000");
    }
}
