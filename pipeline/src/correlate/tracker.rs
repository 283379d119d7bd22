//! Live requests keyed by correlation id, updated per line; a request completes after an
//! idle timeout (in event time) or is evicted when too many are live.

use crate::callee_name;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use super::request::{Request, ServiceId};
use crate::enrich::Enriched;

/// Distinct services remembered; further ones share the name `other`.
pub const MAX_SERVICES: usize = 10_000;

/// Service names to small ids, so a request stores 4 bytes per service.
#[derive(Debug, Default)]
pub struct Interner {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, ServiceId, FxBuildHasher>,
}

impl Interner {
    pub fn id(&mut self, name: &str) -> ServiceId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let name = if self.names.len() >= MAX_SERVICES {
            "other"
        } else {
            name
        };
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as ServiceId;
        let name: Arc<str> = Arc::from(name);
        self.names.push(Arc::clone(&name));
        self.ids.insert(name, id);
        id
    }

    /// The id of a service seen before, without adding one.
    pub fn get(&self, name: &str) -> Option<ServiceId> {
        self.ids.get(name).copied()
    }

    pub fn name(&self, id: ServiceId) -> &str {
        self.names.get(id as usize).map_or("unknown", |n| n)
    }
}

#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// A request with no line for this long (event time) is complete.
    pub idle_ns: i64,
    /// Live requests kept; beyond it the least recently touched eighth is completed early.
    pub max_live: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            // Longer than the slowest model calls (60 s timeouts are common): a request that
            // waits on one must not complete in the middle.
            idle_ns: 300 * 1_000_000_000,
            max_live: 1_000_000,
        }
    }
}

/// A request that left the live set.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub request: Request,
    /// Completed early because the live set was full, not because it went idle.
    pub evicted: bool,
}

/// Live requests: a slab of requests and a hash table of slab indices keyed by the
/// request's id (4 bytes a slot, so the table's spare capacity costs little).
#[derive(Default)]
pub struct Tracker {
    config: TrackerConfig,
    pub services: Interner,
    slab: Vec<Request>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: FxBuildHasher,
    clock: u64,
    /// The newest event time seen.
    pub watermark_ns: i64,
    pub evicted: u64,
    pub lines_without_id: u64,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            ..Tracker::default()
        }
    }

    fn find(&self, correlation_id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(correlation_id);
        self.index
            .find(hash, |&i| self.slab[i as usize].id() == correlation_id)
            .copied()
    }

    pub fn live(&self, correlation_id: &str) -> Option<&Request> {
        self.find(correlation_id).map(|i| &self.slab[i as usize])
    }

    pub fn live_count(&self) -> usize {
        self.index.len()
    }

    /// Adds a line to its request. Returns the requests completed early to make room.
    pub fn observe(&mut self, e: &Enriched) -> Vec<Completed> {
        let rec = &e.record;
        let Some(cid) = rec.correlation_id.as_deref().filter(|c| !c.is_empty()) else {
            self.lines_without_id += 1;
            return Vec::new();
        };
        self.clock += 1;
        self.watermark_ns = self.watermark_ns.max(rec.ts_ns);
        let service = self.services.id(&rec.service);
        let target = match callee(e) {
            Some(t) => Some(self.services.id(&t)),
            None if rec.is_failure() => named_callee(&mut self.services, e, service),
            None => None,
        };
        let caller = rec
            .extra
            .get("caller")
            .and_then(|v| v.as_str())
            .filter(|c| !c.is_empty())
            .map(|c| self.services.id(c));
        let spans = (
            span_hash(e, &["span_id", "spanId", "span.id"], &self.hasher),
            span_hash(
                e,
                &[
                    "parent_span_id",
                    "parentSpanId",
                    "parent_id",
                    "parent.id",
                    "span.parent_id",
                ],
                &self.hasher,
            ),
        );
        let mut evicted = Vec::new();
        let slot = match self.find(cid) {
            Some(i) => i,
            None => {
                if self.index.len() >= self.config.max_live {
                    evicted = self.evict_oldest();
                }
                self.insert(Request::new(cid))
            }
        };
        self.slab[slot as usize].observe(e, service, target, caller, spans, self.clock);
        evicted
    }

    fn insert(&mut self, request: Request) -> u32 {
        let hash = self.hasher.hash_one(request.id());
        let slot = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = request;
                i
            }
            None => {
                self.slab.push(request);
                (self.slab.len() - 1) as u32
            }
        };
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.index
            .insert_unique(hash, slot, |&i| hasher.hash_one(slab[i as usize].id()));
        slot
    }

    fn remove(&mut self, slot: u32) -> Request {
        let hash = self.hasher.hash_one(self.slab[slot as usize].id());
        if let Ok(entry) = self.index.find_entry(hash, |&i| i == slot) {
            entry.remove();
        }
        self.free.push(slot);
        std::mem::take(&mut self.slab[slot as usize])
    }

    /// Live slots (a vacated slot has no services).
    fn slots(&self) -> impl Iterator<Item = (u32, &Request)> {
        self.slab
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.nodes.is_empty())
            .map(|(i, r)| (i as u32, r))
    }

    /// Completes the requests idle for `idle_ns` before `now_ns` (event time; pass the
    /// watermark, or the wall clock when lines may stop arriving).
    pub fn expire(&mut self, now_ns: i64) -> Vec<Completed> {
        let horizon = now_ns.saturating_sub(self.config.idle_ns);
        let done: Vec<u32> = self
            .slots()
            .filter(|(_, r)| r.last_ns() < horizon)
            .map(|(i, _)| i)
            .collect();
        self.take(done, false)
    }

    /// Completes every live request (shutdown).
    pub fn drain(&mut self) -> Vec<Completed> {
        let all: Vec<u32> = self.slots().map(|(i, _)| i).collect();
        self.take(all, false)
    }

    fn evict_oldest(&mut self) -> Vec<Completed> {
        let mut touched: Vec<u64> = self.slots().map(|(_, r)| r.touched).collect();
        if touched.len() < 2 {
            let all: Vec<u32> = self.slots().map(|(i, _)| i).collect();
            self.evicted += all.len() as u64;
            return self.take(all, true);
        }
        let k = (touched.len() / 8).max(1);
        let (_, cut, _) = touched.select_nth_unstable(k);
        let cut = *cut;
        let old: Vec<u32> = self.slots().filter(|(_, r)| r.touched < cut).map(|(i, _)| i).collect();
        self.evicted += old.len() as u64;
        self.take(old, true)
    }

    fn take(&mut self, slots: Vec<u32>, evicted: bool) -> Vec<Completed> {
        let mut out: Vec<Completed> = slots
            .into_iter()
            .map(|slot| Completed {
                request: self.remove(slot),
                evicted,
            })
            .collect();
        out.sort_by_key(|c| c.request.first_ns());
        out
    }
}

