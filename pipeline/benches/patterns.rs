//! Throughput on realistic AI-service traffic with incidents mixed in: pattern matching
//! (the shipped catalog in one Hyperscan database, and through the regex crate's RegexSet
//! for comparison), template mining, and the whole core per line (decode, match, mine,
//! usage aggregation).

use std::hint::black_box;

use ailogs_pipeline::patterns::{Catalog, Matcher, SharedMatcher};
use ailogs_pipeline::synth::{Incident, Traffic};
use ailogs_pipeline::templates::{DrainConfig, TemplateIndex};
use ailogs_pipeline::usage::{PriceBook, SourcePos};
use ailogs_pipeline::{Core, CoreConfig, DecodeLimits, Decoder, Lane, LogRecord, RawEntry, labels_from};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Batches free thousands of records at once, which glibc's malloc handles poorly
/// (consolidation); mimalloc keeps the core ~18% faster on the same work.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn lines(n: usize) -> Vec<ailogs_pipeline::synth::SynthLine> {
    let mut t = Traffic::new(11);
    let mut out = Vec::with_capacity(n);
    let mut i = 0i64;
    let incidents = [
        Incident::ModelTimeout,
        Incident::ProviderRateLimit,
        Incident::ContextLengthExceeded,
        Incident::DbPoolExhausted,
        Incident::AuthFailureBurst,
    ];
    while out.len() < n {
        if i % 2000 == 0 {
            t.start_incident(incidents[(i / 2000) as usize % incidents.len()], 300);
        }
        out.extend(t.request(1_700_000_000_000_000_000 + i * 50_000_000));
        i += 1;
    }
    out.truncate(n);
    out
}

fn records(n: usize) -> Vec<LogRecord> {
    let labels = labels_from([("app", "api"), ("env", "bench")]);
    let mut d = Decoder::new(DecodeLimits::default());
    lines(n)
        .iter()
        .filter_map(|l| {
            d.decode(&RawEntry {
                ts_ns: l.ts_ns,
                line: &l.line,
                labels: &labels,
                metadata: &[],
            })
            .ok()
        })
        .collect()
}

fn bench_patterns(c: &mut Criterion) {
    let recs = records(20_000);
    let catalog = Catalog::shipped().expect("catalog");
    let matcher = Matcher::compile(catalog.patterns.clone()).expect("compile");
    let mut scratch = matcher.scratch();
    let hits: usize = recs.iter().map(|r| matcher.scan_record(&mut scratch, r).len()).sum();
    let bytes: usize = recs
        .iter()
        .map(|r| r.message.len() + r.error.as_ref().map_or(0, |e| e.len()))
        .sum();
    eprintln!(
        "patterns: {} records, mean {} bytes scanned, {hits} matches",
        recs.len(),
        bytes / recs.len()
    );
    let mut group = c.benchmark_group("patterns");
    group.throughput(Throughput::Elements(recs.len() as u64));
    group.bench_function("hyperscan", |b| {
        b.iter(|| {
            for r in &recs {
                black_box(matcher.scan_record(&mut scratch, r));
            }
        })
    });
    let set = regex::RegexSet::new(catalog.patterns.iter().map(|p| format!("(?im){}", p.regex))).expect("regex set");
    group.bench_function("regex_set", |b| {
        b.iter(|| {
            for r in &recs {
                black_box(set.matches(&r.message));
                if let Some(e) = &r.error {
                    black_box(set.matches(e));
                }
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("templates");
    group.throughput(Throughput::Elements(recs.len() as u64));
    group.bench_function("mine", |b| {
        // A warm index: the steady state is lines joining known templates.
        let mut idx = TemplateIndex::new(DrainConfig::default(), 1000);
        for r in &recs {
            idx.tag(&r.service, &r.message);
        }
        b.iter(|| {
            for r in &recs {
                black_box(idx.tag(&r.service, &r.message));
            }
        })
    });
    group.finish();

    let raw = lines(20_000);
    let labels = labels_from([("app", "api"), ("env", "bench")]);
    let shared = SharedMatcher::new(Matcher::compile(catalog.patterns).expect("compile"));
    let book = PriceBook::shipped();
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(raw.len() as u64));
    group.bench_function("decode_match_mine_aggregate", |b| {
        let mut lane = Lane::new(DecodeLimits::default(), &shared);
        let mut core = Core::new(
            CoreConfig {
                durable: true,
                ..CoreConfig::default()
            },
            book.clone(),
        );
        b.iter(|| {
            // As a consumer runs: lane per line, prepare per batch (then aborted, so the
            // next iteration counts nothing twice).
            for (n, chunk) in raw.chunks(1000).enumerate() {
                let mut records = Vec::with_capacity(chunk.len());
                let mut sources = Vec::with_capacity(chunk.len());
                for (i, l) in chunk.iter().enumerate() {
                    let Ok(e) = lane.ingest(&RawEntry {
                        ts_ns: l.ts_ns,
                        line: &l.line,
                        labels: &labels,
                        metadata: &[],
                    }) else {
                        continue;
                    };
                    records.push(e);
                    sources.push(SourcePos {
                        topic: String::new(),
                        partition: 0,
                        offset: (n * 1000 + i) as i64,
                    });
                }
                let prepared = core.prepare(records, sources);
                black_box(&prepared);
                core.abort(prepared);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_patterns);
criterion_main!(benches);
