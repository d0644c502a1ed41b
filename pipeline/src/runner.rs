//! Runs a pipeline: starts the timely workers, feeds each its share of the source, and writes
//! what comes out to a sink from the calling thread.
//!
//! Each worker loops: poll its source, send the batch at its epoch, advance its inputs, and step
//! the dataflow, waiting when more than a few epochs are in flight (so a fast source cannot
//! outrun the detectors and fill memory). When the source is exhausted, or on a stop request,
//! the worker closes its inputs and steps until everything it sent has been delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use timely::worker::Worker;

use aiops_operators::TemplateSet;
use aiops_schemas::{ParseOptions, TimestampMs};

use crate::dataflow::{GraphConfig, GraphHandles, Output, build};
use crate::error::{Error, Result};
use crate::metrics::{Counters, Stats};
use crate::sink::Sink;
use crate::source::{Batch, Poll, Source};

/// How a run is set up.
#[derive(Clone)]
pub struct RunOptions {
    /// Timely worker threads.
    pub workers: usize,
    /// Validated templates.
    pub templates: Arc<TemplateSet>,
    /// How records are parsed (the source may adjust them).
    pub parse: ParseOptions,
    /// The clock for points that carry no timestamp.
    pub now: fn() -> TimestampMs,
    /// Set to stop the run early; what was read is still processed and delivered.
    pub stop: Arc<AtomicBool>,
    /// How often `on_progress` is called.
    pub progress_interval: Duration,
}

impl RunOptions {
    /// One worker, the built-in templates, default parsing, the system clock.
    pub fn new(workers: usize) -> RunOptions {
        RunOptions {
            workers: workers.max(1),
            templates: Arc::new(TemplateSet::builtin()),
            parse: ParseOptions::default(),
            now: system_now,
            stop: Arc::new(AtomicBool::new(false)),
            progress_interval: Duration::from_secs(1),
        }
    }
}

/// Milliseconds since the Unix epoch by the system clock.
pub fn system_now() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as TimestampMs)
}

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
    let counters = Arc::new(Counters::default());
    let graph = GraphConfig {
        templates: options.templates.clone(),
        format: source.format(),
        parse: Arc::new(source.parse_options(&options.parse)),
        now: options.now,
        counters: counters.clone(),
    };
    // Bounded, so a slow sink slows the workers instead of filling memory.
    let (sender, receiver) = sync_channel::<Output>(1024);
    let stop = options.stop.clone();
    let worker_stop = stop.clone();
    let guards = timely::execute(timely::Config::process(options.workers), move |worker| {
        let handles =
            worker.dataflow::<u64, _, _>(|scope| build(scope, graph.clone(), sender.clone()));
        let source = source.open(worker.index(), worker.peers());
        drive(worker, handles, source, &worker_stop)
    })
    .map_err(Error::Dataflow)?;

    let mut sink_error = None;
    let mut last_progress = Instant::now();
    loop {
        let output = match receiver.recv_timeout(Duration::from_millis(50)) {
            Ok(output) => Some(output),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let (Some(output), None) = (output, &sink_error) {
            let written = match output {
                Output::Events(events) => sink.events(&events),
                Output::DeadLetters(letters) => {
                    counters.add_dead_letters(letters.len() as u64);
                    sink.dead_letters(&letters)
                }
            };
            if let Err(error) = written {
                // Stop reading, let the workers drain, and report the sink's failure.
                stop.store(true, Ordering::Relaxed);
                sink_error = Some(error);
            }
        }
        if last_progress.elapsed() >= options.progress_interval {
            last_progress = Instant::now();
            on_progress(&counters.read());
        }
    }
    let flushed = sink.flush();
    let mut first_error = sink_error;
    for result in guards.join() {
        let outcome = result.map_err(Error::Dataflow).and_then(|r| r);
        if let (Err(error), None) = (outcome, &first_error) {
            first_error = Some(error);
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    flushed?;
    Ok(RunSummary {
        stats: counters.read(),
        elapsed: started.elapsed(),
    })
}

/// One worker's loop (see the module docs). A failure of the source still lets the dataflow
/// drain, so the other workers are not left waiting for this one.
fn drive(
    worker: &mut Worker,
    handles: GraphHandles,
    source: Result<Box<dyn crate::source::WorkerSource>>,
    stop: &AtomicBool,
) -> Result<()> {
    let GraphHandles {
        mut raw,
        mut points,
        probe,
    } = handles;
    let in_flight = 4 * worker.peers() as u64 + 4;
    let outcome = (|| -> Result<()> {
        let mut source = source?;
        while !stop.load(Ordering::Relaxed) {
            match source.poll()? {
                Poll::Ready { epoch, batch } => {
                    if epoch > *raw.time() {
                        raw.advance_to(epoch);
                        points.advance_to(epoch);
                    }
                    match batch {
                        Batch::Raw(mut records) => raw.send_batch(&mut records),
                        Batch::Points(mut generated) => points.send_batch(&mut generated),
                    }
                    let next = source.next_epoch().max(epoch + 1);
                    raw.advance_to(next);
                    points.advance_to(next);
                    worker.step();
                    let horizon = next.saturating_sub(in_flight);
                    while probe.less_than(&horizon) {
                        worker.step();
                    }
                }
                Poll::Idle => {
                    let next = source.next_epoch();
                    if next > *raw.time() {
                        raw.advance_to(next);
                        points.advance_to(next);
                    }
                    worker.step();
                }
                Poll::Done => break,
            }
        }
        Ok(())
    })();
    drop(raw);
    drop(points);
    while !probe.done() {
        worker.step_or_park(Some(Duration::from_millis(5)));
    }
    outcome
}
