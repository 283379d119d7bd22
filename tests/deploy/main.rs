//! The deployment files, checked without a Docker engine: Prometheus' rules and config with
//! promtool, the Dockerfile and the compose stack by what they reference, the compose file
//! and Grafana's provisioning against their schemas and against each other.

mod compose;
mod dockerfile;
mod rules;
mod wiring;
mod yaml;
