//! The whole core (decode, match, mine, aggregate) on a file of lines, for the side-by-side
//! run against the Python baselines in `benches/baselines/` (see its `run` script).
//!
//! cargo run --release -p ailogs-pipeline --example side_by_side -- export DIR [LINES]
//!     writes DIR/lines.jsonl (synthetic AI-service lines with incidents) and
//!     DIR/masks.json (the miner's default masks as regexes, so drain3 masks what ailogs masks)
//! cargo run --release -p ailogs-pipeline --example side_by_side -- run DIR
//!     runs the core over DIR/lines.jsonl on one thread; prints one JSON line

use std::hint::black_box;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use ailogs_pipeline::patterns::{Catalog, Matcher, SharedMatcher};
use ailogs_pipeline::synth::{Incident, Traffic};
use ailogs_pipeline::templates::mask::{NUMERIC_PATTERN, QUOTED_PATTERN};
use ailogs_pipeline::templates::{DrainConfig, TemplateIndex};
use ailogs_pipeline::usage::{PriceBook, SourcePos};
use ailogs_pipeline::{Core, CoreConfig, DecodeLimits, Decoder, Lane, RawEntry, labels_from};
use serde_json::json;

/// The allocator the `ailogs` binary ships with: batches free thousands of records at once,
/// which glibc's malloc handles poorly (consolidation).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("export"), Some(dir)) => {
            let n = args.get(2).map_or(Ok(200_000), |s| s.parse())?;
            export(Path::new(dir), n)
        }
        (Some("run"), Some(dir)) => run(Path::new(dir)),
        _ => Err("usage: side_by_side export DIR [LINES] | run DIR".into()),
    }
}

fn export(dir: &Path, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let mut t = Traffic::new(7);
    let incidents = [
        Incident::ModelTimeout,
        Incident::ProviderRateLimit,
        Incident::ContextLengthExceeded,
        Incident::DbPoolExhausted,
        Incident::AuthFailureBurst,
    ];
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("lines.jsonl"))?);
    let (mut written, mut i) = (0, 0i64);
    while written < n {
        if i % 2000 == 0 {
            t.start_incident(incidents[(i / 2000) as usize % incidents.len()], 300);
        }
        for l in t.request(1_700_000_000_000_000_000 + i * 50_000_000) {
            if written < n {
                writeln!(out, "{}", json!({"ts_ns": l.ts_ns, "line": l.line}))?;
                written += 1;
            }
        }
        i += 1;
    }
    out.flush()?;
    // drain3 gets the same masking: the default masks, then the numeric parts of tokens.
    let masks: Vec<String> = DrainConfig::default()
        .masks
        .iter()
        .map(|m| m.as_str().to_owned())
        .chain([NUMERIC_PATTERN.to_owned()])
        .chain([QUOTED_PATTERN.to_owned()])
        // Python's `re` has no `(?-u:…)` groups; its `\b` is the same on ASCII text.
        .map(|p| p.replace(r"(?-u:\b)", r"\b"))
        .collect();
    std::fs::write(dir.join("masks.json"), serde_json::to_string_pretty(&masks)?)?;
    Ok(())
}

fn report(what: &str, lines: usize, secs: f64, extra: serde_json::Value) {
    let mut v = json!({"impl": what, "lines": lines, "seconds": secs, "lines_per_s": lines as f64 / secs});
    if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        v.extend(extra.clone());
    }
    println!("{v}");
}

#[derive(serde::Deserialize)]
struct Line {
    ts_ns: i64,
    line: String,
}

fn run(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let lines: Vec<Line> = std::fs::read_to_string(dir.join("lines.jsonl"))?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let labels = labels_from([("app", "api"), ("env", "bench")]);
    let shared = SharedMatcher::new(Matcher::compile(Catalog::shipped()?.patterns)?);
    let durable = CoreConfig {
        durable: true,
        ..CoreConfig::default()
    };
    let raws: Vec<RawEntry<'_>> = lines
        .iter()
        .map(|l| RawEntry {
            ts_ns: l.ts_ns,
            line: &l.line,
            labels: &labels,
            metadata: &[],
        })
        .collect();
    // What a consumer does before its Postgres commit: lane (decode, match), then prepare
    // (mine, usage and insight deltas), in batches.
    let (secs, hits, rejected) = through_core(&raws, &shared, durable.clone(), false);
    report(
        "ailogs core: decode + match + mine + aggregate",
        lines.len(),
        secs,
        json!({"pattern_hits": hits, "rejected": rejected}),
    );
    // And after it: commit (anomalies, correlation, alerts) too.
    let (secs, _, _) = through_core(&raws, &shared, durable, true);
    report(
        "ailogs core: prepare + commit (anomalies, correlation, alerts)",
        lines.len(),
        secs,
        json!({}),
    );

    // The stages alone, to set beside each baseline: JSON parse + match (the seed's loop)
    // and mining of the messages (drain3).
    let mut decoder = Decoder::new(DecodeLimits::default());
    let mut scanner = shared.scanner();
    let started = Instant::now();
    let mut hits = 0usize;
    let mut messages = Vec::with_capacity(lines.len());
    for l in &lines {
        if let Ok(rec) = decoder.decode(&RawEntry {
            ts_ns: l.ts_ns,
            line: &l.line,
            labels: &labels,
            metadata: &[],
        }) {
            hits += scanner.scan(&rec).len();
            messages.push(rec.message);
        }
    }
    report(
        "ailogs decode + match",
        lines.len(),
        started.elapsed().as_secs_f64(),
        json!({"pattern_hits": hits}),
    );
    let mut templates = TemplateIndex::new(DrainConfig::default(), 1000);
    let started = Instant::now();
    for m in &messages {
        black_box(templates.tag("api", m));
    }
    let secs = started.elapsed().as_secs_f64();
    let count = messages
        .iter()
        .map(|m| templates.tag("api", m).id)
        .collect::<std::collections::HashSet<_>>()
        .len();
    report(
        "ailogs miner (messages)",
        messages.len(),
        secs,
        json!({"templates": count}),
    );
    Ok(())
}

/// Lines through a lane and a core in batches of 1,000, as a consumer runs them. Returns
/// (seconds, pattern hits, rejected lines).
fn through_core(
    raws: &[RawEntry<'_>],
    shared: &SharedMatcher,
    config: CoreConfig,
    commit: bool,
) -> (f64, usize, usize) {
    let mut lane = Lane::new(DecodeLimits::default(), shared);
    let mut core = Core::new(config, PriceBook::shipped());
    let (mut hits, mut rejected) = (0usize, 0usize);
    let started = Instant::now();
    for (b, chunk) in raws.chunks(1000).enumerate() {
        let mut records = Vec::with_capacity(chunk.len());
        let mut sources = Vec::with_capacity(chunk.len());
        for (i, raw) in chunk.iter().enumerate() {
            match lane.ingest(raw) {
                Ok(e) => {
                    hits += e.patterns.len();
                    records.push(e);
                    sources.push(SourcePos {
                        topic: String::new(),
                        partition: 0,
                        offset: (b * 1000 + i) as i64,
                    });
                }
                Err(_) => rejected += 1,
            }
        }
        let prepared = core.prepare(records, sources);
        if commit {
            black_box(core.commit(prepared, b as i64));
        } else {
            black_box(&prepared);
            core.abort(prepared);
        }
    }
    (started.elapsed().as_secs_f64(), hits, rejected)
}
