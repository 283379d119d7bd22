//! Reference-counted string interning: a held line stores small ids for its service,
//! message shape and operation, and an id is freed when the last line using it leaves.

use std::sync::Arc;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<Arc<str>, u32>,
    /// Name and how many holders use it; None for a freed id awaiting reuse.
    names: Vec<Option<(Arc<str>, u32)>>,
    free: Vec<u32>,
}

impl Interner {
    /// The id of `name`, counting one more holder.
    pub fn acquire(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            if let Some((_, refs)) = &mut self.names[id as usize] {
                *refs += 1;
            }
            return id;
        }
        let name: Arc<str> = Arc::from(name);
        let entry = Some((Arc::clone(&name), 1));
        let id = match self.free.pop() {
            Some(id) => {
                self.names[id as usize] = entry;
                id
            }
            None => {
                self.names.push(entry);
                (self.names.len() - 1) as u32
            }
        };
        self.ids.insert(name, id);
        id
    }

    /// One holder of `id` is gone; the id is freed with its last holder.
    pub fn release(&mut self, id: u32) {
        let slot = &mut self.names[id as usize];
        if let Some((name, refs)) = slot {
            *refs -= 1;
            if *refs == 0 {
                self.ids.remove(&**name);
                *slot = None;
                self.free.push(id);
            }
        }
    }

    /// The shared name of a live id.
    pub fn shared(&self, id: u32) -> Option<Arc<str>> {
        self.names.get(id as usize)?.as_ref().map(|(name, _)| Arc::clone(name))
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name of a live id ("" for a freed one, which no holder can ask for).
    pub fn name(&self, id: u32) -> &str {
        self.names
            .get(id as usize)
            .and_then(Option::as_ref)
            .map_or("", |(name, _)| name)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// One shared copy of each value of a held line's low-cardinality fields (workspace, user,
/// model...): a held line points at it instead of owning its own. Values no held line uses
/// any more are swept whenever the table has doubled, so the sweeps cost O(1) per insert.
#[derive(Debug, Default)]
pub struct SharedValues {
    values: HashSet<Arc<str>>,
    sweep_at: usize,
}

impl SharedValues {
    pub fn share(&mut self, value: &mut Arc<str>) {
        if let Some(shared) = self.values.get(&**value) {
            *value = Arc::clone(shared);
            return;
        }
        if self.values.len() >= self.sweep_at {
            self.values.retain(|v| Arc::strong_count(v) > 1);
            self.sweep_at = (2 * self.values.len()).max(1024);
        }
        self.values.insert(Arc::clone(value));
    }

    pub fn share_opt(&mut self, value: &mut Option<Arc<str>>) {
        if let Some(v) = value {
            self.share(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shared_and_unused_ones_swept() {
        let mut shared = SharedValues::default();
        let mut a: Arc<str> = Arc::from("acme");
        let mut b: Arc<str> = Arc::from("acme");
        shared.share(&mut a);
        shared.share(&mut b);
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        for i in 0..2048 {
            let mut v: Arc<str> = Arc::from(format!("u-{i}"));
            shared.share(&mut v);
        }
        assert!(shared.values.len() < 2048, "values no line holds were swept");
        assert!(!shared.values.contains("acme"));
    }

    #[test]
    fn ids_are_shared_counted_and_reused() {
        let mut i = Interner::default();
        let a = i.acquire("api");
        assert_eq!(i.acquire("api"), a);
        let b = i.acquire("worker");
        assert_ne!(a, b);
        i.release(a);
        assert_eq!(i.name(a), "api", "one holder left");
        i.release(a);
        assert_eq!((i.get("api"), i.len()), (None, 1));
        assert_eq!(i.acquire("browser"), a, "freed id reused");
        assert_eq!(i.name(a), "browser");
    }
}
