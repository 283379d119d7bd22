//! API errors: JSON `{error, field, message, suggestion}`; one place maps them to statuses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use ailogs_pipeline::query::ParamError;

/// Every error answer: a stable `error` code, the request `field` it is about (when one is),
/// what went wrong and what to do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// A stable code an agent can branch on.
    #[schema(value_type = String, example = "invalid_parameter")]
    pub error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    pub suggestion: String,
    /// For 429: the limit that was reached (`query_per_minute`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: String, suggestion: &str) -> Self {
        ApiError {
            status,
            error,
            field: None,
            message,
            suggestion: suggestion.to_owned(),
            limit: None,
        }
    }

    /// Names the request field the error is about.
    pub fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    /// An internal failure: logged in full, answered without details.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{context} failed"),
            "retry; if it persists, check the server log",
        )
    }
}

/// 503 `busy`: too many queries that scan lines run at once (`State::scans`).
pub fn busy(suggestion: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "too many queries that scan lines are running".into(),
        suggestion,
    )
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_parameter",
            field: Some(e.field),
            message: e.message,
            suggestion: e.suggestion,
            limit: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

/// Postgres failed a read: 503, the cause logged, not shown.
pub fn db_error(e: sqlx::Error) -> ApiError {
    tracing::warn!(error = %e, "postgres read failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "postgres_unavailable",
        "Postgres did not answer".into(),
        "retry shortly; /api/v1/ai_logs/health shows the components' status",
    )
}
