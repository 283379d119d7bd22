//! The partition key of a raw line (its correlation id) without decoding the whole line:
//! ingest needs only this to choose a Kafka partition, and the consumer decodes the line
//! anyway. Agrees with `Decoder::decode(..).correlation_id` (a property test checks it):
//!
//! - A JSON object line is scanned without building values: keys flattened with `.` to the
//!   decoder's depth (`trace.id` is an alias), only values under an alias kept. The rules are
//!   the decoder's: the earliest alias in `ALIASES` wins, the first of equal rank, and a value
//!   that is not non-blank text or an integer does not count.
//! - Then structured metadata, then stream labels, as the decoder's `finish` does.
//! - Anything else (logfmt, plain, JSON the scanner refuses) goes through the full decoder.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::decode::{Decoder, RawEntry};
use crate::normalize::fields::{DecodeLimits, Field, lookup};

pub struct KeyExtractor {
    decoder: Decoder,
    scratch: Vec<u8>,
}

impl KeyExtractor {
    pub fn new(limits: DecodeLimits) -> Self {
        KeyExtractor {
            decoder: Decoder::new(limits),
            scratch: Vec::new(),
        }
    }

    /// The correlation id the decoder would give this line; None for lines it refuses.
    pub fn correlation_id(&mut self, raw: &RawEntry<'_>) -> Option<String> {
        let line = raw.line.trim_end_matches(['\n', '\r']);
        if line.len() > self.decoder.limits().max_line_bytes {
            return None;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return None;
        }
        if trimmed.starts_with('{') && trimmed.ends_with('}') {
            let mut de = serde_json::Deserializer::from_str(trimmed);
            let scanned = TopLevel {
                scratch: &mut self.scratch,
            }
            .deserialize(&mut de)
            .and_then(|found| de.end().map(|()| found));
            if let Ok(found) = scanned {
                return found.or_else(|| self.metadata_or_labels(raw));
            }
        }
        self.decoder
            .decode(raw)
            .ok()
            .and_then(|r| r.correlation_id)
            .map(String::from)
    }

    /// Metadata first (ranked +100 in the decoder), then labels (+200).
    fn metadata_or_labels(&mut self, raw: &RawEntry<'_>) -> Option<String> {
        let metadata = raw.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let labels = raw.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        best(metadata, &mut self.scratch).or_else(|| best(labels, &mut self.scratch))
    }
}

/// The best-ranked non-blank correlation alias among pairs; the first of equal rank.
fn best<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>, scratch: &mut Vec<u8>) -> Option<String> {
    let mut found: Option<(u8, &str)> = None;
    for (k, v) in pairs {
        if let Some((Field::CorrelationId, rank, _)) = lookup(k, scratch)
            && !v.trim().is_empty()
            && found.is_none_or(|(r, _)| rank < r)
        {
            found = Some((rank, v));
        }
    }
    found.map(|(_, v)| v.to_owned())
}

/// Scans a JSON object's members; Ok(None) when no alias has a usable value.
struct TopLevel<'s> {
    scratch: &'s mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for TopLevel<'_> {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let mut found = Vec::new();
        d.deserialize_map(Members {
            prefix: None,
            depth: 1,
            found: &mut found,
            scratch: self.scratch,
        })?;
        // The decoder keeps the best-ranked usable value, the first of equal rank.
        let mut best: Option<(u8, String)> = None;
        for (rank, value) in found {
            if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                best = Some((rank, value));
            }
        }
        Ok(best.map(|(_, v)| v))
    }
}

/// Most levels of nesting the decoder flattens (`decode::MAX_FLATTEN_DEPTH`).
const MAX_FLATTEN_DEPTH: usize = 4;

/// The members of one object at `depth`, keys flattened with `.` as the decoder does
/// (`trace.id` is an alias); usable alias values are pushed to `found` in line order.
struct Members<'f, 's> {
    prefix: Option<&'f str>,
    depth: usize,
    found: &'f mut Vec<(u8, String)>,
    scratch: &'s mut Vec<u8>,
}

