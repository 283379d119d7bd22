//! Classic Drain against an independent implementation: the `drain3` package (0.9.11), run
//! by `benches/baselines/drain3_loghub.py` on the same contents of the ten Loghub-2k sets
//! with each set's published settings, must group every line exactly as
//! `DrainConfig::classic` does and give it the same template.
//!
//! Needs a Python with drain3: `AILOGS_TEST_PYTHON` (scripts/test makes a venv), else
//! `python3`. Fails, naming what is missing, when neither has it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ailogs_pipeline::templates::{DrainConfig, Miner, loghub};
use regex::Regex;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Cluster ids renumbered by first appearance: equal partitions give equal vectors.
fn partition(ids: &[u64]) -> Vec<usize> {
    let mut seen = HashMap::new();
    ids.iter()
        .map(|id| {
            let n = seen.len();
            *seen.entry(*id).or_insert(n)
        })
        .collect()
}

#[test]
fn classic_drain_groups_every_loghub_line_as_drain3_does() {
    let shared = repo().join("../shared/loghub");
    let settings: Value = serde_json::from_str(
        &std::fs::read_to_string(shared.join("settings.json")).expect("../shared/loghub/settings.json"),
    )
    .expect("settings json");
    let work = tempfile::tempdir().expect("tempdir");
    let mut ours: Vec<(String, Vec<u64>, Vec<String>)> = Vec::new();
    for (name, s) in settings["datasets"].as_object().expect("datasets") {
        let header = loghub::header_regex(s["log_format"].as_str().expect("log_format")).expect("format");
        let raw = std::fs::read_to_string(shared.join(s["log_file"].as_str().expect("log_file"))).expect("log");
        let contents: Vec<&str> = raw.lines().map(|l| loghub::content(&header, l)).collect();
        let masks = s["regex"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|r| Regex::new(r).expect("mask"))
            .collect();
        let config = DrainConfig::classic(
            masks,
            s["st"].as_f64().expect("st"),
            s["depth"].as_u64().expect("depth") as usize,
        );
        let mut miner = Miner::new(config);
        let ids: Vec<u64> = contents.iter().map(|c| miner.add(c).cluster).collect();
        let templates = ids
            .iter()
            .map(|id| miner.cluster(*id).map(|c| c.template()).unwrap_or_default())
            .collect();
        let mut text = contents.join("\n");
        text.push('\n');
        std::fs::write(work.path().join(format!("{name}.content.txt")), text).expect("write contents");
        ours.push((name.clone(), ids, templates));
    }
    let python = std::env::var("AILOGS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(repo().join("benches/baselines/drain3_loghub.py"))
        .arg(&shared)
        .arg(work.path())
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e} (run ./scripts/test, which makes a venv with drain3)"));
    assert!(
        out.status.success(),
        "{python} benches/baselines/drain3_loghub.py failed (is drain3==0.9.11 installed? ./scripts/test makes a venv with it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, ids, templates) in ours {
        let theirs: Vec<Value> = std::fs::read_to_string(work.path().join(format!("{name}.drain3.jsonl")))
            .expect("drain3 output")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        let their_ids: Vec<u64> = theirs.iter().map(|v| v["cluster_id"].as_u64().expect("id")).collect();
        assert_eq!(
            partition(&ids),
            partition(&their_ids),
            "{name}: grouping differs from drain3"
        );
        for (i, (t, v)) in templates.iter().zip(&theirs).enumerate() {
            assert_eq!(
                Some(t.as_str()),
                v["template"].as_str(),
                "{name} line {}: template differs",
                i + 1
            );
        }
    }
}
