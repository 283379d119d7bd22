//! Correlation tracking: memory per one million live requests (printed, from the process's
//! resident set) and the cost of adding a line to its request.

use std::hint::black_box;

use ailogs_pipeline::correlate::{Tracker, TrackerConfig};
use ailogs_pipeline::{Enriched, Level, LogRecord};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SERVICES: [&str; 4] = ["browser", "api", "llm-gateway", "vector-db"];

fn record(i: u64, line: u64) -> Enriched {
    let mut r = LogRecord::new(
        1_800_000_000_000_000_000 + (i * 4 + line) as i64 * 1_000_000,
        SERVICES[(line % 4) as usize],
        Level::Info,
        "step",
    );
    r.correlation_id = Some(format!("{:08x}-7d3c-4a8e-9f21-{:012x}", i >> 16, i).into());
    Enriched::new(r)
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// One million live requests of two lines in two services each (uuid-length ids).
fn memory_per_million() {
    const N: u64 = 1_000_000;
    let records: Vec<Enriched> = (0..N).flat_map(|i| [record(i, 0), record(i, 1)]).collect();
    let before = resident_bytes();
    let mut t = Tracker::new(TrackerConfig {
        max_live: 2_000_000,
        ..TrackerConfig::default()
    });
    for r in &records {
        black_box(t.observe(r));
    }
    let after = resident_bytes();
    assert_eq!(t.live_count() as u64, N);
    println!(
        "correlate/memory: {} live requests (2 services, 2 lines each): {:.1} MB resident ({:.0} bytes each)",
        N,
        (after - before) as f64 / 1e6,
        (after - before) as f64 / N as f64
    );
}

fn bench(c: &mut Criterion) {
    memory_per_million();
    let records: Vec<Enriched> = (0..50_000u64).flat_map(|i| (0..4).map(move |l| record(i, l))).collect();
    let mut group = c.benchmark_group("correlate");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("observe_line", |b| {
        b.iter(|| {
            let mut t = Tracker::new(TrackerConfig::default());
            for r in &records {
                black_box(t.observe(r));
            }
            t.live_count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
