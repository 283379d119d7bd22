//! A circuit breaker for one backend: after `failures` consecutive failed calls it opens and
//! refuses calls for `open_for`; then one call is let through as a probe (half-open), and its
//! outcome closes or re-opens it. Time is passed in, so tests need no clock.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
pub struct Breaker {
    failures: u32,
    open_for: Duration,
    consecutive: u32,
    opened_at: Option<Instant>,
    probing: bool,
}

impl Breaker {
    pub fn new(failures: u32, open_for: Duration) -> Self {
        Breaker {
            failures: failures.max(1),
            open_for,
            consecutive: 0,
            opened_at: None,
            probing: false,
        }
    }

    /// Whether a call may go out now; `Err` holds how long until the next probe.
    pub fn allow(&mut self, now: Instant) -> Result<(), Duration> {
        let Some(opened) = self.opened_at else {
            return Ok(());
        };
        let reopens = opened + self.open_for;
        if now < reopens {
            return Err(reopens - now);
        }
        if self.probing {
            // One probe at a time; the others wait for its outcome.
            return Err(Duration::ZERO);
        }
        self.probing = true;
        Ok(())
    }

    pub fn success(&mut self) {
        self.consecutive = 0;
        self.opened_at = None;
        self.probing = false;
    }

    pub fn failure(&mut self, now: Instant) {
        self.consecutive = self.consecutive.saturating_add(1);
        if self.probing || self.consecutive >= self.failures {
            self.opened_at = Some(now);
        }
        self.probing = false;
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match self.opened_at {
            None => BreakerState::Closed,
            Some(at) if now < at + self.open_for => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_probes_once() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(30));
        for _ in 0..2 {
            assert!(b.allow(t0).is_ok());
            b.failure(t0);
        }
        b.success();
        for _ in 0..3 {
            assert!(b.allow(t0).is_ok(), "a success resets the count");
            b.failure(t0);
        }
        assert_eq!(b.state(t0), BreakerState::Open);
        assert_eq!(b.allow(t0 + Duration::from_secs(10)), Err(Duration::from_secs(20)));
        let later = t0 + Duration::from_secs(31);
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        assert!(b.allow(later).is_ok(), "one probe");
        assert!(b.allow(later).is_err(), "only one");
        b.failure(later);
        assert_eq!(b.state(later), BreakerState::Open, "a failed probe re-opens");
        let again = later + Duration::from_secs(31);
        assert!(b.allow(again).is_ok());
        b.success();
        assert_eq!(b.state(again), BreakerState::Closed);
        assert!(b.allow(again).is_ok());
    }
}
