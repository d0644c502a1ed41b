//! The timely dataflow: source → parse/validate → exchange by series → features → detectors →
//! alert policy → sink, one extension trait per stage in the manner of timely's own operators.
//!
//! ```text
//! raw records ─ parse_records ─┬─ points ─┐
//!                              └─ dead letters ──────────────────────────────► deliver
//! generated points ───────────────────────┴─ features ─ detect ─ alerts ─────► deliver
//!                                          (exchange)
//! ```
//!
//! Timestamps are epochs (batches of a source), not event time: detectors read the points' own
//! timestamps. [`build`] assembles the graph inside a worker and returns its inputs and probe.

pub mod alert;
pub mod detect;
pub mod features;
pub mod parse;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::mpsc::SyncSender;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Concat, Input, Probe};
use timely::dataflow::{InputHandle, ProbeHandle, Scope, Stream};

use aiops_operators::TemplateSet;
use aiops_schemas::{AnomalyEvent, Format, ParseOptions, TimestampMs};

pub use alert::AlertStage;
pub use detect::DetectStage;
pub use features::FeatureStage;
pub use parse::ParseStage;

use crate::metrics::Counters;
use crate::record::{DeadLetter, RawRecord, SourcePoint};

/// Hashes series keys, which are already uniform 64-bit hashes, with one multiply-xorshift
/// instead of SipHash. The mix matters: the exchange routes by the key's low bits, so on one
/// worker those bits are nearly constant and must not pick the hash table bucket alone.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let x = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^ (x >> 32)
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

/// Per-series state of a stage, by series key.
pub type SeriesMap<T> = HashMap<u64, T, BuildHasherDefault<KeyHasher>>;

/// What leaves the dataflow, sent from the workers to whoever drives the pipeline.
#[derive(Debug)]
pub enum Output {
    /// Anomaly events of one epoch on one worker.
    Events(Vec<AnomalyEvent>),
    /// Records that failed to parse or validate.
    DeadLetters(Vec<DeadLetter>),
}

/// Everything the graph needs besides its inputs.
#[derive(Clone)]
pub struct GraphConfig {
    /// Templates (and the registry their detectors come from).
    pub templates: Arc<TemplateSet>,
    /// Format of raw records.
    pub format: Format,
    /// How raw records are parsed.
    pub parse: Arc<ParseOptions>,
    /// The clock for points that carry no timestamp.
    pub now: fn() -> TimestampMs,
    /// Live counters.
    pub counters: Arc<Counters>,
}

/// The handles a worker drives the graph with.
pub struct GraphHandles {
    /// Raw records to parse.
    pub raw: InputHandle<u64, CapacityContainerBuilder<Vec<RawRecord>>>,
    /// Points that need no parsing (generators).
    pub points: InputHandle<u64, CapacityContainerBuilder<Vec<SourcePoint>>>,
    /// Tells which epochs are fully processed and delivered.
    pub probe: ProbeHandle<u64>,
}

/// Builds the graph in `scope`; events and dead letters go to `output`.
pub fn build(
    scope: Scope<'_, u64>,
    config: GraphConfig,
    output: SyncSender<Output>,
) -> GraphHandles {
    let (raw_handle, raw) = scope.new_input::<Vec<RawRecord>>();
    let (points_handle, generated) = scope.new_input::<Vec<SourcePoint>>();
    let (events, dead_letters) = detection_graph(raw, generated, &config);
    let probe = ProbeHandle::new();
    deliver(events, output.clone(), Output::Events).probe_with(&probe);
    deliver(dead_letters, output, Output::DeadLetters).probe_with(&probe);
    GraphHandles {
        raw: raw_handle,
        points: points_handle,
        probe,
    }
}

/// The stages from raw records and generated points to events and dead letters; separate from
/// [`build`] so tests can capture its output streams.
pub fn detection_graph<'scope>(
    raw: Stream<'scope, u64, Vec<RawRecord>>,
    generated: Stream<'scope, u64, Vec<SourcePoint>>,
    config: &GraphConfig,
) -> (
    Stream<'scope, u64, Vec<AnomalyEvent>>,
    Stream<'scope, u64, Vec<DeadLetter>>,
) {
    let (parsed, dead_letters) = raw.parse_records(
        config.format,
        config.parse.clone(),
        config.now,
        config.counters.clone(),
    );
    let events = parsed
        .concat(count_generated(generated, config.counters.clone()))
        .features(config.templates.clone(), config.counters.clone())
        .detect(config.templates.clone(), config.counters.clone())
        .alerts(config.templates.clone(), config.counters.clone());
    (events, dead_letters)
}

fn count_generated<'scope>(
    stream: Stream<'scope, u64, Vec<SourcePoint>>,
    counters: Arc<Counters>,
) -> Stream<'scope, u64, Vec<SourcePoint>> {
    stream.unary(Pipeline, "CountGenerated", move |_, _| {
        move |input, output| {
            input.for_each(|cap, batch| {
                counters.add_points_in(batch.len() as u64);
                output.session(&cap).give_container(batch);
            });
        }
    })
}

/// Sends each non-empty batch out of the dataflow; the returned stream is empty and exists to
/// be probed, so a worker knows when an epoch has been handed over.
fn deliver<'scope, T: Clone + 'static>(
    stream: Stream<'scope, u64, Vec<T>>,
    output: SyncSender<Output>,
    wrap: fn(Vec<T>) -> Output,
) -> Stream<'scope, u64, Vec<()>> {
    stream.unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(Pipeline, "Deliver", move |_, _| {
        move |input, _output| {
            input.for_each(|_cap, batch| {
                if !batch.is_empty() {
                    // The receiver only hangs up when the run is being torn down; what is left
                    // then has nowhere to go.
                    let _ = output.send(wrap(std::mem::take(batch)));
                }
            });
        }
    })
}
