//! Templates per service: one miner for each service, so services never share templates,
//! with bounded memory (services and clusters capped, evictions counted).

use rustc_hash::FxHashMap as HashMap;
use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;
use serde::Serialize;

use super::drain::{ClusterId, DrainConfig, Miner};

/// The template a record belongs to, as tagged on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TemplateTag {
    /// Stable for the template's life: a hash of the service and the first line's tokens,
    /// so the same first line gives the same id in every process and after a restart.
    pub id: u64,
    /// This line started the template (never seen before).
    pub new: bool,
}

/// A template id as the API shows it and Postgres stores it: 16 hex digits.
pub fn template_key(id: u64) -> String {
    format!("{id:016x}")
}

pub struct TemplateIndex {
    config: DrainConfig,
    max_services: usize,
    services: HashMap<String, ServiceMiner>,
    pub evicted_services: u64,
}

struct ServiceMiner {
    miner: Miner,
    /// Cluster id -> stable id, fixed when the cluster starts.
    stable: HashMap<ClusterId, u64>,
    /// Stable id -> cluster id.
    clusters: HashMap<u64, ClusterId>,
    /// `miner.evicted` when `stable` was last pruned.
    pruned_at: u64,
}

impl TemplateIndex {
    pub fn new(config: DrainConfig, max_services: usize) -> Self {
        TemplateIndex {
            config,
            max_services,
            services: HashMap::default(),
            evicted_services: 0,
        }
    }

    pub fn tag(&mut self, service: &str, message: &str) -> TemplateTag {
        if !self.services.contains_key(service) && self.services.len() >= self.max_services {
            // Services beyond the cap share one miner rather than growing without bound.
            return self.tag_in("*", message);
        }
        self.tag_in(service, message)
    }

    fn tag_in(&mut self, service: &str, message: &str) -> TemplateTag {
        if !self.services.contains_key(service) {
            let s = ServiceMiner {
                miner: Miner::new(self.config.clone()),
                stable: HashMap::default(),
                clusters: HashMap::default(),
                pruned_at: 0,
            };
            self.services.insert(service.to_owned(), s);
        }
        let Some(s) = self.services.get_mut(service) else {
            unreachable!("inserted above")
        };
        let masked = s.miner.mask(message);
        let tokens = s.miner.split(&masked);
        let mut h = FxHasher::default();
        service.hash(&mut h);
        for t in &tokens {
            t.hash(&mut h);
        }
        let first = h.finish();
        let placed = s.miner.add_tokens(&tokens);
        if placed.new {
            s.stable.insert(placed.cluster, first);
            s.clusters.insert(first, placed.cluster);
            if s.miner.evicted != s.pruned_at {
                s.pruned_at = s.miner.evicted;
                s.stable.retain(|id, _| s.miner.cluster(*id).is_some());
                s.clusters.retain(|_, id| s.miner.cluster(*id).is_some());
            }
        }
        TemplateTag {
            id: s.stable.get(&placed.cluster).copied().unwrap_or(first),
            new: placed.new,
        }
    }

    /// The template a message fits today, without mining it (not `new`).
    pub fn lookup(&self, service: &str, message: &str) -> Option<TemplateTag> {
        let s = self.services.get(service).or_else(|| self.services.get("*"))?;
        let cluster = s.miner.find(message)?;
        s.stable.get(&cluster).map(|&id| TemplateTag { id, new: false })
    }

    /// Templates held, over every service.
    pub fn len(&self) -> usize {
        self.services.values().map(|s| s.clusters.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a stable id is still held by some service's miner.
    pub fn contains(&self, id: u64) -> bool {
        self.services.values().any(|s| s.clusters.contains_key(&id))
    }

    /// The current template text of a stable id in a service.
    pub fn template(&self, service: &str, id: u64) -> Option<String> {
        let s = self.services.get(service).or_else(|| self.services.get("*"))?;
        s.miner.cluster(*s.clusters.get(&id)?).map(|c| c.template())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_one_event_share_a_stable_id_per_service() {
        let mut idx = TemplateIndex::new(DrainConfig::default(), 10);
        let a = idx.tag("api", "user 42 logged in from 10.0.0.1");
        let b = idx.tag("api", "user 7 logged in from 10.0.0.9");
        let c = idx.tag("worker", "user 42 logged in from 10.0.0.1");
        let d = idx.tag("api", "cache flushed");
        assert!(a.new && !b.new && c.new && d.new);
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id, "services do not share templates");
        assert_ne!(a.id, d.id);
        assert_eq!(
            idx.template("api", a.id).as_deref(),
            Some("user <*> logged in from <*>")
        );
        // The same first line gives the same id in another process.
        let mut other = TemplateIndex::new(DrainConfig::default(), 10);
        assert_eq!(other.tag("api", "user 42 logged in from 10.0.0.1").id, a.id);
    }
}
