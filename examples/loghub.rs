//! Template-mining accuracy on the Loghub-2k sets: runs the online miner over each set,
//! once with the set's published Drain settings (masks, threshold, depth) and once with
//! ailogs' single default configuration, and scores both with the shared scorer.
//!
//! cargo run --release --example loghub -- ../shared/loghub [set ...] [--depth N] [--st X] [--settle N] [--no-lists]
//! (`Linux_full` as a set also scores the 24k-line Loghub-2.0 Linux with the default)
//!
//! Needs python3 for `score.py`. Predictions are written to target/loghub/.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use ailogs_pipeline::templates::{DrainConfig, Miner, loghub};
use regex::Regex;
use serde_json::Value;

/// Published Drain GA on these sets (ICSE-SEIP 2019 table, as in ../shared/loghub/README.md).
const PUBLISHED: &[(&str, f64)] = &[
    ("HDFS", 0.998),
    ("Spark", 0.920),
    ("Zookeeper", 0.967),
    ("BGL", 0.963),
    ("HPC", 0.887),
    ("Windows", 0.997),
    ("Linux", 0.690),
    ("Android", 0.911),
    ("Apache", 1.000),
    ("OpenSSH", 0.788),
];

fn main() -> anyhow::Result<()> {
    // Flags override the default configuration (to explore it): --depth N --st X.
    let mut default = DrainConfig::default();
    let mut args: Vec<String> = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--depth" => default.depth = it.next().unwrap_or_default().parse()?,
            "--st" => default.sim_threshold = it.next().unwrap_or_default().parse()?,
            "--settle" => default.settle_after = it.next().unwrap_or_default().parse()?,
            "--no-lists" => default.collapse_lists = false,
            _ => args.push(a),
        }
    }
    let dir = PathBuf::from(args.first().map_or("../shared/loghub", String::as_str));
    let only: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let settings: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("settings.json"))?)?;
    let out = PathBuf::from("target/loghub");
    std::fs::create_dir_all(&out)?;
    let mut table = String::from(
        "| set | Drain (published) | classic Drain, per-set settings | default config |\n|---|---|---|---|\n",
    );
    let (mut sum_set, mut sum_default, mut n) = (0.0, 0.0, 0);
    for &(name, published) in PUBLISHED {
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let s = &settings["datasets"][name];
        let content = contents(
            &dir.join(s["log_file"].as_str().unwrap_or_default()),
            s["log_format"].as_str().unwrap_or(""),
        )?;
        // Published Drain with the set's published settings: checks the core algorithm.
        let per_set = DrainConfig::classic(
            s["regex"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(Regex::new)
                .collect::<Result<_, _>>()?,
            s["st"].as_f64().unwrap_or(0.5),
            s["depth"].as_u64().unwrap_or(4) as usize,
        );
        // The contents as mined, for `benches/baselines/drain3_loghub.py` to mine the same.
        std::fs::write(out.join(format!("{name}.content.txt")), content.join("\n") + "\n")?;
        let truth = dir.join(name).join(format!("{name}_2k.log_structured_corrected.csv"));
        let truth = if truth.exists() {
            truth
        } else {
            dir.join(name).join(format!("{name}_2k.log_structured.csv"))
        };
        let ga_set = score(
            &dir,
            &truth,
            &run(&content, per_set, &out.join(format!("{name}.per_set.jsonl")))?,
        )?;
        let ga_default = score(
            &dir,
            &truth,
            &run(&content, default.clone(), &out.join(format!("{name}.default.jsonl")))?,
        )?;
        let mark = |ga: f64| {
            if ga > published || (published >= 1.0 && ga >= 1.0) {
                ""
            } else {
                " (below)"
            }
        };
        writeln!(
            table,
            "| {name} | {published:.3} | {ga_set:.3}{} | {ga_default:.3}{} |",
            mark(ga_set),
            mark(ga_default)
        )?;
        sum_set += ga_set;
        sum_default += ga_default;
        n += 1;
    }
    if n > 0 {
        let published: f64 = PUBLISHED
            .iter()
            .filter(|(s, _)| only.is_empty() || only.contains(s))
            .map(|(_, g)| g)
            .sum();
        writeln!(
            table,
            "| **mean** | {:.3} | {:.3} | {:.3} |",
            published / n as f64,
            sum_set / n as f64,
            sum_default / n as f64
        )?;
    }
    println!("GA (grouping accuracy), truth = *_corrected.csv where present\n\n{table}");
    // Loghub-2.0's fully labelled Linux (24k lines), named explicitly: no published 2k number.
    if only.contains(&"Linux_full") {
        let format = settings["datasets"]["Linux"]["log_format"].as_str().unwrap_or("");
        let content = contents(&dir.join("Linux_full/Linux_full.log"), format)?;
        let ga = score(
            &dir,
            &dir.join("Linux_full/Linux_full.log_structured.csv"),
            &run(&content, default, &out.join("Linux_full.default.jsonl"))?,
        )?;
        println!("Linux_full ({} lines), default config: GA {ga:.3}", content.len());
    }
    Ok(())
}

/// The `Content` of each raw line, cut out with the set's header format.
fn contents(log: &Path, format: &str) -> anyhow::Result<Vec<String>> {
    let header = loghub::header_regex(format)?;
    Ok(std::fs::read_to_string(log)?
        .lines()
        .map(|l| loghub::content(&header, l).to_owned())
        .collect())
}

/// Mines the lines in order; writes each line's cluster id and its cluster's final template.
fn run(lines: &[String], config: DrainConfig, out: &Path) -> anyhow::Result<PathBuf> {
    let mut miner = Miner::new(config);
    let ids: Vec<_> = lines.iter().map(|l| miner.add(l).cluster).collect();
    let mut text = String::new();
    for id in ids {
        let template = miner.cluster(id).map(|c| c.template()).unwrap_or_default();
        writeln!(text, "{}", serde_json::json!({"cluster_id": id, "template": template}))?;
    }
    std::fs::write(out, text)?;
    Ok(out.to_owned())
}

fn score(dir: &Path, truth: &Path, pred: &Path) -> anyhow::Result<f64> {
    let output = Command::new("python3")
        .arg(dir.join("score.py"))
        .arg("--truth")
        .arg(truth)
        .arg("--pred")
        .arg(pred)
        .arg("--group-by")
        .arg("id")
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "score.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: Value = serde_json::from_slice(&output.stdout)?;
    v["GA"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("score.py printed no GA: {v}"))
}
