//! Rate limits per key and route class: a `governor` token bucket (GCRA) for each
//! (key holder, class), sized by `[rate_limits]` or the key's own `limits`. A refused request
//! is 429 with `Retry-After` and `RateLimit-*` headers; a JSON body naming the limit, or for
//! pushes Loki's plain text, which Promtail backs off on and retries.
//!
//! Across API replicas: with Redis, each replica announces itself under
//! `{prefix}:api_replicas` every few seconds and takes `1/n` of every limit, n being the
//! replicas seen in the last 15 s, so a key gets its limit in total whichever replicas its
//! requests reach (exact when a load balancer spreads them evenly). With Redis down, replicas
//! keep the last n they saw; a replica that never saw Redis counts itself alone.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::api::auth::RouteClass;

mod http;
use crate::auth::Principal;
use crate::config::RateLimitConfig;
pub use http::{announce_replicas, enforce};

type Bucket<C> = RateLimiter<NotKeyed, InMemoryState, C, StateInformationMiddleware>;

/// A bucket and the per-minute limit it was sized for (a new limit makes a new bucket).
type SizedBucket<C> = (u32, Arc<Bucket<C>>);

/// A refused request: the limit and when to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub class: RouteClass,
    pub per_minute: u32,
    pub retry_after: Duration,
}

/// An allowed request: the limit and what is left of the burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Allowed {
    pub per_minute: u32,
    pub remaining: u32,
}

pub struct Limiters<C: Clock = DefaultClock> {
    config: RateLimitConfig,
    clock: C,
    buckets: DashMap<(Arc<str>, RouteClass), SizedBucket<C>>,
    /// API replicas sharing the limits (1 without Redis).
    replicas: AtomicU32,
}

impl Limiters<DefaultClock> {
    pub fn new(config: RateLimitConfig) -> Self {
        Limiters::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Limiters<C> {
    pub fn with_clock(config: RateLimitConfig, clock: C) -> Self {
        Limiters {
            config,
            clock,
            buckets: DashMap::new(),
            replicas: AtomicU32::new(1),
        }
    }

    /// The per-minute limit of `p` for `class` on this replica; 0 when unlimited.
    pub fn per_minute(&self, p: &Principal, class: RouteClass) -> u32 {
        let (own, default) = match class {
            RouteClass::Query | RouteClass::Admin => (p.limits.query, self.config.query_per_minute),
            RouteClass::Export => (p.limits.export, self.config.export_per_minute),
            RouteClass::Push => (p.limits.push, self.config.push_per_minute),
            RouteClass::Stream => (p.limits.stream, self.config.stream_per_minute),
            RouteClass::Open | RouteClass::Mcp => return 0,
        };
        let total = own.unwrap_or(default);
        if total == 0 {
            return 0;
        }
        (total / self.replicas.load(Ordering::Relaxed).max(1)).max(1)
    }

    /// Takes one request from `p`'s bucket for `class`.
    pub fn check(&self, p: &Principal, class: RouteClass) -> Result<Option<Allowed>, Refused> {
        let per_minute = self.per_minute(p, class);
        let Some(n) = NonZeroU32::new(per_minute) else {
            return Ok(None);
        };
        let key = (Arc::clone(&p.name), class);
        let bucket = match self.buckets.get(&key) {
            Some(entry) if entry.0 == per_minute => Arc::clone(&entry.1),
            _ => {
                let burst = (u64::from(per_minute) * u64::from(self.config.burst_s) / 60).clamp(1, u64::from(u32::MAX));
                let quota = Quota::per_minute(n).allow_burst(NonZeroU32::new(burst as u32).unwrap_or(NonZeroU32::MIN));
                let bucket = Arc::new(RateLimiter::direct_with_clock(quota, self.clock.clone()).with_middleware());
                self.buckets.insert(key, (per_minute, Arc::clone(&bucket)));
                bucket
            }
        };
        match bucket.check() {
            Ok(snapshot) => Ok(Some(Allowed {
                per_minute,
                remaining: snapshot.remaining_burst_capacity(),
            })),
            Err(not_until) => Err(Refused {
                class,
                per_minute,
                retry_after: not_until.wait_time_from(self.clock.now()),
            }),
        }
    }

    /// How many replicas share the limits; buckets resize on their next request.
    pub fn set_replicas(&self, n: u32) {
        self.replicas.store(n.max(1), Ordering::Relaxed);
    }

    pub fn replicas(&self) -> u32 {
        self.replicas.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
