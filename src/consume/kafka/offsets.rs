//! Where a partition's fetch starts and whether a batch continues exactly from the stored
//! offsets: the pure part of exactly-once, unit-tested without a broker.

use std::collections::{BTreeMap, HashMap};

use rdkafka::Offset;

use crate::kafka::MAX_BATCH_MESSAGES;

/// A message taken off the topic, waiting for its batch.
pub(super) struct Pending {
    pub(super) generation: u64,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) payload: Option<Vec<u8>>,
    /// When the producer (an ingest process) created the message, in Unix ms.
    pub(super) created_ms: Option<i64>,
}

/// How far before the stored offset a partition is fetched from after a refused gap, by
/// attempt: further back each time, then from the log start (None). Messages before the
/// stored offset are filtered out, so a rewind costs reading only.
pub(super) fn gap_rewind(attempt: u32) -> Option<i64> {
    match attempt {
        0 | 1 => Some(MAX_BATCH_MESSAGES),
        2 => Some(8 * MAX_BATCH_MESSAGES),
        _ => None,
    }
}

/// Where to fetch a partition from: `rewind` offsets before its stored offset (None: from
/// the log start), so the fetch never starts inside a record batch; see MAX_BATCH_MESSAGES.
/// Before the log start, librdkafka resets to it (`auto.offset.reset=earliest`).
pub(super) fn fetch_start(stored: Option<i64>, rewind: Option<i64>) -> Offset {
    match (stored, rewind) {
        (Some(s), Some(back)) if s > back => Offset::Offset(s - back),
        _ => Offset::Beginning,
    }
}

/// Still refusing the same gap after rewinding to the log start is reported as an error:
/// the broker does not serve offsets it says it holds.
pub(super) const GAP_ERROR_AFTER: u32 = 4;

/// Orders each partition's messages, drops duplicate copies, and checks that they continue
/// exactly from the stored offset. A gap is accepted only where the broker no longer has
/// the missing offsets (`low_watermark` past them: retention deleted them); anything else
/// would commit past lines never counted. Err((partition, expected offset, first found)).
pub(super) fn contiguous(
    mut batch: Vec<Pending>,
    owned: &BTreeMap<i32, Option<i64>>,
    low_watermark: impl Fn(i32) -> Option<i64>,
) -> Result<Vec<Pending>, (i32, i64, i64)> {
    batch.sort_by_key(|m| (m.partition, m.offset));
    batch.dedup_by_key(|m| (m.partition, m.offset));
    let mut next: HashMap<i32, i64> = HashMap::new();
    for m in &batch {
        let expected = match next.get(&m.partition) {
            Some(n) => Some(*n),
            None => owned.get(&m.partition).copied().flatten(),
        };
        if let Some(expected) = expected
            && m.offset != expected
        {
            if low_watermark(m.partition).is_none_or(|low| low < m.offset) {
                return Err((m.partition, expected, m.offset));
            }
            tracing::warn!(
                partition = m.partition,
                expected,
                got = m.offset,
                "offsets deleted by retention before they were consumed"
            );
        }
        next.insert(m.partition, m.offset + 1);
    }
    Ok(batch)
}

/// Only partitions still owned, and only messages at or after where each must start.
pub(super) fn owned_only(batch: Vec<Pending>, owned: &BTreeMap<i32, Option<i64>>) -> Vec<Pending> {
    batch
        .into_iter()
        .filter(|m| {
            owned
                .get(&m.partition)
                .is_some_and(|from| from.is_none_or(|f| m.offset >= f))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(partition: i32, offset: i64) -> Pending {
        Pending {
            generation: 0,
            partition,
            offset,
            payload: None,
            created_ms: None,
        }
    }

    #[test]
    fn fetches_start_a_batch_before_the_stored_offset() {
        assert_eq!(fetch_start(Some(5000), Some(1000)), Offset::Offset(4000));
        assert_eq!(fetch_start(Some(700), Some(1000)), Offset::Beginning);
        assert_eq!(fetch_start(None, Some(1000)), Offset::Beginning);
        assert_eq!(fetch_start(Some(5000), None), Offset::Beginning);
        // Each refused gap reaches further back, ending at the log start.
        let rewinds: Vec<_> = (1..=4).map(gap_rewind).collect();
        assert_eq!(rewinds, [Some(1000), Some(8000), None, None]);
    }

    #[test]
    fn batches_must_continue_from_the_stored_offset() {
        let owned: BTreeMap<i32, Option<i64>> = [(0, Some(10)), (1, None)].into();
        let nothing_deleted = |_: i32| Some(0);
        let ok = contiguous(
            vec![m(0, 11), m(1, 5), m(0, 10), m(0, 11), m(1, 6)],
            &owned,
            nothing_deleted,
        )
        .expect("contiguous");
        let order: Vec<(i32, i64)> = ok.iter().map(|m| (m.partition, m.offset)).collect();
        assert_eq!(order, [(0, 10), (0, 11), (1, 5), (1, 6)], "sorted, duplicates dropped");
        assert_eq!(
            contiguous(vec![m(0, 10), m(0, 12)], &owned, nothing_deleted).map(|_| ()),
            Err((0, 11, 12))
        );
        assert_eq!(
            contiguous(vec![m(0, 15)], &owned, nothing_deleted).map(|_| ()),
            Err((0, 10, 15))
        );
        assert_eq!(
            contiguous(vec![m(0, 15)], &owned, |_| None).map(|_| ()),
            Err((0, 10, 15)),
            "unknown: refuse"
        );
        // Retention deleted 10..15: the gap is real.
        assert!(contiguous(vec![m(0, 15)], &owned, |_| Some(15)).is_ok());
    }

    #[test]
    fn batches_keep_only_owned_partitions_from_their_stored_offset() {
        let owned: BTreeMap<i32, Option<i64>> = [(0, Some(10)), (1, None)].into();
        let kept: Vec<(i32, i64)> = owned_only(vec![m(0, 9), m(0, 10), m(1, 0), m(2, 50)], &owned)
            .iter()
            .map(|m| (m.partition, m.offset))
            .collect();
        assert_eq!(kept, [(0, 10), (1, 0)]);
    }
}
