//! docker-compose.yml: valid by the Compose Specification schema, and everything it names
//! exists: files, subcommands and their flags, configuration, variables, services, volumes
//! and ports. `Stack` reads it for the wiring checks too.

use std::collections::{BTreeMap, BTreeSet};

use ailogs::cli::Cli;
use ailogs::config::Config;
use clap::Parser;
use serde_json::Value;

use crate::yaml::{load, root, validate};

const COMPOSE: &str = "docker-compose.yml";

#[test]
fn the_compose_file_validates_against_the_compose_specification() {
    validate(COMPOSE, "vendor.compose-spec").unwrap_or_else(|e| panic!("{COMPOSE}: {e}"));
    // The check can fail: a misspelt key is refused.
    let text = std::fs::read_to_string(root().join(COMPOSE)).expect("compose file");
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("docker-compose.yml");
    std::fs::write(
        &broken,
        text.replacen("    command: [\"consume\"]", "    comand: [\"consume\"]", 1),
    )
    .expect("write");
    let refused = validate(broken.to_str().expect("utf-8 path"), "vendor.compose-spec");
    assert!(refused.as_ref().is_err_and(|e| e.contains("comand")), "{refused:?}");
}

/// `.env.example`: the variables compose interpolates.
fn env_example() -> BTreeMap<String, String> {
    std::fs::read_to_string(root().join(".env.example"))
        .expect(".env.example")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!(".env.example: {l:?} is not NAME=value"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// Compose interpolation (`${X}`, `${X:-default}`, `${X:?error}`) with `.env.example`'s values.
fn interpolate(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("a closed ${") + i;
        let expr = &rest[i + 2..end];
        let name = expr.split([':', '-', '?']).next().expect("a name");
        let value = env
            .get(name)
            .cloned()
            .or_else(|| expr.split_once(":-").map(|(_, d)| d.to_owned()));
        out.push_str(&value.unwrap_or_else(|| panic!("${{{name}}} has no value in .env.example")));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

pub fn host_of(url: &str) -> String {
    let after = url.split_once("://").map_or(url, |(_, r)| r);
    let after = after.rsplit_once('@').map_or(after, |(_, r)| r);
    after.split([':', '/']).next().expect("a host").to_owned()
}

pub struct Stack {
    compose: Value,
    env: BTreeMap<String, String>,
}

impl Stack {
    pub fn load() -> Stack {
        Stack {
            compose: load(COMPOSE),
            env: env_example(),
        }
    }

    pub fn services(&self) -> &serde_json::Map<String, Value> {
        self.compose["services"].as_object().expect("services")
    }

    pub fn service(&self, name: &str) -> &Value {
        self.services().get(name).unwrap_or_else(|| panic!("no service {name}"))
    }

    /// Services run from this repository's image.
    fn ailogs_services(&self) -> Vec<(&String, &Value)> {
        self.services()
            .iter()
            .filter(|(_, s)| s["image"].as_str().is_some_and(|i| i.starts_with("ailogs:")))
            .collect()
    }

    /// Host names a container can reach: services and their network aliases.
    pub fn hosts(&self) -> BTreeSet<String> {
        let mut hosts: BTreeSet<String> = self.services().keys().cloned().collect();
        for s in self.services().values() {
            if let Some(nets) = s["networks"].as_object() {
                for n in nets.values() {
                    hosts.extend(strings(&n["aliases"]));
                }
            }
        }
        hosts
    }

    /// (source, target) of each of a service's volumes.
    pub fn mounts(&self, service: &str) -> Vec<(String, String)> {
        strings(&self.service(service)["volumes"])
            .iter()
            .map(|v| {
                let mut parts = v.split(':');
                let source = parts.next().expect("source").to_owned();
                let target = parts
                    .next()
                    .unwrap_or_else(|| panic!("{service}: volume {v} has no target"))
                    .to_owned();
                (source, target)
            })
            .collect()
    }

    /// The repository path bind-mounted at `target` in `service`.
    pub fn mounted_at(&self, service: &str, target: &str) -> String {
        self.mounts(service)
            .into_iter()
            .find(|(_, t)| t == target)
            .map(|(s, _)| s)
            .unwrap_or_else(|| panic!("{service} mounts nothing at {target}"))
    }

    pub fn environment(&self, service: &str) -> std::collections::HashMap<String, String> {
        self.service(service)["environment"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), interpolate(&v, &self.env))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn command(&self, service: &str) -> Vec<String> {
        strings(&self.service(service)["command"])
            .iter()
            .map(|a| interpolate(a, &self.env))
            .collect()
    }
}

#[test]
fn every_variable_is_in_env_example_and_every_example_is_used() {
    let text = std::fs::read_to_string(root().join(COMPOSE)).expect("compose file");
    let env = env_example();
    let used: BTreeSet<String> = text
        .split("${")
        .skip(1)
        .map(|s| s.split([':', '-', '?', '}']).next().expect("a name").to_owned())
        .collect();
    for name in &used {
        assert!(
            env.contains_key(name),
            "{COMPOSE} uses ${{{name}}}, which .env.example does not set"
        );
    }
    for name in env.keys() {
        assert!(
            used.contains(name),
            ".env.example sets {name}, which {COMPOSE} does not use"
        );
    }
    // Secrets come from .env only: the file holds no password of its own.
    assert!(!text.contains("change-me"));
}

#[test]
fn the_ailogs_services_run_subcommands_and_configuration_ailogs_accepts() {
    let stack = Stack::load();
    let services = stack.ailogs_services();
    let mut subcommands = BTreeSet::new();
    for (name, s) in &services {
        let command = stack.command(name);
        let argv = std::iter::once("ailogs".to_owned()).chain(command.iter().cloned());
        if let Err(e) = Cli::try_parse_from(argv) {
            panic!("{name}: `ailogs {}` is not a valid command: {e}", command.join(" "));
        }
        subcommands.insert(command[0].clone());
        let env = stack.environment(name);
        let config = Config::load(None, &env).unwrap_or_else(|e| panic!("{name}'s environment: {e}"));
        if command[0] != "simulate" {
            assert!(
                config.kafka_brokers.is_some() && config.database_url.is_some(),
                "{name}: {env:?}"
            );
            for url in [
                "AILOGS_KAFKA_BROKERS",
                "AILOGS_DATABASE_URL",
                "AILOGS_REDIS_URL",
                "AILOGS_LOKI_URL",
            ] {
                let host = host_of(&env[url]);
                assert!(
                    stack.hosts().contains(&host),
                    "{name}: {url} names {host}, not a service"
                );
            }
        }
        assert_eq!(
            s["build"].as_str(),
            Some("."),
            "{name} builds this repository's Dockerfile"
        );
    }
    let wanted: BTreeSet<String> = ["init", "serve", "consume", "simulate"].map(String::from).into();
    assert_eq!(subcommands, wanted);
    // The API replicas leave consuming to the consumer service.
    let api = Config::load(None, &stack.environment("api")).expect("api config");
    assert!(!api.consume_in_serve);
    // Scalable: a consumer has no fixed name and no host port.
    let consumer = stack.service("consumer");
    assert!(consumer["container_name"].is_null() && consumer["ports"].is_null());
    assert!(root().join("Dockerfile").exists());
}

#[test]
fn volumes_depends_on_and_ports_name_what_exists() {
    let stack = Stack::load();
    let declared: BTreeSet<String> = stack.compose["volumes"]
        .as_object()
        .expect("named volumes")
        .keys()
        .cloned()
        .collect();
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let mut used = BTreeSet::new();
    for (name, s) in stack.services() {
        for (source, _) in stack.mounts(name) {
            if let Some(path) = source.strip_prefix("./") {
                assert!(
                    root().join(path).exists(),
                    "{name} mounts {source}, which is not in the repository"
                );
            } else {
                assert!(
                    declared.contains(&source),
                    "{name} mounts volume {source}, which is not declared"
                );
                used.insert(source);
            }
        }
        for (dep, condition) in s["depends_on"].as_object().into_iter().flatten() {
            let target = stack.service(dep);
            match condition["condition"].as_str().expect("a condition") {
                "service_healthy" => {
                    let own = target["healthcheck"].is_object() && target["healthcheck"]["disable"] != true;
                    let image = target["image"].as_str().is_some_and(|i| i.starts_with("ailogs:"))
                        && dockerfile.contains("HEALTHCHECK");
                    assert!(
                        own || image,
                        "{name} waits for {dep} to be healthy, and {dep} has no health check"
                    );
                }
                "service_completed_successfully" => {
                    assert_eq!(target["restart"], "no", "{name} waits for {dep} to finish: a one-shot");
                }
                "service_started" => {}
                other => panic!("{name}: condition {other}"),
            }
        }
        assert!(
            s["image"]
                .as_str()
                .is_some_and(|i| i.contains(':') && !i.ends_with(":latest")),
            "{name}: a pinned image"
        );
    }
    assert_eq!(used, declared, "every declared volume is used");
    // The API's container port is the one the image listens on.
    let (_, listen_port) = dockerfile
        .split_whitespace()
        .find_map(|w| w.strip_prefix("AILOGS_LISTEN="))
        .and_then(|a| a.rsplit_once(':'))
        .expect("the image's AILOGS_LISTEN");
    let api_ports: Vec<String> = strings(&stack.service("api")["ports"]);
    assert!(
        api_ports.iter().any(|p| p.ends_with(&format!(":{listen_port}"))),
        "{api_ports:?} publishes the image's port {listen_port}"
    );
}
