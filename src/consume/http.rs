//! A standalone consumer's small HTTP face: `/metrics` for Prometheus (lag, commits) and the
//! health route the image's health check asks, on the configured listen address.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use crate::metrics::Metrics;

pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = Arc::clone(&metrics);
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                        metrics.render(),
                    )
                }
            }),
        )
        .route(
            "/api/v1/ai_logs/health",
            get(|| async { axum::Json(json!({ "status": "ok", "role": "consumer" })).into_response() }),
        )
}

/// Serves until `stop` completes.
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding the consumer's metrics listener on {listen}: {e}"))?;
    tracing::info!(%listen, "consumer metrics and health served");
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(stop)
        .await?;
    Ok(())
}
