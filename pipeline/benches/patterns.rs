//! Pattern matching throughput: the shipped catalog (one Hyperscan database) over the
//! message and error of realistic AI-service records, with incidents mixed in, and the
//! same catalog through the regex crate's RegexSet for comparison.

use std::hint::black_box;

use ailogs_pipeline::patterns::{Catalog, Matcher};
use ailogs_pipeline::synth::{Incident, Traffic};
use ailogs_pipeline::{DecodeLimits, Decoder, LogRecord, RawEntry, labels_from};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn records(n: usize) -> Vec<LogRecord> {
    let mut t = Traffic::new(11);
    let labels = labels_from([("app", "api"), ("env", "bench")]);
    let mut d = Decoder::new(DecodeLimits::default());
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
        for l in t.request(1_700_000_000_000_000_000 + i * 50_000_000) {
            if let Ok(r) = d.decode(&RawEntry {
                ts_ns: l.ts_ns,
                line: &l.line,
                labels: &labels,
                metadata: &[],
            }) {
                out.push(r);
            }
        }
        i += 1;
    }
    out.truncate(n);
    out
}

fn bench_patterns(c: &mut Criterion) {
    let recs = records(20_000);
    let catalog = Catalog::shipped().expect("catalog");
    let matcher = Matcher::compile(catalog.patterns.clone()).expect("compile");
    let mut scratch = matcher.scratch();
    let hits: usize = recs.iter().map(|r| matcher.scan_record(&mut scratch, r).len()).sum();
    let bytes: usize = recs
        .iter()
        .map(|r| r.message.len() + r.error.as_ref().map_or(0, String::len))
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
}

criterion_group!(benches, bench_patterns);
criterion_main!(benches);
