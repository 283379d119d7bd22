//! The HTTP API: agent queries, health, metrics and the ingest endpoints, on one router.

mod aggregates;
mod analyze;
mod audit;
pub mod auth;
mod correlate;
mod doc_types;
pub mod error;
mod export;
mod fallback;
mod health;
pub mod limits;
mod middleware;
mod openapi;
mod ops;
mod params;
mod patterns;
mod push;
mod query;
mod stream;
mod usage;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use crate::config::Config;
use crate::consume::embedded::IngestQueue;
use crate::metrics::Metrics;
use crate::store::dead_letters::DeadLetters;
use crate::store::memory::MemoryViews;

/// Shared by every handler.
pub struct State {
    pub config: Config,
    pub queue: Arc<IngestQueue>,
    pub views: Arc<MemoryViews>,
    pub dead_letters: Arc<DeadLetters>,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    pub workers: usize,
    /// Set when Kafka is configured: pushes are produced to `ai-logs.raw` instead of queued.
    pub kafka: Option<Arc<crate::ingest::kafka::KafkaIngest>>,
    /// Whether a pipeline consumer (Kafka -> Postgres) runs in this process.
    pub consumer_running: bool,
    /// Set when Postgres is configured: usage and conversation endpoints read it.
    pub pg: Option<crate::store::postgres::Postgres>,
    /// Set when Redis is configured: /query reads its hot views.
    pub redis: Option<crate::store::redis::RedisViews>,
    /// Prices for usage computed from the in-memory views.
    pub prices: Arc<ailogs_pipeline::usage::PriceBook>,
    /// The pattern catalog (shipped + custom) the workers match with.
    pub patterns: Arc<crate::patterns::PatternService>,
    /// The published side of this process's core (templates, alerts, correlation): read
    /// without the lock the workers hold.
    pub core: ailogs_pipeline::CoreReader,
    /// Lines and alerts of this process, fanned out to stream subscribers.
    pub hub: Arc<crate::stream::Hub>,
    /// Stream subscribers per process and per key.
    pub stream_slots: Arc<crate::stream::Slots>,
    /// With Kafka: whether the stream's tail of the topics is reading.
    pub stream_tail: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// API keys from the config and Postgres (none at all: the API is open).
    pub api_keys: Arc<crate::auth::KeyStore>,
    /// Token buckets per key and route class.
    pub limits: Arc<limits::Limiters>,
    /// Every keyed call, batched to Postgres and kept in memory.
    pub audit: Arc<crate::audit::AuditLog>,
    /// Secrets and personal data masked in pushed lines (None: `masking.enabled = false`).
    pub masking: Option<Arc<crate::masking::Masking>>,
    /// Queries that scan lines (Redis, or filters the view indexes do not keep) run at most
    /// this many at once; beyond, they are answered 503 rather than queued without bound.
    pub scans: Arc<tokio::sync::Semaphore>,
    /// Set when Loki is configured: what the views do not hold is read from it.
    pub loki: Option<Arc<crate::loki::LokiFallback>>,
}

pub type AppState = Arc<State>;

pub(crate) use crate::clock::now_ns;

pub const STREAM_PATH: &str = "/api/v1/ai_logs/stream";

/// Where MCP (streamable HTTP) is served.
pub const MCP_PATH: &str = "/mcp";

pub const X_CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

/// Requests slower than this are answered 408 so they cannot hold up shutdown.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub fn router(state: AppState) -> Router {
    let routes = routes();
    // MCP tools call the REST handlers in-process, through the same key check, limits and
    // audit.
    let api_for_tools = guarded(routes.clone(), &state).with_state(Arc::clone(&state));
    let mcp = crate::mcp::http_service(api_for_tools, state.api_keys.enabled());
    guarded(routes.route_service(MCP_PATH, mcp), &state)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            middleware::track_http,
        ))
        // Push handlers enforce `ingest.max_body_bytes` themselves, answering 413 as Loki does.
        .layer(DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(PropagateRequestIdLayer::new(X_CORRELATION_ID))
        .layer(SetRequestIdLayer::new(X_CORRELATION_ID, MakeRequestUuid))
        .with_state(state)
}

/// From the outside in: the key check (it names the caller), the audit (so refusals by role
/// or limit are recorded), the role check, then the caller's rate limit.
fn guarded(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    routes
        .layer(axum::middleware::from_fn_with_state(Arc::clone(state), limits::enforce))
        .layer(axum::middleware::from_fn(auth::authorize))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(state), audit::record))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(state), auth::identify))
}

/// Every REST route's path (the OpenAPI test checks each is documented).
#[cfg(test)]
pub(crate) const ROUTES: &[&str] = &[
    "/",
    "/api/v1/ai_logs/health",
    "/api/v1/ai_logs/query",
    "/api/v1/ai_logs/dead_letters",
    "/api/v1/ai_logs/workspace/{id}/summary",
    "/api/v1/ai_logs/conversations/{id}",
    "/api/v1/ai_logs/analyze",
    "/api/v1/ai_logs/audit",
    "/api/v1/ai_logs/correlate",
    "/api/v1/ai_logs/export",
    "/api/v1/ai_logs/metrics",
    "/api/v1/ai_logs/openapi.json",
    STREAM_PATH,
    "/api/v1/ai_logs/patterns",
    "/api/v1/ai_logs/patterns/{id}",
    "/api/v1/ai_logs/ingest",
    "/loki/api/v1/push",
    "/metrics",
];

/// Every REST route, without the layers.
fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(ops::index))
        .route("/api/v1/ai_logs/health", get(health::health))
        .route("/api/v1/ai_logs/query", get(query::query))
        .route("/api/v1/ai_logs/dead_letters", get(ops::dead_letters))
        .route("/api/v1/ai_logs/workspace/{id}/summary", get(usage::workspace))
        .route("/api/v1/ai_logs/conversations/{id}", get(usage::conversation))
        .route("/api/v1/ai_logs/analyze", get(analyze::analyze))
        .route("/api/v1/ai_logs/correlate", get(correlate::correlate))
        .route("/api/v1/ai_logs/audit", get(audit::list))
        .route("/api/v1/ai_logs/export", post(export::export))
        .route("/api/v1/ai_logs/metrics", get(aggregates::metrics))
        .route("/api/v1/ai_logs/openapi.json", get(openapi::openapi_json))
        .route(STREAM_PATH, get(stream::stream))
        .route("/api/v1/ai_logs/patterns", get(patterns::list).post(patterns::create))
        .route(
            "/api/v1/ai_logs/patterns/{id}",
            axum::routing::put(patterns::replace).delete(patterns::remove),
        )
        .route("/api/v1/ai_logs/ingest", post(push::ndjson))
        .route("/loki/api/v1/push", post(push::loki_push))
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found)
}
