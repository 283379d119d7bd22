//! The live pattern catalog of a process: the shipped patterns plus custom ones (kept in
//! Postgres when configured), compiled into the `SharedMatcher` every worker scans with.
//! A change is compiled and checked first; a refused one leaves the running matcher alone.

use std::sync::Arc;
use std::time::Duration;

use ailogs_pipeline::patterns::{Catalog, CatalogError, Matcher, PatternDef, SharedMatcher};
use tokio::sync::Mutex;

use crate::store::postgres::Postgres;

#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("{0}")]
    Invalid(CatalogError),
    #[error("pattern {0:?} is part of the shipped catalog and cannot be changed; add a custom pattern with another id")]
    Shipped(String),
    #[error("no custom pattern {0:?}")]
    NotFound(String),
    #[error("storing the pattern failed: {0}")]
    Db(#[from] sqlx::Error),
}

/// Where a pattern comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Shipped,
    Custom,
}

pub struct PatternService {
    version: String,
    shipped: Vec<PatternDef>,
    custom: Mutex<Vec<PatternDef>>,
    matcher: SharedMatcher,
    pg: Option<Postgres>,
}

/// How often a process re-reads custom patterns others may have changed.
const RELOAD_EVERY: Duration = Duration::from_secs(10);

impl PatternService {
    /// The shipped catalog plus the custom patterns stored in `pg`.
    pub async fn load(pg: Option<Postgres>) -> anyhow::Result<Arc<PatternService>> {
        let catalog = Catalog::shipped()?;
        let custom = match &pg {
            Some(pg) => crate::store::patterns::load(pg).await?,
            None => Vec::new(),
        };
        let (matcher, custom) = match Matcher::compile(combined(&catalog.patterns, &custom)) {
            Ok(m) => (m, custom),
            Err(e) => {
                tracing::error!(error = %e, "stored custom patterns do not compile; running the shipped catalog only");
                (Matcher::compile(catalog.patterns.clone())?, Vec::new())
            }
        };
        tracing::info!(
            shipped = catalog.patterns.len(),
            custom = custom.len(),
            version = %catalog.version,
            "pattern catalog loaded"
        );
        Ok(Arc::new(PatternService {
            version: catalog.version,
            shipped: catalog.patterns,
            custom: Mutex::new(custom),
            matcher: SharedMatcher::new(matcher),
            pg,
        }))
    }

    pub fn matcher(&self) -> SharedMatcher {
        self.matcher.clone()
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Every pattern in matching order, with where it comes from.
    pub async fn list(&self) -> Vec<(PatternDef, Source)> {
        let custom = self.custom.lock().await;
        self.shipped
            .iter()
            .map(|p| (p.clone(), Source::Shipped))
            .chain(custom.iter().map(|p| (p.clone(), Source::Custom)))
            .collect()
    }

    /// Adds or replaces a custom pattern. Ok(true) when it was new.
    pub async fn put(&self, def: PatternDef) -> Result<bool, PatternError> {
        if self.shipped.iter().any(|p| p.id == def.id) {
            return Err(PatternError::Shipped(def.id));
        }
        let mut custom = self.custom.lock().await;
        let mut next = custom.clone();
        let created = match next.iter_mut().find(|p| p.id == def.id) {
            Some(slot) => {
                *slot = def.clone();
                false
            }
            None => {
                next.push(def.clone());
                next.sort_by(|a, b| a.id.cmp(&b.id));
                true
            }
        };
        let matcher = Matcher::compile(combined(&self.shipped, &next)).map_err(PatternError::Invalid)?;
        if let Some(pg) = &self.pg {
            crate::store::patterns::upsert(pg, &def).await?;
        }
        self.matcher.store(matcher);
        *custom = next;
        Ok(created)
    }

    pub async fn remove(&self, id: &str) -> Result<(), PatternError> {
        if self.shipped.iter().any(|p| p.id == id) {
            return Err(PatternError::Shipped(id.to_owned()));
        }
        let mut custom = self.custom.lock().await;
        let next: Vec<PatternDef> = custom.iter().filter(|p| p.id != id).cloned().collect();
        if next.len() == custom.len() {
            return Err(PatternError::NotFound(id.to_owned()));
        }
        let matcher = Matcher::compile(combined(&self.shipped, &next)).map_err(PatternError::Invalid)?;
        if let Some(pg) = &self.pg {
            crate::store::patterns::delete(pg, id).await?;
        }
        self.matcher.store(matcher);
        *custom = next;
        Ok(())
    }

    /// Re-reads the custom patterns from Postgres every few seconds, so a change made
    /// through any replica's API reaches every process.
    pub fn spawn_reload(self: &Arc<Self>) {
        let Some(pg) = self.pg.clone() else { return };
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RELOAD_EVERY).await;
                let stored = match crate::store::patterns::load(&pg).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot re-read custom patterns");
                        continue;
                    }
                };
                let mut custom = me.custom.lock().await;
                if *custom == stored {
                    continue;
                }
                match Matcher::compile(combined(&me.shipped, &stored)) {
                    Ok(m) => {
                        me.matcher.store(m);
                        tracing::info!(custom = stored.len(), "custom patterns reloaded");
                        *custom = stored;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "stored custom patterns do not compile; keeping the running ones")
                    }
                }
            }
        });
    }
}

fn combined(shipped: &[PatternDef], custom: &[PatternDef]) -> Vec<PatternDef> {
    shipped.iter().chain(custom).cloned().collect()
}
