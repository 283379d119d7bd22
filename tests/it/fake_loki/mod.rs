//! A fake Loki that behaves as `../shared/LOKI.md` §3 documents `query_range` and `labels`:
//! parameter parsing (timestamps in s, ns, float s or RFC3339; `since`; `limit` default 100
//! and the 5000 cap with its 400 text; `end` exclusive; `direction`), newest-first answers
//! across streams, `categorize-labels`, plain-text errors, `X-Scope-OrgID`. It honours a real
//! subset of LogQL (`logql.rs`) and refuses anything else with a 400, so a query it does not
//! understand cannot pass by returning everything.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;
use serde_json::{Value, json};

mod logql;
use logql::parse_logql;

#[derive(Debug, Clone)]
pub struct Entry {
    pub ts_ns: i64,
    pub line: String,
    pub metadata: BTreeMap<String, String>,
}

/// How the fake misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    Normal,
    /// Every request answers 500.
    Down,
    /// Every request answers 429.
    RateLimited,
    /// Every request waits this long before answering.
    Slow(Duration),
}

/// A stream: its labels and entries.
type Stream = (BTreeMap<String, String>, Vec<Entry>);

pub struct Fake {
    streams: Mutex<Vec<Stream>>,
    pub max_entries: usize,
    pub behaviour: Mutex<Behaviour>,
    pub tenant: Option<String>,
    pub requests: AtomicUsize,
    pub queries: Mutex<Vec<String>>,
}

pub struct FakeLoki {
    pub addr: SocketAddr,
    pub fake: Arc<Fake>,
    scheme: &'static str,
}

impl FakeLoki {
    pub async fn start(max_entries: usize, tenant: Option<&str>) -> Self {
        let (fake, app) = Self::app(max_entries, tenant);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeLoki {
            addr,
            fake,
            scheme: "http",
        }
    }

    /// Behind TLS, with a certificate for `localhost` signed by a CA of its own (as a private
    /// CA signs an internal Loki); returns the CA's certificate as PEM.
    pub async fn start_tls(max_entries: usize) -> (Self, String) {
        let (fake, app) = Self::app(max_entries, None);
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "fake Loki test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .signed_by(&key, &ca)
            .expect("certificate");
        let config =
            axum_server::tls_rustls::RustlsConfig::from_pem(cert.pem().into_bytes(), key.serialize_pem().into_bytes())
                .await
                .expect("TLS config");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let server = axum_server::from_tcp_rustls(listener, config).expect("TLS server");
        tokio::spawn(async move { server.serve(app.into_make_service()).await });
        let fake = FakeLoki {
            addr,
            fake,
            scheme: "https",
        };
        (fake, ca.pem())
    }

    fn app(max_entries: usize, tenant: Option<&str>) -> (Arc<Fake>, Router) {
        let fake = Arc::new(Fake {
            streams: Mutex::new(Vec::new()),
            max_entries,
            behaviour: Mutex::new(Behaviour::Normal),
            tenant: tenant.map(str::to_owned),
            requests: AtomicUsize::new(0),
            queries: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/loki/api/v1/query_range", get(query_range))
            .route("/loki/api/v1/labels", get(labels))
            .with_state(Arc::clone(&fake));
        (fake, app)
    }

    /// Over TLS the name is `localhost`, the name its certificate holds.
    pub fn url(&self) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}", self.addr.port()),
            _ => format!("http://{}", self.addr),
        }
    }

    /// Adds entries to the stream with these labels (created if new).
    pub fn push(&self, labels: &[(&str, &str)], entries: Vec<Entry>) {
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut streams = self.fake.streams.lock();
        match streams.iter_mut().find(|(l, _)| *l == labels) {
            Some((_, e)) => e.extend(entries),
            None => streams.push((labels, entries)),
        }
    }

    pub fn set(&self, b: Behaviour) {
        *self.fake.behaviour.lock() = b;
    }

    pub fn requests(&self) -> usize {
        self.fake.requests.load(Ordering::SeqCst)
    }
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [
            ("content-type", "text/plain; charset=utf-8"),
            ("x-content-type-options", "nosniff"),
        ],
        msg.into(),
    )
        .into_response()
}

async fn gate(fake: &Fake, headers: &HeaderMap) -> Option<Response> {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    let behaviour = *fake.behaviour.lock();
    match behaviour {
        Behaviour::Down => return Some(text(StatusCode::INTERNAL_SERVER_ERROR, "rpc error: code = Unavailable")),
        Behaviour::RateLimited => return Some(text(StatusCode::TOO_MANY_REQUESTS, "too many outstanding requests")),
        Behaviour::Slow(d) => tokio::time::sleep(d).await,
        Behaviour::Normal => {}
    }
    if let Some(t) = &fake.tenant
        && headers.get("x-scope-orgid").and_then(|v| v.to_str().ok()) != Some(t.as_str())
    {
        return Some(text(StatusCode::UNAUTHORIZED, "no org id"));
    }
    None
}

