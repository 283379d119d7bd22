//! Template-mining accuracy on Loghub-2k sets: the online miner over each set, once as
//! classic Drain with the set's published settings and once with ailogs' single default
//! configuration, scored with the shared scorer (`../shared/loghub/score.py`).
//!
//! cargo run --release --example loghub -- [SET ...]
//!     the ten sets of ../shared/loghub (truth: the corrected CSVs where present)
//! cargo run --release --example loghub -- --extra LOGHUB_CHECKOUT [SET ...]
//!     also the six other Loghub-2k sets (Hadoop, HealthApp, Mac, OpenStack, Proxifier,
//!     Thunderbird) from a checkout of github.com/logpai/loghub, with the published settings
//!     in benches/loghub/extra_settings.json
//! --loo   also chooses the default's similarity threshold leave-one-set-out (each set scored
//!         with the value that is best on the others) and prints that table
//! --depth N --st X --settle N --no-lists   override the default configuration
//!
//! Needs python3 for `score.py`. Predictions are written to target/loghub/.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use ailogs_pipeline::templates::{DrainConfig, Miner, loghub};
use regex::Regex;
use serde_json::Value;

/// Published Drain GA (Zhu et al., ICSE-SEIP 2019, Table 3).
const PUBLISHED: &[(&str, f64)] = &[
    ("HDFS", 0.998),
    ("Hadoop", 0.948),
    ("Spark", 0.920),
    ("Zookeeper", 0.967),
    ("OpenStack", 0.733),
    ("BGL", 0.963),
    ("HPC", 0.887),
    ("Thunderbird", 0.955),
    ("Windows", 0.997),
    ("Linux", 0.690),
    ("Mac", 0.787),
    ("Android", 0.911),
    ("HealthApp", 0.780),
    ("Apache", 1.000),
    ("OpenSSH", 0.788),
    ("Proxifier", 0.527),
];

/// Similarity thresholds the leave-one-out choice picks from.
const ST_GRID: [f64; 9] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9];

/// One labelled set: its contents (header cut off), truth file and published settings.
struct Set {
    name: String,
    contents: Vec<String>,
    truth: PathBuf,
    settings: Value,
}

struct Scores {
    ga: f64,
    pa: f64,
    fta: f64,
}

fn main() -> anyhow::Result<()> {
    let mut default = DrainConfig::default();
    let (mut extra, mut loo, mut only) = (None, false, Vec::new());
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--depth" => default.depth = it.next().unwrap_or_default().parse()?,
            "--st" => default.sim_threshold = it.next().unwrap_or_default().parse()?,
            "--settle" => default.settle_after = it.next().unwrap_or_default().parse()?,
            "--no-lists" => default.collapse_lists = false,
            "--extra" => extra = it.next().map(PathBuf::from),
            "--loo" => loo = true,
            _ => only.push(a),
        }
    }
    let shared = PathBuf::from("../shared/loghub");
    let mut sets = load(&shared, &shared.join("settings.json"), true)?;
    if let Some(checkout) = &extra {
        sets.extend(load(checkout, Path::new("benches/loghub/extra_settings.json"), false)?);
    }
    sets.retain(|s| only.is_empty() || only.contains(&s.name));
    let out = PathBuf::from("target/loghub");
    std::fs::create_dir_all(&out)?;

    let mut table = String::from(
        "| set | Drain (published) | classic Drain, published settings | default: GA | PA | FTA |\n|---|---|---|---|---|---|\n",
    );
    let (mut sums, mut n) = ([0.0; 5], 0.0);
    for set in &sets {
        let published = published(&set.name).unwrap_or(f64::NAN);
        let classic = mine_and_score(
            set,
            classic_config(&set.settings)?,
            &out.join(format!("{}.per_set.jsonl", set.name)),
        )?;
        let ours = mine_and_score(set, default.clone(), &out.join(format!("{}.default.jsonl", set.name)))?;
        writeln!(
            table,
            "| {} | {published:.3} | {:.3} | {:.3}{} | {:.3} | {:.3} |",
            set.name,
            classic.ga,
            ours.ga,
            if ours.ga + 1e-9 < published { " (below)" } else { "" },
            ours.pa,
            ours.fta
        )?;
        for (sum, v) in sums.iter_mut().zip([published, classic.ga, ours.ga, ours.pa, ours.fta]) {
            *sum += v;
        }
        n += 1.0;
    }
    let [p, c, g, pa, fta] = sums.map(|s| s / n);
    writeln!(table, "| **mean** | {p:.3} | {c:.3} | {g:.3} | {pa:.3} | {fta:.3} |")?;
    println!("Grouping accuracy (GA), parsing accuracy (PA), template F1 (FTA)\n\n{table}");
    if loo {
        println!("{}", leave_one_out(&sets, &default, &out)?);
    }
    Ok(())
}

fn published(set: &str) -> Option<f64> {
    PUBLISHED.iter().find(|(s, _)| *s == set).map(|p| p.1)
}

