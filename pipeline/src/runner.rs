//! Runs a pipeline: starts the timely workers, feeds each its share of the source, and writes
//! what comes out to a sink from the calling thread.
//!
//! Each worker loops: poll its source, send the batch at its epoch, advance its inputs, and step
//! the dataflow, waiting when more than a few epochs are in flight (so a fast source cannot
//! outrun the detectors and fill memory). When the source is exhausted, or on a stop request,
//! the worker closes its inputs and steps until everything it sent has been delivered.
//!
//! With a checkpointing source, workers also report what they fed by each checkpoint boundary
//! and how far their output has been delivered; the calling thread hands those reports, with the
//! score stage's snapshots, to the [`Checkpointer`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use timely::worker::Worker;

use aiops_operators::TemplateSet;
use aiops_schemas::ParseOptions;

use crate::checkpoint::Checkpointer;
use crate::config::DriftStageConfig;
use crate::confirm::Confirmations;
use crate::dataflow::{
    Control, Data, FINAL_BOUNDARY, GraphConfig, GraphHandles, Output, boundary_before, build,
};
use crate::error::{Error, Result};
use crate::metrics::{Counters, Stage, Stats};
use crate::record::{PartitionId, RetrainRequest};
use crate::sink::Sink;
use crate::source::{Batch, Poll, Source, SourceContext, WorkerSource};
use aiops_models::watch::ModelWatch;

/// How a run is set up.
#[derive(Clone)]
pub struct RunOptions {
    /// Timely worker threads.
    pub workers: usize,
    /// Validated templates.
    pub templates: Arc<TemplateSet>,
    /// How records are parsed (the source may adjust them).
    pub parse: ParseOptions,
    /// Set to stop the run early; what was read is still processed and delivered.
    pub stop: Arc<AtomicBool>,
    /// How often `on_progress` is called.
    pub progress_interval: Duration,
    /// Active model versions to run and swap in as they change (see
    /// [`aiops_models::watch`]); `None` runs the configured templates as they are.
    pub models: Option<Arc<ModelWatch>>,
    /// The drift stage, when it runs.
    pub drift: Option<DriftStageConfig>,
    /// Send every scored point to the sink's [`Sink::samples`] (value, score, expected band).
    pub samples: bool,
    /// Where the drift stage's retraining requests go (see [`aiops_models::retrain`]);
    /// without it they are dropped.
    pub retrain: Option<Sender<RetrainRequest>>,
    /// The live counters the run adds to (shared with whoever reports on them, like the
    /// metrics endpoint).
    pub counters: Arc<Counters>,
    /// Run as one process of a timely cluster (`workers` threads here, the same in every
    /// process); `None` runs every worker in this process.
    pub cluster: Option<Cluster>,
    /// This process's name in configuration notices (see [`crate::confirm`]).
    pub instance: String,
}

/// This process's place in a timely cluster: every process runs the same dataflow, each reads
/// its workers' share of the source, and points are exchanged by series across processes over
/// TCP, so a series is scored by one worker wherever its points were read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// This process's index in `addresses`.
    pub process: usize,
    /// `host:port` of every process, in process order (the same list everywhere).
    pub addresses: Vec<String>,
}

impl Cluster {
    /// Checks the cluster description.
    pub fn validate(&self) -> Result<()> {
        if self.addresses.is_empty() {
            return Err(Error::config(
                "a cluster needs at least one process address",
            ));
        }
        if self.process >= self.addresses.len() {
            return Err(Error::config(format!(
                "process {} of a cluster of {} (processes are numbered from 0)",
                self.process,
                self.addresses.len()
            )));
        }
        Ok(())
    }

    fn timely_config(&self, threads: usize) -> timely::Config {
        timely::Config {
            communication: timely::CommunicationConfig::Cluster {
                threads,
                process: self.process,
                addresses: self.addresses.clone(),
                report: false,
                zerocopy: false,
            },
            worker: timely::WorkerConfig::default(),
        }
    }
}

impl RunOptions {
    /// One worker, the built-in templates, default parsing.
    pub fn new(workers: usize) -> RunOptions {
        RunOptions {
            workers: workers.max(1),
            templates: Arc::new(TemplateSet::builtin()),
            parse: ParseOptions::default(),
            stop: Arc::new(AtomicBool::new(false)),
            progress_interval: Duration::from_secs(1),
            models: None,
            drift: None,
            samples: false,
            retrain: None,
            counters: Arc::new(Counters::default()),
            cluster: None,
            instance: crate::confirm::instance_name(),
        }
    }
}

pub use aiops_schemas::system_now;

/// What a finished run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSummary {
    /// Final counters.
    pub stats: Stats,
    /// Wall time from start to the last delivery.
    pub elapsed: Duration,
}

