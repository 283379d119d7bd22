//! `ailogs audit`: recent calls from Postgres.

use anyhow::Context as _;

use crate::cli::AuditArgs;
use crate::config::Config;

pub async fn run(config: &Config, args: AuditArgs) -> anyhow::Result<()> {
    let pg = crate::commands::postgres(config)
        .await
        .context("the audit log lives in Postgres; in embedded mode ask a running server: GET /api/v1/ai_logs/audit with an admin key")?;
    let rows = super::writer::recent(pg.pool(), args.limit.clamp(1, 100_000), args.key.as_deref()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for r in rows {
        println!(
            "{}  {:<16} {:<6} {:<44} {:<16} {:>3} {:>8.1} ms  rows={:<6} scope={} {}",
            r.at.format("%Y-%m-%d %H:%M:%S%.3f"),
            r.key_name,
            r.method,
            r.endpoint,
            r.tool.as_deref().unwrap_or("-"),
            r.status,
            r.duration_ms,
            r.returned.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            r.scope.join(","),
            r.params
        );
    }
    Ok(())
}
