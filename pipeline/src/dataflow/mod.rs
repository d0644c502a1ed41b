//! The timely dataflow: source → parse/validate → exchange by series → score (features →
//! detectors → ensemble → alert policy) → sink, one extension trait per stage in the manner of
//! timely's own operators.
//!
//! ```text
//! raw records ── parse_records ─┬─ points ──┐
//!                               └─ dead letters ──────────────────► deliver
//! generated points ─────────────────────────┴─ score ─ events ─────► deliver
//! checkpointed series state ──────────────────┘ (exchange by series)
//! ```
//!
//! Timestamps are epochs (batches of a source, or wall-clock slices for live sources), not
//! event time: detectors read the points' own timestamps. [`build`] assembles the graph inside a
//! worker and returns its inputs and probe.

pub mod drift;
pub mod parse;
pub mod score;

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
use aiops_schemas::{AnomalyEvent, DriftEvent};

pub use drift::{DriftPlan, DriftStage};
pub use parse::{ParseStage, RecordFormats};
pub use score::{FINAL_BOUNDARY, ScoreConfig, ScoreStage, SnapshotPlan, boundary_before};

use crate::config::DriftStageConfig;
use crate::metrics::Counters;
use crate::record::{
    DeadLetter, PartitionId, RawRecord, RetrainRequest, ScoreSample, Scored, SeriesState,
    SourcePoint,
};
use crate::source::SourceControl;
use aiops_models::watch::ModelWatch;

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

/// What leaves the workers (and the source's threads) for whoever drives the pipeline: what
/// the pipeline produced ([`Data`], for the sink) and what keeps it consistent ([`Control`],
/// the checkpoint protocol and the workers' lifecycle). Both travel on one channel because the
/// checkpoint protocol relies on its order: from one thread, messages arrive in the order they
/// were sent, so a worker's `Progress` follows the events it covers.
#[derive(Debug)]
pub enum Output {
    /// What the pipeline produced.
    Data(Data),
    /// The checkpoint protocol, partition changes and the workers' lifecycle.
    Control(Control),
}

/// What the pipeline produced, for the sink (and, for retraining requests, the retrainer).
#[derive(Debug)]
pub enum Data {
    /// Anomaly events.
    Events(Vec<AnomalyEvent>),
    /// Records that failed to parse or validate.
    DeadLetters(Vec<DeadLetter>),
    /// Drift events.
    Drift(Vec<DriftEvent>),
    /// Every scored point (with `GraphConfig::samples`).
    Samples(Vec<ScoreSample>),
    /// A persisting drift asks for retraining.
    Retrain(RetrainRequest),
    /// Detector configurations this instance now runs (or refused), made by the runner from
    /// the workers' [`Control::Applied`] reports.
    Config(Vec<aiops_schemas::ConfigNotice>),
}

/// The checkpoint protocol and the lifecycle of the workers and the source's partitions.
#[derive(Debug)]
pub enum Control {
    /// Every event and dead letter of epochs before `frontier` has been sent by this worker
    /// (`u64::MAX`: everything).
    Progress {
        /// The worker.
        worker: usize,
        /// Its delivered frontier.
        frontier: u64,
    },
    /// The series state a worker's score stage changed since its previous snapshot, as of
    /// the end of epoch `boundary`.
    Snapshot {
        /// The worker.
        worker: usize,
        /// The checkpoint boundary (`FINAL_BOUNDARY` at the end of the input).
        boundary: u64,
        /// The changed series.
        series: Vec<SeriesState>,
    },
    /// What a worker had fed by the end of epoch `boundary`: the next offset per partition.
    Offsets {
        /// The worker.
        worker: usize,
        /// The checkpoint boundary.
        boundary: u64,
        /// (partition, next offset) for every partition the worker has fed.
        offsets: Vec<(PartitionId, i64)>,
    },
    /// A message from the source's own threads (partition assignments).
    Source(SourceControl),
    /// A worker's score stage runs the model versions and configurations of a publication of
    /// the model watch (from the next point it scores on).
    Applied {
        /// The worker.
        worker: usize,
        /// The publication it runs (what the confirmations confirm, whatever the watch has
        /// published since).
        active: Arc<aiops_models::watch::ActiveModels>,
    },
    /// The worker has finished: its inputs are closed and everything it sent is delivered.
    WorkerDone {
        /// The worker.
        worker: usize,
    },
}

impl From<Data> for Output {
    fn from(data: Data) -> Output {
        Output::Data(data)
    }
}

impl From<Control> for Output {
    fn from(control: Control) -> Output {
        Output::Control(control)
    }
}

/// Everything the graph needs besides its inputs.
#[derive(Clone)]
pub struct GraphConfig {
    /// Templates (and the registry their detectors come from).
    pub templates: Arc<TemplateSet>,
    /// How raw records are parsed.
    pub formats: RecordFormats,
    /// Live counters.
    pub counters: Arc<Counters>,
    /// Checkpoint boundaries, every so many epochs, when the source supports checkpoints.
    pub checkpoint_every: Option<u64>,
    /// Active model versions, when a model store is configured.
    pub models: Option<Arc<ModelWatch>>,
    /// The drift stage, when it runs.
    pub drift: Option<DriftStageConfig>,
    /// Send every scored point out (value, score, expected band), for plots.
    pub samples: bool,
}

/// The handles a worker drives the graph with.
pub struct GraphHandles {
    /// Raw records to parse.
    pub raw: InputHandle<u64, CapacityContainerBuilder<Vec<RawRecord>>>,
    /// Points that need no parsing (generators).
    pub points: InputHandle<u64, CapacityContainerBuilder<Vec<SourcePoint>>>,
    /// Series state to restore before their next points.
    pub restores: InputHandle<u64, CapacityContainerBuilder<Vec<SeriesState>>>,
    /// Tells which epochs are fully processed and delivered.
    pub probe: ProbeHandle<u64>,
}

