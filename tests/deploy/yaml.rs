//! YAML files read through the test Python's ruamel.yaml (check-jsonschema's YAML reader,
//! so the references are checked on the same document the schema validated, merge keys
//! resolved), and the schema check itself.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> String {
    std::env::var("AILOGS_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run_python(args: &[&str]) -> std::process::Output {
    let python = python();
    let out = Command::new(&python)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{python} could not run ({e}): run ./scripts/test, or set AILOGS_TEST_PYTHON"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "{python} lacks check-jsonschema (with ruamel.yaml): run ./scripts/test, or set AILOGS_TEST_PYTHON to a Python that has it\n{stderr}"
    );
    out
}

/// The YAML file at `path` (relative to the repository) as JSON.
pub fn load(path: &str) -> Value {
    const TO_JSON: &str =
        "import json, sys\nfrom ruamel.yaml import YAML\nprint(json.dumps(YAML(typ='safe').load(open(sys.argv[1]))))";
    let out = run_python(&["-c", TO_JSON, path]);
    assert!(
        out.status.success(),
        "{path} is not valid YAML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{path} as JSON: {e}"))
}

/// Validates `path` against one of check-jsonschema's vendored schemas; the error output
/// when it does not.
pub fn validate(path: &str, builtin_schema: &str) -> Result<(), String> {
    let out = run_python(&["-m", "check_jsonschema", "--builtin-schema", builtin_schema, path]);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
