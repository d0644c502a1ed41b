// Shared by the parser targets: parse a record fresh and through a series cache kept across
// inputs; both must agree (the cache is an optimisation and must never change a result), and
// every point accepted must satisfy what the parsers promise downstream.

use std::cell::RefCell;

use aiops_schemas::{Format, ParseOptions, SeriesCache, parse_record, parse_record_cached};

thread_local! {
    static CACHE: RefCell<SeriesCache> = RefCell::new(SeriesCache::new(64));
}

pub fn check(format: Format, data: &[u8]) {
    let options = ParseOptions::default();
    let now = 1_700_000_000_000;
    let fresh = parse_record(format, data, &options, now);
    let cached = CACHE
        .with(|cache| parse_record_cached(format, data, &options, now, &mut cache.borrow_mut()));
    match (&fresh, &cached) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the series cache changed a parse result"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("cached and fresh parses disagree: {fresh:?} vs {cached:?}"),
    }
    if let Ok(points) = fresh {
        for point in &points {
            assert!(
                point.value.is_finite(),
                "a non-finite value was accepted: {point:?}"
            );
            let series = &point.series;
            assert!(
                !series.name().is_empty(),
                "an empty metric name was accepted"
            );
            // The key is what routes a point to its worker: it must be the key of the series.
            let rebuilt = aiops_schemas::Series::new(
                series.tenant(),
                series.name(),
                series.labels().clone(),
                &options.limits,
            )
            .expect("an accepted series passes its own limits again");
            assert_eq!(
                rebuilt.key(),
                series.key(),
                "the series key does not match the series"
            );
        }
    }
}
