//! Field normalization: aliases, levels and timestamps.

pub mod fields;
pub mod level;
pub mod time;
