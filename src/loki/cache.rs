//! Loki answers cached by the normalized query (LogQL, tenant, window aligned to minutes):
//! in Redis when configured (every API replica shares them), else in this process's memory,
//! bounded by lines. Entries live for a TTL that grows with the window's age.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use ailogs_pipeline::loki::plan::Part;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::fetch::Fetched;
use crate::store::redis::RedisViews;

/// Larger answers are not written to Redis (one value stays small enough to move quickly).
const MAX_REDIS_LINES: usize = 20_000;

#[derive(Clone, Serialize, Deserialize)]
pub struct Cached {
    pub fetched: Fetched,
    /// Unix ms when Loki answered.
    pub fetched_at_ms: u64,
}

impl Cached {
    pub fn age_s(&self) -> f64 {
        (unix_ms().saturating_sub(self.fetched_at_ms)) as f64 / 1000.0
    }
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The cache key of a normalized query: SHA-256, so every replica (whatever its build)
/// computes the same key for the same query.
pub fn key(logql: &str, tenant: Option<&str>, part: Part) -> String {
    let mut h = Sha256::new();
    for field in [
        logql,
        tenant.unwrap_or(""),
        &part.start_ns.to_string(),
        &part.end_ns.to_string(),
    ] {
        // Length-prefixed: no two different queries share one byte string.
        h.update((field.len() as u64).to_le_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

pub enum Cache {
    Redis(RedisViews),
    Memory(Mutex<MemoryCache>),
}

pub struct MemoryCache {
    max_lines: usize,
    lines: usize,
    entries: HashMap<String, (Instant, Cached)>,
    order: VecDeque<String>,
}

impl Cache {
    pub fn memory(max_lines: usize) -> Self {
        Cache::Memory(Mutex::new(MemoryCache {
            max_lines,
            lines: 0,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }))
    }

    pub async fn get(&self, key: &str) -> Option<Cached> {
        match self {
            Cache::Redis(r) => {
                let bytes = r.cache_get(key).await.ok()??;
                serde_json::from_slice(&bytes).ok()
            }
            Cache::Memory(m) => {
                let m = m.lock();
                let (expires, cached) = m.entries.get(key)?;
                (Instant::now() < *expires).then(|| cached.clone())
            }
        }
    }

    pub async fn put(&self, key: String, cached: Cached, ttl_s: u64) {
        match self {
            Cache::Redis(r) => {
                if cached.fetched.entries.len() > MAX_REDIS_LINES {
                    return;
                }
                if let Ok(bytes) = serde_json::to_vec(&cached)
                    && let Err(e) = r.cache_put(&key, bytes, ttl_s).await
                {
                    tracing::debug!(error = %e, "caching a Loki answer in redis failed");
                }
            }
            Cache::Memory(m) => m.lock().put(key, cached, Duration::from_secs(ttl_s)),
        }
    }
}

impl MemoryCache {
    fn put(&mut self, key: String, cached: Cached, ttl: Duration) {
        let n = cached.fetched.entries.len();
        if n > self.max_lines {
            return;
        }
        if let Some((_, old)) = self.entries.remove(&key) {
            self.lines -= old.fetched.entries.len();
            self.order.retain(|k| k != &key);
        }
        // Oldest first out, until the new answer fits.
        while self.lines + n > self.max_lines {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some((_, old)) = self.entries.remove(&oldest) {
                self.lines -= old.fetched.entries.len();
            }
        }
        self.lines += n;
        self.order.push_back(key.clone());
        self.entries.insert(key, (Instant::now() + ttl, cached));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ailogs_pipeline::loki::query_range::LokiEntry;

    fn cached(n: usize) -> Cached {
        let e = LokiEntry {
            labels: Default::default(),
            ts_ns: 1,
            line: "x".into(),
            metadata: vec![],
        };
        Cached {
            fetched: Fetched {
                entries: vec![e; n],
                requests: 1,
                truncated: None,
            },
            fetched_at_ms: unix_ms(),
        }
    }

    #[tokio::test]
    async fn memory_cache_is_bounded_by_lines_and_expires() {
        let cache = Cache::memory(10);
        cache.put("a".into(), cached(6), 60).await;
        cache.put("b".into(), cached(6), 60).await;
        assert!(cache.get("a").await.is_none(), "evicted to make room");
        assert_eq!(cache.get("b").await.map(|c| c.fetched.entries.len()), Some(6));
        cache.put("c".into(), cached(11), 60).await;
        assert!(cache.get("c").await.is_none(), "larger than the whole cache");
        cache.put("d".into(), cached(1), 0).await;
        assert!(cache.get("d").await.is_none(), "expired");
    }
}