async fn labels(State(fake): State<Arc<Fake>>, headers: HeaderMap) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    let mut names: Vec<String> = fake
        .streams
        .lock()
        .iter()
        .flat_map(|(l, _)| l.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    axum::Json(json!({"status": "success", "data": names})).into_response()
}

async fn query_range(State(fake): State<Arc<Fake>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    let params: BTreeMap<String, String> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    match answer(&fake, &params, &headers) {
        Ok(v) => axum::Json(v).into_response(),
        Err(msg) => text(StatusCode::BAD_REQUEST, msg),
    }
}

fn answer(fake: &Fake, p: &BTreeMap<String, String>, headers: &HeaderMap) -> Result<Value, String> {
    let query = p.get("query").ok_or("query parameter is required")?;
    fake.queries.lock().push(query.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos() as i64;
    let end = match p.get("end") {
        Some(v) => timestamp(v)?,
        None => now,
    };
    let since = p.get("since").map_or(Ok(3_600_000_000_000), |s| duration_ns(s))?;
    let start = match p.get("start") {
        Some(v) => timestamp(v)?,
        None => end - since,
    };
    if end < start {
        return Err("end timestamp must not be before or equal to start time".into());
    }
    let limit: i64 = match p.get("limit") {
        Some(v) => v.parse().map_err(|_| format!("invalid limit: {v}"))?,
        None => 100,
    };
    if limit <= 0 {
        return Err("limit must be a positive value".into());
    }
    if limit as usize > fake.max_entries {
        return Err(format!(
            "max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {})",
            fake.max_entries
        ));
    }
    let backward = match p.get("direction").map(|d| d.to_ascii_lowercase()) {
        None => true,
        Some(d) if d == "backward" => true,
        Some(d) if d == "forward" => false,
        Some(d) => return Err(format!("invalid direction: {d}")),
    };
    let q = parse_logql(query)?;
    let categorize = headers
        .get("x-loki-response-encoding-flags")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|f| f.trim() == "categorize-labels"));
    let mut hits: Vec<(&BTreeMap<String, String>, &Entry)> = Vec::new();
    let streams = fake.streams.lock();
    for (labels, entries) in streams.iter() {
        if !q.selects(labels) {
            continue;
        }
        for e in entries {
            // `start` inclusive, `end` exclusive (LOKI.md §3.1).
            if e.ts_ns >= start && e.ts_ns < end && q.keeps(labels, e) {
                hits.push((labels, e));
            }
        }
    }
    hits.sort_by_key(|(_, e)| e.ts_ns);
    if backward {
        hits.reverse();
    }
    hits.truncate(limit as usize);
    // Grouped by stream in answer order; without categorize-labels the metadata joins the
    // stream labels (and so splits streams).
    let mut result: Vec<(BTreeMap<String, String>, Vec<Value>)> = Vec::new();
    for (labels, e) in hits {
        let (key, value) = if categorize {
            (
                labels.clone(),
                json!([e.ts_ns.to_string(), e.line, {"structuredMetadata": e.metadata}]),
            )
        } else {
            let mut l = labels.clone();
            l.extend(e.metadata.clone());
            (l, json!([e.ts_ns.to_string(), e.line]))
        };
        match result.iter_mut().find(|(l, _)| *l == key) {
            Some((_, v)) => v.push(value),
            None => result.push((key, vec![value])),
        }
    }
    let result: Vec<Value> = result
        .into_iter()
        .map(|(l, v)| json!({"stream": l, "values": v}))
        .collect();
    let mut data = json!({"resultType": "streams", "result": result, "stats": {"summary": {}}});
    if categorize {
        data["encodingFlags"] = json!(["categorize-labels"]);
    }
    Ok(json!({"status": "success", "data": data}))
}

/// ≤10 digits: seconds; longer: ns; with `.`: float seconds; else RFC3339.
fn timestamp(v: &str) -> Result<i64, String> {
    if let Ok(n) = v.parse::<i64>() {
        return Ok(if v.trim_start_matches('-').len() <= 10 {
            n * 1_000_000_000
        } else {
            n
        });
    }
    if v.contains('.')
        && let Ok(f) = v.parse::<f64>()
    {
        return Ok((f * 1e3).round() as i64 * 1_000_000);
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| format!("cannot parse \"{v}\" to a valid timestamp"))
}

fn duration_ns(v: &str) -> Result<i64, String> {
    let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: i64 = n.parse().map_err(|_| format!("invalid duration {v}"))?;
    let s = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("invalid duration {v}")),
    };
    Ok(n * s * 1_000_000_000)
}
