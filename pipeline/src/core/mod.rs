//! `Core`: the one entry point every driver calls. Sans-IO in the manner of quinn-proto's
//! `Connection`: inputs and outputs are plain values, state is private, time is passed in.
//!
//! What happens to a line:
//!
//! 1. **Lane** (per thread, no shared state): `Lane::ingest` decodes the raw entry (JSON,
//!    logfmt or plain), normalizes its fields and matches it against the pattern catalog.
//!    A line that cannot be decoded is a `Rejection` for the dead-letter path.
//! 2. **prepare** (stateful): tags each record with its template, and when the core feeds
//!    durable views computes the batch's deltas: usage (tokens, cost, operations,
//!    conversations), insights (pattern hits per minute, templates seen) and the requests
//!    completed since the last commit.
//! 3. The driver makes the deltas durable (one Postgres transaction with the offsets), then:
//!    **commit** feeds the records to the anomaly detector and the correlation tracker and
//!    returns the alerts to publish and the records for the views and the stream; or
//!    **abort** (a fenced batch) puts the completed requests back for the next commit. A
//!    batch is observed once: a re-read batch never counts twice in the baselines.
//!
//! The read-only path, for lines that are not to be counted (the Loki fallback): a lane
//! decodes and matches them like any line, `tag_known` tags them with the template they fit
//! today and `tag_among_themselves` mines the rest apart, without teaching the miner anything.
//!
//! Readers (the API) never take the lock the workers hold: `Core::reader` hands out the
//! published side (`CoreReader`), refreshed on commit.

mod lane;
mod live;
mod reader;

use rustc_hash::FxHashSet as HashSet;
use std::sync::Arc;

pub use lane::Lane;
pub use reader::{CoreReader, CoreStats};

use crate::anomaly::Alert;
use crate::enrich::Enriched;
use crate::insight_delta::InsightBatch;
use crate::usage::{PriceBook, SourcePos, UsageBatch};
use live::LiveAnalysis;

/// The core's tunables, with the defaults documented in the config reference.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Prepare deltas for durable views (usage, insights, completed requests): a Kafka
    /// consumer writing Postgres. Embedded mode keeps everything in its memory views.
    pub durable: bool,
    /// Services with their own template miner; lines of further services share one.
    pub max_template_services: usize,
    /// Alerts kept for /analyze and resuming stream subscribers.
    pub max_alerts: usize,
    /// Repeats of an alert within this window fold into it.
    pub alert_fold_window_ns: i64,
    /// The alerts readers see are republished at most this often (and on `tick`).
    pub publish_interval_ns: i64,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            durable: false,
            max_template_services: 1000,
            max_alerts: 10_000,
            alert_fold_window_ns: 5 * 60 * 1_000_000_000,
            publish_interval_ns: 200_000_000,
        }
    }
}

/// A batch between `prepare` and `commit`/`abort`.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The records, tagged with their templates.
    pub records: Vec<Enriched>,
    /// Usage deltas (durable cores only).
    pub usage: UsageBatch,
    /// Pattern hits, templates and completed requests (durable cores only).
    pub insights: InsightBatch,
}

/// What a committed batch produced.
#[derive(Debug, Default)]
pub struct Outputs {
    /// For the views and the live stream, in batch order.
    pub records: Vec<Enriched>,
    /// Alerts to publish: new ones, and folded ones that keep firing.
    pub alerts: Vec<Alert>,
    /// AI requests of the batch that no price covers, by model, so
    /// an operator sees which model's price to add before the invoices go out.
    pub unpriced: Vec<(Arc<str>, u64)>,
}

pub struct Core {
    config: CoreConfig,
    prices: PriceBook,
    live: LiveAnalysis,
    reader: CoreReader,
    /// The alert book changed since it was last published to readers.
    alerts_dirty: bool,
    published_ns: i64,
}

impl Core {
    pub fn new(config: CoreConfig, prices: PriceBook) -> Self {
        let live = LiveAnalysis::new(&config);
        let reader = CoreReader::new(live.correlations.reads());
        Core {
            config,
            prices,
            live,
            reader,
            alerts_dirty: false,
            published_ns: i64::MIN,
        }
    }

    /// The published side, for readers on other threads.
    pub fn reader(&self) -> CoreReader {
        self.reader.clone()
    }

    /// Tags the records with their templates and computes the batch's durable deltas.
    /// `sources[i]` is where `records[i]` came from (its `ai_operations` key); a durable
    /// core needs one per record.
    pub fn prepare(&mut self, mut records: Vec<Enriched>, sources: Vec<SourcePos>) -> Prepared {
        self.live.tag(&mut records);
        self.name_templates(&records);
        let mut prepared = Prepared::default();
        if self.config.durable {
            // A record without its source would be left out of usage: a driver bug.
            debug_assert_eq!(records.len(), sources.len(), "one source per record");
            for (r, source) in records.iter().zip(sources) {
                prepared.usage.add(r, &self.prices, source);
                prepared.insights.add(r);
            }
            let names = self.reader.template_names();
            prepared
                .insights
                .name_templates(|_, id| names.get(&id).map(|t| t.to_string()));
            // Requests completed by earlier batches: durable with this commit.
            prepared.insights.correlations = self.live.correlations.take_pending();
        }
        prepared.records = records;
        prepared
    }

