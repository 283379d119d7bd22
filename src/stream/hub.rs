//! One hub per process: every event (a processed line, an alert) is numbered once,
//! retained for resuming clients (alerts and lines apart, each bounded by count and age),
//! and offered to every subscriber, whose inbox keeps it only if its filter wants it (see
//! `subscriber`): a subscriber is woken only for events it wants, and one that reads too
//! slowly loses its own oldest events, is told how many, and never holds back the others.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ailogs_pipeline::stream::Filter;

pub use super::event::{Event, Payload};
use parking_lot::Mutex;

use super::subscriber::Subscriber;

use crate::config::StreamConfig;

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Events a subscriber's inbox holds before it loses the oldest.
    pub queue: usize,
    /// Alerts kept for resuming clients.
    pub retain_alerts: usize,
    /// Lines kept for resuming clients.
    pub retain_lines: usize,
    pub retain_age: Duration,
}

impl From<&StreamConfig> for HubConfig {
    fn from(c: &StreamConfig) -> Self {
        HubConfig {
            queue: c.queue,
            retain_alerts: c.retain_alerts,
            retain_lines: c.retain_lines,
            retain_age: Duration::from_secs(c.retain_age_s),
        }
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig::from(&StreamConfig::default())
    }
}

/// Retained events of one kind, oldest first.
#[derive(Default)]
struct Kept {
    events: VecDeque<Arc<Event>>,
    /// The newest id of this kind no longer retained (0: none lost yet).
    lost_upto: u64,
}

impl Kept {
    fn trim(&mut self, max: usize, max_age: Duration, now: Instant) {
        while self.events.len() > max || self.events.front().is_some_and(|e| now.duration_since(e.at) > max_age) {
            if let Some(e) = self.events.pop_front() {
                self.lost_upto = e.id;
            }
        }
    }
}

#[derive(Default)]
struct Retained {
    alerts: Kept,
    lines: Kept,
    next: u64,
    /// The newest `ai-logs.alerts` offset published.
    newest_offset: Option<i64>,
    /// Everyone subscribed: offered each event under this lock, so ids reach every inbox
    /// in order and a new subscriber starts exactly at `next`.
    subscribers: Vec<Arc<Subscriber>>,
}

pub struct Hub {
    config: HubConfig,
    /// The retained events, the next id and the subscribers, under one lock.
    retained: Mutex<Retained>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HubStats {
    pub subscribers: usize,
    pub next_id: u64,
    pub retained_alerts: usize,
    pub retained_lines: usize,
    /// The newest `ai-logs.alerts` offset received (Kafka only).
    pub newest_offset: Option<i64>,
    /// Events subscribers lost that they have not been told of yet: a subscriber stuck on
    /// a send is told (and counted in `ailogs_stream_dropped_total`) when it reads again.
    pub lost_untold: u64,
}

/// A subscriber registered with the hub; unregistered when dropped.
pub struct Subscription {
    hub: Arc<Hub>,
    subscriber: Arc<Subscriber>,
}

impl std::ops::Deref for Subscription {
    type Target = Subscriber;

    fn deref(&self) -> &Subscriber {
        &self.subscriber
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub
            .retained
            .lock()
            .subscribers
            .retain(|s| !Arc::ptr_eq(s, &self.subscriber));
    }
}

/// Events of one kind a resuming client can no longer get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone {
    pub kind: &'static str,
    pub from: u64,
    pub to: u64,
}

/// What a resuming client is sent.
#[derive(Debug)]
pub struct Replay {
    /// The id the replay counts from (0 for an id this hub never issued).
    pub after: u64,
    /// Ranges of ids whose alerts or lines are gone: the client may have missed some there.
    pub gone: Vec<Gone>,
    /// The retained events after `after`, in id order.
    pub events: Vec<Arc<Event>>,
}

impl Hub {
    pub fn new(config: HubConfig) -> Arc<Hub> {
        Arc::new(Hub {
            config,
            retained: Mutex::new(Retained {
                next: 1,
                ..Retained::default()
            }),
        })
    }

    /// Registers a subscriber with its filter; returns it and the id of the first event it
    /// will be offered (taken under the lock publishing holds, so the two agree).
    pub fn subscribe(self: &Arc<Self>, filter: Filter) -> (Subscription, u64) {
        let subscriber = Arc::new(Subscriber::new(self.config.queue, filter));
        let mut r = self.retained.lock();
        r.subscribers.push(Arc::clone(&subscriber));
        let next = r.next;
        drop(r);
        let subscription = Subscription {
            hub: Arc::clone(self),
            subscriber,
        };
        (subscription, next)
    }

    pub fn subscribers(&self) -> usize {
        self.retained.lock().subscribers.len()
    }

