//! `POST /api/v1/ai_logs/export`: every line a query's filters match, from every store the
//! query would read (Redis or the memory views, then Loki for the part they do not cover),
//! streamed as JSON, NDJSON or CSV, optionally gzipped.
//!
//! Memory stays bounded whatever the size: the matched lines are shared pointers into the
//! views (8 bytes each), and rows are rendered on a blocking thread into 64 KiB chunks that
//! wait on a channel of 8: a slow client slows the writer, a client that goes away stops it.

use std::io;
use std::sync::Arc;

use ailogs_pipeline::Enriched;
use ailogs_pipeline::export::{Column, Rows};
use ailogs_pipeline::loki::plan::{Coverage, merge};
use ailogs_pipeline::query::{self, ParamError, QuerySpec, Window};
use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;

mod write;

use super::error::ApiError;
use super::fallback;
use super::{AppState, now_ns};
use crate::audit::{BodyParams, Returned};
use crate::auth::Principal;
use crate::store::memory::Selection;
use write::{ChunkSink, write_lines};

/// Lines per service read from the Redis hot views (as `/query` does).
const REDIS_LINES: usize = 20_000;
const CHUNKS_IN_FLIGHT: usize = 8;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Json,
    #[default]
    Ndjson,
    Csv,
}

impl ExportFormat {
    fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Csv => "csv",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Json => "application/json",
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8; header=present",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Gzip,
}

/// The body: `/query`'s filters, plus what to write.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"time_range": "1h", "services": ["api"], "mode": "errors", "format": "csv", "fields": ["ts", "service", "message", "patterns", "cost_usd"], "compress": "gzip"}))]
pub struct ExportRequest {
    /// troubleshoot, performance, errors, audit or conversation, as `/query` filters them.
    /// Absent (and no `severity_threshold`): every line, of every level.
    pub mode: Option<String>,
    pub services: Option<Vec<String>>,
    /// How far back from now: `15m`, `6h`, `7d`. Default 1h.
    pub time_range: Option<String>,
    /// An absolute window, as `/query` takes it: RFC 3339, Unix seconds or nanoseconds.
    pub start: Option<String>,
    pub end: Option<String>,
    pub correlation_id: Option<String>,
    pub conversation_id: Option<String>,
    pub session_id: Option<String>,
    pub workspace_id: Option<String>,
    /// trace, debug, info, warn, error or fatal: lines below are left out.
    pub severity_threshold: Option<String>,
    /// Lines whose message or error matches any of these are left out (`/regex/` or text).
    pub exclude_patterns: Option<Vec<String>>,
    #[serde(default)]
    pub format: ExportFormat,
    /// Columns, in order; all when absent.
    pub fields: Option<Vec<String>>,
    #[serde(default)]
    pub compress: Compression,
    /// At most this many lines (the oldest first); all when absent.
    #[schema(minimum = 0)]
    pub limit: Option<usize>,
}

impl ExportRequest {
    /// The filters as `/query` parameters, validated by the same parser.
    fn spec(&self) -> Result<QuerySpec, ParamError> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        let single = [
            ("mode", &self.mode),
            ("time_range", &self.time_range),
            ("start", &self.start),
            ("end", &self.end),
            ("correlation_id", &self.correlation_id),
            ("conversation_id", &self.conversation_id),
            ("session_id", &self.session_id),
            ("workspace_id", &self.workspace_id),
            ("severity_threshold", &self.severity_threshold),
        ];
        for (name, value) in &single {
            if let Some(v) = value {
                pairs.push((name, v));
            }
        }
        // An export is a copy of the lines: every level unless a mode or threshold says otherwise.
        if self.mode.is_none() && self.severity_threshold.is_none() {
            pairs.push(("severity_threshold", "trace"));
        }
        for (name, values) in [
            ("services", &self.services),
            ("exclude_patterns", &self.exclude_patterns),
        ] {
            for v in values.iter().flatten() {
                pairs.push((name, v));
            }
        }
        QuerySpec::from_params(pairs)
    }
}

fn parse_body(body: &[u8]) -> Result<ExportRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        return Ok(ExportRequest::default());
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { "body".to_owned() } else { field };
        super::params::bad(
            &field,
            e.into_inner().to_string(),
            "send a JSON object with /query's filters plus format (json, ndjson, csv), fields, compress (gzip) and limit",
        )
    })
}

/// Every line the filters match, streamed. Headers: `Content-Disposition` (a file name),
/// `X-Export-Total` (lines in the body), `X-Export-Matched`, `X-Export-Source`,
/// `X-Export-Complete` (false when a limit, a store's budget or a failed store left lines out).
#[utoipa::path(post, path = "/api/v1/ai_logs/export", tag = "query", request_body(content = Option<ExportRequest>, description = "The filters and format; an empty body exports the last hour, every level, as NDJSON", content_type = "application/json"),
    responses(
        (status = 200, description = "The lines: a JSON array, NDJSON, CSV (RFC 4180, with a header), or any of them gzipped",
            content((String = "application/x-ndjson"), (String = "application/json"), (String = "text/csv"), (String = "application/gzip"))),
        (status = 400, description = "A parameter is invalid; `field` names it", body = ApiError), (status = 401, description = "API keys are configured and the request carried no valid one", body = ApiError), (status = 503, description = "Too many scanning queries at once, or a store did not answer", body = ApiError)))]