/// The sets of one settings file; logs and truth under `data`.
fn load(data: &Path, settings: &Path, corrected: bool) -> anyhow::Result<Vec<Set>> {
    let all: Value = serde_json::from_str(&std::fs::read_to_string(settings)?)?;
    let mut sets = Vec::new();
    for (name, s) in all["datasets"].as_object().into_iter().flatten() {
        let header = loghub::header_regex(s["log_format"].as_str().unwrap_or(""))?;
        let raw = std::fs::read_to_string(data.join(s["log_file"].as_str().unwrap_or_default()))?;
        let dir = data.join(name);
        let fixed = dir.join(format!("{name}_2k.log_structured_corrected.csv"));
        sets.push(Set {
            name: name.clone(),
            contents: raw.lines().map(|l| loghub::content(&header, l).to_owned()).collect(),
            truth: if corrected && fixed.exists() {
                fixed
            } else {
                dir.join(format!("{name}_2k.log_structured.csv"))
            },
            settings: s.clone(),
        });
    }
    Ok(sets)
}

fn classic_config(s: &Value) -> anyhow::Result<DrainConfig> {
    let masks = s["regex"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(Regex::new)
        .collect::<Result<_, _>>()?;
    Ok(DrainConfig::classic(
        masks,
        s["st"].as_f64().unwrap_or(0.5),
        s["depth"].as_u64().unwrap_or(4) as usize,
    ))
}

/// Each set scored with the threshold that does best on the other sets: the largest worst
/// margin over published Drain (the goal is no set below it), then the largest mean GA.
/// (Mean GA alone is brittle here: 0.75 and 0.85 nearly tie on the others while one of them
/// ruins the set left out.)
fn leave_one_out(sets: &[Set], default: &DrainConfig, out: &Path) -> anyhow::Result<String> {
    let mut ga = vec![vec![0.0; ST_GRID.len()]; sets.len()];
    for (i, set) in sets.iter().enumerate() {
        for (j, &st) in ST_GRID.iter().enumerate() {
            let config = DrainConfig {
                sim_threshold: st,
                ..default.clone()
            };
            ga[i][j] = mine_and_score(set, config, &out.join(format!("{}.grid.jsonl", set.name)))?.ga;
        }
    }
    let mut table = String::from(
        "Leave one set out: each set scored with the threshold best on the others\n\n| set | chosen st | GA (left out) | GA in-sample (default) |\n|---|---|---|---|\n",
    );
    let (mut sum_loo, mut sum_in) = (0.0, 0.0);
    let in_sample = ST_GRID.iter().position(|&s| (s - default.sim_threshold).abs() < 1e-9);
    for (i, set) in sets.iter().enumerate() {
        let others = || (0..sets.len()).filter(move |&k| k != i);
        let margin = |k: usize, j: usize| ga[k][j] - published(&sets[k].name).unwrap_or(0.0);
        let worst = |j: usize| others().map(|k| margin(k, j)).fold(f64::INFINITY, f64::min);
        let mean = |j: usize| others().map(|k| ga[k][j]).sum::<f64>();
        let best = (0..ST_GRID.len())
            .max_by(|&a, &b| worst(a).total_cmp(&worst(b)).then(mean(a).total_cmp(&mean(b))))
            .unwrap_or(0);
        let here = in_sample.map_or(f64::NAN, |j| ga[i][j]);
        writeln!(
            table,
            "| {} | {} | {:.3} | {:.3} |",
            set.name, ST_GRID[best], ga[i][best], here
        )?;
        sum_loo += ga[i][best];
        sum_in += here;
    }
    let n = sets.len() as f64;
    writeln!(table, "| **mean** | | {:.3} | {:.3} |", sum_loo / n, sum_in / n)?;
    Ok(table)
}

/// Mines the lines in order, writes each line's cluster id and final template, scores them.
fn mine_and_score(set: &Set, config: DrainConfig, out: &Path) -> anyhow::Result<Scores> {
    let mut miner = Miner::new(config);
    let ids: Vec<_> = set.contents.iter().map(|l| miner.add(l).cluster).collect();
    let mut text = String::new();
    for id in ids {
        let template = miner.cluster(id).map(|c| c.template()).unwrap_or_default();
        writeln!(text, "{}", serde_json::json!({"cluster_id": id, "template": template}))?;
    }
    std::fs::write(out, text)?;
    let output = Command::new("python3")
        .arg("../shared/loghub/score.py")
        .arg("--truth")
        .arg(&set.truth)
        .arg("--pred")
        .arg(out)
        .arg("--group-by")
        .arg("id")
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "score.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: Value = serde_json::from_slice(&output.stdout)?;
    let metric = |k: &str| {
        v[k].as_f64()
            .ok_or_else(|| anyhow::anyhow!("score.py printed no {k}: {v}"))
    };
    Ok(Scores {
        ga: metric("GA")?,
        pa: metric("PA")?,
        fta: metric("FTA")?,
    })
}