impl<'de> Visitor<'de> for Members<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(Key)? {
            let path: Cow<'_, str> = match self.prefix {
                Some(p) => Cow::Owned(format!("{p}.{key}")),
                None => key,
            };
            map.next_value_seed(Member {
                path: &path,
                depth: self.depth,
                found: &mut *self.found,
                scratch: &mut *self.scratch,
            })?;
        }
        Ok(())
    }
}

/// One member's value: an object within the depth is flattened, a scalar under an alias
/// of the correlation id is taken when usable (non-blank text or an integer).
struct Member<'f, 's> {
    path: &'f str,
    depth: usize,
    found: &'f mut Vec<(u8, String)>,
    scratch: &'s mut Vec<u8>,
}

impl Member<'_, '_> {
    fn take(self, value: Option<String>) {
        if let Some(v) = value
            && let Some((Field::CorrelationId, rank, _)) = lookup(self.path, self.scratch)
        {
            self.found.push((rank, v));
        }
    }
}

impl<'de> DeserializeSeed<'de> for Member<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Member<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let usable = !v.trim().is_empty();
        self.take(usable.then(|| v.to_owned()));
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.take(Some(v.to_string()));
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.take(Some(v.to_string()));
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        if self.depth >= MAX_FLATTEN_DEPTH {
            // Kept whole in `extra` by the decoder: never an id.
            return IgnoredAny.visit_map(map).map(|_| ());
        }
        Members {
            prefix: Some(self.path),
            depth: self.depth + 1,
            found: self.found,
            scratch: self.scratch,
        }
        .visit_map(map)
    }
}

/// An object key, borrowed when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels_from;

    fn key(line: &str, meta: &[(&str, &str)], labels: &[(&str, &str)]) -> Option<String> {
        let labels = labels_from(labels.iter().copied());
        let meta: Vec<(String, String)> = meta.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let raw = RawEntry {
            ts_ns: 1,
            line,
            labels: &labels,
            metadata: &meta,
        };
        let full = Decoder::new(DecodeLimits::default())
            .decode(&raw)
            .ok()
            .and_then(|r| r.correlation_id)
            .map(String::from);
        let fast = KeyExtractor::new(DecodeLimits::default()).correlation_id(&raw);
        assert_eq!(fast, full, "line {line:?}");
        fast
    }

    #[test]
    fn agrees_with_the_decoder_on_aliases_ranks_and_fallbacks() {
        assert_eq!(
            key(r#"{"correlation_id":"r1","msg":"x"}"#, &[], &[]).as_deref(),
            Some("r1")
        );
        assert_eq!(
            key(r#"{"trace_id":"t","X-Correlation-ID":"c"}"#, &[], &[]).as_deref(),
            Some("c")
        );
        assert_eq!(key(r#"{"trace_id":7}"#, &[], &[]).as_deref(), Some("7"));
        assert_eq!(key(r#"{"trace_id":1.5,"x":{"correlation_id":"n"}}"#, &[], &[]), None);
        assert_eq!(
            key(r#"{"request_id":"q","trace":{"id":"t"}}"#, &[], &[]).as_deref(),
            Some("t")
        );
        assert_eq!(
            key(r#"{"correlation_id":"  "}"#, &[("trace_id", "m")], &[]).as_deref(),
            Some("m")
        );
        assert_eq!(
            key(r#"{"correlation_id":"a","correlation_id":"b"}"#, &[], &[]).as_deref(),
            Some("a")
        );
        assert_eq!(
            key(r#"{"correlation_id":" ","correlation_id":"b"}"#, &[], &[]).as_deref(),
            Some("b")
        );
        assert_eq!(key(r#"{"trace":{"id":"nested"}}"#, &[], &[]).as_deref(), Some("nested"));
        assert_eq!(key(r#"{"a":{"b":{"c":{"trace_id":"deep"}}}}"#, &[], &[]), None);
        assert_eq!(key(r#"{"msg":"x"}"#, &[], &[("trace_id", "l")]).as_deref(), Some("l"));
        assert_eq!(
            key("level=info correlation_id=lf msg=x", &[], &[]).as_deref(),
            Some("lf")
        );
        assert_eq!(
            key("{not json correlation_id=z}", &[], &[]),
            key("{not json correlation_id=z}", &[], &[])
        );
        assert_eq!(key("   ", &[("trace_id", "m")], &[]), None, "refused lines have no key");
    }
}
