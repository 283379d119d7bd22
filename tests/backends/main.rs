//! Tests against real Postgres and the Kafka protocol (librdkafka's mock cluster).

mod aggregates;
mod billing;
mod dashboards;
mod env;
mod exactly_once;
mod insights;
mod outage;
mod owners;
mod patterns;
mod rebalance;
mod replicas;
mod roles;
mod spool;
mod tenancy;
