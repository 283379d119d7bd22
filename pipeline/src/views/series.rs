//! A series is every held line that looks the same to a query: one service, workspace,
//! level, message shape, error shape, operation and audit category, with the same flags. Counts,
//! spans, ranking and grouping work per series (hundreds), not per line (hundreds of
//! thousands): a window's count in a series is two binary searches.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap as HashMap;

use super::time_list::TimeList;
use crate::classify::AuditCategory;
use crate::record::Level;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub service: u32,
    pub level: Level,
    /// Message shape (`shape::message_shape`).
    pub shape: u32,
    /// What `by_error` groups on: the error's shape when the line has an error, else `shape`.
    pub error_shape: u32,
    /// The request type, else the model, else "-".
    pub operation: u32,
    pub audit: Option<AuditCategory>,
    pub timed: bool,
    pub slow: bool,
    pub failure: bool,
    /// Has a conversation id.
    pub conversation: bool,
    /// The workspace (an id of `HeldLines::workspaces`), or `NO_WORKSPACE`: a scoped query
    /// picks its series by it.
    pub workspace: u32,
}

/// `SeriesKey::workspace` of lines without a workspace id.
pub const NO_WORKSPACE: u32 = u32::MAX;

#[derive(Debug)]
pub struct Series {
    pub key: SeriesKey,
    pub lines: TimeList,
    /// Timed series: (duration bits, seq), so the slowest lines are at the back.
    pub slowest: BTreeSet<(u64, u64)>,
}

/// Live series by key, with stable small ids.
#[derive(Debug, Default)]
pub struct SeriesTable {
    ids: HashMap<SeriesKey, u32>,
    slots: Vec<Option<Series>>,
    free: Vec<u32>,
}

impl SeriesTable {
    pub fn id_or_insert(&mut self, key: SeriesKey) -> u32 {
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let series = Some(Series {
            key,
            lines: TimeList::default(),
            slowest: BTreeSet::new(),
        });
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = series;
                id
            }
            None => {
                self.slots.push(series);
                (self.slots.len() - 1) as u32
            }
        };
        self.ids.insert(key, id);
        id
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Series> {
        self.slots.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// Drops a series that holds no line.
    pub fn remove_if_empty(&mut self, id: u32) {
        if let Some(slot) = self.slots.get_mut(id as usize)
            && slot.as_ref().is_some_and(|s| s.lines.is_empty())
            && let Some(series) = slot.take()
        {
            self.ids.remove(&series.key);
            self.free.push(id);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &Series)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(id, s)| s.as_ref().map(|s| (id as u32, s)))
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }
}
