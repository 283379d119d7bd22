//! ailogs: IO around the `ailogs-pipeline` core. Ingest endpoints, the queue and workers,
//! views, the HTTP API, the demo. Rules about logs live in the pipeline crate.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod backoff;
pub mod billing;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod consume;
pub mod demo;
pub mod ingest;
pub mod internal_events;
pub mod kafka;
pub mod loki;
pub mod masking;
pub mod mcp;
pub mod metrics;
pub mod patterns;
pub mod secret;
pub mod signal;
pub mod simulate;
pub mod store;
pub mod stream;
pub mod telemetry;
