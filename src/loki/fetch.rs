//! Reading one part of a window from Loki past its caps: the part split into windows Loki
//! answers whole (newest first), each paginated backward, within a budget of lines and time
//! after which the answer says what was left out. Never silently truncated.

use std::time::Instant;

use ailogs_pipeline::loki::plan::{Part, split_backward};
use ailogs_pipeline::loki::query_range::{BackwardPages, LokiEntry};
use ailogs_pipeline::normalize::time::format_rfc3339;
use serde::{Deserialize, Serialize};

use super::client::{LokiClient, LokiError};

/// What one part's read brought back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Fetched {
    pub entries: Vec<LokiEntry>,
    /// query_range requests made.
    pub requests: u32,
    /// Why the read stopped before the part's start, and how to narrow the query.
    pub truncated: Option<String>,
}

/// Reads `part` for `query`, newest first, until it is exhausted or `max_lines` entries were
/// read or `deadline` passed.
pub async fn fetch(
    client: &LokiClient,
    query: &str,
    part: Part,
    max_lines: usize,
    deadline: Instant,
) -> Result<Fetched, LokiError> {
    let step_ns = client.config().split_ns();
    let mut out = Fetched::default();
    let mut skipped = 0;
    'windows: for (start, end) in split_backward(part, step_ns) {
        let mut pages = BackwardPages::default();
        let mut page_end = end;
        loop {
            let room = max_lines.saturating_sub(out.entries.len());
            if room == 0 {
                out.truncated = Some(format!(
                    "read the newest {max_lines} matching lines from Loki (the per-query budget, loki.max_lines); \
                     lines before {} were not read: narrow time_range or add services or ids",
                    format_rfc3339(page_end)
                ));
                break 'windows;
            }
            if Instant::now() >= deadline {
                out.truncated = Some(format!(
                    "the Loki time budget (loki.max_query_ms) ran out after {} lines; lines before {} were not read: \
                     narrow time_range or add services or ids",
                    out.entries.len(),
                    format_rfc3339(page_end)
                ));
                break 'windows;
            }
            let limit = room.min(client.max_entries());
            let (entries, limit) = match client.query_range(query, start, page_end, limit, deadline).await {
                Err(LokiError::OutOfTime) if !out.entries.is_empty() => continue,
                other => other?,
            };
            out.requests += 1;
            let (fresh, next) = pages.page(entries, limit);
            out.entries.extend(fresh);
            match next {
                Some(next_end) if next_end > start => page_end = next_end,
                _ => break,
            }
        }
        skipped += pages.skipped_timestamps;
    }
    if skipped > 0 && out.truncated.is_none() {
        out.truncated = Some(format!(
            "at {skipped} timestamp(s) more lines shared one nanosecond than Loki returns in one request; \
             the rest of those lines were not read"
        ));
    }
    Ok(out)
}
