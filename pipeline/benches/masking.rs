//! The push path's CPU work with masking on and off, side by side in one run: a Promtail
//! request (snappy protobuf) of the demo's AI-service traffic decoded into a `PushBatch`, then
//! masked. Two traffic sets: as the demo writes it (no secrets), and with one line in twenty
//! carrying an email and a bearer token (what a careless logger writes).

use std::collections::BTreeMap;
use std::hint::black_box;

use ailogs_pipeline::loki::labels;
use ailogs_pipeline::loki::proto::{EntryAdapter, PushRequest, StreamAdapter, Timestamp, encode_snappy};
use ailogs_pipeline::loki::push;
use ailogs_pipeline::patterns::{Catalog, Matcher, SharedMatcher};
use ailogs_pipeline::redact::Redactor;
use ailogs_pipeline::synth::{Incident, SynthLine, Traffic};
use ailogs_pipeline::{DecodeLimits, Lane};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn traffic(n: usize, secret_every: Option<usize>) -> Vec<SynthLine> {
    let mut t = Traffic::new(7);
    t.start_incident(Incident::ModelTimeout, 500);
    let mut lines = Vec::with_capacity(n);
    let mut i = 0i64;
    while lines.len() < n {
        lines.extend(t.request(1_700_000_000_000_000_000 + i * 50_000_000));
        i += 1;
    }
    lines.truncate(n);
    if let Some(every) = secret_every {
        for (i, l) in lines.iter_mut().enumerate().filter(|(i, _)| i % every == 0) {
            let secret = format!("user{i}@example.com sent Authorization: Bearer tok{i}AbCdEfGhIjKl");
            l.line = match l.line.strip_prefix('{') {
                Some(rest) => format!("{{\"note\":\"{secret}\",{rest}"),
                None => format!("{} {secret}", l.line),
            };
        }
    }
    lines
}

/// One stream per service, as Promtail sends a scrape's lines.
fn push_body(lines: &[SynthLine]) -> Vec<u8> {
    let mut streams: BTreeMap<&str, Vec<&SynthLine>> = BTreeMap::new();
    for l in lines {
        streams.entry(l.service).or_default().push(l);
    }
    let streams = streams
        .into_iter()
        .map(|(service, lines)| {
            let labels: BTreeMap<String, String> = [
                ("app".to_owned(), service.to_owned()),
                ("job".to_owned(), "bench".to_owned()),
            ]
            .into();
            StreamAdapter {
                labels: labels::format(&labels).into_bytes(),
                entries: lines
                    .iter()
                    .map(|l| EntryAdapter {
                        timestamp: Some(Timestamp::from_ns(l.ts_ns)),
                        line: l.line.clone().into_bytes(),
                        structured_metadata: Vec::new(),
                        parsed: Vec::new(),
                    })
                    .collect(),
                hash: 0,
            }
        })
        .collect();
    encode_snappy(&PushRequest {
        streams,
        format: Vec::new(),
    })
}

fn bench_masking(c: &mut Criterion) {
    let redactor = Redactor::shipped();
    let mut group = c.benchmark_group("ingest_push");
    for (name, every) in [("demo_traffic", None), ("one_in_20_with_secrets", Some(20))] {
        let lines = traffic(10_000, every);
        let body = push_body(&lines);
        group.throughput(Throughput::Elements(lines.len() as u64));
        let decode =
            || push::decode(Some("application/x-protobuf"), None, &body, 64 << 20).expect("the bench body decodes");
        group.bench_function(format!("{name}/masking_off"), |b| b.iter(|| black_box(decode())));
        group.bench_function(format!("{name}/masking_on"), |b| {
            let mut counts = vec![0u64; redactor.names().count()];
            b.iter(|| {
                let mut batch = decode();
                redactor.mask_batch(&mut batch, &mut counts);
                black_box(batch)
            })
        });
    }
    group.finish();

    // The same with each line then through a worker's lane (decode, normalize, catalog
    // match): the share of an ingested line's CPU that masking takes.
    let shared = SharedMatcher::new(Matcher::compile(Catalog::shipped().expect("catalog").patterns).expect("compile"));
    let mut group = c.benchmark_group("ingest_and_lane");
    let lines = traffic(10_000, Some(20));
    let body = push_body(&lines);
    group.throughput(Throughput::Elements(lines.len() as u64));
    for masking in [false, true] {
        let name = if masking {
            "one_in_20_with_secrets/masking_on"
        } else {
            "one_in_20_with_secrets/masking_off"
        };
        group.bench_function(name, |b| {
            let mut lane = Lane::new(DecodeLimits::default(), &shared);
            let mut counts = vec![0u64; redactor.names().count()];
            b.iter(|| {
                let mut batch = push::decode(Some("application/x-protobuf"), None, &body, 64 << 20).expect("decodes");
                if masking {
                    redactor.mask_batch(&mut batch, &mut counts);
                }
                for stream in &batch.streams {
                    for entry in &stream.entries {
                        black_box(lane.ingest(&entry.raw(&stream.labels)).is_ok());
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_masking);
criterion_main!(benches);
