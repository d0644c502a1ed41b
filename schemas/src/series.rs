//! Series identity: labels, the series itself, and its stable 64-bit key.
//!
//! A series is (tenant, metric name, labels sorted by key). Its [`SeriesKey`] is the XXH3-64 hash
//! (seed 0) of this canonical byte form:
//!
//! ```text
//! tenant 0xFF name ( 0xFF key 0xFE value )*      labels in ascending byte order of their keys
//! ```
//!
//! The bytes 0xFE and 0xFF never occur in UTF-8, so the form is unambiguous without escaping, and
//! any language with an XXH3 library (Python's `xxhash`, Go's `zeebo/xxh3`, ...) computes the same
//! key, which is what a producer needs to pick the Kafka partition of a series. The test vectors
//! at the bottom of this file pin the function: changing it would split every series' state in two.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::limits::Limits;

const SEPARATOR: u8 = 0xFF;
const KEY_VALUE_SEPARATOR: u8 = 0xFE;

/// The stable 64-bit identity of a series. Shown and serialized as 16 lowercase hex digits,
/// because JSON numbers above 2^53 do not survive JavaScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey(pub u64);

impl SeriesKey {
    /// Computes the key of (tenant, name, labels) from their canonical form.
    pub fn of(tenant: &str, name: &str, labels: &Labels) -> SeriesKey {
        let mut canonical = Vec::with_capacity(64);
        write_canonical(&mut canonical, tenant, name, labels);
        SeriesKey(xxhash_rust::xxh3::xxh3_64(&canonical))
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for SeriesKey {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        if text.len() != 16 {
            return Err(format!("series key {text:?} is not 16 hex digits"));
        }
        u64::from_str_radix(text, 16)
            .map(SeriesKey)
            .map_err(|_| format!("series key {text:?} is not 16 hex digits"))
    }
}

impl Serialize for SeriesKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SeriesKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Appends the canonical byte form of a series (see the module docs) to `out`.
pub fn write_canonical(out: &mut Vec<u8>, tenant: &str, name: &str, labels: &Labels) {
    out.extend_from_slice(tenant.as_bytes());
    out.push(SEPARATOR);
    out.extend_from_slice(name.as_bytes());
    for (key, value) in labels.iter() {
        out.push(SEPARATOR);
        out.extend_from_slice(key.as_bytes());
        out.push(KEY_VALUE_SEPARATOR);
        out.extend_from_slice(value.as_bytes());
    }
}

/// A series' labels: unique keys, kept sorted by key so that equal label sets compare, hash and
/// serialize equally whatever order a producer wrote them in. Serialized as a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// No labels.
    pub fn new() -> Labels {
        Labels(Vec::new())
    }

    /// Builds labels from pairs in any order. A key given twice is an error rather than a silent
    /// overwrite, since either choice would change the series identity behind the producer's back.
    pub fn from_pairs<K, V, I>(pairs: I) -> Result<Labels>
    where
        K: Into<String>,
        V: Into<String>,
        I: IntoIterator<Item = (K, V)>,
    {
        let mut pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::DuplicateLabel {
                key: pair[0].0.clone(),
            });
        }
        Ok(Labels(pairs))
    }

    /// The value of label `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// The labels in ascending key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many labels there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks every label and the count against `limits`.
    pub fn validate(&self, limits: &Limits) -> Result<()> {
        limits.check_label_count(self.0.len())?;
        self.0
            .iter()
            .try_for_each(|(k, v)| limits.check_label(k, v))
    }

    /// Heap bytes held, for state accounting.
    pub fn heap_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<(String, String)>()
            + self
                .0
                .iter()
                .map(|(k, v)| k.capacity() + v.capacity())
                .sum::<usize>()
    }
}

impl fmt::Display for Labels {
    /// Prometheus-style `{key="value",...}`, or nothing when there are no labels.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct LabelsVisitor;
        impl<'de> serde::de::Visitor<'de> for LabelsVisitor {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string labels")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Labels, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(4).min(64));
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    pairs.push((k, v));
                }
                Labels::from_pairs(pairs).map_err(serde::de::Error::custom)
            }
        }
        deserializer.deserialize_map(LabelsVisitor)
    }
}

/// One series: tenant, metric name and labels, with its key computed once at construction.
/// Fields are private so the key can never disagree with them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Series {
    tenant: String,
    name: String,
    labels: Labels,
    key: SeriesKey,
}

