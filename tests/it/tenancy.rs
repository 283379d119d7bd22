//! Tenancy: every route of the OpenAPI document, and every MCP tool, called with each kind of
//! key (admin, reader of workspace A, reader of B, ingest-only, revoked, none). A reader of A
//! must learn nothing of B (nor of lines without a workspace) from any answer. The routes come
//! from the served document, so a new route without a probe here fails the test.

use std::collections::BTreeSet;

use ailogs::auth::{Principal, StoredKey};
use ailogs::config::Role;
use serde_json::{Value, json};

use crate::harness::{TestApp, now_ns, test_config};

/// What identifies B's data (and data of no workspace) in an answer.
const B_MARKERS: &[&str] = &["only-in-b", "ws-b", "conv-b", "user-b", "no-workspace-line"];
const A_MARKERS: &[&str] = &["only-in-a", "ws-a", "conv-a", "user-a", "no-workspace-line"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Admin,
    ReaderA,
    ReaderB,
    Ingest,
    Revoked,
    Nobody,
}

const EVERYONE: [Who; 6] = [
    Who::Admin,
    Who::ReaderA,
    Who::ReaderB,
    Who::Ingest,
    Who::Revoked,
    Who::Nobody,
];

pub struct Tenants {
    pub app: TestApp,
    admin: String,
    reader_a: String,
    reader_b: String,
    ingest: String,
    revoked: String,
}

impl Tenants {
    pub fn key(&self, who: Who) -> Option<&str> {
        match who {
            Who::Admin => Some(&self.admin),
            Who::ReaderA => Some(&self.reader_a),
            Who::ReaderB => Some(&self.reader_b),
            Who::Ingest => Some(&self.ingest),
            Who::Revoked => Some(&self.revoked),
            Who::Nobody => None,
        }
    }

    pub async fn call(&self, who: Who, method: &str, path: &str, body: Option<(&str, String)>) -> (u16, String) {
        let mut req = self
            .app
            .client
            .request(method.parse().expect("method"), self.app.url(path));
        if let Some(key) = self.key(who) {
            req = req.bearer_auth(key);
        }
        if let Some((content_type, body)) = body {
            req = req.header("content-type", content_type).body(body);
        }
        let resp = req.send().await.expect("request sent");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    }
}

fn line(ws: Option<&str>, marker: &str, level: &str, extra: Value) -> String {
    let mut v = json!({
        "timestamp": crate::harness::rfc3339(now_ns() - 5_000_000_000),
        "level": level,
        "service": "api",
        "message": format!("{marker} upstream timeout after 30s"),
        "correlation_id": "req-shared",
    });
    if let Some(ws) = ws {
        v["workspace_id"] = json!(ws);
    }
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v.to_string()
}

