//! Lines by workspace, in event-time order: a caller scoped to some workspaces reads only
//! their lines (and, when its scope allows, the lines that name none), so its query costs
//! its own lines, not every tenant's.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use super::time_list::TimeList;
use crate::scope::Scope;

#[derive(Default)]
pub struct WorkspaceIndex {
    named: HashMap<Arc<str>, TimeList>,
    /// Lines without a workspace id.
    unnamed: TimeList,
}

impl WorkspaceIndex {
    pub fn insert(&mut self, workspace: Option<&Arc<str>>, ts_ns: i64, seq: u64) {
        match workspace {
            Some(w) => self.named.entry(Arc::clone(w)).or_default().insert(ts_ns, seq),
            None => self.unnamed.insert(ts_ns, seq),
        }
    }

    pub fn remove(&mut self, workspace: Option<&str>, ts_ns: i64, seq: u64) {
        match workspace {
            Some(w) => {
                if let Some(list) = self.named.get_mut(w) {
                    list.remove(ts_ns, seq);
                    if list.is_empty() {
                        self.named.remove(w);
                    }
                }
            }
            None => {
                self.unnamed.remove(ts_ns, seq);
            }
        }
    }

    /// The lists a scoped caller may read; None for `Scope::All` (every line).
    pub fn lists(&self, scope: &Scope) -> Option<Vec<&TimeList>> {
        let ids = scope.workspaces()?;
        let mut lists: Vec<&TimeList> = ids.iter().filter_map(|w| self.named.get(w.as_str())).collect();
        if scope.sees_unscoped() {
            lists.push(&self.unnamed);
        }
        Some(lists)
    }
}
