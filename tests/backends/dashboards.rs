//! The dashboards and rules against real data: `ailogs demo` runs durable (mock Kafka, real
//! Postgres) as a separate process; Debian's `prometheus` (a real server) scrapes it and
//! evaluates deploy/prometheus/rules.yml. Every PromQL expression of every dashboard panel and
//! every rule must answer without error and with data, through Prometheus' HTTP API; every
//! Postgres panel's SQL (Grafana's macros expanded as Grafana does) must return rows from the
//! demo's usage tables; every metric the dashboards and rules name must be in `/metrics`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::Digest;
use sqlx::{Connection, PgConnection, Row};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::env::{Kafka, TestDb};

const ADMIN_KEY: &str = "dashboards-test-admin-key";
const READER_KEY: &str = "dashboards-test-reader-key";
const WAIT: Duration = Duration::from_secs(150);

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// An admin key for the test, and a reader allowed one query a minute (so 429s are counted).
fn config_file(dir: &Path) -> std::path::PathBuf {
    let sha = |k: &str| hex::encode(sha2::Sha256::digest(k.as_bytes()));
    let path = dir.join("ailogs.toml");
    let text = format!(
        "[[auth.api_keys]]\nname = \"admin\"\nsha256 = \"{}\"\nrole = \"admin\"\n\n\
         [[auth.api_keys]]\nname = \"reader\"\nsha256 = \"{}\"\nrole = \"reader\"\nlimits = {{ query = 1 }}\n",
        sha(ADMIN_KEY),
        sha(READER_KEY)
    );
    std::fs::write(&path, text).expect("config file");
    path
}

/// Starts `ailogs demo` and returns it with its address, read from its banner.
async fn start_demo(db: &TestDb, kafka: &Kafka, dir: &Path) -> (Child, String) {
    // A clean environment: the test runner's AILOGS_TEST_* variables are not settings.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ailogs"))
        .env_clear()
        .args(["--config", config_file(dir).to_str().expect("path")])
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--rate",
            "40",
            "--backfill-minutes",
            "6",
            "--seed",
            "7",
        ])
        .env("AILOGS_KAFKA_BROKERS", &kafka.brokers)
        .env("AILOGS_DATABASE_URL", &db.url)
        .env("AILOGS_KAFKA__SPOOL_DIR", dir.join("spool"))
        .env("AILOGS_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("ailogs demo starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("demo stdout") {
            if let Some(rest) = line.split("running at http://").nth(1) {
                return rest.split_whitespace().next().expect("an address").to_owned();
            }
        }
        panic!("ailogs demo exited before serving");
    })
    .await
    .expect("ailogs demo serves within a minute");
    // Keep reading its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

/// Debian's prometheus, scraping `target` every second and evaluating the repository's rules.
fn start_prometheus(target: &str, dir: &Path) -> (Child, String) {
    let config = dir.join("prometheus.yml");
    let rules = repo("deploy/prometheus/rules.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             rule_files: [\"{}\"]\n\
             scrape_configs:\n  - job_name: ailogs\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rules.display()
        ),
    )
    .expect("prometheus config");
    let listen = format!("127.0.0.1:{}", crate::env::free_port());
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address={listen}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("prometheus is required for this test and could not run ({e}): install Debian's prometheus package (scripts/services does)")
        });
    (child, format!("http://{listen}"))
}

/// Lines that make every labelled series exist: an unpriced model, secrets to mask, and a
/// line that is not JSON; then a reader over its limit.
async fn drive(http: &reqwest::Client, base: &str) {
    let now = chrono::Utc::now().to_rfc3339();
    let lines = [
        json!({"timestamp": now, "level": "info", "service": "gateway", "message": "AI operation completed",
               "request_type": "ai_completion", "model": "acme-llm-9", "input_tokens": 12, "output_tokens": 3,
               "workspace_id": "acme-support"})
        .to_string(),
        json!({"timestamp": now, "level": "warn", "service": "gateway",
               "message": "login failed for jane.doe@example.com with Bearer abcdefghijklmnopqrstuvwxyz123456"})
        .to_string(),
        "{this is not json".to_owned(),
    ];
    let pushed = http
        .post(format!("{base}/api/v1/ai_logs/ingest"))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/x-ndjson")
        .body(lines.join("\n"))
        .send()
        .await
        .expect("push");
    // The NDJSON endpoint takes the good lines and answers 400 for the bad one.
    let answer: Value = pushed.json().await.expect("a JSON answer");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(2), Some(1)),
        "{answer}"
    );
    let mut limited = 0;
    for _ in 0..4 {
        let r = http
            .get(format!("{base}/api/v1/ai_logs/query?mode=errors&limit=1"))
            .bearer_auth(READER_KEY)
            .send()
            .await
            .expect("query");
        limited += usize::from(r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS);
    }
    assert!(limited > 0, "the reader's limit is one query a minute");
}

