//! Decode + normalize throughput on the demo's realistic AI-service traffic (JSON with
//! legacy and OpenTelemetry field names, logfmt, plain text), in lines per second.

use std::hint::black_box;

use ailogs_pipeline::envelope::RawMessage;
use ailogs_pipeline::partition_key::KeyExtractor;
use ailogs_pipeline::patterns::{Catalog, Matcher, SharedMatcher};
use ailogs_pipeline::stream::StreamLine;
use ailogs_pipeline::synth::{Incident, SynthLine, Traffic};
use ailogs_pipeline::{DecodeLimits, Decoder, Lane, LineFormat, RawEntry, labels_from};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn traffic(n: usize) -> Vec<SynthLine> {
    let mut t = Traffic::new(7);
    t.start_incident(Incident::ModelTimeout, 500);
    let mut lines = Vec::with_capacity(n);
    let mut i = 0i64;
    while lines.len() < n {
        lines.extend(t.request(1_700_000_000_000_000_000 + i * 50_000_000));
        i += 1;
    }
    lines.truncate(n);
    lines
}

fn bench_decode(c: &mut Criterion) {
    let lines = traffic(10_000);
    let labels = labels_from([("app", "api"), ("env", "bench"), ("job", "ailogs")]);
    let mut group = c.benchmark_group("decode");
    let by_format = |format: LineFormat| -> Vec<&SynthLine> {
        let mut d = Decoder::new(DecodeLimits::default());
        lines
            .iter()
            .filter(|l| {
                d.decode(&RawEntry {
                    ts_ns: l.ts_ns,
                    line: &l.line,
                    labels: &labels,
                    metadata: &[],
                })
                .is_ok_and(|r| r.format == format)
            })
            .collect()
    };
    let mixed: Vec<&SynthLine> = lines.iter().collect();
    for (name, set) in [
        ("mixed", mixed),
        ("json", by_format(LineFormat::Json)),
        ("logfmt", by_format(LineFormat::Logfmt)),
        ("plain", by_format(LineFormat::Plain)),
    ] {
        if set.is_empty() {
            continue;
        }
        let bytes: usize = set.iter().map(|l| l.line.len()).sum();
        eprintln!("decode/{name}: {} lines, mean {} bytes", set.len(), bytes / set.len());
        group.throughput(Throughput::Elements(set.len() as u64));
        group.bench_function(name, |b| {
            let mut d = Decoder::new(DecodeLimits::default());
            b.iter(|| {
                for l in &set {
                    let rec = d.decode(&RawEntry {
                        ts_ns: l.ts_ns,
                        line: &l.line,
                        labels: &labels,
                        metadata: &[],
                    });
                    black_box(rec.is_ok());
                }
            });
        });
    }
    group.finish();

    // Ingest's partition key: the full decode it used to run, and the key extractor, side by
    // side on the same mixed lines.
    let mut group = c.benchmark_group("partition_key");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("full_decode", |b| {
        let mut d = Decoder::new(DecodeLimits::default());
        b.iter(|| {
            for l in &lines {
                let raw = RawEntry {
                    ts_ns: l.ts_ns,
                    line: &l.line,
                    labels: &labels,
                    metadata: &[],
                };
                black_box(d.decode(&raw).ok().and_then(|r| r.correlation_id));
            }
        });
    });
    group.bench_function("key_extractor", |b| {
        let mut k = KeyExtractor::new(DecodeLimits::default());
        b.iter(|| {
            for l in &lines {
                let raw = RawEntry {
                    ts_ns: l.ts_ns,
                    line: &l.line,
                    labels: &labels,
                    metadata: &[],
                };
                black_box(k.correlation_id(&raw));
            }
        });
    });
    group.finish();

    // An API replica's live stream, per line: what its tail did with each `ai-logs.raw`
    // message (envelope, decode, match), and what it does now with a consumer's
    // `StreamLine` (parse only). The Kafka client's own cost is the same in both.
    let shared = SharedMatcher::new(Matcher::compile(Catalog::shipped().expect("catalog").patterns).expect("compile"));
    let mut lane = Lane::new(DecodeLimits::default(), &shared);
    let envelopes: Vec<Vec<u8>> = lines
        .iter()
        .map(|l| {
            serde_json::to_vec(&RawMessage {
                ts_ns: l.ts_ns,
                labels: (*labels).clone(),
                line: l.line.clone(),
                metadata: Vec::new(),
            })
            .expect("serializes")
        })
        .collect();
    let stream_lines: Vec<Vec<u8>> = envelopes
        .iter()
        .filter_map(|p| lane.ingest_message(Some(p)).ok())
        .map(|e| serde_json::to_vec(&StreamLine::from(&e)).expect("serializes"))
        .collect();
    let mut group = c.benchmark_group("stream_tail");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("raw_decode_match", |b| {
        b.iter(|| {
            for p in &envelopes {
                black_box(lane.ingest_message(Some(p)).is_ok());
            }
        });
    });
    group.bench_function("stream_line_parse", |b| {
        b.iter(|| {
            for p in &stream_lines {
                black_box(serde_json::from_slice::<StreamLine>(p).is_ok());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
