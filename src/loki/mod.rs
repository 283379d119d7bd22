//! The Loki fallback: what the views do not hold is read from Loki (the archive every user
//! already runs), through the same core as ingested lines (decode, normalize, patterns,
//! the templates known today), and handed to the query paths without entering the views.
//!
//! LogQL is only a narrowing: it selects a superset of the lines a query wants (services,
//! ids and levels as line text); the query's own filters then decide exactly, as they do for
//! lines from the views.

pub mod breaker;
pub mod cache;
pub mod client;
pub mod fetch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ailogs_pipeline::loki::logql::{IdsIn, LogQuery, Selector};
use ailogs_pipeline::loki::plan::{Part, align_to_minutes, cache_ttl_s};
use ailogs_pipeline::loki::query_range::LokiEntry;
use ailogs_pipeline::loki::read_back::decode_entries;
use ailogs_pipeline::normalize::time::format_rfc3339;
use ailogs_pipeline::patterns::SharedMatcher;
use ailogs_pipeline::{Core, DecodeLimits, Enriched, Lane, Level};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde_json::{Value, json};

use crate::config::{LokiConfig, LokiIds};
use crate::store::redis::RedisViews;
pub use client::{LokiClient, LokiError};

/// Records tagged with templates per lock of the core, so workers are not held up.
const TAG_CHUNK: usize = 1_024;

pub struct LokiFallback {
    pub client: LokiClient,
    cache: cache::Cache,
    selector: Selector,
    enricher: Enricher,
    /// Loki holds lines as shippers sent them: they are masked as they are read.
    masking: Option<Arc<crate::masking::Masking>>,
}

/// What a query wants from Loki.
#[derive(Debug, Default)]
pub struct Wanted<'a> {
    pub services: &'a [String],
    /// (field, value): each must appear in the line (or its structured metadata).
    pub ids: Vec<(&'static str, String)>,
    /// Lines below this level are not needed (none: all, e.g. for context lines).
    pub min_level: Option<Level>,
    /// The caller's workspaces, when lines without one are not visible to it (none: all).
    pub workspaces: Option<&'a [String]>,
}

/// Lines Loki held for one part of a window, enriched, and how they were read.
pub struct LokiRead {
    pub records: Vec<Arc<Enriched>>,
    /// Lines read (kept when `records` is taken).
    pub lines: usize,
    /// The part asked (aligned to whole minutes).
    pub part: Part,
    pub logql: String,
    pub requests: u32,
    pub truncated: Option<String>,
    /// Set when the answer came from the cache: its age.
    pub cached_age_s: Option<f64>,
    /// Lines that could not be decoded (they would be dead letters if pushed).
    pub undecodable: usize,
    /// The text of templates the core does not know, mined among these lines.
    pub templates: FxHashMap<u64, String>,
}

impl LokiRead {
    /// The facts the answer's envelope carries.
    pub fn facts(&self, with_logql: bool) -> Value {
        let mut v = json!({
            "start": format_rfc3339(self.part.start_ns),
            "end": format_rfc3339(self.part.end_ns),
            "lines": self.lines,
            "requests": self.requests,
            "cached": self.cached_age_s.is_some(),
            "cache_age_s": self.cached_age_s.map(|a| (a * 10.0).round() / 10.0),
            "truncated": self.truncated.is_some(),
            "truncated_reason": self.truncated,
            "undecodable_lines": self.undecodable,
        });
        if with_logql {
            v["logql"] = json!(self.logql);
        }
        v
    }
}

impl LokiFallback {
    pub fn new(
        url: &str,
        config: &LokiConfig,
        redis: Option<RedisViews>,
        core: Arc<Mutex<Core>>,
        patterns: SharedMatcher,
        limits: DecodeLimits,
        masking: Option<Arc<crate::masking::Masking>>,
    ) -> anyhow::Result<Self> {
        Ok(LokiFallback {
            client: LokiClient::new(url, config)?,
            cache: match redis {
                Some(r) => cache::Cache::Redis(r),
                None => cache::Cache::memory(config.cache_lines),
            },
            selector: Selector {
                service_label: config.service_label.clone(),
            },
            enricher: Enricher { core, patterns, limits },
            masking,
        })
    }

