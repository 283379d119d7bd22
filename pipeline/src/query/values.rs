//! Parameter values shared by every route's parser: durations, numbers, booleans, ids, one
//! of a set, and unknown parameters with the closest known one suggested. Every error names
//! its field.

const NS: i64 = 1_000_000_000;
pub(super) const MAX_ID_LEN: usize = 256;

/// A parameter that could not be accepted: which one, why, and what would work.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParamError {
    pub field: String,
    pub message: String,
    pub suggestion: String,
}

impl ParamError {
    pub fn new(field: &str, message: impl Into<String>, suggestion: impl Into<String>) -> Self {
        ParamError {
            field: field.to_owned(),
            message: message.into(),
            suggestion: suggestion.into(),
        }
    }
}

/// An unknown parameter, with the closest of `known` suggested.
pub fn unknown_param_in(key: &str, known: &[&str]) -> ParamError {
    let close = known.iter().find(|p| similar(p, key));
    let suggestion = match close {
        Some(p) => format!("did you mean `{p}`?"),
        None => format!("known parameters: {}", known.join(", ")),
    };
    ParamError::new(key, format!("unknown parameter `{}`", clip(key)), suggestion)
}

/// Same letters give or take a plural, a separator or one edit: enough to catch typos.
fn similar(known: &str, given: &str) -> bool {
    let fold = |s: &str| s.to_ascii_lowercase().replace(['_', '-'], "");
    let (a, b) = (fold(known), fold(given));
    a == b || a.trim_end_matches('s') == b.trim_end_matches('s') || edit_distance(&a, &b) <= 2
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(super) fn clip(s: &str) -> &str {
    crate::normalize::level::prefix(s, 64)
}

pub(super) fn one_of<T: Copy>(field: &str, value: &str, options: &[(&str, T)]) -> Result<T, ParamError> {
    options
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value))
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            ParamError::new(
                field,
                format!("unknown value `{}`", clip(value)),
                format!("use one of {}", names.join(", ")),
            )
        })
}

pub fn boolean(field: &str, value: &str) -> Result<bool, ParamError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ParamError::new(
            field,
            format!("`{}` is not a boolean", clip(value)),
            "use true or false",
        )),
    }
}

pub(super) fn number(field: &str, value: &str, min: usize, max: usize) -> Result<usize, ParamError> {
    match value.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ParamError::new(
            field,
            format!("`{}` is not a whole number from {min} to {max}", clip(value)),
            format!("pass a number from {min} to {max}"),
        )),
    }
}

/// `^[0-9]+[smhd]$`, at least one second, at most `max_s`.
pub fn duration(field: &str, value: &str, max_s: u64) -> Result<u64, ParamError> {
    let bad = || {
        ParamError::new(
            field,
            format!("`{}` is not a duration like 15m, 1h or 7d", clip(value)),
            format!("use digits followed by s, m, h or d, at most {}d", max_s / 86_400),
        )
    };
    let unit = match value.bytes().last() {
        Some(b's') => 1,
        Some(b'm') => 60,
        Some(b'h') => 3600,
        Some(b'd') => 86_400,
        _ => return Err(bad()),
    };
    let digits = &value[..value.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 9 {
        return Err(bad());
    }
    let secs = digits.parse::<u64>().map_err(|_| bad())? * unit;
    if secs == 0 || secs > max_s {
        return Err(bad());
    }
    Ok(secs)
}

pub(super) fn id(field: &str, value: &str) -> Result<String, ParamError> {
    if value.is_empty() || value.len() > MAX_ID_LEN || value.chars().any(char::is_control) {
        return Err(ParamError::new(
            field,
            "must be 1 to 256 printable characters",
            "pass the id as it appears in the logs",
        ));
    }
    Ok(value.to_owned())
}

/// `start` or `end`: an instant, Unix ns.
pub(super) fn instant(field: &str, value: &str) -> Result<i64, ParamError> {
    let bad = || {
        ParamError::new(
            field,
            format!("`{}` is not a time", clip(value)),
            "pass RFC 3339 (2026-12-03T10:00:00Z), Unix seconds (1764756000, a fraction allowed) or Unix nanoseconds",
        )
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return t.timestamp_nanos_opt().ok_or_else(bad);
    }
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(bad());
    }
    match (whole.len(), fraction.len()) {
        // Seconds: up to the year 5138.
        (1..=11, 0..=9) => {
            let s: i64 = whole.parse().map_err(|_| bad())?;
            let frac: i64 = format!("{fraction:0<9}").parse().map_err(|_| bad())?;
            Ok(s * NS + frac)
        }
        // Nanoseconds, as Loki's own `start` and `end` take them.
        (16..=19, 0) => whole.parse().map_err(|_| bad()),
        _ => Err(bad()),
    }
}
