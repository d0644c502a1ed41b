//! The whole dataflow (synthetic source → features → detectors → ensemble → alert policy → sink)
//! with 1 and 2 timely workers, under the light template (z-score + MAD) and the default one
//! (the calibrated ensemble of six detectors), each without and with the drift stage (all five
//! tests on each series' value and score; retraining off, as it runs beside the pipeline).
//!
//! `cargo bench --bench dataflow`. Each iteration generates the series (light: 1,000 series ×
//! 1,000 points; default: 100 × 2,000, as it is 40–55 times costlier per point) and runs
//! them through a fresh pipeline; throughput is in points per second of wall time, including
//! the generator (which has its share of the cores).

use std::sync::Arc;

use aiops_connectors::source::synthetic::{SyntheticConfig, SyntheticSource};
use aiops_operators::{Registry, Template, TemplateSet};
use aiops_pipeline::config::{DriftStageConfig, RetrainConfig};
use aiops_pipeline::sink::Sink;
use aiops_pipeline::{RunOptions, run};
use aiops_schemas::AnomalyEvent;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Counts events and drops them, so the sink costs nothing.
#[derive(Default)]
struct Count(usize);

impl Sink for Count {
    fn events(&mut self, events: &[AnomalyEvent]) -> aiops_pipeline::Result<()> {
        self.0 += events.len();
        Ok(())
    }
}

fn run_once(
    templates: &Arc<TemplateSet>,
    series: usize,
    ticks: u64,
    workers: usize,
    drift: bool,
) -> usize {
    let config = SyntheticConfig {
        series,
        ticks: Some(ticks),
        ..SyntheticConfig::default()
    };
    let source = Arc::new(SyntheticSource::new(config, workers).unwrap());
    let mut sink = Count::default();
    let options = RunOptions {
        templates: templates.clone(),
        drift: drift.then(|| DriftStageConfig {
            enabled: true,
            retrain: RetrainConfig {
                enabled: false,
                ..RetrainConfig::default()
            },
            ..DriftStageConfig::default()
        }),
        ..RunOptions::new(workers)
    };
    let summary = run(source, &mut sink, options, |_| {}).unwrap();
    assert_eq!(summary.stats.points_scored, series as u64 * ticks);
    sink.0
}

fn dataflow(c: &mut Criterion) {
    let light = Template {
        name: "default".into(),
        ..Template::light()
    };
    let light = Arc::new(TemplateSet::new(vec![light], Registry::builtin()).unwrap());
    let default = Arc::new(TemplateSet::builtin());
    for (name, templates, series, ticks) in [
        ("dataflow_synthetic", light, 1000, 1000),
        ("dataflow_synthetic_default_template", default, 100, 2000),
    ] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(series as u64 * ticks));
        group.sample_size(10);
        for workers in [1, 2] {
            for drift in [false, true] {
                let name = format!("{workers}_workers{}", if drift { "_drift" } else { "" });
                group.bench_function(name, |b| {
                    b.iter(|| run_once(&templates, series, ticks, workers, drift))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, dataflow);
criterion_main!(benches);
