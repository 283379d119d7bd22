//! Integration tests: a real server on 127.0.0.1:0, driven over HTTP.

mod aggregates;
mod analyze;
mod correlate;
mod export;
mod fake_loki;
mod harness;
mod loki;
mod loki_masking;
mod loki_tls;
mod ops;
mod patterns;
mod push;
mod query;
mod redis;
mod stream;
mod stream_access;
mod tenancy;
mod tenancy_live;
mod usage;
mod windows;
