//! Correlation: each request's services and calls kept up to date as its lines arrive
//! (`Tracker`, `Request`), analysed on demand or when it completes (`analysis`).

pub mod analysis;
pub mod request;
#[cfg(test)]
mod scenarios;
pub mod tracker;

pub use analysis::{RequestAnalysis, analyze, call_graph};
pub use request::Request;
pub use tracker::{Completed, Tracker, TrackerConfig};