    /// The batch is durable: feed it to the detector and the tracker, once.
    pub fn commit(&mut self, prepared: Prepared, now_ns: i64) -> Outputs {
        let (alerts, changed) = self.live.observe(&prepared.records);
        self.alerts_dirty |= changed;
        self.publish(now_ns, false);
        let unpriced = self.unpriced(&prepared.records);
        Outputs {
            records: prepared.records,
            alerts,
            unpriced,
        }
    }

    /// The batch was fenced (another consumer owns its partitions now): nothing of it
    /// counts; the completed requests it carried wait for the next commit.
    pub fn abort(&mut self, prepared: Prepared) {
        self.live.correlations.restore_pending(prepared.insights.correlations);
    }

    /// Prepare and commit in one step, for drivers whose views are not durable.
    pub fn process(&mut self, records: Vec<Enriched>, now_ns: i64) -> Outputs {
        let prepared = self.prepare(records, Vec::new());
        self.commit(prepared, now_ns)
    }

    /// Publishes what readers see if it is due; drivers call it when idle.
    pub fn tick(&mut self, now_ns: i64) {
        self.publish(now_ns, false);
    }

    /// The read-only path's tagging, for lines a lane decoded that are not to be counted
    /// (the Loki fallback): the template each fits today, nothing mined. Drivers decode on
    /// their own thread and hold the core only for this.
    pub fn tag_known(&self, records: &mut [Enriched]) {
        for e in records {
            e.template = self.live.templates.lookup(&e.record.service, &e.record.message);
        }
    }

    /// For lines read back that no template fits today (a window the core never saw): mines
    /// them among themselves with the core's miner settings in a scratch miner, so they carry
    /// templates too, with the ids the core would give them (a hash of the service and the
    /// first line), and the core learns nothing.
    /// Returns the text of each template it made, by id.
    pub fn tag_among_themselves(records: &mut [Enriched]) -> rustc_hash::FxHashMap<u64, String> {
        let mut scratch = crate::templates::TemplateIndex::new(
            crate::templates::DrainConfig::default(),
            CoreConfig::default().max_template_services,
        );
        let mut made: HashSet<(u64, Arc<str>)> = HashSet::default();
        for e in records.iter_mut().filter(|e| e.template.is_none()) {
            let tag = scratch.tag(&e.record.service, &e.record.message);
            made.insert((tag.id, Arc::clone(&e.record.service)));
            e.template = Some(tag);
        }
        made.into_iter()
            .filter_map(|(id, service)| Some((id, scratch.template(&service, id)?)))
            .collect()
    }

    fn unpriced(&self, records: &[Enriched]) -> Vec<(Arc<str>, u64)> {
        let mut by_model: Vec<(Arc<str>, u64)> = Vec::new();
        for r in records.iter().map(|e| &e.record) {
            let Some(model) = r.model.as_ref().filter(|_| crate::usage::is_ai_request(r)) else {
                continue;
            };
            if self.prices.price(r).priced {
                continue;
            }
            match by_model.iter_mut().find(|(m, _)| m == model) {
                Some((_, n)) => *n += 1,
                None => by_model.push((Arc::clone(model), 1)),
            }
        }
        by_model
    }

    fn name_templates(&mut self, records: &[Enriched]) {
        let touched: HashSet<(u64, &str)> = records
            .iter()
            .filter_map(|r| r.template.map(|t| (t.id, r.record.service.as_ref())))
            .collect();
        let names = self.reader.template_names();
        for (id, service) in touched {
            if let Some(text) = self.live.templates.template(service, id) {
                names.insert(id, Arc::from(text));
            }
        }
        // Evicted templates leave the published names once they outnumber the live ones.
        if names.len() > 2 * self.live.templates.len() + 1024 {
            names.retain(|id, _| self.live.templates.contains(*id));
        }
    }

    fn publish(&mut self, now_ns: i64, force: bool) {
        let c = &self.live.correlations;
        self.reader.publish_stats(CoreStats {
            live_requests: c.tracker.live_count() as u64,
            completed_total: c.completed,
            evicted_total: c.tracker.evicted,
            lines_without_correlation_id: c.tracker.lines_without_id,
            unwritten_dropped_total: c.dropped_pending,
            templates: self.live.templates.len() as u64,
        });
        let due = now_ns.saturating_sub(self.published_ns) >= self.config.publish_interval_ns;
        if self.alerts_dirty && (due || force) {
            self.reader.publish_alerts(self.live.alerts.since(i64::MIN));
            self.alerts_dirty = false;
            self.published_ns = now_ns;
        }
    }

    /// Publishes everything now (tests, shutdown).
    pub fn flush(&mut self) {
        self.publish(i64::MAX, true);
    }
}

#[cfg(test)]
mod tests;
