//! `ailogs api-key new|list|revoke`.

use anyhow::Context as _;

use crate::cli::ApiKeyCommand;
use crate::config::{Config, KeyLimits, Role};

pub async fn run(config: &Config, command: ApiKeyCommand) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::New {
            name,
            role,
            workspaces,
            query_per_minute,
            config_entry,
        } => {
            let role = Role::parse(&role).context("role: admin, reader or ingest")?;
            if workspaces.iter().any(|w| w.trim().is_empty()) {
                anyhow::bail!("--workspace: an empty workspace id");
            }
            let limits = KeyLimits {
                query: query_per_minute,
                ..KeyLimits::default()
            };
            if config_entry || config.database_url.is_none() {
                let ws = (!workspaces.is_empty()).then_some(workspaces);
                let (key, mut entry) = super::generate_entry(&name, role, ws);
                entry.limits = limits;
                println!("key (shown once; give it to {name}): {key}\n");
                let mut table = toml::Table::new();
                table.insert(
                    "auth".into(),
                    toml::Value::Table(toml::Table::from_iter([(
                        "api_keys".to_owned(),
                        toml::Value::try_from(vec![entry])?,
                    )])),
                );
                println!("add to the config file:\n{}", toml::to_string(&table)?);
                return Ok(());
            }
            let pg = crate::commands::postgres(config).await?;
            pg.migrate().await.context("running migrations")?;
            let (key, sha) = super::generate();
            let id = super::pg::insert(pg.pool(), &name, &sha, role, &workspaces, &limits).await?;
            println!("{key}");
            eprintln!(
                "key {id} for {name:?} ({}; workspaces: {}) stored as its SHA-256; shown once. Servers pick it up within {} s.",
                role.as_str(),
                if workspaces.is_empty() {
                    "all".to_owned()
                } else {
                    workspaces.join(", ")
                },
                config.auth.reload_s
            );
            Ok(())
        }
        ApiKeyCommand::List { json } => {
            let pg = crate::commands::postgres(config).await?;
            let rows = super::pg::list(pg.pool()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            println!(
                "{:>5}  {:<24} {:<7} {:<30} {:<20} revoked",
                "id", "name", "role", "workspaces", "created"
            );
            for r in rows {
                println!(
                    "{:>5}  {:<24} {:<7} {:<30} {:<20} {}",
                    r.id,
                    r.name,
                    r.role,
                    if r.workspaces.is_empty() {
                        "all".to_owned()
                    } else {
                        r.workspaces.join(",")
                    },
                    r.created_at.format("%Y-%m-%d %H:%M:%S"),
                    r.revoked_at
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        ApiKeyCommand::Revoke { id_or_name } => {
            let pg = crate::commands::postgres(config).await?;
            let n = super::pg::revoke(pg.pool(), &id_or_name).await?;
            if n == 0 {
                anyhow::bail!("no active key has the id or name {id_or_name:?}");
            }
            eprintln!(
                "revoked {n} key(s); servers stop accepting them within {} s",
                config.auth.reload_s
            );
            Ok(())
        }
    }
}
