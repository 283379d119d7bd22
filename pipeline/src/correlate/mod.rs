//! Correlation: each request's services and calls kept up to date as its lines arrive
//! (`Tracker`, `Request`), analysed on demand or when it completes (`analysis`).

pub mod analysis;
pub mod dependency;
pub mod request;
#[cfg(test)]
mod scenarios;
pub mod tracker;
pub mod views;

pub use analysis::{RequestAnalysis, analyze, analyze_lines, call_graph};
pub use dependency::{DependencyGraph, DependencyView};
pub use request::Request;
pub use tracker::{Completed, Tracker, TrackerConfig};
pub use views::CorrelationReads;
pub(crate) use views::Correlations;