/// A server with the five keys, holding lines of A, of B and of no workspace.
pub async fn tenants() -> Tenants {
    let mut config = test_config();
    config.rate_limits.query_per_minute = 1_000_000;
    config.rate_limits.export_per_minute = 1_000_000;
    config.rate_limits.push_per_minute = 1_000_000;
    let mut key = |name: &str, role: Role, ws: Option<&str>| {
        let (key, entry) = ailogs::auth::generate_entry(name, role, ws.map(|w| vec![w.to_owned()]));
        config.auth.api_keys.push(entry);
        key
    };
    let admin = key("admin", Role::Admin, None);
    let reader_a = key("reader-a", Role::Reader, Some("ws-a"));
    let reader_b = key("reader-b", Role::Reader, Some("ws-b"));
    let ingest = key("shipper", Role::Ingest, None);
    let app = TestApp::with_config(config).await;
    // A key kept in Postgres, then revoked: the store is replaced as the reload replaces it.
    let (revoked, sha) = ailogs::auth::generate();
    let mut digest = [0u8; 32];
    hex::decode_to_slice(&sha, &mut digest).expect("hex");
    app.state.api_keys.replace_stored(vec![StoredKey {
        sha256: digest,
        principal: Principal {
            key_id: Some(1),
            ..Principal::open()
        },
    }]);
    let t = Tenants {
        app,
        admin,
        reader_a,
        reader_b,
        ingest,
        revoked,
    };
    assert_eq!(
        t.call(Who::Revoked, "GET", "/api/v1/ai_logs/patterns", None).await.0,
        200
    );
    t.app.state.api_keys.replace_stored(Vec::new());

    let request = |ws: &str, conv: &str, user: &str| {
        json!({"conversation_id": conv, "user_id": user, "model": "gpt-4o", "input_tokens": 100,
               "output_tokens": 20, "duration_ms": 850, "request_type": "chat", "success": false,
               "error": format!("{ws} provider returned 429 rate limit exceeded")})
    };
    let lines = [
        line(Some("ws-a"), "only-in-a", "error", request("ws-a", "conv-a", "user-a")),
        line(Some("ws-a"), "only-in-a", "info", json!({"conversation_id": "conv-a"})),
        line(Some("ws-b"), "only-in-b", "error", request("ws-b", "conv-b", "user-b")),
        line(Some("ws-b"), "only-in-b", "info", json!({"conversation_id": "conv-b"})),
        line(None, "no-workspace-line", "error", json!({})),
    ];
    let values: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| json!([(now_ns() - 5_000_000_000 + i as i64).to_string(), l]))
        .collect();
    let body = json!({"streams": [{"stream": {"service_name": "api"}, "values": values}]});
    let pushed = t
        .call(
            Who::Ingest,
            "POST",
            "/loki/api/v1/push",
            Some(("application/json", body.to_string())),
        )
        .await;
    assert_eq!(pushed.0, 204, "{}", pushed.1);
    t.app.wait_inserted(lines.len() as u64).await;
    // Dead letters: lines refused for a timestamp far in the future, one per workspace.
    let dead: String = ["ws-a", "ws-b"]
        .iter()
        .map(|ws| {
            let marker = if *ws == "ws-a" { "only-in-a" } else { "only-in-b" };
            format!(
                "{}\n",
                json!({"timestamp": "2200-01-01T00:00:00Z", "level": "error", "message": format!("dead {marker}"), "workspace_id": ws})
            )
        })
        .collect();
    let (status, text) = t
        .call(
            Who::Ingest,
            "POST",
            "/api/v1/ai_logs/ingest",
            Some(("application/x-ndjson", dead)),
        )
        .await;
    assert!(status == 200 || status == 400, "{status} {text}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while t
        .call(Who::Admin, "GET", "/api/v1/ai_logs/dead_letters", None)
        .await
        .1
        .matches("dead only-in")
        .count()
        < 2
    {
        assert!(std::time::Instant::now() < deadline, "both lines were dead-lettered");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    t
}

/// One call of a route, and who may make it.
struct Probe {
    method: &'static str,
    /// As the OpenAPI document names it.
    route: &'static str,
    path: String,
    body: Option<(&'static str, String)>,
    /// The status each caller gets.
    status: fn(Who) -> u16,
    /// The request names B (or A): the answer may echo it, so only its status is checked.
    names_a_workspace: bool,
    /// Lines of every workspace are in the admin's answer (so the check above can fail).
    shows_lines: bool,
}

fn read(who: Who) -> u16 {
    match who {
        Who::Admin | Who::ReaderA | Who::ReaderB => 200,
        Who::Ingest => 403,
        Who::Revoked | Who::Nobody => 401,
    }
}

fn open(_: Who) -> u16 {
    200
}

fn probes() -> Vec<Probe> {
    let p = |method, route: &'static str, path: &str, status: fn(Who) -> u16| Probe {
        method,
        route,
        path: path.to_owned(),
        body: None,
        status,
        names_a_workspace: false,
        shows_lines: false,
    };
    let api = "/api/v1/ai_logs";
    let mut v = vec![
        p("GET", "/", "/", open),
        p("GET", "/metrics", "/metrics", open),
        p("GET", "/api/v1/ai_logs/health", &format!("{api}/health"), open),
        p("GET", "/api/v1/ai_logs/openapi.json", &format!("{api}/openapi.json"), open),
        Probe {
            shows_lines: true,
            ..p("GET", "/api/v1/ai_logs/query", &format!("{api}/query?time_range=1h&limit=1000&include_context=5"), read)
        },
        p("GET", "/api/v1/ai_logs/query", &format!("{api}/query?mode=conversation&time_range=1h"), read),
        p("GET", "/api/v1/ai_logs/query", &format!("{api}/query?aggregation=by_error&time_range=1h"), read),
        p("GET", "/api/v1/ai_logs/query", &format!("{api}/query?correlation_id=req-shared&include_context=3"), read),
        Probe {
            names_a_workspace: true,
            ..p("GET", "/api/v1/ai_logs/query", &format!("{api}/query?workspace_id=ws-b"), |w| match w {
                Who::ReaderA => 403,
                w => read(w),
            })
        },
        Probe {
            shows_lines: true,
            ..p("GET", "/api/v1/ai_logs/dead_letters", &format!("{api}/dead_letters"), read)
        },
        Probe {
            names_a_workspace: true,
            ..p("GET", "/api/v1/ai_logs/workspace/{id}/summary", &format!("{api}/workspace/ws-b/summary"), |w| match w {
                Who::ReaderA => 403,
                w => read(w),
            })
        },
        Probe {
            names_a_workspace: true,
            ..p("GET", "/api/v1/ai_logs/workspace/{id}/summary", &format!("{api}/workspace/ws-a/summary"), |w| match w {
                Who::ReaderB => 403,
                w => read(w),
            })
        },
        Probe {
            names_a_workspace: true,
            ..p("GET", "/api/v1/ai_logs/conversations/{id}", &format!("{api}/conversations/conv-b"), |w| match w {
                Who::ReaderA => 404,
                w => read(w),
            })
        },
        p("GET", "/api/v1/ai_logs/analyze", &format!("{api}/analyze?time_range=1h"), read),
        Probe {
            shows_lines: true,
            ..p("GET", "/api/v1/ai_logs/correlate", &format!("{api}/correlate?correlation_id=req-shared"), read)
        },
        p("GET", "/api/v1/ai_logs/correlate", &format!("{api}/correlate?service=api"), |w| match w {
            Who::ReaderA | Who::ReaderB => 403,
            w => read(w),
        }),
        Probe {
            body: Some(("application/json", json!({"time_range": "1h"}).to_string())),
            shows_lines: true,
            ..p("POST", "/api/v1/ai_logs/export", &format!("{api}/export"), read)
        },
        Probe {
            shows_lines: true,
            ..p("GET", "/api/v1/ai_logs/metrics", &format!("{api}/metrics?group_by=workspace"), read)
        },
        p("GET", "/api/v1/ai_logs/patterns", &format!("{api}/patterns"), read),
        Probe {
            body: Some(("application/json", "{}".into())),
            ..p("POST", "/api/v1/ai_logs/patterns", &format!("{api}/patterns"), admin_only(400))
        },
        Probe {
            body: Some(("application/json", "{}".into())),
            ..p("PUT", "/api/v1/ai_logs/patterns/{id}", &format!("{api}/patterns/nope"), admin_only(400))
        },
        p("DELETE", "/api/v1/ai_logs/patterns/{id}", &format!("{api}/patterns/nope"), admin_only(404)),
        p("GET", "/api/v1/ai_logs/audit", &format!("{api}/audit"), admin_only(200)),
        Probe {
            body: Some(("application/x-ndjson", "{\"message\":\"probe push\"}\n".into())),
            ..p("POST", "/api/v1/ai_logs/ingest", &format!("{api}/ingest"), |w| push(w, 200))
        },
        Probe {
            body: Some((
                "application/json",
                json!({"streams": [{"stream": {"service_name": "probe"}, "values": [[now_ns().to_string(), "probe push"]]}]})
                    .to_string(),
            )),
            ..p("POST", "/loki/api/v1/push", "/loki/api/v1/push", |w| push(w, 204))
        },
        // Not an upgrade: the WebSocket layer refuses it whoever asks (the stream test below
        // covers what subscribers see).
        p("GET", "/api/v1/ai_logs/stream", &format!("{api}/stream"), |w| match w {
            Who::Revoked => 401,
            _ => 400,
        }),
    ];
    v.sort_by_key(|p| p.route);
    v
}

fn admin_only(admin: u16) -> fn(Who) -> u16 {
    match admin {
        400 => |w| if w == Who::Admin { 400 } else { refused_unless_reader(w) },
        404 => |w| if w == Who::Admin { 404 } else { refused_unless_reader(w) },
        _ => |w| if w == Who::Admin { 200 } else { refused_unless_reader(w) },
    }
}

fn refused_unless_reader(w: Who) -> u16 {
    match w {
        Who::Revoked | Who::Nobody => 401,
        _ => 403,
    }
}

fn push(w: Who, ok: u16) -> u16 {
    match w {
        Who::Admin | Who::Ingest => ok,
        Who::ReaderA | Who::ReaderB => 403,
        Who::Revoked | Who::Nobody => 401,
    }
}

/// What `who` must never see, and the workspaces whose data it must see where data is shown
/// (each as its markers: a line's text or the workspace id).
fn markers(who: Who) -> (&'static [&'static str], &'static [[&'static str; 2]]) {
    const A: [&str; 2] = ["only-in-a", "ws-a"];
    const B: [&str; 2] = ["only-in-b", "ws-b"];
    match who {
        Who::ReaderA => (B_MARKERS, &[A]),
        Who::ReaderB => (A_MARKERS, &[B]),
        Who::Admin => (&[], &[A, B]),
        _ => (&["only-in-a", "only-in-b", "no-workspace-line"], &[]),
    }
}

