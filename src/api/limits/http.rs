//! The rate-limit middleware and the replica count kept in Redis.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Refused;
use crate::api::AppState;
use crate::api::auth::RouteClass;
use crate::api::error::ApiError;
use crate::auth::Principal;

/// Takes a token for the caller's (key, route class) before the handler runs. Without keys
/// the API is open and unlimited: limits are per key.
pub async fn enforce(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let class = RouteClass::of(req.method(), req.uri().path());
    let Some(principal) = req.extensions().get::<Principal>() else {
        return next.run(req).await;
    };
    if !state.api_keys.enabled() {
        return next.run(req).await;
    }
    match state.limits.check(principal, class) {
        Ok(None) => next.run(req).await,
        Ok(Some(allowed)) => {
            let mut resp = next.run(req).await;
            put_headers(
                resp.headers_mut(),
                allowed.per_minute,
                allowed.remaining,
                Duration::ZERO,
            );
            resp
        }
        Err(refused) => {
            state.metrics.rate_limited.with_label_values(&[class.as_str()]).inc();
            too_many(&refused, &principal.name)
        }
    }
}

/// 429: Loki's plain text for pushes, the API's JSON error otherwise.
pub fn too_many(r: &Refused, holder: &str) -> Response {
    let retry_s = r.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let message = format!(
        "rate limit: the key {holder:?} may make {} {} requests a minute; retry in {retry_s} s",
        r.per_minute,
        r.class.as_str()
    );
    let mut resp = if r.class == RouteClass::Push {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{message}\n"),
        )
            .into_response()
    } else {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            message,
            "wait Retry-After seconds; ask for a higher per-key limit if this is steady traffic",
        );
        e.limit = Some(format!("{}_per_minute", r.class.as_str()));
        e.into_response()
    };
    put_headers(resp.headers_mut(), r.per_minute, 0, Duration::from_secs(retry_s));
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_s));
    resp
}

/// `RateLimit-Limit`, `-Remaining`, `-Reset` (IETF draft `ratelimit-headers`).
fn put_headers(h: &mut HeaderMap, per_minute: u32, remaining: u32, reset: Duration) {
    h.insert("ratelimit-limit", HeaderValue::from(per_minute));
    h.insert("ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("ratelimit-reset", HeaderValue::from(reset.as_secs()));
    h.insert(
        "ratelimit-policy",
        HeaderValue::from_str(&format!("{per_minute};w=60")).unwrap_or(HeaderValue::from_static("")),
    );
}

/// Announces this replica in Redis every 5 s and sets the share of the limits from the
/// replicas seen in the last 15 s. Errors keep the last count.
pub async fn announce_replicas(redis: crate::store::redis::RedisViews, limits: std::sync::Arc<super::Limiters>) {
    let me = uuid::Uuid::new_v4().to_string();
    let key = format!("{}:api_replicas", redis.prefix());
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let seen: Result<u32, redis::RedisError> = async {
            let mut conn = redis.connection().await?;
            redis::pipe()
                .atomic()
                .zadd(&key, &me, now_ms)
                .ignore()
                .zrembyscore(&key, 0, now_ms - 15_000)
                .ignore()
                .expire(&key, 60)
                .ignore()
                .zcard(&key)
                .query_async::<(u32,)>(&mut conn)
                .await
                .map(|(n,)| n)
        }
        .await;
        match seen {
            Ok(n) => limits.set_replicas(n),
            Err(e) => {
                tracing::debug!(error = %e, "announcing this API replica in Redis failed; keeping the last replica count")
            }
        }
    }
}