#[tracing::instrument(name = "export", skip_all)]
pub async fn export(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = parse_body(&body)?;
    let mut spec = request.spec()?;
    super::auth::scope_query(&caller, &mut spec)?;
    let columns = Column::parse_list(request.fields.as_deref().unwrap_or_default())?;
    let now = now_ns();
    let window = spec.window(now)?;
    let permit = Arc::clone(&state.scans)
        .try_acquire_owned()
        .map_err(|_| super::error::busy("retry shortly"))?;
    let gathered = gather(&state, &spec, window, now).await?;
    drop(permit);
    let Gathered {
        mut lines,
        source,
        complete,
    } = gathered;
    let matched = lines.len();
    if let Some(limit) = request.limit {
        lines.truncate(limit);
    }
    let format = request.format;
    let total = lines.len();
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    let writer_state = Arc::clone(&state);
    tokio::task::spawn_blocking(move || {
        let sink = ChunkSink::new(tx.clone());
        let rows = Rows::new(&columns, &writer_state.prices);
        let outcome = match request.compress {
            Compression::None => write_lines(sink, &rows, format, &lines, &writer_state),
            Compression::Gzip => write_lines(
                flate2::write::GzEncoder::new(sink, flate2::Compression::fast()),
                &rows,
                format,
                &lines,
                &writer_state,
            ),
        };
        let label = match &outcome {
            Ok(()) => "complete",
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => "aborted",
            Err(_) => "failed",
        };
        writer_state
            .metrics
            .exports
            .with_label_values(&[format.as_str(), label])
            .inc();
        if let Err(e) = outcome
            && label == "failed"
        {
            tracing::warn!(error = %e, "export failed while writing");
            let _ = tx.blocking_send(Err(e));
        }
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let extension = match request.compress {
        Compression::None => format.as_str().to_owned(),
        Compression::Gzip => format!("{}.gz", format.as_str()),
    };
    let filename = format!(
        "ailogs-export-{}.{extension}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    let content_type = match request.compress {
        Compression::None => format.content_type(),
        Compression::Gzip => "application/gzip",
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert("x-export-total", HeaderValue::from(total));
    headers.insert("x-export-matched", HeaderValue::from(matched));
    headers.insert("x-export-source", HeaderValue::from_static(source));
    headers.insert(
        "x-export-complete",
        HeaderValue::from_static(if complete && total == matched { "true" } else { "false" }),
    );
    response.extensions_mut().insert(Returned(total as u64));
    if let Ok(body) = serde_json::from_slice(&body) {
        response.extensions_mut().insert(BodyParams(body));
    }
    Ok(response)
}

struct Gathered {
    /// Oldest first.
    lines: Vec<Arc<Enriched>>,
    source: &'static str,
    /// Every store answered whole for the window.
    complete: bool,
}

/// Every line matching `spec` in `window`: Redis (when configured) or the memory views, then
/// Loki for the part they do not cover.
async fn gather(state: &AppState, spec: &QuerySpec, window: Window, now: i64) -> Result<Gathered, ApiError> {
    let (held, coverage) = match &state.redis {
        Some(redis) => {
            let read = redis
                .read(&selection(spec, window), REDIS_LINES)
                .await
                .map_err(|e| ApiError::internal("reading the Redis views", e))?;
            let read: Vec<Arc<Enriched>> = read.into_iter().map(Arc::new).collect();
            let coverage = Coverage::of_lines(&read);
            let kept = read.into_iter().filter(|r| query::matches(spec, window, r)).collect();
            (kept, coverage)
        }
        None => {
            let views = Arc::clone(&state.views);
            let spec = spec.clone();
            let held = tokio::task::spawn_blocking(move || {
                views.select(&selection(&spec, window), |r| query::matches(&spec, window, r))
            })
            .await
            .map_err(|e| ApiError::internal("selecting lines", e))?;
            (held, fallback::views_coverage(state))
        }
    };
    let plan = fallback::planned(state, window, coverage, now);
    let mut loki = fallback::read(state, &plan, &fallback::wanted(spec), spec.cache, now).await;
    // As `/query` judges it; Redis holds only its hot views, and a process that only
    // ingests into Kafka holds none.
    let views_whole = state.redis.is_none()
        && (state.kafka.is_none() || state.consumer_running)
        && fallback::views_whole(&state.views.stats().held, window);
    let complete = fallback::answer_complete(views_whole, &plan, &loki, state.loki.is_some());
    let from_loki: Vec<Arc<Enriched>> = loki
        .records()
        .into_iter()
        .filter(|r| query::matches(spec, window, r))
        .collect();
    let source = match (from_loki.is_empty(), matches!(loki, fallback::LokiSide::Read(_))) {
        (_, false) => "views",
        (true, true) => "views+loki",
        (false, true) if held.is_empty() => "loki",
        (false, true) => "views+loki",
    };
    let mut lines = if from_loki.is_empty() {
        held
    } else {
        merge(held, from_loki)
    };
    lines.sort_by_key(|r| (r.record.ts_ns, r.seq));
    Ok(Gathered {
        lines,
        source,
        complete,
    })
}

fn selection(spec: &QuerySpec, window: Window) -> Selection<'_> {
    Selection {
        services: &spec.services,
        min_level: Some(spec.min_level()),
        correlation_id: spec.correlation_id.as_deref(),
        conversation_id: spec.conversation_id.as_deref(),
        since_ns: window.start_ns,
        scope: &spec.scope,
    }
}
