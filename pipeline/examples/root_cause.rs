//! Root-cause accuracy on generated error cascades with a known origin, as real incidents
//! look: requests along a call chain (browser -> api -> gateway -> model service -> vector
//! store ...), one service fails and its callers fail after it; lines arrive shuffled per
//! service stream (per-stream pushes), host clocks are skewed, callers' timeouts sometimes
//! fire before the callee logs, and the failing service is sometimes silent while its callers
//! name it. Scored for the request analysis (`/correlate`) and the cascade alert's origin.
//!
//! cargo run --release -p ailogs-pipeline --features synth --example root_cause -- [REQUESTS] [SEED]

use std::collections::HashMap;

use ailogs_pipeline::anomaly::{AlertBook, AlertKind, Detector, DetectorConfig};
use ailogs_pipeline::correlate::analyze;
use ailogs_pipeline::correlate::tracker::{Tracker, TrackerConfig};
use ailogs_pipeline::enrich::Enriched;
use ailogs_pipeline::record::{Level, LogRecord};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const MS: i64 = 1_000_000;
const CHAIN: [&str; 6] = ["browser", "api", "gateway", "anythingllm", "vector-db", "openai-proxy"];

/// What kind of incident a request shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    /// The origin logs its error first, each caller after its callee.
    Plain,
    /// Each caller's timeout fires before the callee logs its error.
    TimeoutFirst,
    /// The origin logs nothing; its direct caller names it ("upstream X request failed").
    SilentOrigin,
    /// As `Plain`, but no error names a service: only timing tells.
    Unnamed,
}

struct Generated {
    lines: Vec<(usize, Enriched)>,
    truth: HashMap<String, &'static str>,
    kinds: HashMap<String, (Kind, i64)>,
}

/// `requests` requests, each a chain of 3–6 services; skew up to `skew_ms` per service.
fn generate(requests: usize, skew_ms: i64, rng: &mut SmallRng) -> Generated {
    let skew: Vec<i64> = (0..CHAIN.len()).map(|_| rng.random_range(-skew_ms..=skew_ms)).collect();
    let mut streams: Vec<Vec<Enriched>> = vec![Vec::new(); CHAIN.len()];
    let (mut truth, mut kinds) = (HashMap::new(), HashMap::new());
    let mut line = |svc: usize, at_ns: i64, level: Level, msg: String, cid: &str| {
        let mut r = LogRecord::new(at_ns + skew[svc] * MS, CHAIN[svc], level, msg);
        r.correlation_id = Some(cid.into());
        streams[svc].push(Enriched::new(r));
    };
    for q in 0..requests {
        let cid = format!("req-{q}");
        let t0 = 1_800_000_000_000 * MS + q as i64 * 2_000 * MS;
        let depth = rng.random_range(3..=CHAIN.len());
        let origin = rng.random_range(1..depth);
        let kind = match rng.random_range(0..4) {
            0 => Kind::Plain,
            1 => Kind::TimeoutFirst,
            2 => Kind::SilentOrigin,
            _ => Kind::Unnamed,
        };
        // The request goes down the chain: each service logs that it received it.
        for (s, name) in CHAIN.iter().enumerate().take(depth) {
            if kind == Kind::SilentOrigin && s == origin {
                continue;
            }
            line(
                s,
                t0 + s as i64 * 5 * MS,
                Level::Info,
                format!("{name} received request"),
                &cid,
            );
        }
        // The origin fails; its callers fail after it (or before it logs, on a timeout).
        let fail_at = t0 + 200 * MS;
        if kind != Kind::SilentOrigin {
            let at = if kind == Kind::TimeoutFirst {
                fail_at + 400 * MS
            } else {
                fail_at
            };
            line(
                origin,
                at,
                Level::Error,
                format!("{} failed: internal error", CHAIN[origin]),
                &cid,
            );
        }
        for (k, caller) in (0..origin).rev().enumerate() {
            let at = fail_at + (k as i64 + 1) * 20 * MS;
            let message = if kind == Kind::Unnamed {
                "request failed: 502 from upstream".to_owned()
            } else {
                format!("upstream {} request failed", CHAIN[caller + 1])
            };
            line(caller, at, Level::Error, message, &cid);
        }
        truth.insert(cid.clone(), CHAIN[origin]);
        kinds.insert(cid, (kind, skew_ms));
    }
    // Arrival: each service's stream in its own order, the streams interleaved at random in
    // chunks (a shipper pushing per stream).
    let mut lines = Vec::new();
    let mut cursors = vec![0usize; CHAIN.len()];
    let mut order = 0;
    while cursors.iter().zip(&streams).any(|(c, s)| *c < s.len()) {
        let svc = rng.random_range(0..CHAIN.len());
        let n = rng.random_range(1..50);
        for _ in 0..n {
            if let Some(e) = streams[svc].get(cursors[svc]) {
                lines.push((order, e.clone()));
                order += 1;
                cursors[svc] += 1;
            }
        }
    }
    Generated { lines, truth, kinds }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let requests: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3_000);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(7);
    println!("| incident | clock skew | requests | /correlate root cause right | cascade alert origin right |");
    println!("|---|---|---|---|---|");
    for skew_ms in [0, 50, 150] {
        let mut rng = SmallRng::seed_from_u64(seed + skew_ms as u64);
        let g = generate(requests, skew_ms, &mut rng);
        let mut tracker = Tracker::new(TrackerConfig::default());
        let mut detector = Detector::new(DetectorConfig::default());
        let mut book = AlertBook::new(1_000_000, 60_000 * MS);
        let mut analyses = Vec::new();
        let mut origins: HashMap<String, String> = HashMap::new();
        for (_, e) in &g.lines {
            for done in tracker.observe(e) {
                analyses.push(analyze(&done.request, &tracker.services));
            }
            for a in detector.observe(e) {
                if a.kind == AlertKind::Cascade
                    && let Some(a) = book.add(a)
                    && let Some(cid) = a.key.strip_prefix("cascade:")
                {
                    origins.insert(cid.to_owned(), a.services.first().cloned().unwrap_or_default());
                }
            }
        }
        for done in tracker.expire(i64::MAX) {
            analyses.push(analyze(&done.request, &tracker.services));
        }
        let mut score: HashMap<Kind, (usize, usize, usize)> = HashMap::new();
        for a in &analyses {
            let Some(&(kind, _)) = g.kinds.get(&a.correlation_id) else {
                continue;
            };
            let truth = g.truth[&a.correlation_id];
            let s = score.entry(kind).or_default();
            s.0 += 1;
            let right = a.root_cause.as_ref().is_some_and(|r| r.service == truth);
            s.1 += usize::from(right);
            s.2 += usize::from(origins.get(&a.correlation_id).is_some_and(|o| o == truth));
        }
        let mut kinds: Vec<_> = score.into_iter().collect();
        kinds.sort();
        for (kind, (n, rc, casc)) in kinds {
            println!(
                "| {kind:?} | ±{skew_ms} ms | {n} | {:.3} | {:.3} |",
                rc as f64 / n as f64,
                casc as f64 / n as f64
            );
        }
    }
}
