//! The Dockerfile, checked without an engine.

use std::path::Path;
use std::process::Command;

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
