//! Per-point cost of each operator on one core, and of whole per-series chains: the default
//! template (the calibrated ensemble of six detectors, LSTM and isolation forest included) and
//! the light one (z-score + MAD).
//!
//! Also the choice of a template for a series among 1,000 tenants' 10 configurations each
//! (what a new series and every series at a configuration change pay), through the tenant
//! index and, for comparison in the same run, by a scan of every template in order.
//!
//! `cargo bench --bench detectors`. Throughput is reported in points (elements) per second.
//! The state size per series of each chain is printed once at the start.

use std::hint::black_box;
use std::sync::Arc;

use aiops_operators::{
    AlertConfig, AlertState, Detector, DetectorSpec, FeatureConfig, FeatureExtractor, Features,
    Matcher, Registry, SeriesChain, Template, TemplateSet,
};
use aiops_schemas::{Labels, Limits, MetricPoint, Series};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const POINTS: usize = 100_000;

/// A noisy daily sine with a spike every 5,000 points: what the detectors usually see.
fn values() -> Vec<f64> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..POINTS)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let spike = if i % 5000 == 4999 { 30.0 } else { 0.0 };
            50.0 + 10.0 * (i as f64 * std::f64::consts::TAU / 1440.0).sin() + 4.0 * noise + spike
        })
        .collect()
}

fn features(values: &[f64]) -> Vec<Features> {
    let config = FeatureConfig::default();
    let mut extractor = FeatureExtractor::new();
    values
        .iter()
        .enumerate()
        .filter_map(|(i, &v)| extractor.next(&config, i as i64 * 60_000, v))
        .collect()
}

fn bench_detector(c: &mut Criterion, name: &str, make: impl Fn() -> Box<dyn Detector>) {
    let input = features(&values());
    let mut group = c.benchmark_group("detector");
    group.throughput(Throughput::Elements(input.len() as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            let mut detector = make();
            let mut total = 0.0;
            for f in &input {
                if let Some(s) = detector.observe(f) {
                    total += s.score;
                }
            }
            black_box(total)
        })
    });
    group.finish();
}

fn operators(c: &mut Criterion) {
    let registry = Registry::builtin();
    // Every built-in kind with its default parameters; a fresh detector per iteration, so
    // warm-up and (for iforest and lstm) training are part of the cost, as on a new series.
    for kind in registry.kinds() {
        let spec = DetectorSpec::new(&kind);
        bench_detector(c, &kind, || registry.build(&spec).unwrap());
    }

    let values = values();
    let mut group = c.benchmark_group("stage");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.bench_function("features", |b| {
        let config = FeatureConfig::default();
        b.iter(|| {
            let mut extractor = FeatureExtractor::new();
            for (i, &v) in values.iter().enumerate() {
                black_box(extractor.next(&config, i as i64, v));
            }
        })
    });
    let scores: Vec<Option<f64>> = values
        .iter()
        .map(|v| Some((v - 50.0).abs() / 3.0))
        .collect();
    group.bench_function("alert_policy", |b| {
        let config = AlertConfig::default();
        b.iter(|| {
            let mut state = AlertState::new();
            let mut alerts = 0;
            for (i, &s) in scores.iter().enumerate() {
                alerts += usize::from(state.step(&config, i as u64, i as i64, s, false).is_some());
            }
            black_box(alerts)
        })
    });
    group.finish();
}

fn chain(c: &mut Criterion) {
    let registry = Registry::builtin();
    let series = Arc::new(Series::new("bench", "cpu", Labels::new(), &Limits::default()).unwrap());
    let points: Vec<MetricPoint> = values()
        .into_iter()
        .enumerate()
        .map(|(i, value)| MetricPoint {
            series: series.clone(),
            timestamp: i as i64 * 60_000,
            value,
        })
        .collect();
    let mut group = c.benchmark_group("chain");
    group.throughput(Throughput::Elements(points.len() as u64));
    for (name, template) in [
        ("default_template", Template::default()),
        ("light_template", Template::light()),
    ] {
        let mut warm = SeriesChain::new(&template, &registry).unwrap();
        let mut events = 0;
        for p in &points {
            events += usize::from(warm.step(&template, p).and_then(|s| s.event).is_some());
        }
        eprintln!(
            "{name} ({}): {} bytes of state per series; {events} events in {} points",
            template
                .detectors
                .iter()
                .map(|d| d.kind.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
            warm.state_bytes(),
            points.len()
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut chain = SeriesChain::new(&template, &registry).unwrap();
                let mut events = 0;
                for p in &points {
                    events += usize::from(chain.step(&template, p).and_then(|s| s.event).is_some());
                }
                black_box(events)
            })
        });
    }
    group.finish();
}

/// Selecting a template among 10,000 tenant configurations (1,000 tenants × 10 metrics) and
/// the configured default, for 1,000 series of various tenants.
fn selection(c: &mut Criterion) {
    let mut templates = Vec::new();
    for tenant in 0..1_000 {
        for metric in 0..10 {
            templates.push(Template {
                name: format!("c{metric}"),
                matcher: Matcher {
                    tenant: Some(format!("tenant{tenant}")),
                    metric: Some(format!("metric{metric}_*")),
                    ..Matcher::default()
                },
                ..Template::light()
            });
        }
    }
    let set = TemplateSet::with_variants(templates.clone(), Registry::builtin());
    let all = set.templates().to_vec();
    let series: Vec<Series> = (0..1_000)
        .map(|i| {
            Series::new(
                format!("tenant{}", (i * 7919) % 1_200),
                format!("metric{}_p99", i % 12),
                Labels::new(),
                &Limits::default(),
            )
            .unwrap()
        })
        .collect();
    let mut group = c.benchmark_group("template_selection");
    group.throughput(Throughput::Elements(series.len() as u64));
    group.bench_function("tenant_index", |b| {
        b.iter(|| {
            series
                .iter()
                .map(|s| set.select(s).map_or(0, |(i, _)| i))
                .sum::<usize>()
        })
    });
    group.bench_function("scan_in_order", |b| {
        b.iter(|| {
            series
                .iter()
                .map(|s| all.iter().position(|t| t.matcher.matches(s)).unwrap_or(0))
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = operators, chain, selection
}
criterion_main!(benches);
