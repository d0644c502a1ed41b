//! Record parsing, the first cost every point pays: JSON and Influx line protocol, each with
//! a fresh series per record (no cache) and with the parse stage's series cache.
//!
//! `cargo bench --bench parse`. Throughput in records per second on one core; 2,000 series with
//! three labels each, the shape of a fleet's host metrics.

use std::hint::black_box;

use aiops_schemas::{Format, ParseOptions, SeriesCache, parse_record, parse_record_cached};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const RECORDS: usize = 20_000;

fn records(format: Format) -> Vec<Vec<u8>> {
    (0..RECORDS)
        .map(|i| {
            let (series, tick) = (i % 2000, i / 2000);
            let region = ["eu", "us", "ap"][series % 3];
            let value = 50.0 + (i * 7919 % 1000) as f64 / 100.0;
            let timestamp = 1_700_000_000_000i64 + tick as i64 * 60_000;
            match format {
                Format::Json => format!(
                    r#"{{"tenant":"acme","name":"http_latency_ms","labels":{{"host":"host-{series:04}","region":"{region}","service":"checkout"}},"timestamp":{timestamp},"value":{value}}}"#
                ),
                _ => format!(
                    "http,tenant=acme,host=host-{series:04},region={region},service=checkout latency_ms={value} {}",
                    timestamp * 1_000_000
                ),
            }
            .into_bytes()
        })
        .collect()
}

fn parse(c: &mut Criterion) {
    let options = ParseOptions::default();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for (name, format) in [("json", Format::Json), ("influx", Format::Influx)] {
        let input = records(format);
        group.bench_function(format!("{name}_no_cache"), |b| {
            b.iter(|| {
                for record in &input {
                    black_box(parse_record(format, record, &options, 0).unwrap());
                }
            })
        });
        group.bench_function(format!("{name}_series_cache"), |b| {
            let mut cache = SeriesCache::new(100_000);
            b.iter(|| {
                for record in &input {
                    black_box(
                        parse_record_cached(format, record, &options, 0, &mut cache).unwrap(),
                    );
                }
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = parse
}
criterion_main!(benches);
