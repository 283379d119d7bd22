//! Data protection and tenancy against the real stores: secrets pushed in lines reach no
//! store (Kafka's topics, Postgres' tables, Redis' keys, the dead letters, the API); keys kept
//! in Postgres are picked up and revoked within seconds; every keyed call is an audit row.

use std::time::Duration;

use ailogs::app::Application;
use ailogs::config::{Config, Role};
use serde_json::{Value, json};
use sqlx::Row;

use crate::env::{Kafka, TestDb, read_all, spool_dir, wait_until};

/// Vendors' documented example values (AWS, Stripe, jwt.io, the IBAN registry, Ofcom's
/// drama numbers) and the shapes careless loggers write.
const SECRETS: &[&str] = &[
    "AKIAIOSFODNN7EXAMPLE",
    "ann.lee@example.com",
    "4242 4242 4242 4242",
    "sk-proj-Xa8fK2mN9pQ4rT7vW1yZ3bC5dE6gH0jL",
    "abcdefghijklmnop0123456789",
    "GB82 WEST 1234 5698 7654 32",
    "+44 20 7946 0958",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
];

fn redis_url() -> String {
    std::env::var("AILOGS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn serve(config: Config) -> (String, ailogs::api::AppState, tokio::sync::oneshot::Sender<()>) {
    let app = Application::build(config).await.expect("app");
    let base = format!("http://{}", app.local_addr());
    let state = app.state();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    (base, state, tx)
}

/// Every row of every table of the public schema, as JSON text.
async fn all_rows(pg: &ailogs::store::postgres::Postgres) -> String {
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_all(pg.pool())
            .await
            .expect("tables");
    let mut out = String::new();
    for t in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM \"{t}\" t"
        )))
        .fetch_all(pg.pool())
        .await
        .expect("rows");
        for r in rows {
            out.push_str(&r.get::<String, _>(0));
            out.push('\n');
        }
    }
    out
}

/// Every value under `prefix` in Redis, whatever its type.
async fn all_redis(prefix: &str) -> String {
    let client = redis::Client::open(redis_url()).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.unwrap_or_else(|e| {
        panic!(
            "Redis is required for this test and is not reachable at {}: {e} (run scripts/services)",
            redis_url()
        )
    });
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    let mut out = String::new();
    for k in keys {
        let kind: String = redis::cmd("TYPE").arg(&k).query_async(&mut conn).await.expect("type");
        let dump: redis::Value = match kind.as_str() {
            "stream" => {
                redis::cmd("XRANGE")
                    .arg(&k)
                    .arg("-")
                    .arg("+")
                    .query_async(&mut conn)
                    .await
            }
            "string" => redis::cmd("GET").arg(&k).query_async(&mut conn).await,
            "hash" => redis::cmd("HGETALL").arg(&k).query_async(&mut conn).await,
            "zset" => redis::cmd("ZRANGE").arg(&k).arg(0).arg(-1).query_async(&mut conn).await,
            "set" => redis::cmd("SMEMBERS").arg(&k).query_async(&mut conn).await,
            "list" => redis::cmd("LRANGE").arg(&k).arg(0).arg(-1).query_async(&mut conn).await,
            _ => Ok(redis::Value::Nil),
        }
        .expect("read key");
        out.push_str(&format!("{k} {}\n", text_of(&dump)));
    }
    out
}

/// A Redis value's strings, as text (a byte string's `Debug` would hide them as numbers).
fn text_of(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().map(text_of).collect::<Vec<_>>().join(" ")
        }
        redis::Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{} {}", text_of(k), text_of(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => format!("{other:?}"),
    }
}

