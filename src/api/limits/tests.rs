//! The buckets on governor's fake clock: time moves only when the test moves it.

use std::time::Duration;

use governor::clock::FakeRelativeClock;

use super::*;
use crate::config::{KeyLimits, Role};

fn key(name: &str, query: Option<u32>) -> Principal {
    Principal {
        name: Arc::from(name),
        key_id: None,
        role: Role::Reader,
        scope: ailogs_pipeline::scope::Scope::All,
        limits: KeyLimits {
            query,
            ..KeyLimits::default()
        },
    }
}

fn config() -> RateLimitConfig {
    RateLimitConfig {
        query_per_minute: 60,
        export_per_minute: 6,
        push_per_minute: 600,
        stream_per_minute: 60,
        burst_s: 10,
    }
}

#[test]
fn a_flood_is_refused_with_a_retry_time_and_the_bucket_refills() {
    let clock = FakeRelativeClock::default();
    let limits = Limiters::with_clock(config(), clock.clone());
    let a = key("a", None);
    // 60 a minute with a 10 s burst: 10 at once, then one a second.
    for i in 0..10 {
        let ok = limits
            .check(&a, RouteClass::Query)
            .expect("within the burst")
            .expect("limited class");
        assert_eq!(ok.remaining, 9 - i);
    }
    let refused = limits.check(&a, RouteClass::Query).expect_err("over the burst");
    assert_eq!(refused.per_minute, 60);
    assert_eq!(refused.retry_after, Duration::from_secs(1));
    clock.advance(Duration::from_millis(999));
    assert!(limits.check(&a, RouteClass::Query).is_err(), "not yet");
    clock.advance(Duration::from_millis(1));
    assert!(limits.check(&a, RouteClass::Query).is_ok(), "one token a second");
}

#[test]
fn keys_and_classes_have_their_own_buckets_and_own_limits() {
    let clock = FakeRelativeClock::default();
    let limits = Limiters::with_clock(config(), clock.clone());
    let (a, b) = (key("a", None), key("b", Some(600)));
    while limits.check(&a, RouteClass::Query).is_ok() {}
    // Another key, and another class of the same key, are untouched.
    assert!(limits.check(&b, RouteClass::Query).is_ok());
    assert!(limits.check(&a, RouteClass::Export).is_ok());
    assert_eq!(limits.per_minute(&b, RouteClass::Query), 600, "the key's own limit");
    assert_eq!(
        limits.per_minute(&a, RouteClass::Mcp),
        0,
        "MCP's tool calls are limited as queries"
    );
    let exports = (0..100)
        .take_while(|_| limits.check(&a, RouteClass::Export).is_ok())
        .count();
    assert_eq!(exports, 0, "the one export token was taken above");
    clock.advance(Duration::from_secs(10));
    assert!(
        limits.check(&a, RouteClass::Export).is_ok(),
        "6 a minute: one every 10 s"
    );
}

#[test]
fn replicas_share_a_limit() {
    let limits = Limiters::with_clock(config(), FakeRelativeClock::default());
    let a = key("a", None);
    limits.set_replicas(3);
    assert_eq!(limits.per_minute(&a, RouteClass::Query), 20);
    let burst = (0..100)
        .take_while(|_| limits.check(&a, RouteClass::Query).is_ok())
        .count();
    assert_eq!(burst, 3, "a third of the 10 s burst (20 a minute: 3.3 s)");
    limits.set_replicas(0);
    assert_eq!(limits.replicas(), 1, "never fewer than this replica");
}
