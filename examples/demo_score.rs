//! The demo's score for a configuration, without waiting for the demo: the generator of
//! `aiops demo` run unpaced through the pipeline for a fixed number of points per series, from a
//! fixed start, so two runs and two configurations compare point for point. Issue 17's targets
//! for the demo (at least 95 % of the injected anomalies caught, at most 10 % of the events
//! outside them) are measured with this and held by `tests/demo_quality.rs`.
//!
//!   cargo run --release --example demo_score -- [SERIES] [POINTS] [CONFIG.toml] [SEEDS] [EVENTS.jsonl]
//!
//! SERIES (default 200) and POINTS (default 3000, what `aiops demo --duration 60s` generates at
//! its default rate) size the run; CONFIG is a pipeline configuration whose templates replace
//! the built-in ones; SEEDS (default 1) runs seeds 1, 2, ... and prints each; EVENTS writes the
//! events of the last seed as JSON lines, each with `"inside": true` when it fell on an injected
//! anomaly, for a closer look.

use std::io::Write;
use std::sync::Arc;

use aiops_connectors::source::synthetic::{SCORE_SLACK, SyntheticConfig, SyntheticSource};
use aiops_pipeline::sink::Collect;
use aiops_pipeline::{PipelineConfig, RunOptions, run};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).filter(|a| !a.is_empty());
    let number = |i: usize, default: u64| -> u64 {
        arg(i).map_or(default, |a| a.parse().expect("a whole number"))
    };
    let series = number(0, 200) as usize;
    let points = number(1, 3000);
    let config = match arg(2) {
        Some(path) => PipelineConfig::from_file(std::path::Path::new(path)).unwrap(),
        None => PipelineConfig::default(),
    };
    let seeds = number(3, 1).max(1);
    for seed in 1..=seeds {
        let generator = SyntheticConfig {
            series,
            ticks: Some(points),
            seed,
            // The demo's default gap between anomalies of a series.
            mean_anomaly_gap: 1500,
            ..SyntheticConfig::default()
        };
        let source = Arc::new(SyntheticSource::new(generator.clone(), 2).unwrap());
        let options = RunOptions {
            templates: config.template_set().unwrap(),
            ..RunOptions::new(2)
        };
        let mut sink = Collect::default();
        run(source.clone(), &mut sink, options, |_| {}).unwrap();
        let caught: Vec<_> = sink
            .events
            .iter()
            .map(|e| (e.series.key, e.timestamp))
            .collect();
        println!("seed {seed}: {}", source.score(&caught, points));
        if seed == seeds
            && let Some(path) = arg(4)
        {
            let injected = source.injected(points);
            let slack = SCORE_SLACK as i64 * generator.interval_ms;
            let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
            for event in &sink.events {
                let inside = injected.iter().any(|a| {
                    a.series == event.series.key
                        && (a.start..=a.end + slack).contains(&event.timestamp)
                });
                let mut json = serde_json::to_value(event).unwrap();
                json["inside"] = inside.into();
                json["tick"] =
                    ((event.timestamp - generator.start_ms) / generator.interval_ms).into();
                writeln!(out, "{json}").unwrap();
            }
            for anomaly in &injected {
                let mut json = serde_json::to_value(anomaly).unwrap();
                json["injected"] = true.into();
                json["tick"] =
                    ((anomaly.start - generator.start_ms) / generator.interval_ms).into();
                json["caught"] = caught
                    .iter()
                    .any(|(k, t)| {
                        *k == anomaly.series && (anomaly.start..=anomaly.end + slack).contains(t)
                    })
                    .into();
                writeln!(out, "{json}").unwrap();
            }
        }
    }
}
