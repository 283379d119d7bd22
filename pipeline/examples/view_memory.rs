//! Memory per held line and query cost against lines held, in one process: synthetic AI
//! traffic through a lane (decode, normalize, patterns) into `views::HeldLines`, bytes counted
//! as resident memory growth between sizes, queries timed on the indexes at each size.
//!
//! cargo run --release -p ailogs-pipeline --features synth --example view_memory -- 50000,500000

use std::time::Instant;

use ailogs_pipeline::patterns::{Catalog, Matcher, SharedMatcher};
use ailogs_pipeline::query::{Context, QuerySpec, Window, render};
use ailogs_pipeline::synth::{Incident, SynthLine, Traffic};
use ailogs_pipeline::views::HeldLines;
use ailogs_pipeline::{DecodeLimits, Lane, RawEntry, labels_from};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resident set size, bytes (what an operator sees grow).
fn rss() -> isize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: isize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

const QUERIES: &[&str] = &[
    "mode=troubleshoot&include_context=3&limit=20",
    "mode=conversation&limit=20",
    "mode=errors&limit=20",
    "mode=troubleshoot&limit=20",
    "mode=errors&aggregation=by_error",
    "mode=errors&deduplicate=true&limit=20",
    "mode=performance&limit=20",
    "mode=audit&limit=20",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let counts: Vec<usize> = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "50000,500000".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let labels = labels_from([("app", "api"), ("env", "bench")]);
    let shared = SharedMatcher::new(Matcher::compile(Catalog::shipped()?.patterns)?);
    let mut lane = Lane::new(DecodeLimits::default(), &shared);
    let mut traffic = Traffic::new(7);
    let base_ns = 1_700_000_000_000_000_000i64;
    let mut held = HeldLines::default();
    let (mut request, mut raw_bytes, mut inserted) = (0i64, 0usize, 0usize);
    let mut previous: Option<(usize, isize, usize)> = None;
    println!("| held lines | RSS bytes | bytes/line beyond raw (vs previous size) | raw bytes/line | series |");
    println!("|---|---|---|---|---|");
    let mut timings = Vec::new();
    for &target in &counts {
        while inserted < target {
            if request % 2000 == 0 {
                traffic.start_incident(Incident::ALL[(request / 2000) as usize % Incident::ALL.len()], 300);
            }
            let lines: Vec<SynthLine> = traffic.request(base_ns + request * 50_000_000);
            request += 1;
            for l in lines {
                let raw = RawEntry {
                    ts_ns: l.ts_ns,
                    line: &l.line,
                    labels: &labels,
                    metadata: &[],
                };
                if let Ok(rec) = lane.ingest(&raw) {
                    raw_bytes += l.line.len();
                    held.insert(rec, 0);
                    inserted += 1;
                }
            }
        }
        let live = rss();
        let raw_per_line = raw_bytes / inserted;
        let beyond = previous.map_or(String::from("-"), |(n, bytes, raw)| {
            let per_line = (live - bytes) as f64 / (inserted - n) as f64;
            let raw = (raw_bytes - raw) as f64 / (inserted - n) as f64;
            format!("{:.0} ({:.0} total)", per_line - raw, per_line)
        });
        println!(
            "| {inserted} | {live} | {beyond} | {raw_per_line} | {} |",
            held.series_count()
        );
        previous = Some((inserted, live, raw_bytes));
        let end = base_ns + request * 50_000_000;
        let window = Window {
            start_ns: end - 3_600_000_000_000,
            end_ns: end,
        };
        for q in QUERIES {
            let spec =
                QuerySpec::from_params(q.split('&').filter_map(|kv| kv.split_once('='))).map_err(|e| e.message)?;
            let started = Instant::now();
            let rounds = 50;
            for _ in 0..rounds {
                let answer = held.answer(&spec, window);
                std::hint::black_box(render(&spec, window, answer, &Context::new(&held, &spec, window)));
            }
            timings.push((inserted, *q, started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)));
        }
    }
    println!("\n| held lines | query | µs per answer (indexes and rendering, no HTTP) |\n|---|---|---|");
    for (n, q, us) in timings {
        println!("| {n} | {q} | {us:.0} |");
    }
    Ok(())
}
