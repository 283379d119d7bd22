//! Masking at ingest: the pipeline's `Redactor` applied to every pushed line (and Loki's lines
//! read back), its per-rule counts added to `ailogs_masked_total`.

use ailogs_pipeline::loki::PushBatch;
use ailogs_pipeline::redact::Redactor;
use prometheus::IntCounter;

pub struct Masking {
    redactor: Redactor,
    /// One counter per rule, in the redactor's order.
    counters: Vec<IntCounter>,
}

impl Masking {
    pub fn new(redactor: Redactor, metrics: &crate::metrics::Metrics) -> Self {
        let counters = redactor
            .names()
            .map(|rule| metrics.masked.with_label_values(&[rule]))
            .collect();
        Masking { redactor, counters }
    }

    /// Masks a push in place.
    pub fn batch(&self, batch: &mut PushBatch) {
        let mut counts = vec![0u64; self.counters.len()];
        self.redactor.mask_batch(batch, &mut counts);
        self.count(&counts);
    }

    /// Masks one text in place (a dead-lettered line, a line read from Loki).
    pub fn text(&self, text: &mut String) {
        let mut counts = vec![0u64; self.counters.len()];
        self.redactor.mask_in_place(text, &mut counts);
        self.count(&counts);
    }

    fn count(&self, counts: &[u64]) {
        for (c, n) in self.counters.iter().zip(counts) {
            if *n > 0 {
                c.inc_by(*n);
            }
        }
    }
}