impl GraphHandles {
    /// The epoch the inputs are at.
    pub fn time(&self) -> u64 {
        *self.raw.time()
    }

    /// Moves every input to `epoch` if it is later than where they are.
    pub fn advance_to(&mut self, epoch: u64) {
        if epoch > self.time() {
            self.raw.advance_to(epoch);
            self.points.advance_to(epoch);
            self.restores.advance_to(epoch);
        }
    }
}

/// Builds the graph in `scope` for worker `worker`; its output goes to `output`.
pub fn build(
    scope: Scope<'_, u64>,
    worker: usize,
    config: GraphConfig,
    output: SyncSender<Output>,
) -> GraphHandles {
    let (raw_handle, raw) = scope.new_input::<Vec<RawRecord>>();
    let (points_handle, generated) = scope.new_input::<Vec<SourcePoint>>();
    let (restores_handle, restores) = scope.new_input::<Vec<SeriesState>>();
    let snapshots = config.checkpoint_every.map(|every| SnapshotPlan {
        every,
        worker,
        output: output.clone(),
    });
    let retrain = config
        .drift
        .as_ref()
        .filter(|d| d.retrain.enabled)
        .map(|_| output.clone());
    // Each swap of model versions or configurations is reported, for the confirmations.
    let applied = config.models.as_ref().map(|_| output.clone());
    let streams = detection_graph(
        raw,
        generated,
        restores,
        &config,
        (snapshots, applied),
        retrain,
    );
    let probe = ProbeHandle::new();
    deliver(streams.events, output.clone(), Data::Events).probe_with(&probe);
    if let Some(drift) = streams.drift {
        deliver(drift, output.clone(), Data::Drift).probe_with(&probe);
    }
    if let Some(samples) = streams.samples {
        deliver(samples, output.clone(), Data::Samples).probe_with(&probe);
    }
    deliver(streams.dead_letters, output, Data::DeadLetters).probe_with(&probe);
    GraphHandles {
        raw: raw_handle,
        points: points_handle,
        restores: restores_handle,
        probe,
    }
}

/// The output streams of [`detection_graph`].
pub struct DetectionStreams<'scope> {
    /// Anomaly events.
    pub events: Stream<'scope, u64, Vec<AnomalyEvent>>,
    /// Records that failed to parse or validate.
    pub dead_letters: Stream<'scope, u64, Vec<DeadLetter>>,
    /// Drift events, when the drift stage runs.
    pub drift: Option<Stream<'scope, u64, Vec<DriftEvent>>>,
    /// Every scored point, with `GraphConfig::samples`.
    pub samples: Option<Stream<'scope, u64, Vec<ScoreSample>>>,
}

/// The stages from raw records, generated points and restored state to events, dead letters
/// and drift events; separate from [`build`] so tests can capture its output streams.
/// Retraining requests of the drift stage go to `retrain`.
pub fn detection_graph<'scope>(
    raw: Stream<'scope, u64, Vec<RawRecord>>,
    generated: Stream<'scope, u64, Vec<SourcePoint>>,
    restores: Stream<'scope, u64, Vec<SeriesState>>,
    config: &GraphConfig,
    (snapshots, applied): (Option<SnapshotPlan>, Option<SyncSender<Output>>),
    retrain: Option<SyncSender<Output>>,
) -> DetectionStreams<'scope> {
    let (parsed, dead_letters) = raw.parse_records(config.formats.clone(), config.counters.clone());
    let scored = parsed
        .concat(count_generated(generated, config.counters.clone()))
        .score(
            restores,
            ScoreConfig {
                templates: config.templates.clone(),
                counters: config.counters.clone(),
                snapshots,
                models: config.models.clone(),
                applied,
                samples: config.drift.is_some() || config.samples,
            },
        );
    let sampled = (config.drift.is_some() || config.samples).then(|| {
        only(scored.clone(), "Samples", |s| match s {
            Scored::Sample(sample) => Some(sample),
            Scored::Event(_) => None,
        })
    });
    let drift = config
        .drift
        .as_ref()
        .zip(sampled.clone())
        .map(|(drift, sampled)| {
            sampled.drift(DriftPlan {
                config: drift.clone(),
                counters: config.counters.clone(),
                retrain,
            })
        });
    let events = only(scored, "Events", |s| match s {
        Scored::Event(event) => Some(*event),
        Scored::Sample(_) => None,
    });
    DetectionStreams {
        events,
        dead_letters,
        drift,
        samples: sampled.filter(|_| config.samples),
    }
}

/// The records of a stream that `pick` keeps, converted.
fn only<'scope, T: Clone + 'static, U: Clone + 'static>(
    stream: Stream<'scope, u64, Vec<T>>,
    name: &str,
    pick: impl Fn(T) -> Option<U> + 'static,
) -> Stream<'scope, u64, Vec<U>> {
    stream.unary(Pipeline, name, move |_, _| {
        move |input, output| {
            input.for_each(|cap, batch| {
                let mut kept = batch.drain(..).filter_map(&pick).peekable();
                if kept.peek().is_some() {
                    output.session(&cap).give_iterator(kept);
                }
            });
        }
    })
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
    wrap: fn(Vec<T>) -> Data,
) -> Stream<'scope, u64, Vec<()>> {
    stream.unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(Pipeline, "Deliver", move |_, _| {
        move |input, _output| {
            input.for_each(|_cap, batch| {
                if !batch.is_empty() {
                    // The receiver only hangs up when the run is being torn down; what is left
                    // then has nowhere to go.
                    let _ = output.send(Output::Data(wrap(std::mem::take(batch))));
                }
            });
        }
    })
}