    /// The LogQL for `wanted`: never user text outside a string literal.
    pub fn logql(&self, wanted: &Wanted<'_>) -> String {
        let ids_in = match self.client.config().ids_in {
            LokiIds::Text => IdsIn::Text,
            LokiIds::Metadata => IdsIn::Metadata,
        };
        LogQuery {
            selector: &self.selector,
            services: wanted.services,
            contains: &[],
            excludes: &[],
            exclude_regexes: &[],
            parser: None,
            ids: &wanted.ids,
            ids_in,
            min_level: wanted.min_level.filter(|l| *l >= Level::Warn),
            workspaces: wanted.workspaces,
        }
        .build()
    }

    /// Reads `part` (widened to whole minutes) for `wanted`, from the cache when allowed and
    /// present, and enriches the lines.
    pub async fn read(
        &self,
        wanted: &Wanted<'_>,
        part: Part,
        now_ns: i64,
        use_cache: bool,
    ) -> Result<LokiRead, LokiError> {
        let part = align_to_minutes(part);
        let logql = self.logql(wanted);
        let key = cache::key(&logql, self.client.config().tenant.as_deref(), part);
        let (fetched, cached_age_s) = match use_cache {
            true => match self.cache.get(&key).await {
                Some(hit) => {
                    let age = hit.age_s();
                    (hit.fetched, Some(age))
                }
                None => (self.fetch(&logql, part, now_ns, &key).await?, None),
            },
            false => (self.fetch(&logql, part, now_ns, &key).await?, None),
        };
        let enricher = self.enricher.clone();
        let requests = fetched.requests;
        let truncated = fetched.truncated.clone();
        let (records, undecodable, templates) = tokio::task::spawn_blocking(move || enricher.enrich(&fetched.entries))
            .await
            .map_err(|e| LokiError::Malformed(format!("enriching Loki's lines: {e}")))?;
        Ok(LokiRead {
            lines: records.len(),
            records,
            part,
            logql,
            requests,
            truncated,
            cached_age_s,
            undecodable,
            templates,
        })
    }

    async fn fetch(&self, logql: &str, part: Part, now_ns: i64, key: &str) -> Result<fetch::Fetched, LokiError> {
        let config = self.client.config();
        let deadline = Instant::now() + Duration::from_millis(config.max_query_ms);
        let mut fetched = fetch::fetch(&self.client, logql, part, config.max_lines, deadline).await?;
        if let Some(m) = self.masking.clone() {
            // Up to `max_lines` lines at about 0.7 µs each: CPU work, off the async workers.
            fetched = tokio::task::spawn_blocking(move || {
                for e in &mut fetched.entries {
                    m.text(&mut e.line);
                    for (_, v) in &mut e.metadata {
                        m.text(v);
                    }
                }
                fetched
            })
            .await
            .map_err(|e| LokiError::Malformed(format!("masking Loki's lines: {e}")))?;
        }
        // A truncated answer is cached too: asking again would read the same newest lines.
        let cached = cache::Cached {
            fetched: fetched.clone(),
            fetched_at_ms: cache::unix_ms(),
        };
        self.cache
            .put(key.to_owned(), cached, cache_ttl_s(now_ns, part.end_ns))
            .await;
        Ok(fetched)
    }

    /// What /health shows, with a probe of the label endpoint.
    pub async fn health(&self) -> Value {
        let probe = self.client.labels(Instant::now() + Duration::from_secs(2)).await;
        let mut v = self.client.status();
        v["status"] = json!(if probe.is_ok() { "ok" } else { "unreachable" });
        v["reachable"] = json!(probe.is_ok());
        if let Err(e) = probe {
            v["message"] = json!(format!(
                "{e}; queries needing Loki answer from the views and say missing: [\"loki\"]"
            ));
        }
        v
    }
}

/// Loki's lines through the core's read-only path: decoded and matched on this thread, the
/// core's lock taken only to look templates up, a chunk at a time.
#[derive(Clone)]
struct Enricher {
    core: Arc<Mutex<Core>>,
    patterns: SharedMatcher,
    limits: DecodeLimits,
}

impl Enricher {
    fn enrich(&self, entries: &[LokiEntry]) -> (Vec<Arc<Enriched>>, usize, FxHashMap<u64, String>) {
        let mut lane = Lane::new(self.limits, &self.patterns);
        lane.set_now(crate::clock::now_ns());
        let (mut records, undecodable) = decode_entries(&mut lane, entries);
        for chunk in records.chunks_mut(TAG_CHUNK) {
            self.core.lock().tag_known(chunk);
        }
        let templates = Core::tag_among_themselves(&mut records);
        (records.into_iter().map(Arc::new).collect(), undecodable, templates)
    }
}
