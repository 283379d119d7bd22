//! The stack's wiring: Promtail, Prometheus and Grafana read the repository's files at the
//! paths their commands name, and every host they reach is a service of the stack.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::compose::{Stack, host_of, strings};
use crate::yaml::{load, root};

#[test]
fn promtail_tails_the_generator_and_pushes_to_loki_and_ailogs() {
    let stack = Stack::load();
    let hosts = stack.hosts();
    // Promtail: the repository's config, at the path its command reads, with its clients on
    // the stack, tailing the files the log generator writes.
    let promtail_config = stack
        .command("promtail")
        .iter()
        .find_map(|a| a.strip_prefix("-config.file=").map(str::to_owned))
        .expect("promtail -config.file");
    assert_eq!(stack.mounted_at("promtail", &promtail_config), "./promtail-config.yaml");
    let promtail = load("promtail-config.yaml");
    let clients: Vec<String> = promtail["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .map(|c| c["url"].as_str().expect("url").to_owned())
        .collect();
    for url in &clients {
        assert!(hosts.contains(&host_of(url)), "promtail pushes to {url}: not a service");
    }
    assert!(
        clients
            .iter()
            .any(|u| u.ends_with("/loki/api/v1/push") && host_of(u) == "loki")
    );
    assert!(
        clients
            .iter()
            .any(|u| u.contains(":8080/loki/api/v1/push") && host_of(u) != "loki")
    );
    let generator = stack.command("log-generator");
    let dir = &generator[generator.iter().position(|a| a == "--dir").expect("--dir") + 1];
    let volume = stack.mounted_at("log-generator", dir);
    assert_eq!(
        stack.mounted_at("promtail", dir),
        volume,
        "promtail reads the generator's volume"
    );
    let glob = promtail["scrape_configs"][0]["static_configs"][0]["labels"]["__path__"]
        .as_str()
        .expect("__path__");
    assert!(glob.starts_with(&format!("{dir}/")), "{glob} under {dir}");
    let positions = promtail["positions"]["filename"].as_str().expect("positions");
    assert!(
        stack
            .mounts("promtail")
            .iter()
            .any(|(_, t)| positions.starts_with(&format!("{t}/"))),
        "promtail's positions survive a restart"
    );
}

#[test]
fn prometheus_reads_the_repository_rules_and_scrapes_every_role() {
    let stack = Stack::load();
    let hosts = stack.hosts();
    // Prometheus: the repository's config and rules, side by side as the config names them;
    // it scrapes ailogs' services on the image's port.
    assert_eq!(
        stack.mounted_at("prometheus", "/etc/prometheus/prometheus.yml"),
        "./deploy/prometheus/prometheus.yml"
    );
    let prometheus = load("deploy/prometheus/prometheus.yml");
    for rule_file in strings(&prometheus["rule_files"]) {
        assert_eq!(
            stack.mounted_at("prometheus", &format!("/etc/prometheus/{rule_file}")),
            format!("./deploy/prometheus/{rule_file}")
        );
    }
    let scraped: BTreeSet<String> = prometheus["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .flat_map(|c| c["dns_sd_configs"].as_array().cloned().unwrap_or_default())
        .flat_map(|d| {
            assert_eq!(d["port"], 8080);
            strings(&d["names"])
        })
        .collect();
    let roles: BTreeSet<String> = ["api", "consumer"].map(String::from).into();
    assert_eq!(scraped, roles);
    assert!(scraped.iter().all(|h| hosts.contains(h)), "{scraped:?} are services");
}

#[test]
fn grafana_provisions_the_datasources_the_dashboards_name() {
    let stack = Stack::load();
    let hosts = stack.hosts();
    // Grafana: provisioning and dashboards mounted where the provider looks.
    assert_eq!(
        stack.mounted_at("grafana", "/etc/grafana/provisioning"),
        "./deploy/grafana/provisioning"
    );
    let providers = load("deploy/grafana/provisioning/dashboards/ailogs.yaml");
    let path = providers["providers"][0]["options"]["path"]
        .as_str()
        .expect("provider path");
    assert_eq!(stack.mounted_at("grafana", path), "./deploy/grafana/dashboards");
    let datasources = load("deploy/grafana/provisioning/datasources/ailogs.yaml");
    let grafana_env = stack.environment("grafana");
    let mut uids = BTreeSet::new();
    for ds in datasources["datasources"].as_array().expect("datasources") {
        let url = ds["url"].as_str().expect("url");
        assert!(hosts.contains(&host_of(url)), "datasource {url}: not a service");
        uids.insert(ds["uid"].as_str().expect("uid").to_owned());
        for secret in ds["secureJsonData"].as_object().into_iter().flatten().map(|(_, v)| v) {
            let var = secret
                .as_str()
                .and_then(|s| s.strip_prefix('$'))
                .expect("a secret from the environment");
            assert!(grafana_env.contains_key(var), "grafana's environment lacks {var}");
        }
    }
    for file in std::fs::read_dir(root().join("deploy/grafana/dashboards")).expect("dashboards") {
        let path = file.expect("entry").path();
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard")).expect("JSON");
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                let uid = target["datasource"]["uid"].as_str().expect("a datasource uid");
                assert!(
                    uids.contains(uid),
                    "{}: {} uses datasource {uid}",
                    path.display(),
                    panel["title"]
                );
            }
        }
    }
}