fn assert_clean(store: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{s:?} reached {store}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_pushed_in_lines_reach_no_store() {
    let db = TestDb::create().await;
    let pg = db.pg().await;
    ailogs::commands::migrate(&pg).await.expect("migrate");
    let kafka = Kafka::start(2);
    let prefix = format!("ailogs-mask-{}", uuid::Uuid::new_v4().simple());
    let mut config = crate::env::kafka_ingest_config(&kafka.brokers, spool_dir());
    config.database_url = Some(db.url.clone().into());
    config.redis_url = Some(redis_url().into());
    config.redis_prefix = prefix.clone();
    config.kafka.batch_max_wait_ms = 50;
    let (base, _state, stop) = serve(config).await;
    let now = chrono::Utc::now().timestamp_nanos_opt().expect("now");
    let client = reqwest::Client::new();
    // An AI request whose error, fields and message carry every secret; a plain line; and
    // structured metadata and a label value with one.
    let request = json!({
        "level": "error", "service": "gateway", "message": format!("user {} paid with {} from {}", SECRETS[1], SECRETS[2], SECRETS[6]),
        "workspace_id": "ws-a", "conversation_id": "conv-1", "correlation_id": "req-1", "user_id": SECRETS[1],
        "model": "gpt-4o", "input_tokens": 10, "output_tokens": 2, "success": false,
        "error": format!("provider refused key {} (aws {})", SECRETS[3], SECRETS[0]),
        "auth_header": format!("Bearer {}", SECRETS[4]), "iban": SECRETS[5], "token": SECRETS[7],
    });
    let body = json!({"streams": [{
        "stream": {"app": "gateway", "owner": SECRETS[1]},
        "values": [
            [now.to_string(), request.to_string()],
            [(now + 1).to_string(), format!("plain line from {} with Authorization: Bearer {}", SECRETS[1], SECRETS[4]), {"caller": SECRETS[0]}],
        ],
    }]});
    let resp = client
        .post(format!("{base}/loki/api/v1/push"))
        .json(&body)
        .send()
        .await
        .expect("push");
    assert_eq!(resp.status().as_u16(), 204, "{}", resp.text().await.unwrap_or_default());
    // An NDJSON line refused (not an object) is dead-lettered: masked as well.
    let refused = format!("[\"not an object\", \"{}\", \"{}\"]\n", SECRETS[1], SECRETS[3]);
    let resp = client
        .post(format!("{base}/api/v1/ai_logs/ingest"))
        .body(refused)
        .send()
        .await
        .expect("ndjson");
    assert_eq!(resp.status().as_u16(), 400);

    wait_until("the request in ai_operations", Duration::from_secs(60), || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM ai_operations")
            .fetch_one(pg.pool())
            .await
            .unwrap_or(0)
            == 1
    })
    .await;
    let rows = all_rows(&pg).await;
    assert_clean("Postgres", &rows);
    assert!(
        rows.contains("<aws_key:") && rows.contains("<openai_key:"),
        "masks are kept: {rows}"
    );
    let raw: Vec<String> = read_all(&kafka.brokers, ailogs::kafka::RAW_TOPIC, 2)
        .into_iter()
        .map(|p| String::from_utf8_lossy(&p).into_owned())
        .collect();
    assert_eq!(raw.len(), 2);
    assert_clean("Kafka ai-logs.raw", &raw.join("\n"));
    assert!(raw.join("\n").contains("<email:"));
    let lines = read_all(&kafka.brokers, ailogs::kafka::LINES_TOPIC, 3);
    assert_clean("Kafka ai-logs.lines", &String::from_utf8_lossy(&lines.concat()));
    wait_until("the lines in Redis", Duration::from_secs(30), || async {
        all_redis(&prefix).await.contains("<email:")
    })
    .await;
    assert_clean("Redis", &all_redis(&prefix).await);
    for path in [
        "/api/v1/ai_logs/dead_letters",
        "/api/v1/ai_logs/query?time_range=1h&verbosity=detailed",
    ] {
        let text = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("text");
        assert_clean(path, &text);
        assert!(text.contains("<email:"), "{path}: {text}");
    }
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    for rule in [
        "email",
        "card",
        "aws_key",
        "openai_key",
        "bearer",
        "iban",
        "phone",
        "jwt",
    ] {
        assert!(
            metrics.contains(&format!("ailogs_masked_total{{rule=\"{rule}\"}}")),
            "{rule} counted: {metrics}"
        );
    }
    let _ = stop.send(());
    db.drop_db().await;
}

/// Runs `ailogs ARGS` against the test database.
fn cli(db_url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ailogs"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AILOGS_DATABASE_URL", db_url)
        .output()
        .unwrap_or_else(|e| panic!("ailogs {args:?}: {e}"))
}

async fn status(client: &reqwest::Client, base: &str, key: &str) -> u16 {
    client
        .get(format!("{base}/api/v1/ai_logs/query?time_range=5m"))
        .bearer_auth(key)
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16()
}