    /// For /health.
    pub fn stats(&self) -> HubStats {
        let r = self.retained.lock();
        HubStats {
            subscribers: r.subscribers.len(),
            next_id: r.next,
            retained_alerts: r.alerts.events.len(),
            retained_lines: r.lines.events.len(),
            newest_offset: r.newest_offset,
            lost_untold: r.subscribers.iter().map(|s| s.lost()).sum(),
        }
    }

    /// The id the next event will get.
    pub fn next_id(&self) -> u64 {
        self.retained.lock().next
    }

    pub fn publish(&self, payloads: impl IntoIterator<Item = Payload>) {
        self.add(payloads, true);
    }

    /// Numbers and retains events for resuming clients without sending them live: alerts a
    /// replica reads back from Kafka at start are history, not news.
    pub fn retain(&self, payloads: impl IntoIterator<Item = Payload>) {
        self.add(payloads, false);
    }

    fn add(&self, payloads: impl IntoIterator<Item = Payload>, live: bool) {
        let now = Instant::now();
        let mut guard = self.retained.lock();
        let r = &mut *guard;
        for payload in payloads {
            let event = Arc::new(Event {
                id: r.next,
                at: now,
                payload,
                rendered: std::sync::OnceLock::new(),
            });
            r.next += 1;
            if let Some(o) = event.offset() {
                r.newest_offset = Some(o);
            }
            let kept = if event.payload.is_alert() {
                &mut r.alerts
            } else {
                &mut r.lines
            };
            kept.events.push_back(Arc::clone(&event));
            if live {
                for s in &r.subscribers {
                    s.offer(&event);
                }
            }
        }
        r.alerts.trim(self.config.retain_alerts, self.config.retain_age, now);
        r.lines.trim(self.config.retain_lines, self.config.retain_age, now);
    }

    /// The retained events after `last_seen`, and the ranges of those gone.
    pub fn replay(&self, last_seen: u64) -> Replay {
        let r = self.retained.lock();
        // An id this hub never issued (the client saw another run of the server): what is
        // retained follows, and everything before it is gone.
        let after = if last_seen >= r.next { 0 } else { last_seen };
        let gone = [("alert", &r.alerts), ("log", &r.lines)]
            .into_iter()
            .filter(|(_, kept)| kept.lost_upto > after)
            .map(|(kind, kept)| Gone {
                kind,
                from: after + 1,
                to: kept.lost_upto,
            })
            .collect();
        let mut events: Vec<Arc<Event>> = r
            .alerts
            .events
            .iter()
            .chain(&r.lines.events)
            .filter(|e| e.id > after)
            .cloned()
            .collect();
        events.sort_unstable_by_key(|e| e.id);
        Replay { after, gone, events }
    }

