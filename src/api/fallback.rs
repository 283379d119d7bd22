//! The planner's IO side for the API: which part of a window the views cover, and the
//! Loki read for the rest (`crate::loki`), as the answer's envelope reports it.

use ailogs_pipeline::loki::plan::{Coverage, Part, Plan, plan};
use ailogs_pipeline::normalize::time::format_rfc3339;
use ailogs_pipeline::query::{QuerySpec, Window};
use serde_json::{Value, json};

use super::AppState;
use crate::loki::{LokiRead, Wanted};

/// What the Loki side of one answer did.
pub enum LokiSide {
    /// The views cover the window (or no Loki is configured and `plan.loki` is unread).
    Unread,
    Read(LokiRead),
    Failed {
        part: Part,
        error: String,
    },
}

impl LokiSide {
    pub fn records(&mut self) -> Vec<std::sync::Arc<ailogs_pipeline::Enriched>> {
        match self {
            LokiSide::Read(r) => std::mem::take(&mut r.records),
            _ => Vec::new(),
        }
    }

    /// Template texts the core does not know (mined among Loki's lines).
    pub fn templates(&mut self) -> rustc_hash::FxHashMap<u64, String> {
        match self {
            LokiSide::Read(r) => std::mem::take(&mut r.templates),
            _ => Default::default(),
        }
    }

    pub fn truncated(&self) -> Option<&str> {
        match self {
            LokiSide::Read(r) => r.truncated.as_deref(),
            _ => None,
        }
    }

    pub fn failed(&self) -> bool {
        matches!(self, LokiSide::Failed { .. })
    }

    /// The answer's `missing`: Loki, when it was needed and failed.
    pub fn missing(&self) -> Vec<&'static str> {
        if self.failed() { vec!["loki"] } else { Vec::new() }
    }
}

/// The part of `window` to ask Loki for: bounded (an id lookup without a range looks back
/// `loki.id_lookback_h`) and not past now.
pub fn planned(state: &AppState, window: Window, coverage: Coverage, now_ns: i64) -> Plan {
    let lookback_ns = state.loki.as_ref().map_or(0, |l| l.client.config().id_lookback_ns());
    let start = if window.is_unbounded() {
        now_ns.saturating_sub(lookback_ns)
    } else {
        window.start_ns
    };
    plan(start, window.end_ns.min(now_ns), coverage)
}

/// What this process's memory views cover.
pub fn views_coverage(state: &AppState) -> Coverage {
    Coverage::of_views(&state.views.stats().held)
}

/// Plans `window` against `coverage` and reads Loki's part: the one call of the handlers
/// whose window is not a query's.
pub async fn plan_and_read(
    state: &AppState,
    window: Window,
    coverage: Coverage,
    wanted: &Wanted<'_>,
    use_cache: bool,
) -> (Plan, LokiSide) {
    let now = super::now_ns();
    let plan = planned(state, window, coverage, now);
    let loki = read(state, &plan, wanted, use_cache, now).await;
    (plan, loki)
}

/// Reads `plan.loki` when Loki is configured; a failure is reported, never raised: the
/// views' part is still answered.
pub async fn read(state: &AppState, plan: &Plan, wanted: &Wanted<'_>, use_cache: bool, now_ns: i64) -> LokiSide {
    let (Some(loki), Some(part)) = (&state.loki, plan.loki) else {
        return LokiSide::Unread;
    };
    let started = std::time::Instant::now();
    let outcome = loki.read(wanted, part, now_ns, use_cache).await;
    state
        .metrics
        .loki_requests
        .with_label_values(&[if outcome.is_ok() { "ok" } else { "failed" }])
        .inc();
    state.metrics.loki_seconds.observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(read) => LokiSide::Read(read),
        Err(e) => {
            tracing::warn!(error = %e, "loki fallback failed; answering from the views");
            LokiSide::Failed {
                part,
                error: e.to_string(),
            }
        }
    }
}

/// Whether the memory views hold every line of `window` that reached this process: no
/// eviction reached into it (with no Loki, earlier lines never reached ailogs).
pub fn views_whole(held: &ailogs_pipeline::views::HeldStats, window: Window) -> bool {
    held.evicted_newest_event_ns
        .is_none_or(|evicted| evicted < window.start_ns)
}

/// Whether an answer holds every line of its window: the views' part is whole
/// (`views_whole`), or Loki's part was read whole; never when Loki failed or was cut.
pub fn answer_complete(views_whole: bool, plan: &Plan, loki: &LokiSide, loki_configured: bool) -> bool {
    let loki_whole = match loki {
        LokiSide::Read(_) => true,
        LokiSide::Unread => plan.loki.is_none() && loki_configured,
        LokiSide::Failed { .. } => false,
    };
    !loki.failed() && loki.truncated().is_none() && (views_whole || loki_whole)
}

/// What a query wants from Loki: its services and ids, and its level unless context lines
/// (of every level) are wanted too.
pub fn wanted(spec: &QuerySpec) -> Wanted<'_> {
    let mut ids = Vec::new();
    for (field, v) in [
        ("correlation_id", &spec.correlation_id),
        ("conversation_id", &spec.conversation_id),
        ("session_id", &spec.session_id),
        ("workspace_id", &spec.workspace_id),
    ] {
        if let Some(v) = v {
            ids.push((field, v.clone()));
        }
    }
    Wanted {
        services: &spec.services,
        ids,
        min_level: (spec.context_lines() == 0).then(|| spec.min_level()),
        workspaces: spec.scope.workspaces().filter(|_| !spec.scope.sees_unscoped()),
    }
}

/// The envelope's account of who answered what: `source`, `windows`, and what is missing.
pub fn envelope(plan: &Plan, loki: &LokiSide, loki_configured: bool, detailed: bool) -> Value {
    let mut windows = Vec::new();
    if let Some(v) = plan.views {
        windows.push(json!({"source": "views", "start": format_rfc3339(v.start_ns), "end": format_rfc3339(v.end_ns)}));
    }
    let source = match (plan.views.is_some(), loki) {
        (_, LokiSide::Read(r)) => {
            let mut w = r.facts(detailed);
            w["source"] = json!("loki");
            windows.push(w);
            if plan.views.is_some() { "views+loki" } else { "loki" }
        }
        (_, LokiSide::Failed { part, error }) => {
            windows.push(json!({
                "source": "loki", "start": format_rfc3339(part.start_ns), "end": format_rfc3339(part.end_ns),
                "failed": true, "error": error,
            }));
            "views"
        }
        _ => {
            if let (Some(part), false) = (plan.loki, loki_configured) {
                windows.push(json!({
                    "source": "none", "start": format_rfc3339(part.start_ns), "end": format_rfc3339(part.end_ns),
                    "note": "not held by the views, and no Loki is configured (AILOGS_LOKI_URL)",
                }));
            }
            "views"
        }
    };
    json!({ "source": source, "windows": windows })
}
