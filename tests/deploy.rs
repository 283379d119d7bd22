//! The deployment files: Prometheus' rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`), and every metric they name is one ailogs exports.

use std::path::Path;
use std::process::Command;

fn promtool(args: &[&str]) -> std::process::Output {
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
fn the_prometheus_rules_check_and_their_unit_tests_pass() {
    for args in [["check", "rules", "rules.yml"], ["test", "rules", "rules_test.yml"]] {
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

/// The Dockerfile cannot be built here (no engine): what it references is checked instead.
#[test]
fn the_dockerfile_references_what_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    // Continuation lines joined, so each instruction is one line.
    let joined = dockerfile.replace("\\\n", " ");
    let instructions: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for copy in instructions
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = copy.split_whitespace().collect();
        for source in &parts[1..parts.len() - 1] {
            assert!(root.join(source).exists(), "COPY {source}: not in the repository");
        }
    }
    // The builder's Rust is at least the workspace's rust-version.
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let wanted = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("rust-version");
    let builder = instructions
        .iter()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .and_then(|l| l.split('-').next())
        .expect("a rust builder stage");
    let version = |v: &str| {
        v.split('.')
            .map(|n| n.parse::<u32>().expect("a version"))
            .collect::<Vec<_>>()
    };
    assert!(
        version(builder) >= version(wanted),
        "rust:{builder} is older than rust-version {wanted}"
    );
    // The health check asks an open route; the command is a subcommand of this binary.
    assert!(joined.contains("http://127.0.0.1:8080/api/v1/ai_logs/health"));
    assert!(instructions.contains(&r#"ENTRYPOINT ["ailogs"]"#));
    let help = Command::new(env!("CARGO_BIN_EXE_ailogs"))
        .arg("--help")
        .output()
        .expect("ailogs --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let cmd = instructions
        .iter()
        .find_map(|l| l.strip_prefix("CMD [\""))
        .expect("CMD");
    let sub = cmd.split('"').next().expect("a subcommand");
    assert!(
        help.lines().any(|l| l.trim_start().starts_with(sub)),
        "ailogs has no `{sub}` subcommand:\n{help}"
    );
    // Its environment is configuration ailogs accepts.
    let env: std::collections::HashMap<String, String> = instructions
        .iter()
        .filter_map(|l| l.strip_prefix("ENV "))
        .flat_map(|l| l.split_whitespace().filter_map(|kv| kv.split_once('=')))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert!(env.contains_key("AILOGS_LISTEN"), "{env:?}");
    let config = ailogs::config::Config::load(None, &env).expect("the image's environment is valid configuration");
    assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).expect(".dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "target"),
        "the build context leaves out target/"
    );
}