impl RunSummary {
    /// Points per second of wall time.
    pub fn points_per_second(&self) -> f64 {
        self.stats.points_in as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `source` through the dataflow into `sink` until the source is exhausted or a stop is
/// requested; calls `on_progress` about every `progress_interval` from this thread.
pub fn run(
    source: Arc<dyn Source>,
    mut sink: impl Sink,
    options: RunOptions,
    mut on_progress: impl FnMut(&Stats),
) -> Result<RunSummary> {
    let started = Instant::now();
    let counters = options.counters.clone();
    let checkpointing = source.checkpointing();
    let timely_config = match &options.cluster {
        None => timely::Config::process(options.workers),
        Some(cluster) => {
            cluster.validate()?;
            if checkpointing.is_some() {
                // A checkpoint commits a process's source positions once its sinks have
                // delivered everything fed before them; across processes that would need the
                // other processes' deliveries too. Checkpointed sources scale out by running
                // more processes in one consumer group instead.
                return Err(Error::config(
                    "a timely cluster runs only sources without checkpoints (files, directories, topic ranges); scale `aiops run` out with more processes in one consumer group",
                ));
            }
            cluster.timely_config(options.workers)
        }
    };
    let graph = GraphConfig {
        templates: options.templates.clone(),
        formats: source.formats(&options.parse),
        counters: counters.clone(),
        checkpoint_every: checkpointing.as_ref().map(|c| c.every()),
        models: options.models.clone(),
        drift: options.drift.clone(),
        samples: options.samples,
    };
    // Bounded, so a slow sink slows the workers instead of filling memory.
    let (sender, receiver) = sync_channel::<Output>(1024);
    let context = SourceContext {
        output: sender.clone(),
        counters: counters.clone(),
    };
    let stop = options.stop.clone();
    let worker_stop = stop.clone();
    let guards = timely::execute(timely_config, move |worker| {
        let index = worker.index();
        let handles = worker
            .dataflow::<u64, _, _>(|scope| build(scope, index, graph.clone(), sender.clone()));
        let opened = source.open(index, worker.peers(), &context);
        let reports = graph
            .checkpoint_every
            .map(|every| Reports::new(index, every, sender.clone()));
        let outcome = drive(worker, handles, opened, &worker_stop, reports);
        let _ = sender.send(Output::Control(Control::WorkerDone { worker: index }));
        outcome
    })
    .map_err(Error::Dataflow)?;

    let mut checkpointer =
        checkpointing.map(|c| Checkpointer::new(c, counters.clone(), options.workers));
    let mut failure = None;
    let mut last_progress = Instant::now();
    let mut confirmations = Confirmations::new(options.instance.clone(), options.workers);
    // The channel never disconnects while a source's own threads hold senders, so the loop
    // ends when every worker has said it is done and what it sent has been read.
    let mut running = options.workers;
    loop {
        let output = match receiver.recv_timeout(Duration::from_millis(20)) {
            Ok(Output::Control(Control::WorkerDone { .. })) => {
                running -= 1;
                None
            }
            Ok(Output::Control(Control::Applied { worker, active })) => {
                let notices = confirmations.on_applied(worker, active, system_now());
                (!notices.is_empty()).then_some(Output::Data(Data::Config(notices)))
            }
            Ok(output) => Some(output),
            Err(RecvTimeoutError::Timeout) if running == 0 => break,
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let (Some(output), None) = (output, &failure) {
            let handling = Instant::now();
            let handled = handle(
                output,
                &mut sink,
                &counters,
                checkpointer.as_mut(),
                options.retrain.as_ref(),
            );
            counters.time_stage(Stage::Sink, None, handling.elapsed());
            let completed = match (&handled, checkpointer.as_mut()) {
                (Ok(()), Some(checkpointer)) => {
                    let completing = Instant::now();
                    let completed = checkpointer.try_complete(&mut sink);
                    if let Ok(Some(_)) = completed {
                        counters.checkpoint_completed(completing.elapsed());
                    }
                    completed.map(|_| ())
                }
                _ => handled,
            };
            if let Err(error) = completed {
                // Stop reading, let the workers drain, and report the failure. Nothing after
                // the last checkpoint is committed, so a restart reads it again.
                stop.store(true, Ordering::Relaxed);
                failure = Some(error);
            }
        }
        if last_progress.elapsed() >= options.progress_interval {
            last_progress = Instant::now();
            on_progress(&counters.read());
        }
    }
    let flushed = sink.flush();
    for result in guards.join() {
        let outcome = result.map_err(Error::Dataflow).and_then(|r| r);
        if let (Err(error), None) = (outcome, &failure) {
            failure = Some(error);
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    flushed?;
    Ok(RunSummary {
        stats: counters.read(),
        elapsed: started.elapsed(),
    })
}

/// Passes one message from the workers to the sink or the checkpointer.
fn handle(
    output: Output,
    sink: &mut impl Sink,
    counters: &Counters,
    checkpointer: Option<&mut Checkpointer>,
    retrain: Option<&Sender<RetrainRequest>>,
) -> Result<()> {
    match output {
        Output::Data(data) => deliver(data, sink, counters, retrain),
        Output::Control(control) => {
            // Without checkpoints, the protocol's messages have no reader.
            if let Some(checkpointer) = checkpointer {
                checkpointer.on_control(control);
            }
            Ok(())
        }
    }
}

/// Writes what the pipeline produced to the sink; retraining requests go to the retrainer.
fn deliver(
    data: Data,
    sink: &mut impl Sink,
    counters: &Counters,
    retrain: Option<&Sender<RetrainRequest>>,
) -> Result<()> {
    match data {
        Data::Events(events) => sink.events(&events),
        Data::Drift(events) => sink.drift(&events),
        Data::Config(notices) => sink.config(&notices),
        Data::Samples(samples) => sink.samples(&samples),
        Data::Retrain(request) => {
            counters.add_retrain_requests(1);
            if let Some(retrain) = retrain {
                // A retrainer that stopped has nothing more to do with requests.
                let _ = retrain.send(request);
            }
            Ok(())
        }
        Data::DeadLetters(letters) => {
            counters.add_dead_letters(letters.len() as u64);
            sink.dead_letters(&letters)
        }
    }
}

/// A worker's reports for checkpoints: what it fed, and how far its output is delivered.
struct Reports {
    worker: usize,
    every: u64,
    output: SyncSender<Output>,
    /// Next offset per partition of everything fed so far.
    fed: HashMap<PartitionId, i64>,
    delivered: Option<u64>,
}

impl Reports {
    fn new(worker: usize, every: u64, output: SyncSender<Output>) -> Reports {
        Reports {
            worker,
            every,
            output,
            fed: HashMap::new(),
            delivered: None,
        }
    }

    fn fed(&mut self, partition: PartitionId, seq: u64) {
        let next = seq as i64 + 1;
        let slot = self.fed.entry(partition).or_insert(next);
        *slot = (*slot).max(next);
    }

    /// The inputs are moving from epoch `from` to `to`: everything fed so far was fed at epochs
    /// before the last boundary crossed, so report it for that boundary.
    fn crossing(&mut self, from: u64, to: u64) {
        if let Some(boundary) = boundary_before(to, self.every)
            && boundary >= from
        {
            self.send_offsets(boundary);
        }
    }

    fn send_offsets(&mut self, boundary: u64) {
        let offsets = self.fed.iter().map(|(p, o)| (*p, *o)).collect();
        let _ = self.output.send(Output::Control(Control::Offsets {
            worker: self.worker,
            boundary,
            offsets,
        }));
    }

    fn delivered(&mut self, frontier: u64) {
        if self.delivered != Some(frontier) {
            self.delivered = Some(frontier);
            let _ = self.output.send(Output::Control(Control::Progress {
                worker: self.worker,
                frontier,
            }));
        }
    }
}

/// One worker's loop (see the module docs). A failure of the source still lets the dataflow
/// drain, so the other workers are not left waiting for this one.
fn drive(
    worker: &mut Worker,
    mut handles: GraphHandles,
    source: Result<Box<dyn WorkerSource>>,
    stop: &AtomicBool,
    mut reports: Option<Reports>,
) -> Result<()> {
    let in_flight = 4 * worker.peers() as u64 + 4;
    let advance = |handles: &mut GraphHandles, reports: &mut Option<Reports>, to: u64| {
        let from = handles.time();
        if to > from {
            if let Some(reports) = reports {
                reports.crossing(from, to);
            }
            handles.advance_to(to);
        }
    };
    let report_delivered = |handles: &GraphHandles, reports: &mut Option<Reports>| {
        if let Some(reports) = reports {
            let frontier = handles
                .probe
                .with_frontier(|f| f.iter().min().copied().unwrap_or(u64::MAX));
            reports.delivered(frontier);
        }
    };
    let outcome = (|| -> Result<()> {
        let mut source = source?;
        while !stop.load(Ordering::Relaxed) {
            match source.poll()? {
                Poll::Ready { epoch, batch } => {
                    advance(&mut handles, &mut reports, epoch);
                    match batch {
                        Batch::Raw(mut records) => {
                            if let Some(reports) = &mut reports {
                                records.iter().for_each(|r| reports.fed(r.partition, r.seq));
                            }
                            handles.raw.send_batch(&mut records);
                        }
                        Batch::Points(mut generated) => handles.points.send_batch(&mut generated),
                        Batch::Restore(mut states) => handles.restores.send_batch(&mut states),
                        Batch::Revoked(partitions) => {
                            if let Some(reports) = &mut reports {
                                partitions.iter().for_each(|p| {
                                    reports.fed.remove(p);
                                });
                            }
                        }
                    }
                    advance(&mut handles, &mut reports, source.next_epoch());
                    worker.step();
                    let horizon = handles.time().saturating_sub(in_flight);
                    while handles.probe.less_than(&horizon) {
                        worker.step();
                    }
                }
                Poll::Idle => {
                    advance(&mut handles, &mut reports, source.next_epoch());
                    worker.step();
                }
                Poll::Done => break,
            }
            report_delivered(&handles, &mut reports);
        }
        Ok(())
    })();
    if let Some(reports) = &mut reports {
        reports.send_offsets(FINAL_BOUNDARY);
    }
    let GraphHandles {
        raw,
        points,
        restores,
        probe,
    } = handles;
    drop((raw, points, restores));
    while !probe.done() {
        worker.step_or_park(Some(Duration::from_millis(5)));
    }
    if let Some(reports) = &mut reports {
        reports.delivered(u64::MAX);
    }
    outcome
}