#[tokio::test]
async fn keys_in_postgres_are_picked_up_and_revoked_within_seconds_and_calls_are_audited() {
    let db = TestDb::create().await;
    let pg = db.pg().await;
    ailogs::commands::migrate(&pg).await.expect("migrate");
    // An admin key in the config, so the server is keyed from the start.
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: Some(db.url.clone().into()),
        ..Config::default()
    };
    config.auth.reload_s = 1;
    let (admin, entry) = ailogs::auth::generate_entry("ops", Role::Admin, None);
    config.auth.api_keys.push(entry);
    let (base, _state, stop) = serve(config).await;
    let client = reqwest::Client::new();

    // `ailogs api-key new` with the database: the key is printed once and stored hashed.
    let out = cli(
        &db.url,
        &[
            "api-key",
            "new",
            "--name",
            "agent-a",
            "--role",
            "reader",
            "--workspace",
            "ws-a",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).expect("utf8").trim().to_owned();
    assert!(key.starts_with("ailk_"), "{key}");
    let stored: String = sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE name = 'agent-a'")
        .fetch_one(pg.pool())
        .await
        .expect("row");
    assert!(!stored.contains(&key) && stored.len() == 64, "only the hash is stored");
    wait_until("the new key to be accepted", Duration::from_secs(10), || async {
        status(&client, &base, &key).await == 200
    })
    .await;
    // Its scope holds: another workspace is refused.
    let other = client
        .get(format!("{base}/api/v1/ai_logs/workspace/ws-b/summary"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("sent");
    assert_eq!(other.status().as_u16(), 403);
    let list = cli(&db.url, &["api-key", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(listed[0]["name"], "agent-a");
    assert_eq!(listed[0]["role"], "reader");
    assert_eq!(listed[0]["workspaces"], json!(["ws-a"]));
    assert!(!String::from_utf8_lossy(&list.stdout).contains(&key));

    let revoke = cli(&db.url, &["api-key", "revoke", "agent-a"]);
    assert!(revoke.status.success(), "{}", String::from_utf8_lossy(&revoke.stderr));
    wait_until("the revoked key to be refused", Duration::from_secs(10), || async {
        status(&client, &base, &key).await == 401
    })
    .await;

    // The calls above are audit rows: written in batches, readable with `ailogs audit`.
    wait_until("the audit rows", Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM ai_query_history WHERE key_name = 'agent-a' AND status = 403",
        )
        .fetch_one(pg.pool())
        .await
        .unwrap_or(0)
            == 1
    })
    .await;
    let audit = cli(&db.url, &["audit", "--key", "agent-a", "--json"]);
    let rows: Value = serde_json::from_slice(&audit.stdout).expect("json");
    let rows = rows.as_array().expect("rows");
    let summary = rows
        .iter()
        .find(|r| r["endpoint"] == "/api/v1/ai_logs/workspace/{id}/summary")
        .expect("the summary call");
    assert_eq!(summary["status"], 403);
    assert_eq!(summary["scope"], json!(["ws-a"]));
    assert!(summary["key_id"].is_i64());
    let query = rows
        .iter()
        .find(|r| r["endpoint"] == "/api/v1/ai_logs/query" && r["status"] == 200)
        .expect("a query call");
    assert_eq!(query["params"]["time_range"], "5m");
    assert!(query["returned"].is_u64(), "{query}");
    let admin_view = client
        .get(format!("{base}/api/v1/ai_logs/audit?key=agent-a"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("sent");
    let admin_view: Value = admin_view.json().await.expect("json");
    assert_eq!(admin_view["source"], "postgres");
    assert!(!admin_view["calls"].as_array().expect("calls").is_empty());
    let _ = stop.send(());
    db.drop_db().await;
}

#[tokio::test]
async fn api_replicas_share_each_key_s_limit_through_redis() {
    let prefix = format!("ailogs-limits-{}", uuid::Uuid::new_v4().simple());
    let views = ailogs::store::redis::RedisViews::new(&redis_url(), &prefix, Default::default()).expect("redis url");
    let config = ailogs::config::RateLimitConfig {
        query_per_minute: 600,
        ..Default::default()
    };
    let replicas: Vec<_> = (0..2)
        .map(|_| std::sync::Arc::new(ailogs::api::limits::Limiters::new(config.clone())))
        .collect();
    let tasks: Vec<_> = replicas
        .iter()
        .map(|l| {
            tokio::spawn(ailogs::api::limits::announce_replicas(
                views.clone(),
                std::sync::Arc::clone(l),
            ))
        })
        .collect();
    let key = ailogs::auth::Principal::open();
    wait_until("both replicas to see each other", Duration::from_secs(15), || async {
        replicas.iter().all(|l| l.replicas() == 2)
    })
    .await;
    for l in &replicas {
        assert_eq!(
            l.per_minute(&key, ailogs::api::auth::RouteClass::Query),
            300,
            "half of 600 each"
        );
    }
    for t in tasks {
        t.abort();
    }
}
