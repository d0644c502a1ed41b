//! The dataflow end to end inside one process: worker counts do not change the events, bad
//! records become dead letters without stopping anything, and the graph's output can be
//! captured and compared, timely style.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc;

use aiops_connectors::source::file::FileSource;
use aiops_connectors::source::synthetic::{SyntheticConfig, SyntheticSource};
use aiops_pipeline::dataflow::{GraphConfig, RecordFormats, detection_graph};
use aiops_pipeline::record::{PartitionId, RawRecord, SeriesState, SourcePoint};
use aiops_pipeline::sink::Collect;
use aiops_pipeline::{Counters, RunOptions, run};
use aiops_schemas::{AnomalyEvent, Format, ParseOptions};
use timely::dataflow::operators::capture::{Capture, Extract};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concat, Input};

fn event_set(events: &[AnomalyEvent]) -> BTreeSet<String> {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect()
}

fn run_synthetic(workers: usize) -> (Vec<AnomalyEvent>, aiops_pipeline::Stats) {
    let config = SyntheticConfig {
        series: 60,
        ticks: Some(3000),
        mean_anomaly_gap: 800,
        ..SyntheticConfig::default()
    };
    let source = Arc::new(SyntheticSource::new(config, workers).unwrap());
    let mut sink = Collect::default();
    let summary = run(source, &mut sink, RunOptions::new(workers), |_| {}).unwrap();
    (sink.events, summary.stats)
}

#[test]
fn one_two_and_four_workers_give_the_same_events() {
    let (one, stats) = run_synthetic(1);
    assert_eq!(stats.points_in, 60 * 3000);
    assert_eq!(stats.points_scored, 60 * 3000);
    assert_eq!(stats.series, 60);
    assert!(
        one.len() >= 60,
        "the injected anomalies are found: {} events",
        one.len()
    );
    let one = event_set(&one);
    for workers in [2, 4] {
        let (events, stats) = run_synthetic(workers);
        assert_eq!(stats.points_in, 60 * 3000);
        assert_eq!(event_set(&events), one, "{workers} workers");
    }
}

fn write_file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    (dir, path)
}

/// A CSV series with a spike at row 400, and a few broken rows on the way.
fn csv_with_spike_and_garbage() -> String {
    let mut text = String::from("timestamp,value\n");
    for i in 0..600 {
        let value = if i == 400 {
            100.0
        } else {
            10.0 + ((i * 7919) % 13) as f64 / 13.0
        };
        let (h, m) = (i / 60, i % 60);
        text.push_str(&format!("2024-01-01 {h:02}:{m:02}:00,{value}\n"));
        match i {
            100 => text.push_str("2024-01-01 01:40:00,NaN\n"),
            200 => text.push_str("not a row at all\n"),
            300 => text.push_str("2024-13-01 00:00:00,1\n"),
            _ => {}
        }
    }
    text
}

#[test]
fn file_run_sends_bad_rows_to_dead_letters_and_keeps_going() {
    let (_dir, path) = write_file("svc.csv", &csv_with_spike_and_garbage());
    for workers in [1, 3] {
        let source = Arc::new(FileSource::new(&path, None).unwrap().with_batch_lines(64));
        let mut sink = Collect::default();
        let summary = run(source, &mut sink, RunOptions::new(workers), |_| {}).unwrap();
        assert_eq!(summary.stats.points_in, 600, "{workers} workers");
        assert_eq!(summary.stats.dead_letters, 3);
        let mut kinds: Vec<_> = sink.dead_letters.iter().map(|d| d.kind.clone()).collect();
        kinds.sort();
        assert_eq!(kinds, ["invalid_timestamp", "non_finite_value", "syntax"]);
        assert!(
            sink.dead_letters
                .iter()
                .any(|d| d.bytes == b"not a row at all")
        );
        let spike: Vec<_> = sink
            .events
            .iter()
            .map(|e| (e.series.name.as_str(), e.value))
            .collect();
        assert_eq!(spike, [("svc", 100.0)], "{workers} workers");
    }
}

#[test]
fn captured_graph_output_matches_expectations() {
    // 200 Influx records of one series with a spike at 150, and one bad record, sent by worker 0
    // of 2 at epoch 0; both output streams are captured as text and extracted after the run.
    let (send, recv) = mpsc::channel();
    let send = std::sync::Mutex::new(send);
    timely::execute(timely::Config::process(2), move |worker| {
        let send = send.lock().unwrap().clone();
        let config = GraphConfig {
            templates: Arc::new(aiops_operators::TemplateSet::builtin()),
            formats: RecordFormats::single(Format::Influx, ParseOptions::default()),
            counters: Arc::new(Counters::default()),
            checkpoint_every: None,
            models: None,
            drift: None,
            samples: false,
        };
        let (mut raw, mut points, mut restores) = worker.dataflow::<u64, _, _>(|scope| {
            let (raw_handle, raw) = scope.new_input::<Vec<RawRecord>>();
            let (points_handle, points) = scope.new_input::<Vec<SourcePoint>>();
            let (restores_handle, restores) = scope.new_input::<Vec<SeriesState>>();
            let streams = detection_graph(raw, points, restores, &config, (None, None), None);
            let (events, dead) = (streams.events, streams.dead_letters);
            let events =
                events.map(|e| format!("event {} {} {}", e.series.name, e.timestamp, e.severity));
            let dead = dead.map(|d| format!("dead {} {}", d.seq, d.reason));
            events.concat(dead).capture_into(send);
            (raw_handle, points_handle, restores_handle)
        });
        if worker.index() == 0 {
            for i in 0..200u64 {
                let value = if i == 150 { 50 } else { 10 + (i % 3) };
                let line = format!("svc,host=a latency={value} {}", i * 60_000_000_000);
                raw.send(record(i, line.into_bytes()));
            }
            raw.send(record(1000, b"svc latency=oops 0".to_vec()));
        }
        raw.advance_to(1);
        points.advance_to(1);
        restores.advance_to(1);
    })
    .unwrap();
    let captured: Vec<(u64, Vec<String>)> = recv.extract();
    let lines: Vec<String> = captured.into_iter().flat_map(|(_, lines)| lines).collect();
    assert_eq!(
        lines,
        [
            "dead 1000 influx syntax error at line 1, column 13: field \"latency\" has an invalid value \"oops\"",
            "event svc_latency 9000000 critical",
        ]
    );
}

fn record(seq: u64, bytes: Vec<u8>) -> RawRecord {
    RawRecord {
        seq,
        partition: PartitionId::default(),
        received: 0,
        key: None,
        bytes,
    }
}
