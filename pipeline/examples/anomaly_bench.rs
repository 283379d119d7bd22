//! Anomaly detection with ground truth: the demo's synthetic AI traffic through the whole core
//! (decode, patterns, templates, detector, alert book), once for an hour with no incident
//! (every alert is a false alarm) and once with incidents injected at known times (model
//! timeouts, provider 429s, context overflows, DB pool exhaustion, login bursts).
//! Anomaly alerts (rate spikes of patterns, templates and cascade paths; new templates) are
//! scored; pattern notifications (a known pattern matched, folded and republished at most
//! every 10 s) are counted apart. An incident counts as detected when an anomaly alert is
//! published during it; the delay is event time from the incident's first request (its
//! failing lines may come later: a model timeout logs when the timeout fires) to the batch
//! that published the alert.
//!
//! cargo run --release -p ailogs-pipeline --features synth --example anomaly_bench -- [SEED]

use ailogs_pipeline::anomaly::{Alert, AlertKind};
use ailogs_pipeline::core::{Core, CoreConfig, Lane};
use ailogs_pipeline::patterns::{Catalog, Matcher, SharedMatcher};
use ailogs_pipeline::synth::{Incident, Traffic};
use ailogs_pipeline::usage::PriceBook;
use ailogs_pipeline::{DecodeLimits, RawEntry, labels_from};

const MS: i64 = 1_000_000;
const MIN: i64 = 60_000 * MS;
/// One request every 50 ms: about 100 lines a second.
const REQUEST_EVERY: i64 = 50 * MS;
/// Lines per core batch: about 100 ms of traffic, as the embedded pipeline batches.
const BATCH: usize = 10;

struct Run {
    alerts: Vec<(usize, i64, Alert)>,
    lines: usize,
}

/// Mines `minutes` of traffic; `incident_at(request)` may start one. Returns every alert with
/// the index and event time of the line batch that raised it.
fn run(seed: u64, minutes: i64, mut incident_at: impl FnMut(i64) -> Option<(Incident, u32)>) -> Run {
    let labels = labels_from([("app", "ai")]);
    let shared = SharedMatcher::new(Matcher::compile(Catalog::shipped().expect("catalog").patterns).expect("compiles"));
    let mut lane = Lane::new(DecodeLimits::default(), &shared);
    let mut core = Core::new(CoreConfig::default(), PriceBook::shipped());
    let mut traffic = Traffic::new(seed).without_spontaneous_incidents();
    let t0 = 1_800_000_000_000 * MS;
    let (mut alerts, mut batch, mut lines) = (Vec::new(), Vec::new(), 0usize);
    let requests = minutes * MIN / REQUEST_EVERY;
    for q in 0..requests {
        if let Some((incident, n)) = incident_at(q) {
            traffic.start_incident(incident, n);
        }
        let now = t0 + q * REQUEST_EVERY;
        for l in traffic.request(now) {
            let raw = RawEntry {
                ts_ns: l.ts_ns,
                line: &l.line,
                labels: &labels,
                metadata: &[],
            };
            if let Ok(e) = lane.ingest(&raw) {
                batch.push(e);
                lines += 1;
            }
        }
        if batch.len() >= BATCH {
            let out = core.process(std::mem::take(&mut batch), now);
            alerts.extend(out.alerts.into_iter().map(|a| (lines, now, a)));
            if q % 1200 == 0 {
                core.tick(now);
            }
        }
    }
    Run { alerts, lines }
}

fn main() {
    let seed: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3);

    // An hour of quiet traffic: any alert is a false alarm.
    let quiet = run(seed, 60, |_| None);
    let mut by_kind: std::collections::BTreeMap<String, usize> = Default::default();
    for (_, _, a) in &quiet.alerts {
        *by_kind.entry(format!("{:?}", a.kind)).or_default() += 1;
    }
    println!(
        "Quiet hour (no incident injected): {} lines; published: {by_kind:?}",
        quiet.lines
    );
    for (_, _, a) in quiet.alerts.iter().filter(|(_, _, a)| anomaly(a)).take(12) {
        println!("  false alarm: {:?} {}: {}", a.kind, a.key, a.summary);
    }

    // Two hours: 30 quiet minutes of history, then an incident every 10 minutes, each lasting
    // 300 requests (15 s), cycling through the kinds.
    let per_request_ns = REQUEST_EVERY;
    let start_minute = 30;
    let mut injected: Vec<(Incident, i64, i64)> = Vec::new();
    let incident_run = run(seed + 1, 120, |q| {
        let t = q * per_request_ns;
        let minute = t / MIN;
        if minute >= start_minute && (minute - start_minute) % 10 == 0 && t % MIN == 0 {
            let kind = Incident::ALL[((minute - start_minute) / 10) as usize % Incident::ALL.len()];
            injected.push((kind, t, t + 300 * per_request_ns));
            return Some((kind, 300));
        }
        None
    });
    let t0 = 1_800_000_000_000 * MS;
    println!("\n| incident | injected | detected | median delay (event time) | worst delay |");
    println!("|---|---|---|---|---|");
    let mut false_alarms = 0;
    for (_, at, _) in incident_run.alerts.iter().filter(|(_, _, a)| anomaly(a)) {
        let t = at - t0;
        if !injected.iter().any(|(_, s, e)| t >= *s && t <= *e + MIN) {
            false_alarms += 1;
        }
    }
    for kind in Incident::ALL {
        let mut delays: Vec<i64> = Vec::new();
        let mut n = 0;
        for (_, start, end) in injected.iter().filter(|(k, _, _)| *k == kind) {
            n += 1;
            let first = incident_run
                .alerts
                .iter()
                .filter(|(_, _, a)| anomaly(a))
                .map(|(_, at, _)| at - t0)
                .filter(|t| t >= start && t <= end)
                .min();
            if let Some(t) = first {
                delays.push(t - start);
            }
        }
        delays.sort_unstable();
        let median = delays
            .get(delays.len() / 2)
            .map_or("-".into(), |d| format!("{} ms", d / MS));
        let worst = delays.last().map_or("-".into(), |d| format!("{} ms", d / MS));
        println!("| {kind:?} | {n} | {} | {median} | {worst} |", delays.len());
    }
    println!(
        "\nAnomaly alerts outside an incident (and the minute after it) during the incident run: {false_alarms} of {}",
        incident_run.alerts.iter().filter(|(_, _, a)| anomaly(a)).count()
    );
}

/// An anomaly alert, as opposed to a known pattern's match notification.
fn anomaly(a: &Alert) -> bool {
    a.kind != AlertKind::Pattern
}
