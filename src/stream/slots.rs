//! Subscriber limits: per process and per API key. A slot is held for a connection's life
//! and given back when it drops, so a count can never leak.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// Why a connection got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Process,
    Key,
}

pub struct Slots {
    max: usize,
    max_per_key: usize,
    /// Connections in all, and per key holder.
    held: Mutex<(usize, HashMap<Arc<str>, usize>)>,
}

pub struct Slot {
    slots: Arc<Slots>,
    holder: Option<Arc<str>>,
}

impl Slots {
    pub fn new(max: usize, max_per_key: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max,
            max_per_key,
            held: Mutex::new((0, HashMap::new())),
        })
    }

    pub fn take(self: &Arc<Self>, holder: Option<Arc<str>>) -> Result<Slot, Full> {
        let mut held = self.held.lock();
        let (total, per_key) = &mut *held;
        if *total >= self.max {
            return Err(Full::Process);
        }
        if let Some(h) = &holder {
            let n = per_key.entry(Arc::clone(h)).or_default();
            if *n >= self.max_per_key {
                return Err(Full::Key);
            }
            *n += 1;
        }
        *total += 1;
        Ok(Slot {
            slots: Arc::clone(self),
            holder,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock();
        let (total, per_key) = &mut *held;
        *total -= 1;
        if let Some(h) = &self.holder
            && let Some(n) = per_key.get_mut(h)
        {
            *n -= 1;
            if *n == 0 {
                per_key.remove(h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_per_key_and_per_process_and_slots_come_back() {
        let slots = Slots::new(3, 2);
        let a: Arc<str> = Arc::from("a");
        let a1 = slots.take(Some(Arc::clone(&a))).expect("first");
        let _a2 = slots.take(Some(Arc::clone(&a))).expect("second");
        assert_eq!(slots.take(Some(Arc::clone(&a))).err(), Some(Full::Key));
        let _open = slots.take(None).expect("keyless");
        assert_eq!(slots.take(Some(Arc::from("b"))).err(), Some(Full::Process));
        drop(a1);
        assert!(slots.take(Some(a)).is_ok(), "a dropped slot is free again");
    }
}
