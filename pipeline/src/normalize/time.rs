//! Timestamps as producers write them: RFC3339, common "date time" layouts, and Unix epoch
//! numbers in seconds, milliseconds, microseconds or nanoseconds (numbers or digit strings).

use chrono::{DateTime, NaiveDateTime};

/// Earliest and latest instants we accept (year 1900 to 2200): anything outside is a unit
/// mistake or garbage, and keeping it would poison time windows.
const MIN_NS: i64 = -2_208_988_800_000_000_000;
const MAX_NS: i64 = 7_258_118_400_000_000_000;

/// Unix epoch number of unknown unit to nanoseconds, the unit picked by magnitude (as
/// Promtail's `Unix*` formats and most log libraries write them).
pub fn epoch_to_ns(value: f64) -> Option<i64> {
    if !value.is_finite() || value <= 0.0 || value >= 9.2e18 {
        return None;
    }
    let unit: i64 = if value < 1e11 {
        1_000_000_000
    } else if value < 1e14 {
        1_000_000
    } else if value < 1e17 {
        1_000
    } else {
        1
    };
    // Whole and fractional parts separately: `value * unit` in f64 would lose the last digits.
    let whole = value.trunc() as i64;
    let frac = ((value - value.trunc()) * unit as f64).round() as i64;
    in_range(whole.checked_mul(unit)?.checked_add(frac)?)
}

/// Integer epoch, exact for nanoseconds (f64 would lose the last digits).
pub fn epoch_int_to_ns(value: i64) -> Option<i64> {
    if value <= 0 {
        return None;
    }
    let ns = if value < 100_000_000_000 {
        value.checked_mul(1_000_000_000)?
    } else if value < 100_000_000_000_000 {
        value.checked_mul(1_000_000)?
    } else if value < 100_000_000_000_000_000 {
        value.checked_mul(1_000)?
    } else {
        value
    };
    in_range(ns)
}

/// Parses a timestamp string: epoch digits (with optional fraction), RFC3339 / ISO 8601, or
/// `YYYY-MM-DD HH:MM:SS[.fff|,fff]` taken as UTC.
pub fn parse_ts_str(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let bytes = s.as_bytes();
    if bytes.iter().all(u8::is_ascii_digit) {
        return epoch_int_to_ns(s.parse().ok()?);
    }
    if let Some((whole, frac)) = s.split_once('.')
        && !whole.is_empty()
        && whole.len() <= 10
        && whole.bytes().all(|b| b.is_ascii_digit())
        && !frac.is_empty()
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        // Seconds with a fraction, exact to the nanosecond.
        let mut ns_digits = frac.get(..9).unwrap_or(frac).to_owned();
        while ns_digits.len() < 9 {
            ns_digits.push('0');
        }
        let secs: i64 = whole.parse().ok()?;
        return in_range(secs.checked_mul(1_000_000_000)?.checked_add(ns_digits.parse().ok()?)?);
    }
    if bytes[0].is_ascii_digit() && bytes.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
        return epoch_to_ns(s.parse().ok()?);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return in_range(dt.timestamp_nanos_opt()?);
    }
    // ISO 8601 variants RFC3339 rejects: lowercase 't', offsets without colon (+0000).
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return in_range(dt.timestamp_nanos_opt()?);
        }
    }
    // No zone: UTC. Python's logging writes a comma before the milliseconds.
    let owned;
    let s = if s.contains(',') {
        owned = s.replacen(',', ".", 1);
        owned.as_str()
    } else {
        s
    };
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return in_range(dt.and_utc().timestamp_nanos_opt()?);
        }
    }
    None
}

fn in_range(ns: i64) -> Option<i64> {
    (MIN_NS..=MAX_NS).contains(&ns).then_some(ns)
}

/// RFC3339 with as many fractional digits as needed, in UTC.
pub fn format_rfc3339(ts_ns: i64) -> String {
    DateTime::from_timestamp_nanos(ts_ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_123_456_789;

    #[test]
    fn epoch_units_by_magnitude() {
        assert_eq!(epoch_int_to_ns(1_700_000_000), Some(1_700_000_000_000_000_000));
        assert_eq!(epoch_int_to_ns(1_700_000_000_123), Some(1_700_000_000_123_000_000));
        assert_eq!(epoch_int_to_ns(1_700_000_000_123_456), Some(1_700_000_000_123_456_000));
        assert_eq!(epoch_int_to_ns(T), Some(T));
        assert_eq!(epoch_to_ns(1_700_000_000.5), Some(1_700_000_000_500_000_000));
        assert_eq!(parse_ts_str("1700000000123456789"), Some(T));
        assert_eq!(parse_ts_str("1700000000.25"), Some(1_700_000_000_250_000_000));
        assert_eq!(parse_ts_str("1700000000.123456789"), Some(T));
        assert_eq!(epoch_to_ns(1_700_000_000_123.0), Some(1_700_000_000_123_000_000));
        assert_eq!(epoch_int_to_ns(0), None);
        assert_eq!(epoch_to_ns(f64::NAN), None);
    }

    #[test]
    fn rfc3339_and_common_layouts() {
        assert_eq!(parse_ts_str("2023-11-14T22:13:20.123456789Z"), Some(T));
        assert_eq!(parse_ts_str("2023-11-14T23:13:20.123456789+01:00"), Some(T));
        assert_eq!(parse_ts_str("2023-11-14 22:13:20,123"), Some(1_700_000_000_123_000_000));
        assert_eq!(
            parse_ts_str("2023-11-14T22:13:20+0000"),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(parse_ts_str("yesterday"), None);
        assert_eq!(parse_ts_str("9999999999999999999999"), None);
    }

    #[test]
    fn formats_utc() {
        assert_eq!(format_rfc3339(T), "2023-11-14T22:13:20.123456789Z");
    }
}
