//! A subscriber's inbox. The hub offers each event to every subscriber; only those whose
//! filter wants it queue it (and only they are woken). The inbox is bounded: when full, the
//! oldest event goes and is counted, so the subscriber can be told how many it lost. A slow
//! subscriber only ever fills its own inbox.

use std::collections::VecDeque;
use std::sync::Arc;

use ailogs_pipeline::stream::Filter;
use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::event::{Event, Payload};

pub struct Subscriber {
    /// Read by the publisher for every event; replaced when the client changes its filter.
    filter: ArcSwapOption<Filter>,
    inbox: Mutex<Inbox>,
    notify: Notify,
    capacity: usize,
}

#[derive(Default)]
struct Inbox {
    events: VecDeque<Arc<Event>>,
    lost: u64,
}

/// What a subscriber takes from its inbox at once: the queued events, oldest first, and
/// how many were lost since it last took.
pub struct Taken {
    pub events: VecDeque<Arc<Event>>,
    pub lost: u64,
}

pub fn wants(filter: &Filter, payload: &Payload) -> bool {
    match payload {
        Payload::Log(r) => filter.wants_log(r),
        Payload::Line(l) => filter.wants_line(l.level, &l.service, l.workspace_id.as_deref()),
        Payload::Alert { alert, .. } => filter.wants_alert(alert),
    }
}

impl Subscriber {
    pub(super) fn new(capacity: usize, filter: Filter) -> Self {
        Subscriber {
            filter: ArcSwapOption::from_pointee(filter),
            inbox: Mutex::new(Inbox::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn set_filter(&self, filter: Filter) {
        self.filter.store(Some(Arc::new(filter)));
    }

    /// Queues the event if the filter wants it, dropping the oldest when full; wakes the
    /// subscriber when its inbox stops being empty (a later event finds it already woken).
    pub(super) fn offer(&self, event: &Arc<Event>) {
        if !self.filter.load().as_deref().is_some_and(|f| wants(f, &event.payload)) {
            return;
        }
        let mut inbox = self.inbox.lock();
        let was_empty = inbox.events.is_empty();
        if inbox.events.len() >= self.capacity {
            inbox.events.pop_front();
            inbox.lost += 1;
        }
        inbox.events.push_back(Arc::clone(event));
        drop(inbox);
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// Resolves when the inbox has something (a wake-up that came while the subscriber was
    /// busy is kept, so none is missed).
    pub async fn ready(&self) {
        self.notify.notified().await;
    }

    /// Events lost since the subscriber last took (it has not been told yet).
    pub fn lost(&self) -> u64 {
        self.inbox.lock().lost
    }

    pub fn take(&self) -> Taken {
        let mut inbox = self.inbox.lock();
        Taken {
            events: std::mem::take(&mut inbox.events),
            lost: std::mem::take(&mut inbox.lost),
        }
    }
}
