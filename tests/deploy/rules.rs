//! Prometheus' rules pass `promtool check rules` and their unit tests (`promtool test rules`),
//! the compose stack's Prometheus config passes `promtool check config`, and every metric the
//! rules name is one ailogs exports.

use std::path::Path;
use std::process::Command;

pub fn promtool(args: &[&str]) -> std::process::Output {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    Command::new("promtool")
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool is required for this test and could not run ({e}): install Debian's prometheus package (scripts/services does)")
        })
}

#[test]
fn the_prometheus_rules_and_config_check_and_the_rules_unit_tests_pass() {
    for args in [
        ["check", "rules", "rules.yml"],
        ["test", "rules", "rules_test.yml"],
        ["check", "config", "prometheus.yml"],
    ] {
        let out = promtool(&args);
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_metric_the_rules_name_is_exported() {
    let rules = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/rules.yml"))
        .expect("deploy/prometheus/rules.yml");
    let exported = ailogs::metrics::Metrics::new().names().to_vec();
    let named: std::collections::BTreeSet<String> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("ailogs_"))
        .map(|w| {
            ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| w.strip_suffix(s).filter(|base| exported.iter().any(|e| e == base)))
                .unwrap_or(w)
                .to_owned()
        })
        .collect();
    assert!(named.len() >= 10, "the rules name {named:?}");
    for name in &named {
        assert!(
            exported.contains(name),
            "rules.yml names {name}, which ailogs does not export"
        );
    }
}
