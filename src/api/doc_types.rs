//! Documentation-only types the handlers name in their OpenAPI attributes: the query
//! parameters each parses by name, the open answer object, and the WebSocket protocol.

use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// `/query`'s parameters (`ailogs_pipeline::query::spec::PARAMS`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct QueryParams {
    /// troubleshoot (default), performance, errors, audit or conversation.
    #[param(pattern = "^(troubleshoot|performance|errors|audit|conversation)$")]
    mode: Option<String>,
    /// Comma-separated service names.
    services: Option<String>,
    /// How far back from now: `15m`, `1h` (default), `7d`; at most 30d.
    #[param(pattern = r"^([1-9][0-9]{0,5}s|[1-9][0-9]{0,3}m|[1-9][0-9]?h|[1-6][0-9]{2}h|([1-9]|[12][0-9]|30)d)$")]
    time_range: Option<String>,
    /// An absolute window's start: RFC 3339, Unix seconds or Unix nanoseconds. Not with
    /// `time_range`; to now without `end`.
    start: Option<String>,
    /// An absolute window's end (same formats): with `start`, or with `time_range` back from it.
    end: Option<String>,
    correlation_id: Option<String>,
    conversation_id: Option<String>,
    session_id: Option<String>,
    workspace_id: Option<String>,
    /// Lines of one mined template: 16 hex digits.
    #[param(pattern = "^[0-9a-f]{16}$")]
    template_id: Option<String>,
    /// trace, debug, info, warn, error or fatal.
    #[param(pattern = "^(trace|debug|info|warn|error|fatal)$")]
    severity_threshold: Option<String>,
    /// Surrounding lines per matched line (0-50).
    #[param(maximum = 50)]
    include_context: Option<u32>,
    /// How far around a line its context reaches: `5m` (default).
    context_window: Option<String>,
    /// none, by_service, by_error or by_pattern.
    #[param(pattern = "^(none|by_service|by_error|by_pattern)$")]
    aggregation: Option<String>,
    /// structured (default), narrative or timeline.
    #[param(pattern = "^(structured|narrative|timeline)$")]
    format: Option<String>,
    deduplicate: Option<bool>,
    highlight: Option<bool>,
    /// Leave out lines whose message or error matches (text, or `/regex/`); repeatable.
    exclude_patterns: Option<String>,
    /// minimal, standard (default) or detailed.
    #[param(pattern = "^(minimal|standard|detailed)$")]
    verbosity: Option<String>,
    /// Lines returned, 1-10000 (default 100).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
    /// false: read Loki again rather than from the cache.
    cache: Option<bool>,
}

/// `/analyze`'s parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AnalyzeParams {
    #[param(pattern = r"^([1-9][0-9]{0,5}s|[1-9][0-9]{0,3}m|[1-9][0-9]?h|[1-6][0-9]{2}h|([1-9]|[12][0-9]|30)d)$")]
    time_range: Option<String>,
    /// Comma-separated service names.
    services: Option<String>,
    /// Comma-separated pattern categories.
    categories: Option<String>,
    /// low, medium, high or critical.
    #[param(pattern = "^(low|medium|high|critical)$")]
    min_severity: Option<String>,
}

/// `/correlate`'s parameters: one request by id, or a service's recent requests.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CorrelateParams {
    correlation_id: Option<String>,
    service: Option<String>,
    /// How far back to look for a service's requests: `15m`.
    time_window: Option<String>,
}

/// `/workspace/{id}/summary`'s parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct WorkspaceParams {
    #[param(pattern = r"^([1-9][0-9]{0,5}s|[1-9][0-9]{0,3}m|[1-9][0-9]?h|[1-6][0-9]{2}h|([1-9]|[12][0-9]|30)d)$")]
    time_range: Option<String>,
    include_costs: Option<bool>,
}

/// `/conversations/{id}`'s parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ConversationParams {
    include_prompts: Option<bool>,
    include_responses: Option<bool>,
    include_metrics: Option<bool>,
    include_related_logs: Option<bool>,
    /// How far around the conversation related lines are read: `5m`.
    time_buffer: Option<String>,
}

/// `/metrics`' parameters (aggregated metrics).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct MetricsParams {
    /// How far back: `1h` (default), at most 30d.
    #[param(pattern = r"^([1-9][0-9]{0,5}s|[1-9][0-9]{0,3}m|[1-9][0-9]?h|[1-6][0-9]{2}h|([1-9]|[12][0-9]|30)d)$")]
    time_range: Option<String>,
    /// Bucket width, whole minutes: `5m`; default the smallest of 1m, 5m, 15m, 1h, 6h, 1d, 7d
    /// giving at most 60 buckets. At most 1000 buckets.
    step: Option<String>,
    /// service (default), model, workspace or operation.
    #[param(pattern = "^(service|model|workspace|operation)$")]
    group_by: Option<String>,
    /// Comma-separated service names.
    services: Option<String>,
    workspace_id: Option<String>,
    /// Comma-separated model names.
    models: Option<String>,
}

/// `/patterns`' parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PatternParams {
    /// Comma-separated categories.
    category: Option<String>,
    /// Comma-separated severities.
    severity: Option<String>,
    #[param(pattern = "^(low|medium|high|critical)$")]
    min_severity: Option<String>,
    /// shipped or custom.
    #[param(pattern = "^(shipped|custom)?$")]
    source: Option<String>,
}

/// An answer whose fields the endpoint's description lists (built from several stores).
#[derive(ToSchema)]
#[schema(value_type = Object)]
#[allow(dead_code)]
pub struct Answer(Value);

const STREAM_PROTOCOL: &str = "A WebSocket: send the upgrade (`Connection: Upgrade`, `Upgrade: websocket`); a plain GET \
is refused with 4xx. Live log lines and alerts for a filter, resumable by event id.\n\n\
Client messages (JSON text frames, at most 64 KiB): \
`{\"type\":\"subscribe\",\"filter\":{\"services\":[..],\"severity_threshold\":\"warn\",\"pattern_alerts\":[..],\"logs\":true},\"resume_from\":ID,\"resume_from_offset\":OFFSET,\"api_key\":\"..\"}` \
(every field optional; `pattern_alerts` takes pattern ids, parts of ids, categories or alert kinds cascade, anomaly, new_template), \
`{\"type\":\"auth\",\"api_key\":\"..\"}`, `{\"type\":\"update_filter\",\"filter\":{..}}`, \
`{\"type\":\"unsubscribe\"}`, `{\"type\":\"heartbeat\"}`.\n\n\
Server messages: `connected` (the filter in effect), `log` and `alert` (each with an increasing event `id` to resume from; \
alerts that came through Kafka also carry their `offset`), `heartbeat`, `dropped` (how many messages a slow client lost), \
`gone` (a resume point older than what is kept), `authenticated`, `filter_updated`, `unsubscribed`, and `error` \
(`{code, message}`).\n\n\
With API keys, the key comes in the upgrade's `Authorization: Bearer` or `X-API-Key` header, or in the first message. \
Close codes: 4001 no valid key; 4008 the client stayed too far behind; 1009 a message over 64 KiB; 1013 the process \
serves its maximum of subscribers; 4029 the key holds its maximum; 1008 more than 100 messages in 10 s.";

pub fn stream_protocol() -> &'static str {
    STREAM_PROTOCOL
}