#[tokio::test]
async fn every_route_answers_each_key_with_only_its_workspaces() {
    let t = tenants().await;
    let probes = probes();
    // Every documented operation has a probe, and every probe a documented operation.
    let (_, doc) = t.app.get_json("/api/v1/ai_logs/openapi.json").await;
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
                .map(|m| (m.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let probed: BTreeSet<(String, String)> = probes
        .iter()
        .map(|p| (p.method.to_owned(), p.route.to_owned()))
        .collect();
    assert_eq!(
        documented, probed,
        "a route was added without a tenancy probe here (or a probe names no route)"
    );
    for probe in &probes {
        for who in EVERYONE {
            let (status, body) = t.call(who, probe.method, &probe.path, probe.body.clone()).await;
            let want = (probe.status)(who);
            assert_eq!(status, want, "{who:?} {} {}: {body}", probe.method, probe.path);
            if probe.names_a_workspace || probe.route == "/api/v1/ai_logs/openapi.json" {
                continue;
            }
            let (never, shown) = markers(who);
            for m in never {
                assert!(
                    !body.contains(m),
                    "{who:?} {} {} revealed {m:?}: {body}",
                    probe.method,
                    probe.path
                );
            }
            if probe.shows_lines && status == 200 {
                for m in shown {
                    assert!(
                        m.iter().any(|m| body.contains(m)),
                        "{who:?} {} {} lacks the data of {m:?}: {body}",
                        probe.method,
                        probe.path
                    );
                }
            }
        }
    }
    // Every call a key made is in the audit, refusals by role included (embedded: memory).
    let (status, audit) = t
        .call(Who::Admin, "GET", "/api/v1/ai_logs/audit?key=reader-a&limit=1000", None)
        .await;
    assert_eq!(status, 200, "{audit}");
    let audit: Value = serde_json::from_str(&audit).expect("json");
    assert_eq!(audit["source"], "memory");
    let calls = audit["calls"].as_array().expect("calls");
    let find = |method: &str, endpoint: &str, status: u16| {
        calls
            .iter()
            .find(|c| c["method"] == method && c["endpoint"] == endpoint && c["status"] == status)
            .unwrap_or_else(|| panic!("no audit row for {method} {endpoint} {status}: {calls:?}"))
    };
    assert_eq!(find("POST", "/api/v1/ai_logs/patterns", 403)["scope"], json!(["ws-a"]));
    let export = find("POST", "/api/v1/ai_logs/export", 200);
    assert_eq!(export["params"]["time_range"], "1h", "the body's filters are recorded");
    assert!(export["returned"].as_u64().is_some_and(|n| n > 0), "{export}");
    let query = find("GET", "/api/v1/ai_logs/query", 200);
    assert!(query["returned"].is_u64() && query["duration_ms"].is_f64(), "{query}");
    assert_eq!(
        find("GET", "/api/v1/ai_logs/workspace/{id}/summary", 403)["key_name"],
        "reader-a"
    );
    t.app.stop().await;
}
