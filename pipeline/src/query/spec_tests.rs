//! `QuerySpec::from_params`: values, defaults and the errors that name their field.

use super::*;

fn parse(q: &[(&str, &str)]) -> Result<QuerySpec, ParamError> {
    QuerySpec::from_params(q.iter().copied())
}

#[test]
fn defaults_and_values() {
    let spec = parse(&[
        ("mode", "errors"),
        ("services", "api, worker"),
        ("services", "api"),
        ("time_range", "15m"),
        ("limit", "5"),
    ])
    .expect("valid");
    assert_eq!(spec.mode, Mode::Errors);
    assert_eq!(spec.services, vec!["api", "worker"]);
    assert_eq!(spec.time_range_s, 900);
    assert_eq!(spec.limit, 5);
    assert_eq!(spec.min_level(), Level::Error);
    let t = parse(&[]).expect("defaults");
    assert_eq!(
        (t.mode, t.min_level(), t.context_lines()),
        (Mode::Troubleshoot, Level::Warn, 2)
    );
}

#[test]
fn errors_name_the_field() {
    for (q, field) in [
        (vec![("mode", "debugging")], "mode"),
        (vec![("time_range", "1w")], "time_range"),
        (vec![("time_range", "0h")], "time_range"),
        (vec![("time_range", "31d")], "time_range"),
        (vec![("context_window", "31d")], "context_window"),
        (vec![("limit", "0")], "limit"),
        (vec![("limit", "10001")], "limit"),
        (vec![("include_context", "51")], "include_context"),
        (vec![("severity_threshold", "loud")], "severity_threshold"),
        (vec![("exclude_patterns", "re:(unclosed")], "exclude_patterns"),
        (vec![("format", "xml")], "format"),
        (vec![("deduplicate", "maybe")], "deduplicate"),
        (vec![("mode", "errors"), ("mode", "audit")], "mode"),
        (vec![("correlation_id", "")], "correlation_id"),
    ] {
        let err = parse(&q).expect_err("invalid");
        assert_eq!(err.field, field, "{q:?}");
        assert!(!err.suggestion.is_empty());
    }
}

/// The README promises `context_window` takes what `time_range` takes.
#[test]
fn context_window_takes_the_values_time_range_takes() {
    for value in ["30s", "5m", "12h", "30d"] {
        let spec = parse(&[("context_window", value), ("time_range", value)]).expect(value);
        assert_eq!(spec.context_window_s, spec.time_range_s, "{value}");
    }
}

#[test]
fn unknown_parameters_get_a_suggestion() {
    let err = parse(&[("service", "api")]).expect_err("unknown");
    assert_eq!(err.field, "service");
    assert!(err.suggestion.contains("`services`"), "{}", err.suggestion);
    let err = parse(&[("zzz", "1")]).expect_err("unknown");
    assert!(err.suggestion.contains("known parameters"));
}

#[test]
fn exclusions_literal_and_regex() {
    let spec = parse(&[
        ("exclude_patterns", "Health,metrics"),
        ("exclude_patterns", "re:^GET /ready$"),
    ])
    .expect("valid");
    assert_eq!(spec.exclude.len(), 3);
    assert!(spec.exclude[0].matches("GET /HEALTH 200"));
    assert!(spec.exclude[2].matches("GET /ready"));
    assert!(!spec.exclude[2].matches("GET /ready now"));
}

#[test]
fn threshold_never_lowers_the_errors_floor() {
    let spec = parse(&[("mode", "errors"), ("severity_threshold", "info")]).expect("valid");
    assert_eq!(spec.min_level(), Level::Error);
    let spec = parse(&[("mode", "errors"), ("severity_threshold", "fatal")]).expect("valid");
    assert_eq!(spec.min_level(), Level::Fatal);
    let spec = parse(&[("severity_threshold", "debug")]).expect("valid");
    assert_eq!(
        spec.min_level(),
        Level::Debug,
        "troubleshoot's warn floor is only a default"
    );
}
