//! `Fields`: a line's unknown fields, sorted by name in one vector. A line has a few of
//! them; a `BTreeMap` spends a 600-byte node on even one, a vector what they take. A thin
//! vector (length and capacity on the heap, one pointer inline) keeps a held record within
//! the allocator's 512-byte size class: 16 bytes more inline cost 128 per held line.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use thin_vec::ThinVec;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(ThinVec<(Box<str>, Value)>);

impl Fields {
    pub fn new() -> Self {
        Fields(ThinVec::new())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    /// Sets `key`, replacing an earlier value.
    pub fn insert(&mut self, key: impl Into<Box<str>> + AsRef<str>, value: Value) {
        match self.position(key.as_ref()) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key.into(), value)),
        }
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    /// Gives back spare capacity: for records that are held.
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

impl<K: Into<Box<str>> + AsRef<str>> FromIterator<(K, Value)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        let mut f = Fields::new();
        for (k, v) in iter {
            f.insert(k, v);
        }
        f
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(&**k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of field names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Fields::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    fields.insert(k, v);
                }
                Ok(fields)
            }
        }
        d.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_replacing_and_serialized_as_a_map() {
        let mut f: Fields = [("b", json!(2)), ("a", json!(1))].into_iter().collect();
        f.insert("b", json!(3));
        assert_eq!((f.len(), f.get("b"), f.get("c")), (2, Some(&json!(3)), None));
        let text = serde_json::to_string(&f).expect("serializes");
        assert_eq!(text, r#"{"a":1,"b":3}"#);
        let back: Fields = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(back, f);
    }
}