impl Series {
    /// Builds a series after checking every part against `limits`.
    pub fn new(
        tenant: impl Into<String>,
        name: impl Into<String>,
        labels: Labels,
        limits: &Limits,
    ) -> Result<Series> {
        let (tenant, name) = (tenant.into(), name.into());
        limits.check_tenant(&tenant)?;
        limits.check_name(&name)?;
        labels.validate(limits)?;
        let key = SeriesKey::of(&tenant, &name, &labels);
        Ok(Series {
            tenant,
            name,
            labels,
            key,
        })
    }

    /// The tenant the series belongs to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The metric name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The labels, sorted by key.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The stable key.
    pub fn key(&self) -> SeriesKey {
        self.key
    }

    /// Heap and inline bytes held, for state accounting.
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.tenant.capacity()
            + self.name.capacity()
            + self.labels.heap_bytes()
    }
}

impl fmt::Display for Series {
    /// `tenant/name{labels}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.tenant, self.name, self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    /// Test vectors: these values are the contract with producers in other languages.
    /// They were computed independently with Python's `xxhash` package (`xxhash.xxh3_64_hexdigest(canonical_bytes)`).
    #[test]
    fn series_key_test_vectors() {
        assert_eq!(
            SeriesKey::of("acme", "cpu", &Labels::new()).to_string(),
            format!(
                "{:016x}",
                xxhash_rust::xxh3::xxh3_64(b"acme\xffcpu") // the canonical form, spelled out
            )
        );
        let vectors = [
            ("default", "cpu_usage", vec![], "d91080a3ff2de729"),
            (
                "acme",
                "cpu",
                vec![("host", "a"), ("dc", "eu-1")],
                "d4fbec95096278bc",
            ),
            ("t", "m", vec![("k", "")], "b8bda4028545634b"),
        ];
        for (tenant, name, pairs, expected) in vectors {
            let key = SeriesKey::of(tenant, name, &labels(&pairs));
            assert_eq!(key.to_string(), expected, "{tenant}/{name}{pairs:?}");
        }
    }

    #[test]
    fn label_order_does_not_change_the_key() {
        let a = SeriesKey::of("t", "m", &labels(&[("a", "1"), ("b", "2")]));
        let b = SeriesKey::of("t", "m", &labels(&[("b", "2"), ("a", "1")]));
        assert_eq!(a, b);
    }

    #[test]
    fn component_boundaries_are_part_of_the_key() {
        // Without separators these would all hash the same bytes.
        let k1 = SeriesKey::of("ab", "c", &Labels::new());
        let k2 = SeriesKey::of("a", "bc", &Labels::new());
        let k3 = SeriesKey::of("t", "m", &labels(&[("ab", "c")]));
        let k4 = SeriesKey::of("t", "m", &labels(&[("a", "bc")]));
        assert_ne!(k1, k2);
        assert_ne!(k3, k4);
    }

    #[test]
    fn duplicate_label_keys_are_an_error() {
        assert_eq!(
            Labels::from_pairs([("a", "1"), ("a", "2")]),
            Err(Error::DuplicateLabel { key: "a".into() })
        );
    }

    #[test]
    fn series_key_round_trips_through_hex() {
        let key = SeriesKey(0x00ab_cdef_0123_4567);
        assert_eq!(key.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<SeriesKey>(), Ok(key));
        assert!("abc".parse::<SeriesKey>().is_err());
        assert!("zzzzzzzzzzzzzzzz".parse::<SeriesKey>().is_err());
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, "\"00abcdef01234567\"");
        assert_eq!(serde_json::from_str::<SeriesKey>(&json).unwrap(), key);
    }

    #[test]
    fn labels_serialize_as_a_sorted_object() {
        let l = labels(&[("z", "1"), ("a", "2")]);
        assert_eq!(serde_json::to_string(&l).unwrap(), r#"{"a":"2","z":"1"}"#);
        let back: Labels = serde_json::from_str(r#"{"z":"1","a":"2"}"#).unwrap();
        assert_eq!(back, l);
        assert_eq!(l.get("z"), Some("1"));
        assert_eq!(l.get("q"), None);
        assert_eq!(l.to_string(), r#"{a="2",z="1"}"#);
    }

    #[test]
    fn series_new_validates_every_part() {
        let limits = Limits::default();
        assert!(Series::new("acme", "cpu", Labels::new(), &limits).is_ok());
        assert!(Series::new("ac me", "cpu", Labels::new(), &limits).is_err());
        assert!(Series::new("acme", "", Labels::new(), &limits).is_err());
        assert!(Series::new("acme", "cpu", labels(&[("", "x")]), &limits).is_err());
    }
}
