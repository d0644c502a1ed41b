//! A synthetic stream produced to Kafka, the events an uninterrupted in-process run of it
//! finds (the reference "nothing lost, nothing different" is judged against), `aiops run`
//! configurations for it, and seeded randomness for tests that pick moments to join, leave or
//! crash.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aiops_connectors::source::synthetic::{SyntheticConfig, SyntheticSource};
use aiops_pipeline::sink::Collect;
use aiops_pipeline::{RunOptions, run};
use aiops_schemas::AnomalyEvent;

use super::{Broker, Redis, RunConfig};

/// The tenant of every synthetic series.
pub const TENANT: &str = "demo";

/// `series` synthetic series of `points` points each, an anomaly every `gap` points on average.
pub fn synthetic(series: usize, points: u64, gap: u64) -> SyntheticConfig {
    SyntheticConfig {
        series,
        tenant: TENANT.into(),
        ticks: Some(points),
        seed: 1,
        mean_anomaly_gap: gap,
        ..SyntheticConfig::default()
    }
}

/// The events of an uninterrupted in-process run of the same stream.
pub fn reference(config: &SyntheticConfig) -> Vec<AnomalyEvent> {
    let source = Arc::new(SyntheticSource::new(config.clone(), 2).unwrap());
    let mut sink = Collect::default();
    let options = RunOptions {
        templates: super::light_default_templates(),
        ..RunOptions::new(2)
    };
    run(source, &mut sink, options, |_| {}).unwrap();
    sink.events
}

/// The reference events by id.
pub fn reference_by_id(config: &SyntheticConfig) -> BTreeMap<String, AnomalyEvent> {
    reference(config)
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect()
}

/// `aiops produce --synthetic` of `config` to `topic` (4 partitions), with `extra` arguments.
pub fn produce_synthetic(brokers: &str, topic: &str, config: &SyntheticConfig, extra: &[&str]) {
    let (series, points, gap) = (
        config.series.to_string(),
        config.ticks.unwrap().to_string(),
        config.mean_anomaly_gap.to_string(),
    );
    let mut args = vec![
        "--topic",
        topic,
        "--partitions",
        "4",
        "--synthetic",
        "--tenant",
        TENANT,
        "--series",
        &series,
        "--points",
        &points,
        "--anomaly-gap",
        &gap,
    ];
    args.extend_from_slice(extra);
    super::produce(brokers, &args);
}

/// A run configuration reading topic `metrics` as `group`, events to Redis database `db`,
/// checkpoints under `dir`.
pub fn config(
    broker: &Broker,
    redis: &Redis,
    db: u8,
    group: &str,
    dir: &std::path::Path,
) -> RunConfig {
    RunConfig {
        brokers: broker.address(),
        topic: "metrics".into(),
        group: group.into(),
        redis_url: redis.url(db),
        checkpoint_dir: dir.join(format!("state-{group}")),
        workers: 2,
        extra: String::new(),
    }
}

/// Every event in the tenant's Redis stream of database `db`, in stream order.
pub fn redis_events(redis: &Redis, db: u8) -> Vec<AnomalyEvent> {
    redis
        .stream(db, TENANT)
        .into_iter()
        .map(|(_, payload)| serde_json::from_slice(&payload).unwrap())
        .collect()
}

/// Checks that every entry a run wrote to Redis so far (a repeat after a crash included) is a
/// reference event, exactly. `Err` says what differs.
pub fn within_reference(
    got: &[AnomalyEvent],
    reference: &BTreeMap<String, AnomalyEvent>,
) -> Result<(), String> {
    let problems: Vec<String> = got
        .iter()
        .filter_map(|event| match reference.get(&event.id) {
            None => Some(format!(
                "unexpected event {} at {}",
                event.id, event.timestamp
            )),
            Some(expected) if expected != event => Some(format!(
                "event {} differs: expected {expected:?}, got {event:?}",
                event.id
            )),
            Some(_) => None,
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Compares what a run wrote to Redis with the reference: the same ids, and each entry (a
/// repeat after a crash included) the reference's event exactly. `Err` says what differs.
pub fn same_as_reference(
    got: &[AnomalyEvent],
    reference: &BTreeMap<String, AnomalyEvent>,
) -> Result<(), String> {
    let mut problems: Vec<String> = within_reference(got, reference).err().into_iter().collect();
    let seen: std::collections::BTreeSet<&str> = got.iter().map(|e| e.id.as_str()).collect();
    let missing: Vec<&String> = reference
        .keys()
        .filter(|id| !seen.contains(id.as_str()))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("{} events missing: {missing:?}", missing.len()));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// A small seeded generator (xorshift64*): the same seed, the same moments.
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Seeded {
        // Spread small seeds over the state; never zero.
        Seeded(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A duration uniform in `[low_ms, high_ms)`.
    pub fn millis(&mut self, low_ms: u64, high_ms: u64) -> Duration {
        Duration::from_millis(low_ms + self.below(high_ms - low_ms))
    }
}

/// The seeds to run: `AIOPS_SEEDS` (comma separated) replays chosen ones, else `default`.
pub fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("AIOPS_SEEDS") {
        Ok(list) => list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("AIOPS_SEEDS: numbers separated by commas")
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}