/// A hash of the first of `keys` the line carries (a string or a number), for span ids.
fn span_hash(e: &Enriched, keys: &[&str], hasher: &FxBuildHasher) -> Option<u64> {
    keys.iter().find_map(|k| match e.record.extra.get(k)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(hasher.hash_one(s.as_str())),
        serde_json::Value::Number(n) => Some(hasher.hash_one(n.to_string())),
        _ => None,
    })
}

/// The service a failing line's text names as the one that failed it: the word after
/// "upstream" ("upstream anythingllm request failed"; a service name's shape, not one of the
/// words proxies put there), else a service seen before named in it ("call to billing-svc
/// failed"). Evidence before time: such a callee is a node of the request even if it logged
/// nothing, or nothing yet.
fn named_callee(services: &mut Interner, e: &Enriched, own: ServiceId) -> Option<ServiceId> {
    let rec = &e.record;
    let texts = [Some(&*rec.message), rec.error.as_deref()];
    if let Some(name) = texts.into_iter().flatten().find_map(callee_name::upstream) {
        let id = services.id(name);
        return (id != own).then_some(id);
    }
    texts
        .into_iter()
        .flatten()
        .flat_map(callee_name::words)
        .find_map(|w| services.get(w).filter(|id| *id != own))
}

/// The service a line says it calls: `target_service`, `peer.service`, `upstream`, or the
/// host of `http.url`.
fn callee(e: &Enriched) -> Option<String> {
    let extra = &e.record.extra;
    for key in ["target_service", "peer.service", "upstream"] {
        if let Some(s) = extra.get(key).and_then(|v| v.as_str()).filter(|s| !s.is_empty()) {
            return Some(s.to_owned());
        }
    }
    let url = extra.get("http.url").and_then(|v| v.as_str())?;
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    (!host.is_empty()).then(|| host.to_owned())
}
