//! The demo's score, held: the generator of `aiops demo` through the pipeline with the default
//! template, two days of 100 series, unpaced and from a fixed start, scored against the
//! anomalies it injected. Issue 17 asks for at least 95 % caught and at most 10 % of the events
//! outside the anomalies (docs/detection.md, "The stuck-value detector and the demo"); this
//! test holds both, and nine in ten frozen values (flatlines) caught, which only the
//! stuck-value detector sees (before it, about half were).
//! `cargo run --release --example demo_score` prints the same figures for 200 series.

use std::sync::Arc;

use aiops_connectors::source::synthetic::{AnomalyKind, SyntheticConfig, SyntheticSource};
use aiops_pipeline::sink::Collect;
use aiops_pipeline::{RunOptions, run};

#[test]
fn the_demo_catches_what_it_injects_and_every_frozen_value() {
    let points = 3000;
    let generator = SyntheticConfig {
        series: 100,
        ticks: Some(points),
        mean_anomaly_gap: 1500,
        ..SyntheticConfig::default()
    };
    let source = Arc::new(SyntheticSource::new(generator, 2).unwrap());
    let mut sink = Collect::default();
    run(source.clone(), &mut sink, RunOptions::new(2), |_| {}).unwrap();
    let caught: Vec<_> = sink
        .events
        .iter()
        .map(|e| (e.series.key, e.timestamp))
        .collect();
    let score = source.score(&caught, points);
    eprintln!("{score}");
    let flatlines = score.per_kind[&AnomalyKind::Flatline];
    assert!(flatlines.injected > 10, "{score}");
    // Every one, young series' too (the stuck detector's run is exempt from the young
    // warning; before, those in a series' first ~700 points were missed).
    assert_eq!(flatlines.caught, flatlines.injected, "{score}");
    assert!(score.recall() >= RECALL, "{score}");
    assert!(score.outside_share() <= OUTSIDE, "{score}");
}

/// Issue 17's target; the default (`builtin-8`) catches 175 of 178 (98.3 %) on this run.
const RECALL: f64 = 0.95;
/// Issue 17's target; the default has 16 of 283 events outside (5.7 %) on this run.
const OUTSIDE: f64 = 0.10;
