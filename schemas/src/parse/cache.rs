//! A cache of the series a parser has already built, so the points of a known series cost a
//! hash and a few string comparisons instead of sorting, validating and allocating its
//! identity again. Streams carry the same series over and over; this is where parsing spent most
//! of its time (in `malloc` and `free`).
//!
//! Entries are keyed by the series as written (tenant, name, labels in the record's order), and
//! a hit is confirmed by comparing every part, so a hash collision can never attribute a point to
//! the wrong series. When the cache is full it is emptied and refilled.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::error::Result;
use crate::limits::Limits;
use crate::series::{Labels, Series};

/// See the module docs.
#[derive(Debug, Default)]
pub struct SeriesCache {
    entries: HashMap<u64, Entry, BuildHasherDefault<PassThrough>>,
    capacity: usize,
}

#[derive(Debug)]
struct Entry {
    tenant: Box<str>,
    name: Box<str>,
    labels: Box<[(Box<str>, Box<str>)]>,
    series: Arc<Series>,
}

/// The keys are XXH3 hashes already.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl SeriesCache {
    /// A cache of up to `capacity` series (0: no caching at all).
    pub fn new(capacity: usize) -> SeriesCache {
        SeriesCache {
            entries: HashMap::default(),
            capacity,
        }
    }

    /// The series (tenant, name, labels as written), validated against `limits`: from the cache,
    /// or built and remembered.
    pub fn series<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        tenant: &str,
        name: &str,
        labels: &[(K, V)],
        limits: &Limits,
    ) -> Result<Arc<Series>> {
        if self.capacity == 0 {
            return build(tenant, name, labels, limits);
        }
        let key = written_hash(tenant, name, labels);
        if let Some(entry) = self.entries.get(&key)
            && &*entry.tenant == tenant
            && &*entry.name == name
            && entry.labels.len() == labels.len()
            && entry
                .labels
                .iter()
                .zip(labels)
                .all(|((k1, v1), (k2, v2))| &**k1 == k2.as_ref() && &**v1 == v2.as_ref())
        {
            return Ok(entry.series.clone());
        }
        let series = build(tenant, name, labels, limits)?;
        if self.entries.len() >= self.capacity {
            self.entries.clear();
        }
        self.entries.insert(
            key,
            Entry {
                tenant: tenant.into(),
                name: name.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.as_ref().into(), v.as_ref().into()))
                    .collect(),
                series: series.clone(),
            },
        );
        Ok(series)
    }

    /// How many series it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn build<K: AsRef<str>, V: AsRef<str>>(
    tenant: &str,
    name: &str,
    labels: &[(K, V)],
    limits: &Limits,
) -> Result<Arc<Series>> {
    let labels = Labels::from_pairs(
        labels
            .iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())),
    )?;
    Ok(Arc::new(Series::new(tenant, name, labels, limits)?))
}

fn written_hash<K: AsRef<str>, V: AsRef<str>>(tenant: &str, name: &str, labels: &[(K, V)]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(tenant.as_bytes());
    hasher.update(&[0xFF]);
    hasher.update(name.as_bytes());
    for (k, v) in labels {
        hasher.update(&[0xFF]);
        hasher.update(k.as_ref().as_bytes());
        hasher.update(&[0xFE]);
        hasher.update(v.as_ref().as_bytes());
    }
    hasher.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_share_the_series_and_misses_build_it() {
        let mut cache = SeriesCache::new(10);
        let limits = Limits::default();
        let a = cache.series("t", "cpu", &[("host", "a")], &limits).unwrap();
        let b = cache.series("t", "cpu", &[("host", "a")], &limits).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = cache.series("t", "cpu", &[("host", "b")], &limits).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        // Written in another order: another cache entry, the same series.
        let d = cache
            .series("t", "cpu", &[("x", "1"), ("host", "a")], &limits)
            .unwrap();
        let e = cache
            .series("t", "cpu", &[("host", "a"), ("x", "1")], &limits)
            .unwrap();
        assert_eq!(d, e);
        assert_eq!(cache.len(), 4);
    }

    #[test]
    fn invalid_series_are_not_cached_and_stay_errors() {
        let mut cache = SeriesCache::new(10);
        let limits = Limits::default();
        assert!(
            cache
                .series("a b", "cpu", &[] as &[(&str, &str)], &limits)
                .is_err()
        );
        assert!(
            cache
                .series("a b", "cpu", &[] as &[(&str, &str)], &limits)
                .is_err()
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let mut cache = SeriesCache::new(2);
        let limits = Limits::default();
        for name in ["a", "b", "c"] {
            cache
                .series("t", name, &[] as &[(&str, &str)], &limits)
                .unwrap();
        }
        assert_eq!(cache.len(), 1);
    }
}
