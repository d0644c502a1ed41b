//! The whole dataflow (synthetic source → features → z-score + MAD → ensemble → alert policy →
//! sink) with 1 and 2 timely workers.
//!
//! `cargo bench --bench dataflow`. Each iteration generates 1,000 series × 1,000 points and runs
//! them through a fresh pipeline; throughput is in points per second of wall time, including
//! the generator (which has its share of the cores).

use std::sync::Arc;

use aiops_pipeline::sink::Sink;
use aiops_pipeline::source::synthetic::{SyntheticConfig, SyntheticSource};
use aiops_pipeline::{RunOptions, run};
use aiops_schemas::AnomalyEvent;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SERIES: usize = 1000;
const TICKS: u64 = 1000;

/// Counts events and drops them, so the sink costs nothing.
#[derive(Default)]
struct Count(usize);

impl Sink for Count {
    fn events(&mut self, events: &[AnomalyEvent]) -> aiops_pipeline::Result<()> {
        self.0 += events.len();
        Ok(())
    }
}

fn run_once(workers: usize) -> usize {
    let config = SyntheticConfig {
        series: SERIES,
        ticks: Some(TICKS),
        ..SyntheticConfig::default()
    };
    let source = Arc::new(SyntheticSource::new(config, workers).unwrap());
    let mut sink = Count::default();
    let summary = run(source, &mut sink, RunOptions::new(workers), |_| {}).unwrap();
    assert_eq!(summary.stats.points_scored, SERIES as u64 * TICKS);
    sink.0
}

fn dataflow(c: &mut Criterion) {
    let mut group = c.benchmark_group("dataflow_synthetic");
    group.throughput(Throughput::Elements(SERIES as u64 * TICKS));
    group.sample_size(10);
    for workers in [1, 2] {
        group.bench_function(format!("{workers}_workers"), |b| {
            b.iter(|| run_once(workers))
        });
    }
    group.finish();
}

criterion_group!(benches, dataflow);
criterion_main!(benches);
