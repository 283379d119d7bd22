//! Query-string parameters shared by the handlers: only known names, comma lists of
//! enumerated values, and 400s that name the field.

use std::collections::HashMap;

use ailogs_pipeline::patterns::{Category, Severity};
use ailogs_pipeline::query::ParamError;
use ailogs_pipeline::query::spec::unknown_param_in;
use axum::http::StatusCode;

use super::error::ApiError;

/// Parses `name=value` pairs against the known names; every value stays a string.
pub(super) fn params(raw: Option<String>, known: &[&str]) -> Result<HashMap<String, String>, ParamError> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned() {
        if !known.contains(&k.as_str()) {
            return Err(unknown_param_in(&k, known));
        }
        out.insert(k, v);
    }
    Ok(out)
}

pub(super) fn bad(field: &str, message: String, suggestion: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", message, suggestion).field(field)
}

/// The non-empty items of a comma-separated value, trimmed.
pub(super) fn list(raw: Option<&String>) -> Vec<String> {
    raw.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// A comma list of `what` names, each parsed by `parse`; `known` lists the accepted ones.
pub(super) fn list_of<T>(
    field: &str,
    what: &str,
    raw: Option<&String>,
    parse: fn(&str) -> Option<T>,
    known: &str,
) -> Result<Vec<T>, ApiError> {
    list(raw)
        .iter()
        .map(|s| parse(s).ok_or_else(|| bad(field, format!("unknown {what} `{s}`"), &format!("one of: {known}"))))
        .collect()
}

pub(super) fn categories(field: &str, raw: Option<&String>) -> Result<Vec<Category>, ApiError> {
    list_of(
        field,
        "category",
        raw,
        Category::from_name,
        &Category::ALL.map(Category::as_str).join(", "),
    )
}

pub(super) fn severities(field: &str, raw: Option<&String>) -> Result<Vec<Severity>, ApiError> {
    list_of(
        field,
        "severity",
        raw,
        Severity::from_name,
        &Severity::ALL.map(Severity::as_str).join(", "),
    )
}

/// `min_severity`: one severity name, or none.
pub(super) fn min_severity(raw: Option<&String>) -> Result<Option<Severity>, ApiError> {
    raw.map(|s| {
        Severity::from_name(s).ok_or_else(|| {
            bad(
                "min_severity",
                format!("unknown min_severity `{s}`"),
                &format!("one of: {}", Severity::ALL.map(Severity::as_str).join(", ")),
            )
        })
    })
    .transpose()
}