    /// The retained alerts after `offset` in `ai-logs.alerts`, with the range of offsets
    /// after it that are no longer retained, if any.
    pub fn replay_offsets(&self, offset: i64) -> (Option<(i64, i64)>, Vec<Arc<Event>>) {
        let r = self.retained.lock();
        let events: Vec<Arc<Event>> = r
            .alerts
            .events
            .iter()
            .filter(|e| e.offset().is_some_and(|o| o > offset))
            .cloned()
            .collect();
        let gone_to = match events.first().and_then(|e| e.offset()) {
            Some(first) => first - 1,
            None => r.newest_offset.unwrap_or(offset),
        };
        let gone = (gone_to > offset).then_some((offset + 1, gone_to));
        (gone, events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ailogs_pipeline::anomaly::{Alert, AlertKind};
    use ailogs_pipeline::patterns::Severity;
    use ailogs_pipeline::{Enriched, Level, LogRecord};

    fn log(i: i64) -> Payload {
        Payload::Log(Arc::new(Enriched::new(LogRecord::new(i, "api", Level::Info, "m"))))
    }

    fn alert(offset: Option<i64>) -> Payload {
        Payload::Alert {
            alert: Alert {
                kind: AlertKind::Pattern,
                severity: Severity::High,
                category: None,
                key: "k".into(),
                summary: "s".into(),
                suggestion: None,
                first_seen_ns: 0,
                last_seen_ns: 0,
                count: 1,
                services: vec![],
                correlation_ids: vec![],
                samples: vec![],
                revision: 0,
            },
            offset,
        }
    }

    fn config(retain_alerts: usize, retain_lines: usize) -> HubConfig {
        HubConfig {
            queue: 16,
            retain_alerts,
            retain_lines,
            retain_age: Duration::from_secs(60),
        }
    }

    fn ids(events: &[Arc<Event>]) -> Vec<u64> {
        events.iter().map(|e| e.id).collect()
    }

    #[test]
    fn ids_increase_and_replay_reports_what_is_gone() {
        let hub = Hub::new(config(10, 5));
        hub.publish((0..8).map(log));
        assert_eq!(hub.next_id(), 9);
        let r = hub.replay(6);
        assert_eq!((ids(&r.events), r.gone), (vec![7, 8], vec![]));
        let r = hub.replay(1);
        assert_eq!(
            r.gone,
            [Gone {
                kind: "log",
                from: 2,
                to: 3
            }],
            "ids 4..=8 are retained"
        );
        assert_eq!(ids(&r.events), [4, 5, 6, 7, 8]);
    }

    #[test]
    fn a_burst_of_lines_does_not_push_out_alerts() {
        let hub = Hub::new(config(10, 3));
        hub.publish([alert(None)]);
        hub.publish((0..50).map(log));
        hub.publish([alert(None)]);
        let r = hub.replay(0);
        assert_eq!(ids(&r.events), [1, 49, 50, 51, 52]);
        assert_eq!(
            r.gone,
            [Gone {
                kind: "log",
                from: 1,
                to: 48
            }],
            "only lines are gone"
        );
    }

    #[test]
    fn an_id_from_another_run_replays_everything_retained() {
        let hub = Hub::new(config(10, 3));
        hub.publish((0..5).map(log));
        let r = hub.replay(900);
        assert_eq!(r.after, 0);
        assert_eq!(
            r.gone,
            [Gone {
                kind: "log",
                from: 1,
                to: 2
            }]
        );
        assert_eq!(ids(&r.events), [3, 4, 5]);
    }

    #[test]
    fn kafka_alerts_replay_by_offset() {
        let hub = Hub::new(config(3, 10));
        hub.publish((10..16).map(|o| alert(Some(o))));
        let (gone, events) = hub.replay_offsets(13);
        assert_eq!(gone, None);
        assert_eq!(events.iter().filter_map(|e| e.offset()).collect::<Vec<_>>(), [14, 15]);
        let (gone, events) = hub.replay_offsets(10);
        assert_eq!(gone, Some((11, 12)), "13..=15 are retained");
        assert_eq!(events.len(), 3);
        let (gone, events) = hub.replay_offsets(15);
        assert_eq!((gone, events.len()), (None, 0), "up to date");
        let (gone, events) = hub.replay_offsets(2);
        assert_eq!((gone, events.len()), (Some((3, 12)), 3));
    }

    fn everything() -> Filter {
        Filter::from_spec(serde_json::from_value(serde_json::json!({"severity_threshold": "debug"})).expect("spec"))
            .expect("filter")
    }

    fn ids_of(events: impl IntoIterator<Item = Arc<Event>>) -> Vec<u64> {
        events.into_iter().map(|e| e.id).collect()
    }

    #[test]
    fn history_is_retained_but_not_sent_live() {
        let hub = Hub::new(config(10, 10));
        let (sub, _) = hub.subscribe(everything());
        hub.retain([alert(Some(7))]);
        hub.publish([alert(Some(8))]);
        let taken = sub.take().events;
        assert_eq!(
            taken.iter().map(|e| e.offset()).collect::<Vec<_>>(),
            [Some(8)],
            "only the live one"
        );
        let (gone, events) = hub.replay_offsets(6);
        assert_eq!((gone, events.len()), (None, 2), "both resumable");
    }

    #[test]
    fn a_slow_subscriber_loses_its_oldest_and_others_lose_nothing() {
        let hub = Hub::new(HubConfig {
            queue: 16,
            ..config(10, 10)
        });
        let (slow, first) = hub.subscribe(everything());
        let (fast, _) = hub.subscribe(everything());
        assert_eq!(first, 1);
        let mut got = Vec::new();
        for i in 0..100 {
            hub.publish([log(i)]);
            got.extend(ids_of(fast.take().events));
        }
        assert_eq!(got, (1..=100).collect::<Vec<_>>());
        assert_eq!(hub.stats().lost_untold, 84);
        let taken = slow.take();
        assert_eq!(taken.lost, 84, "told how many it lost");
        assert_eq!(ids_of(taken.events), (85..=100).collect::<Vec<_>>(), "the newest kept");
    }

    #[test]
    fn subscribers_get_only_what_their_filter_wants_and_leave_when_dropped() {
        let hub = Hub::new(config(10, 10));
        let alerts_only = Filter::from_spec(serde_json::from_value(serde_json::json!({"logs": false})).expect("spec"))
            .expect("filter");
        let (sub, _) = hub.subscribe(alerts_only);
        hub.publish([log(1), alert(None), log(2)]);
        assert_eq!(ids_of(sub.take().events), [2]);
        sub.set_filter(everything());
        hub.publish([log(3)]);
        assert_eq!(
            ids_of(sub.take().events),
            [4],
            "a new filter applies to what comes next"
        );
        assert_eq!(hub.subscribers(), 1);
        drop(sub);
        assert_eq!(hub.subscribers(), 0);
    }
}
