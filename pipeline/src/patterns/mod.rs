//! Known-problem patterns: the catalog (`patterns.yaml` plus custom patterns) and its
//! Hyperscan matcher.

pub mod catalog;
pub mod matcher;
pub mod stats;

pub use catalog::{Catalog, CatalogError, Category, Condition, PatternDef, Severity};
pub use matcher::{Matcher, PatternMatch, Scanner, SharedMatcher};
pub use stats::{PatternCounter, PatternStats};
