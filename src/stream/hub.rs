//! One hub per process: every event (a processed line, an alert) is numbered once,
//! retained for resuming clients (bounded by count and age), and fanned out through a
//! broadcast ring. Each subscriber reads the ring at its own pace; one that falls a whole
//! ring behind loses the oldest messages and is told how many (`RecvError::Lagged`), and
//! never holds back the others.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ailogs_pipeline::Enriched;
use ailogs_pipeline::anomaly::Alert;
use parking_lot::Mutex;
use tokio::sync::broadcast;

#[derive(Debug)]
pub enum Payload {
    Log(Arc<Enriched>),
    Alert(Alert),
}

#[derive(Debug)]
pub struct Event {
    /// Increasing, from 1.
    pub id: u64,
    pub at: Instant,
    pub payload: Payload,
    /// The message as sent, rendered by the first subscriber that wants it and shared by
    /// the rest.
    pub rendered: std::sync::OnceLock<axum::extract::ws::Utf8Bytes>,
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Messages a subscriber may fall behind before it loses the oldest.
    pub queue: usize,
    /// Events kept for `resume_from`.
    pub retain: usize,
    pub retain_age: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            queue: 4096,
            retain: 20_000,
            retain_age: Duration::from_secs(15 * 60),
        }
    }
}

pub struct Hub {
    config: HubConfig,
    tx: broadcast::Sender<Arc<Event>>,
    /// The retained events and the next id, under one lock so ids go out in order.
    retained: Mutex<(VecDeque<Arc<Event>>, u64)>,
}

/// What a resuming client is sent.
pub enum Replay {
    /// The events after the client's id (and those it may have missed are all here).
    Events(Vec<Arc<Event>>),
    /// Ids `from..=to` are no longer retained; the events after them follow.
    Gap {
        from: u64,
        to: u64,
        events: Vec<Arc<Event>>,
    },
}

impl Hub {
    pub fn new(config: HubConfig) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(config.queue.max(16));
        Arc::new(Hub {
            config,
            tx,
            retained: Mutex::new((VecDeque::new(), 1)),
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// The id the next event will get.
    pub fn next_id(&self) -> u64 {
        self.retained.lock().1
    }

    pub fn publish(&self, payloads: impl IntoIterator<Item = Payload>) {
        let now = Instant::now();
        let mut guard = self.retained.lock();
        let (retained, next) = &mut *guard;
        for payload in payloads {
            let event = Arc::new(Event {
                id: *next,
                at: now,
                payload,
                rendered: std::sync::OnceLock::new(),
            });
            *next += 1;
            retained.push_back(Arc::clone(&event));
            // No subscribers is not an error: the event is retained for resuming clients.
            let _ = self.tx.send(event);
        }
        while retained.len() > self.config.retain
            || retained
                .front()
                .is_some_and(|e| now.duration_since(e.at) > self.config.retain_age)
        {
            retained.pop_front();
        }
    }

    /// The retained events after `last_seen` and before `until`, or the gap when some are
    /// gone; with the id the replay counts from (0 for an id this hub never issued).
    pub fn replay(&self, last_seen: u64, until: u64) -> (u64, Replay) {
        let guard = self.retained.lock();
        let (retained, next) = &*guard;
        let oldest = retained.front().map_or(*next, |e| e.id);
        // An id this hub never issued (the client saw another run of the server): what is
        // retained follows, and everything before it is gone.
        let last_seen = if last_seen >= *next { 0 } else { last_seen };
        let events: Vec<Arc<Event>> = retained
            .iter()
            .filter(|e| e.id > last_seen && e.id < until)
            .cloned()
            .collect();
        let replay = if last_seen + 1 < oldest {
            Replay::Gap {
                from: last_seen + 1,
                to: oldest - 1,
                events,
            }
        } else {
            Replay::Events(events)
        };
        (last_seen, replay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ailogs_pipeline::{Level, LogRecord};

    fn log(i: i64) -> Payload {
        Payload::Log(Arc::new(Enriched::new(LogRecord::new(i, "api", Level::Info, "m"))))
    }

    #[test]
    fn ids_increase_and_replay_reports_what_is_gone() {
        let hub = Hub::new(HubConfig {
            queue: 16,
            retain: 5,
            retain_age: Duration::from_secs(60),
        });
        hub.publish((0..8).map(log));
        assert_eq!(hub.next_id(), 9);
        match hub.replay(6, u64::MAX).1 {
            Replay::Events(e) => assert_eq!(e.iter().map(|e| e.id).collect::<Vec<_>>(), [7, 8]),
            Replay::Gap { .. } => panic!("6 is retained"),
        }
        match hub.replay(1, u64::MAX).1 {
            Replay::Gap { from, to, events } => {
                assert_eq!((from, to), (2, 3), "ids 4..=8 are retained");
                assert_eq!(events.len(), 5);
            }
            Replay::Events(_) => panic!("2 and 3 are gone"),
        }
    }

    #[test]
    fn an_id_from_another_run_replays_everything_retained() {
        let hub = Hub::new(HubConfig {
            queue: 16,
            retain: 3,
            retain_age: Duration::from_secs(60),
        });
        hub.publish((0..5).map(log));
        let (from_id, replay) = hub.replay(900, u64::MAX);
        assert_eq!(from_id, 0);
        match replay {
            Replay::Gap { from, to, events } => {
                assert_eq!((from, to), (1, 2));
                assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
            }
            Replay::Events(_) => panic!("900 was never issued"),
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_its_oldest_and_others_lose_nothing() {
        let hub = Hub::new(HubConfig {
            queue: 16,
            ..HubConfig::default()
        });
        let mut slow = hub.subscribe();
        let mut fast = hub.subscribe();
        let mut got = Vec::new();
        for i in 0..100 {
            hub.publish([log(i)]);
            got.push(fast.recv().await.expect("fast keeps up").id);
        }
        assert_eq!(got, (1..=100).collect::<Vec<_>>());
        match slow.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 84),
            other => panic!("expected a lag, got {other:?}"),
        }
        assert_eq!(slow.recv().await.expect("then the newest").id, 85);
    }
}
