//! The drift stage: per series, the drift tests of `aiops_operators::drift` on the points'
//! values and on the ensemble's combined scores, against the reference window of the model
//! version that scores the series.
//!
//! It is fed by the score stage's samples and feeds nothing on the event path: anomaly events
//! never wait for it. When a model swap replaces a series' learnt state (hot swap), the
//! series' tests take a new reference. When a series keeps drifting for
//! `retrain.after_points` points after its first alarm, the stage asks for its template to be
//! retrained on the series' points since the drift began, with the running version's scores of
//! them, through the runner to the retrainer ([`aiops_models::retrain`]); if its state is
//! still not replaced after four times as many points, it asks again (the retrainer limits how
//! often a template is trained).

use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Instant;

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use aiops_operators::drift::{DriftAlarm, StreamDrift};
use aiops_schemas::{DriftEvent, SeriesRef, TimestampMs, drift_id};

use super::{Data, Output, SeriesMap};
use crate::config::{DriftStageConfig, DriftStream};
use crate::metrics::{Counters, Stage};
use crate::record::{ModelTag, RetrainRequest, ScoreSample};

/// What the drift stage needs.
#[derive(Clone)]
pub struct DriftPlan {
    /// Streams, tests and retraining.
    pub config: DriftStageConfig,
    /// Live counters.
    pub counters: Arc<Counters>,
    /// Where retraining requests go (the runner), when retraining is on.
    pub retrain: Option<SyncSender<Output>>,
}

/// See the module docs.
pub trait DriftStage<'scope> {
    /// Watches each series' samples for drift; emits drift events.
    fn drift(self, plan: DriftPlan) -> Stream<'scope, u64, Vec<DriftEvent>>;
}

struct SeriesDrift {
    monitors: Vec<(DriftStream, StreamDrift)>,
    model: Arc<ModelTag>,
    /// The score stage's state generation the references belong to.
    generation: u32,
    /// Points since the first alarm against the current references.
    episode: Option<Episode>,
}

struct Episode {
    reason: String,
    points: Vec<(TimestampMs, f64)>,
    scores: Vec<Option<f64>>,
    /// Retraining requests sent in this episode.
    requests: usize,
}

impl<'scope> DriftStage<'scope> for Stream<'scope, u64, Vec<ScoreSample>> {
    fn drift(self, plan: DriftPlan) -> Stream<'scope, u64, Vec<DriftEvent>> {
        let worker = self.scope().index();
        self.unary(Pipeline, "Drift", move |_, _| {
            let mut series: SeriesMap<SeriesDrift> = SeriesMap::default();
            move |input, output| {
                input.for_each(|cap, batch| {
                    let started = Instant::now();
                    let mut session = output.session(&cap);
                    let mut emitted = 0;
                    for sample in batch.drain(..) {
                        for event in observe(&mut series, sample, &plan) {
                            emitted += 1;
                            session.give(event);
                        }
                    }
                    plan.counters.add_drift_events(emitted);
                    plan.counters
                        .time_stage(Stage::Drift, Some(worker), started.elapsed());
                });
            }
        })
    }
}

fn new_series(sample: &ScoreSample, config: &DriftStageConfig) -> Option<SeriesDrift> {
    let monitors = config
        .streams
        .iter()
        .map(|&stream| Some((stream, StreamDrift::new(config.tests.clone()).ok()?)))
        .collect::<Option<Vec<_>>>()?;
    Some(SeriesDrift {
        monitors,
        model: sample.model.clone(),
        generation: sample.generation,
        episode: None,
    })
}

/// Runs one sample through its series' tests; returns the drift events it caused.
fn observe(
    series: &mut SeriesMap<SeriesDrift>,
    sample: ScoreSample,
    plan: &DriftPlan,
) -> Vec<DriftEvent> {
    let key = sample.series.key().0;
    let entry = match series.entry(key) {
        std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
        std::collections::hash_map::Entry::Vacant(slot) => {
            // The configuration was validated at load time: building cannot fail.
            let Some(fresh) = new_series(&sample, &plan.config) else {
                return Vec::new();
            };
            slot.insert(fresh)
        }
    };
    if entry.generation != sample.generation {
        // A swap replaced what the series had learnt: the reference starts now.
        for (_, monitor) in &mut entry.monitors {
            monitor.rebase();
        }
        entry.generation = sample.generation;
        entry.episode = None;
    }
    if !Arc::ptr_eq(&entry.model, &sample.model) {
        entry.model = sample.model.clone();
    }
    let mut events = Vec::new();
    for (stream, monitor) in &mut entry.monitors {
        let x = match stream {
            DriftStream::Value => sample.value,
            DriftStream::Score => match sample.score {
                Some(score) => score,
                None => continue,
            },
        };
        for alarm in monitor.update(sample.timestamp, x) {
            events.push(drift_event(&sample, *stream, &alarm));
            if entry.episode.is_none() && plan.retrain.is_some() {
                entry.episode = Some(Episode {
                    reason: format!(
                        "{} on {}: {:.3} > {:.3}",
                        serde_json::to_value(alarm.test)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        stream.name(),
                        alarm.statistic,
                        alarm.threshold
                    ),
                    // Only points after the alarm: the new regime, not the mix before it.
                    points: Vec::with_capacity(plan.config.retrain.after_points),
                    scores: Vec::with_capacity(plan.config.retrain.after_points),
                    requests: 0,
                });
            }
        }
    }
    if let Some(episode) = &mut entry.episode {
        episode.points.push((sample.timestamp, sample.value));
        episode.scores.push(sample.score);
        let wanted = plan.config.retrain.after_points * if episode.requests == 0 { 1 } else { 4 };
        if episode.points.len() >= wanted
            && let Some(sender) = &plan.retrain
        {
            episode.requests += 1;
            // The receiver hangs up only when the run is torn down.
            let _ = sender.send(Output::Data(Data::Retrain(RetrainRequest {
                template: entry.model.template.clone(),
                version: entry.model.version.clone(),
                series: sample.series.clone(),
                points: std::mem::take(&mut episode.points),
                scores: std::mem::take(&mut episode.scores),
                reason: episode.reason.clone(),
            })));
        }
    }
    events
}

fn drift_event(sample: &ScoreSample, stream: DriftStream, alarm: &DriftAlarm) -> DriftEvent {
    let series = sample.series.as_ref();
    DriftEvent {
        schema_version: aiops_schemas::SCHEMA_VERSION,
        id: drift_id(
            series.tenant(),
            &sample.model.template,
            Some(series.key()),
            stream.name(),
            alarm.test,
            alarm.live.end,
        ),
        tenant: series.tenant().to_owned(),
        template: sample.model.template.clone(),
        series: Some(SeriesRef::from(series)),
        feature: stream.name().to_owned(),
        test: alarm.test,
        statistic: alarm.statistic,
        threshold: alarm.threshold,
        reference: alarm.reference,
        live: alarm.live,
        timestamp: sample.timestamp,
        model_version: sample.model.version.clone(),
    }
}
