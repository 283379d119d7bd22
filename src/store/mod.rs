//! Views: where processed records are kept for queries. Embedded mode keeps them in memory.

pub mod batch;
pub mod correlations;
pub mod dead_letters;
pub mod insights;
pub mod memory;
pub mod patterns;
pub mod postgres;
pub mod redis;
