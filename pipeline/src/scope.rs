//! Which workspaces a caller may see. Every read path puts its caller's scope into the query
//! it runs (a predicate while scanning, a SQL condition, a LogQL matcher), so nothing outside
//! the scope is ever read into an answer and then filtered out.

use std::sync::Arc;

/// A caller's workspaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every workspace, and lines that carry none.
    #[default]
    All,
    /// These workspaces; lines without a workspace id only when `unscoped` is set.
    Workspaces { ids: Arc<[String]>, unscoped: bool },
}

impl Scope {
    /// `ids` empty means all (as `api_keys.workspaces` stores it).
    pub fn of(ids: &[String], unscoped: bool) -> Scope {
        if ids.is_empty() {
            Scope::All
        } else {
            let mut ids = ids.to_vec();
            ids.sort();
            ids.dedup();
            Scope::Workspaces {
                ids: ids.into(),
                unscoped,
            }
        }
    }

    /// No workspace and no unscoped line: for callers that may read nothing.
    pub fn none() -> Scope {
        Scope::Workspaces {
            ids: Arc::from(Vec::new()),
            unscoped: false,
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Scope::All)
    }

    /// Whether a line (or row) of `workspace` is visible.
    pub fn allows(&self, workspace: Option<&str>) -> bool {
        match (self, workspace) {
            (Scope::All, _) => true,
            (Scope::Workspaces { unscoped, .. }, None) => *unscoped,
            (Scope::Workspaces { ids, .. }, Some(w)) => ids.binary_search_by(|id| id.as_str().cmp(w)).is_ok(),
        }
    }

    /// The workspace list; None for all.
    pub fn workspaces(&self) -> Option<&[String]> {
        match self {
            Scope::All => None,
            Scope::Workspaces { ids, .. } => Some(ids),
        }
    }

    /// Whether lines without a workspace id are visible.
    pub fn sees_unscoped(&self) -> bool {
        match self {
            Scope::All => true,
            Scope::Workspaces { unscoped, .. } => *unscoped,
        }
    }

    /// For answers and audit rows: `["*"]` for all.
    pub fn describe(&self) -> Vec<String> {
        match self {
            Scope::All => vec!["*".to_owned()],
            Scope::Workspaces { ids, .. } => ids.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_sees_its_workspaces_and_unscoped_lines_only_when_told() {
        let a = Scope::of(&["ws-b".into(), "ws-a".into()], false);
        assert!(a.allows(Some("ws-a")) && a.allows(Some("ws-b")));
        assert!(!a.allows(Some("ws-c")) && !a.allows(None));
        assert!(Scope::of(&["ws-a".into()], true).allows(None));
        assert!(Scope::of(&[], false).is_all());
        assert!(Scope::All.allows(None) && Scope::All.allows(Some("x")));
        assert_eq!(a.describe(), vec!["ws-a", "ws-b"]);
    }
}