/// Grafana's Prometheus variables, as a dashboard over the last hour would send them.
fn promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
}

/// Grafana's PostgreSQL macros, expanded as Grafana does, over the last 6 hours.
fn sql(raw: &str) -> String {
    let now = chrono::Utc::now();
    let (from, to) = (
        (now - chrono::Duration::hours(6)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        (now + chrono::Duration::minutes(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let mut out = raw.to_owned();
    while let Some(i) = out.find("$__") {
        let open = out[i..].find('(').expect("a macro's arguments") + i;
        let close = out[open..].find(')').expect("closed") + open;
        let name = &out[i + 3..open];
        let args: Vec<&str> = out[open + 1..close].split(',').map(str::trim).collect();
        let seconds = |interval: &str| match interval.trim_matches('\'') {
            "1h" => 3600,
            "1d" => 86_400,
            other => panic!("interval {other}"),
        };
        let expanded = match name {
            "timeFilter" => format!("{} BETWEEN '{from}' AND '{to}'", args[0]),
            "timeGroupAlias" => {
                let s = seconds(args[1]);
                format!("floor(extract(epoch from {})/{s})*{s} AS \"time\"", args[0])
            }
            other => panic!("the test does not expand $__{other}"),
        };
        out.replace_range(i..=close, &expanded);
    }
    out
}

struct Panels {
    promql: Vec<(String, String)>,
    sql: Vec<(String, String)>,
}

fn panels() -> Panels {
    let mut panels = Panels {
        promql: Vec::new(),
        sql: Vec::new(),
    };
    let mut dashboards = 0;
    for file in std::fs::read_dir(repo("deploy/grafana/dashboards")).expect("dashboards") {
        let path = file.expect("entry").path();
        let d: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        dashboards += 1;
        for p in d["panels"].as_array().expect("panels") {
            for t in p["targets"].as_array().expect("targets") {
                let title = format!("{} / {} ({})", d["title"], p["title"], t["refId"]);
                match (t["expr"].as_str(), t["rawSql"].as_str()) {
                    (Some(expr), None) => panels.promql.push((title, expr.to_owned())),
                    (None, Some(raw)) => panels.sql.push((title, raw.to_owned())),
                    _ => panic!("{title}: neither PromQL nor SQL"),
                }
            }
        }
    }
    assert!(dashboards >= 3 && panels.promql.len() >= 20 && panels.sql.len() >= 8);
    panels
}

async fn prom_query(http: &reqwest::Client, prom: &str, query: &str) -> Result<usize, String> {
    let r: Value = http
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", query)])
        .send()
        .await
        .map_err(|e| format!("prometheus unreachable: {e}"))?
        .json()
        .await
        .map_err(|e| format!("not JSON: {e}"))?;
    if r["status"] != "success" {
        return Err(format!("ERROR {}: {}", r["errorType"], r["error"]));
    }
    Ok(r["data"]["result"].as_array().map_or(0, Vec::len))
}

struct Checked<'a> {
    http: reqwest::Client,
    /// ailogs' base URL.
    base: String,
    prom: String,
    pg: PgConnection,
    panels: Panels,
    /// Metric names the dashboards and rules read.
    named: &'a BTreeSet<String>,
}

/// What is still missing (or wrong): empty once every panel and rule answers with data.
async fn missing(c: &mut Checked<'_>) -> Vec<String> {
    let (http, prom, panels) = (&c.http, c.prom.as_str(), &c.panels);
    let mut missing = Vec::new();
    let exposed = match http.get(format!("{}/metrics", c.base)).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => return vec![format!("ailogs unreachable: {e}")],
    };
    for name in c.named {
        // A labelled family is served once its first series exists.
        if !exposed.lines().any(|l| l.starts_with(&format!("# TYPE {name} "))) {
            missing.push(format!("{name} is not served on /metrics"));
        }
    }
    for (title, expr) in &panels.promql {
        match prom_query(http, prom, &promql(expr)).await {
            Ok(0) => missing.push(format!("{title}: no data for {expr}")),
            Ok(_) => {}
            Err(e) => missing.push(format!("{title}: {e} for {expr}")),
        }
    }
    let rules: Value = match http.get(format!("{prom}/api/v1/rules")).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(e) => return vec![format!("prometheus unreachable: {e}")],
    };
    let rules: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    if rules.len() < 15 {
        missing.push(format!("prometheus has loaded {} rules", rules.len()));
    }
    for rule in rules {
        let name = rule["name"].as_str().unwrap_or_default();
        if rule["health"] != "ok" {
            missing.push(format!("rule {name}: health {} {}", rule["health"], rule["lastError"]));
        }
        match rule["type"].as_str() {
            // A recording rule's series exist once it has evaluated with data.
            Some("recording") => match prom_query(http, prom, name).await {
                Ok(0) => missing.push(format!("recording rule {name}: no data")),
                Ok(_) => {}
                Err(e) => missing.push(format!("recording rule {name}: {e}")),
            },
            // An alert is quiet here; its expression must evaluate, and every series it
            // reads must have data.
            _ => {
                let query = rule["query"].as_str().unwrap_or_default();
                if let Err(e) = prom_query(http, prom, query).await {
                    missing.push(format!("alert {name}: {e}"));
                }
                for metric in metric_names(query) {
                    let selector = format!("{{__name__=~\"{metric}(_count)?\"}}");
                    match prom_query(http, prom, &selector).await {
                        Ok(0) => missing.push(format!("alert {name}: no series of {metric}")),
                        Ok(_) => {}
                        Err(e) => missing.push(format!("alert {name}: {e} for {selector}")),
                    }
                }
            }
        }
    }
    for (title, raw) in &panels.sql {
        match sqlx::query(sqlx::AssertSqlSafe(sql(raw))).fetch_all(&mut c.pg).await {
            Ok(rows) if rows.is_empty() => missing.push(format!("{title}: no rows")),
            Ok(_) => {}
            Err(e) => missing.push(format!("{title}: SQL error {e}")),
        }
    }
    missing
}

/// `ailogs_*` metric names in a text (recording rules' names have colons and are left out).
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("ailogs_"))
        .map(|w| {
            ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| w.strip_suffix(s))
                .unwrap_or(w)
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_and_rule_answers_with_data_from_a_running_ailogs() {
    let db = TestDb::create().await;
    let kafka = Kafka::start(3);
    kafka
        .cluster
        .create_topic(ailogs::kafka::ALERTS_TOPIC, 1, 1)
        .expect("alerts topic");
    let dir = tempfile::tempdir().expect("tempdir");
    let (demo, addr) = start_demo(&db, &kafka, dir.path()).await;
    let base = format!("http://{addr}");
    let (prometheus, prom) = start_prometheus(&addr, dir.path());
    let http = reqwest::Client::new();
    drive(&http, &base).await;

    // Every name the dashboards and rules read must be served on /metrics.
    let mut named = metric_names(&std::fs::read_to_string(repo("deploy/prometheus/rules.yml")).expect("rules"));
    for file in std::fs::read_dir(repo("deploy/grafana/dashboards")).expect("dashboards") {
        named.extend(metric_names(
            &std::fs::read_to_string(file.expect("entry").path()).expect("read"),
        ));
    }
    assert!(named.len() >= 20, "{named:?}");
    let mut checked = Checked {
        http,
        base,
        prom,
        pg: PgConnection::connect(&db.url).await.expect("postgres"),
        panels: panels(),
        named: &named,
    };
    let deadline = Instant::now() + WAIT;
    let mut left = missing(&mut checked).await;
    while !left.is_empty() && Instant::now() < deadline {
        // Fail at once on an error: errors do not go away as data arrives.
        let errors: Vec<&String> = left
            .iter()
            .filter(|m| m.contains("ERROR") || m.contains("SQL error"))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        left = missing(&mut checked).await;
    }
    assert!(
        left.is_empty(),
        "after {WAIT:?}, still without data or failing:\n{left:#?}"
    );
    let usage_rows: i64 = sqlx::query("SELECT COUNT(*) FROM ai_workspace_usage")
        .fetch_one(&mut checked.pg)
        .await
        .expect("count")
        .get(0);
    assert!(usage_rows > 0);
    drop((checked, prometheus, demo));
    db.drop_db().await;
}
