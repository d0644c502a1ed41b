//! The score stage: the stateful heart of the dataflow. Points are routed to the worker that
//! owns their series, each epoch is put in source order, and each series' chain runs
//! features → detectors → ensemble → alert policy on it.
//!
//! The stages of the chain run inside this one operator, so that a series' state is one unit:
//! one lookup per point, and one snapshot per series at a checkpoint. Checkpointed state comes
//! back in on a second input and replaces a series' state before any later point of it.
//!
//! Model versions and detector configurations: with a [`ModelWatch`], before each epoch (and
//! between epochs when nothing waits) the operator checks whether new versions or tenant
//! configurations were published and, if so, moves every series to the template it now
//! selects: the version's trained state for the series if it has one, else the series' own
//! state if the chain is built alike (same features, detectors with the same parameters, same
//! ensemble: a change of alert thresholds, matcher or name keeps it), or the state of the
//! detectors it had if detectors were only appended (the appended ones start afresh), else a
//! fresh chain. Each point is scored once, by the version current when its epoch is processed,
//! and its event
//! names that version (`model_version`: a model id, or `<tenant>.<config>@<version>`). Each
//! swap is reported ([`Control::Applied`]) so the runner can confirm configurations.
//!
//! Checkpoints: with a [`SnapshotPlan`], when the operator has processed every epoch up to a
//! boundary (every `every` epochs) it sends the state of the series that changed since its last
//! snapshot, and at the end of the input a final one. Boundaries it jumps over (after a stall)
//! are skipped; the runner only completes checkpoints that every worker reported.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Instant;

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;
use timely::progress::frontier::MutableAntichain;

use aiops_operators::{ChainSnapshot, Registry, SeriesChain, Template, TemplateSet};
use aiops_schemas::{Series, Severity};

use super::{Control, Output, SeriesMap};
use crate::metrics::{Counters, Stage};
use crate::record::{ModelTag, PartitionId, ScoreSample, Scored, SeriesState, SourcePoint};
use aiops_models::watch::{ActiveModels, ModelWatch};

/// The boundary of the checkpoint taken when the input ends.
pub const FINAL_BOUNDARY: u64 = u64::MAX;

/// The largest checkpoint boundary strictly before `epoch`, for boundaries every `every` epochs
/// (the epochs `every - 1`, `2 * every - 1`, ...).
pub fn boundary_before(epoch: u64, every: u64) -> Option<u64> {
    let every = every.max(1);
    (epoch >= every).then(|| epoch / every * every - 1)
}

/// Where and how often the score stage reports its state.
#[derive(Clone)]
pub struct SnapshotPlan {
    /// Epochs between two checkpoint boundaries.
    pub every: u64,
    /// This worker's index, for the reports.
    pub worker: usize,
    /// Where the reports go.
    pub output: SyncSender<Output>,
}

/// What the score stage needs.
#[derive(Clone)]
pub struct ScoreConfig {
    /// Templates (and the registry their detectors come from).
    pub templates: Arc<TemplateSet>,
    /// Live counters.
    pub counters: Arc<Counters>,
    /// Checkpoint reports, when the source supports checkpoints.
    pub snapshots: Option<SnapshotPlan>,
    /// Active model versions, when a model store is configured.
    pub models: Option<Arc<ModelWatch>>,
    /// Where each swap to a new publication of `models` is reported ([`Control::Applied`]).
    pub applied: Option<SyncSender<Output>>,
    /// Emit a [`ScoreSample`] per scored point, for the drift stage.
    pub samples: bool,
}

/// See the module docs.
pub trait ScoreStage<'scope> {
    /// Scores points, restoring series from `restores` first; emits anomaly events (and
    /// samples, with `config.samples`).
    fn score(
        self,
        restores: Stream<'scope, u64, Vec<SeriesState>>,
        config: ScoreConfig,
    ) -> Stream<'scope, u64, Vec<Scored>>;
}

struct SeriesEntry {
    chain: SeriesChain,
    template: u32,
    /// The series, once a point of it was seen (restored state arrives with its key only).
    series: Option<Arc<Series>>,
    /// Bumped whenever a model swap replaces the chain's state, so the drift stage knows its
    /// reference belongs to an older state.
    generation: u32,
    partition: PartitionId,
    /// Changed since the last snapshot.
    dirty: bool,
}

#[derive(Default)]
struct Pending {
    points: Vec<SourcePoint>,
    restores: Vec<SeriesState>,
}

/// One worker's score stage between activations: every series' chain, the templates with the
/// active model versions in place, and the checkpoint bookkeeping. The timely operator keeps
/// the records waiting for their epoch and calls it once an epoch is complete.
struct ScoreOperator {
    config: ScoreConfig,
    worker: usize,
    /// `None`: no template matches the series; it is counted, not scored.
    series: SeriesMap<Option<SeriesEntry>>,
    /// The boundary of the last snapshot sent.
    last_snapshot: Option<u64>,
    /// The configured templates with the active model versions in place.
    templates: Arc<TemplateSet>,
    /// The tag of each template, by index, for samples.
    tags: Vec<Arc<ModelTag>>,
    /// The model watch's publication the templates reflect.
    publication: u64,
    active: Arc<ActiveModels>,
}

impl ScoreOperator {
    fn new(config: ScoreConfig, worker: usize) -> ScoreOperator {
        let templates = config.templates.clone();
        ScoreOperator {
            tags: model_tags(&templates),
            templates,
            config,
            worker,
            series: SeriesMap::default(),
            last_snapshot: None,
            publication: 0,
            active: Arc::new(ActiveModels::default()),
        }
    }

    /// Everything of one complete epoch: model versions activated since the last epoch are
    /// swapped in, the series' state at the checkpoint boundary before it is snapshotted,
    /// restored series come in, then the points are scored in source order.
    fn epoch(&mut self, epoch: u64, pending: Pending, emit: impl FnMut(Scored)) {
        let started = Instant::now();
        self.swap_in_activated_models();
        if let Some(boundary) = self
            .config
            .snapshots
            .as_ref()
            .and_then(|plan| boundary_before(epoch, plan.every))
        {
            self.snapshot(boundary);
        }
        let Pending {
            mut points,
            restores,
        } = pending;
        restore(
            &mut self.series,
            restores,
            &self.templates,
            &self.config.counters,
        );
        points.sort_by_key(|p| (p.seq, p.partition));
        let samples = self.config.samples.then_some(self.tags.as_slice());
        score_epoch(
            &mut self.series,
            points,
            (&self.templates, samples),
            &self.config.counters,
            emit,
        );
        self.config
            .counters
            .time_stage(Stage::Score, Some(self.worker), started.elapsed());
    }

    fn swap_in_activated_models(&mut self) {
        let Some(watch) = &self.config.models else {
            return;
        };
        if watch.publication() == self.publication {
            return;
        }
        let next = watch.current();
        self.publication = next.publication;
        let swapped = Arc::new(next.apply(&self.config.templates));
        let moved = swap_models(
            &mut self.series,
            (&self.templates, &self.active),
            (&swapped, &next),
        );
        self.active = next;
        self.config.counters.add_model_swaps(moved);
        self.templates = swapped;
        self.tags = model_tags(&self.templates);
        if let Some(applied) = &self.config.applied {
            // The receiver hangs up only when the run is torn down.
            let _ = applied.send(Output::Control(Control::Applied {
                worker: self.worker,
                active: self.active.clone(),
            }));
        }
    }

    /// Snapshots the series changed since the last snapshot, once per boundary.
    fn snapshot(&mut self, boundary: u64) {
        if let Some(plan) = &self.config.snapshots {
            snapshot_once(
                &mut self.series,
                &mut self.last_snapshot,
                boundary,
                plan,
                &self.templates,
            );
        }
    }

    /// After the complete epochs: the final snapshot once both inputs have ended, or the one
    /// at the boundary the inputs' frontier passed when no waiting epoch lies before it.
    fn snapshot_at_frontier(&mut self, frontier: Option<u64>, first_waiting: Option<u64>) {
        let Some(plan) = &self.config.snapshots else {
            return;
        };
        match frontier {
            None => self.snapshot(FINAL_BOUNDARY),
            Some(frontier) => {
                if let Some(boundary) = boundary_before(frontier, plan.every)
                    && first_waiting.is_none_or(|epoch| epoch > boundary)
                {
                    self.snapshot(boundary);
                }
            }
        }
    }
}

impl<'scope> ScoreStage<'scope> for Stream<'scope, u64, Vec<SourcePoint>> {
    fn score(
        self,
        restores: Stream<'scope, u64, Vec<SeriesState>>,
        config: ScoreConfig,
    ) -> Stream<'scope, u64, Vec<Scored>> {
        let by_series = Exchange::new(|p: &SourcePoint| p.point.series.key().0);
        let restores_by_series = Exchange::new(|s: &SeriesState| s.key.0);
        let worker = self.scope().index();
        self.binary_frontier(
            restores,
            by_series,
            restores_by_series,
            "Score",
            move |_, _| {
                // Records wait here until their epoch is complete, so a series' points are
                // processed in source order however they were spread over workers.
                let mut pending: BTreeMap<u64, (Capability<u64>, Pending)> = BTreeMap::new();
                let mut operator = ScoreOperator::new(config.clone(), worker);
                move |(points_in, points_frontier), (restores_in, restores_frontier), output| {
                    let port = output.output_index();
                    points_in.for_each(|cap, batch| {
                        if let Some(slot) = stash(&mut pending, cap.retain_least(port)) {
                            slot.points.append(batch);
                        }
                    });
                    restores_in.for_each(|cap, batch| {
                        if let Some(slot) = stash(&mut pending, cap.retain_least(port)) {
                            slot.restores.append(batch);
                        }
                    });
                    while let Some(entry) = pending.first_entry() {
                        let epoch = *entry.key();
                        if points_frontier.less_equal(&epoch)
                            || restores_frontier.less_equal(&epoch)
                        {
                            break;
                        }
                        let (cap, records) = entry.remove();
                        let mut session = output.session(&cap);
                        operator.epoch(epoch, records, |scored| session.give(scored));
                    }
                    if pending.is_empty() {
                        // Between epochs with nothing waiting: a worker that has no points
                        // for a while still takes (and confirms) new versions.
                        operator.swap_in_activated_models();
                    }
                    operator.snapshot_at_frontier(
                        lowest(points_frontier, restores_frontier),
                        pending.first_key_value().map(|(epoch, _)| *epoch),
                    );
                }
            },
        )
    }
}

/// The records waiting for the epoch of `cap`, kept with the capability to emit at it.
fn stash(
    pending: &mut BTreeMap<u64, (Capability<u64>, Pending)>,
    cap: Option<Capability<u64>>,
) -> Option<&mut Pending> {
    let cap = cap?;
    let slot = pending
        .entry(*cap.time())
        .or_insert_with(|| (cap, Pending::default()));
    Some(&mut slot.1)
}

/// The lowest time either input may still deliver; `None` when both have ended.
fn lowest(a: &MutableAntichain<u64>, b: &MutableAntichain<u64>) -> Option<u64> {
    let a = a.frontier().iter().min().copied();
    let b = b.frontier().iter().min().copied();
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The tag of each template of a set, by index: what samples carry.
fn model_tags(templates: &TemplateSet) -> Vec<Arc<ModelTag>> {
    templates
        .templates()
        .iter()
        .map(|t| {
            Arc::new(ModelTag {
                template: t.name.clone(),
                version: t.version.clone(),
            })
        })
        .collect()
}

fn score_epoch(
    series: &mut SeriesMap<Option<SeriesEntry>>,
    points: Vec<SourcePoint>,
    (templates, samples): (&TemplateSet, Option<&[Arc<ModelTag>]>),
    counters: &Counters,
    mut emit: impl FnMut(Scored),
) {
    let (mut scored, mut unmatched, mut new_series, mut state_bytes) = (0, 0, 0, 0);
    let (mut events, mut critical) = (0, 0);
    for SourcePoint {
        partition, point, ..
    } in points
    {
        let slot = series.entry(point.series.key().0).or_insert_with(|| {
            new_series += 1;
            let (index, template) = templates.select(&point.series)?;
            // Templates were validated when the set was built: building cannot fail.
            let chain = SeriesChain::new(template, templates.registry()).ok()?;
            state_bytes += chain.state_bytes() as u64;
            Some(SeriesEntry {
                chain,
                template: index as u32,
                series: Some(point.series.clone()),
                generation: 0,
                partition,
                dirty: true,
            })
        });
        if slot.as_ref().is_some_and(|entry| entry.series.is_none()) {
            // Restored by its template's name alone, and names repeat (tenants name their
            // configurations freely): now that the series is known, it chooses again, and
            // keeps its state only if the chosen template's chain is built alike.
            choose_again(slot, &point.series, templates);
        }
        let Some(entry) = slot else {
            unmatched += 1;
            continue;
        };
        let template = &templates.templates()[entry.template as usize];
        entry.dirty = true;
        entry.partition = partition;
        let Some(step) = entry.chain.step(template, &point) else {
            continue;
        };
        scored += 1;
        if let Some(event) = step.event {
            events += 1;
            critical += u64::from(event.severity == Severity::Critical);
            emit(Scored::Event(Box::new(event)));
        }
        if let Some(tags) = samples
            && let Some(model) = tags.get(entry.template as usize)
        {
            emit(Scored::Sample(ScoreSample {
                series: point.series,
                timestamp: point.timestamp,
                value: point.value,
                score: step.combined.map(|c| c.score),
                expected: step.combined.map(|c| c.expected),
                model: model.clone(),
                generation: entry.generation,
            }));
        }
    }
    counters.add_points_scored(scored);
    counters.add_unmatched(unmatched);
    counters.add_series(new_series);
    counters.add_state_bytes(state_bytes);
    counters.add_events_out(events);
    counters.add_critical_out(critical);
}

/// The template a restored series runs, chosen again on its first point: the one it selects
/// now, with the restored state if that template's chain is built alike, else a fresh chain;
/// no entry if no template matches it.
fn choose_again(slot: &mut Option<SeriesEntry>, seen: &Arc<Series>, templates: &TemplateSet) {
    let Some(entry) = slot.as_mut() else {
        return;
    };
    entry.series = Some(seen.clone());
    let Some((index, chosen)) = templates.select(seen) else {
        *slot = None;
        return;
    };
    if index == entry.template as usize {
        return;
    }
    let restored_under = &templates.templates()[entry.template as usize];
    if !same_chain(restored_under, chosen) {
        match successor(&entry.chain, restored_under, chosen, templates.registry()) {
            Ok(chain) => entry.chain = chain,
            Err(_) => {
                *slot = None;
                return;
            }
        }
        entry.generation = entry.generation.wrapping_add(1);
    }
    entry.template = index as u32;
}

/// Replaces the state of restored series. A snapshot that does not fit the series' template
/// any more (renamed, other detectors) is dropped and counted; the series starts afresh. One
/// taken before detectors were appended to the template (a new built-in default) restores
/// the detectors it has, and the appended ones start afresh.
///
/// A series counts as held (and as restored) once per worker, however often a rebalance gives
/// its partition back. (Regression: a restore did not count its series as held, and counted
/// every restore, so a summary after rebalances read "0 series (120 restored …)" for 60.)
fn restore(
    series: &mut SeriesMap<Option<SeriesEntry>>,
    restores: Vec<SeriesState>,
    templates: &TemplateSet,
    counters: &Counters,
) {
    for SeriesState {
        partition,
        key,
        state,
    } in restores
    {
        let restored = ChainSnapshot::decode(&state).ok().and_then(|snapshot| {
            // Tenants may name their templates alike: the first of that name whose detectors
            // the snapshot has all of, else the first that takes it (detectors appended since).
            let mut named: Vec<(usize, &Template)> = templates
                .templates()
                .iter()
                .enumerate()
                .filter(|(_, t)| t.name == snapshot.template)
                .collect();
            // Stable: alike candidates keep the configuration's order.
            named.sort_by_key(|(_, t)| t.detectors.len() != snapshot.detectors.len());
            let (index, chain) = named.into_iter().find_map(|(index, template)| {
                let mut chain = SeriesChain::new(template, templates.registry()).ok()?;
                chain.restore(template, &snapshot).ok()?;
                Some((index, chain))
            })?;
            Some(SeriesEntry {
                chain,
                template: index as u32,
                series: None,
                generation: 0,
                partition,
                dirty: false,
            })
        });
        match restored {
            Some(entry) => {
                if series.insert(key.0, Some(entry)).is_none() {
                    counters.add_series(1);
                    counters.add_restored(1);
                }
            }
            None => {
                counters.add_restore_failures(1);
                if series.remove(&key.0).is_some() {
                    counters.remove_series(1);
                }
            }
        }
    }
}

/// Whether a series' live state carries over from one template to the other: their chains
/// are built alike (features, detectors with their parameters, ensemble). The alert policy's
/// thresholds, the matcher, the name and the version stamp are read at each step, so a change
/// of only those keeps everything the series learnt (and an open incident stays open).
fn same_chain(a: &Template, b: &Template) -> bool {
    a.features == b.features && a.detectors == b.detectors && a.ensemble == b.ensemble
}

/// The chain a series runs after moving from `before` to `after`, a template built otherwise
/// (not [`same_chain`]). When `after` is `before` with detectors appended (same features and
/// ensemble, `before`'s detectors first, with their parameters), the series' chain carried
/// over: the detectors it had keep what they learnt, with their calibration and the alert
/// policy's state, and the appended ones start afresh. Else a fresh chain.
fn successor(
    chain: &SeriesChain,
    before: &Template,
    after: &Template,
    registry: &Registry,
) -> aiops_operators::Result<SeriesChain> {
    let mut fresh = SeriesChain::new(after, registry)?;
    let appended = before.features == after.features
        && before.ensemble == after.ensemble
        && after.detectors.len() > before.detectors.len()
        && after.detectors.starts_with(&before.detectors);
    if appended {
        let mut snapshot = chain.snapshot(before);
        snapshot.template.clone_from(&after.name);
        // On failure `restore` changes nothing: the chain stays fresh.
        let _ = fresh.restore(after, &snapshot);
    }
    Ok(fresh)
}

/// Moves every series to the template it now selects in `new` (see the module docs); returns
/// how many series changed version.
fn swap_models(
    series: &mut SeriesMap<Option<SeriesEntry>>,
    (old, previous): (&TemplateSet, &ActiveModels),
    (new, active): (&TemplateSet, &ActiveModels),
) -> u64 {
    let mut moved = 0;
    // Series no template matched may match one now: forget them so their next point selects.
    series.retain(|_, entry| entry.is_some());
    series.retain(|key, slot| {
        let Some(entry) = slot.as_mut() else {
            return false;
        };
        let Some(before) = old.get(entry.template as usize) else {
            return false;
        };
        let selected = match &entry.series {
            Some(s) => new.select(s),
            // Restored but not seen yet: stay with the template of the same name.
            None => new
                .templates()
                .iter()
                .enumerate()
                .find(|(_, t)| t.name == before.name),
        };
        let Some((index, after)) = selected else {
            return false;
        };
        if before == after {
            entry.template = index as u32;
            return true;
        }
        let version_of = |models: &'_ ActiveModels, id: &str| {
            models
                .models
                .values()
                .find(|m| m.version.id == id)
                .map(|m| m.state.clone())
        };
        let (earlier, trained) = (
            version_of(previous, &before.version),
            version_of(active, &after.version),
        );
        // State carried over unchanged from the version before: keep the live state.
        let carried_over = match (&earlier, &trained) {
            (Some(earlier), Some(trained)) => trained.same_state(earlier, *key),
            _ => false,
        };
        let from_model = trained
            .filter(|_| !carried_over)
            .and_then(|state| state.restore(*key, after, new.registry()))
            .and_then(|restored| restored.ok());
        let replacement = match from_model {
            Some(chain) => Some(chain),
            None if same_chain(before, after) => None,
            None => match successor(&entry.chain, before, after, new.registry()) {
                Ok(chain) => Some(chain),
                Err(_) => return false,
            },
        };
        if let Some(chain) = replacement {
            entry.chain = chain;
            entry.generation = entry.generation.wrapping_add(1);
        }
        entry.template = index as u32;
        entry.dirty = true;
        moved += 1;
        true
    });
    moved
}

/// Sends the state of every series changed since the last snapshot, once per boundary.
fn snapshot_once(
    series: &mut SeriesMap<Option<SeriesEntry>>,
    last: &mut Option<u64>,
    boundary: u64,
    plan: &SnapshotPlan,
    templates: &TemplateSet,
) {
    if last.is_some_and(|done| done >= boundary) {
        return;
    }
    *last = Some(boundary);
    let changed = series
        .iter_mut()
        .filter_map(|(key, entry)| {
            let entry = entry.as_mut().filter(|e| e.dirty)?;
            entry.dirty = false;
            let template = &templates.templates()[entry.template as usize];
            Some(SeriesState {
                partition: entry.partition,
                key: aiops_schemas::SeriesKey(*key),
                state: entry.chain.snapshot(template).encode(),
            })
        })
        .collect();
    // The receiver hangs up only when the run is torn down.
    let _ = plan.output.send(Output::Control(Control::Snapshot {
        worker: plan.worker,
        boundary,
        series: changed,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant_template(tenant: &str, detector: &str, warning: f64) -> Template {
        let mut template = Template {
            name: "web".into(),
            detectors: vec![aiops_operators::DetectorSpec::new(detector)],
            ..Template::light()
        };
        template.matcher.tenant = Some(tenant.into());
        template.alert.warning = warning;
        template
    }

    fn restored_under(templates: &TemplateSet, index: usize) -> Option<SeriesEntry> {
        Some(SeriesEntry {
            chain: SeriesChain::new(&templates.templates()[index], templates.registry()).unwrap(),
            template: index as u32,
            series: None,
            generation: 0,
            partition: PartitionId::default(),
            dirty: false,
        })
    }

    fn series_of(tenant: &str) -> Arc<Series> {
        Arc::new(
            Series::new(
                tenant,
                "latency",
                aiops_schemas::Labels::new(),
                &aiops_schemas::Limits::default(),
            )
            .unwrap(),
        )
    }

    /// Regression: state restored by template name went to the first template of that name,
    /// another tenant's configuration when two tenants named theirs alike.
    #[test]
    fn a_restored_series_chooses_its_own_tenants_template_on_its_first_point() {
        let templates = TemplateSet::only(
            vec![
                tenant_template("acme", "zscore", 3.0),
                tenant_template("beta", "mad", 3.0),
                tenant_template("gamma", "zscore", 6.0),
            ],
            aiops_operators::Registry::builtin(),
        );
        // beta's series, restored under acme's `web`: another chain, so a fresh one.
        let mut slot = restored_under(&templates, 0);
        choose_again(&mut slot, &series_of("beta"), &templates);
        let entry = slot.as_ref().unwrap();
        assert_eq!((entry.template, entry.generation), (1, 1));
        assert!(entry.series.is_some());
        // gamma's, restored under acme's: built alike (only the alert differs), state kept.
        let mut slot = restored_under(&templates, 0);
        choose_again(&mut slot, &series_of("gamma"), &templates);
        assert_eq!(
            slot.as_ref().map(|e| (e.template, e.generation)),
            Some((2, 0))
        );
        // A tenant none of them matches: not scored at all.
        let mut slot = restored_under(&templates, 0);
        choose_again(&mut slot, &series_of("delta"), &templates);
        assert!(slot.is_none());
        // acme's own: stays.
        let mut slot = restored_under(&templates, 0);
        choose_again(&mut slot, &series_of("acme"), &templates);
        assert_eq!(
            slot.as_ref().map(|e| (e.template, e.generation)),
            Some((0, 0))
        );
    }

    /// Feeds `points` points of `series` (a minute apart, `value(i)` at the i-th) to `chain`.
    fn feed(
        chain: &mut SeriesChain,
        template: &Template,
        series: &Arc<Series>,
        points: i64,
        value: impl Fn(i64) -> f64,
    ) {
        for i in 0..points {
            let point = aiops_schemas::MetricPoint {
                series: series.clone(),
                timestamp: i * 60_000,
                value: value(i),
            };
            chain.step(template, &point);
        }
    }

    /// Feeds 200 points of `series` to the entry's chain under the set's first template; the
    /// detectors' state after them.
    fn learn_under(
        slot: &mut Option<SeriesEntry>,
        templates: &TemplateSet,
        series: &Arc<Series>,
    ) -> Vec<aiops_operators::Snapshot> {
        let entry = slot.as_mut().unwrap();
        feed(
            &mut entry.chain,
            &templates.templates()[0],
            series,
            200,
            |i| (i % 9) as f64,
        );
        entry.chain.detectors().snapshot()
    }

    /// A detector appended to a template keeps what the others learnt: a restored series
    /// that now selects its tenant's template with one more detector carries over their state.
    #[test]
    fn a_series_moving_to_its_template_plus_a_detector_keeps_what_the_others_learnt() {
        let mut grown = tenant_template("beta", "zscore", 3.0);
        grown
            .detectors
            .push(aiops_operators::DetectorSpec::new("mad"));
        let templates = TemplateSet::only(
            vec![tenant_template("acme", "zscore", 3.0), grown],
            aiops_operators::Registry::builtin(),
        );
        let series = series_of("beta");
        let mut slot = restored_under(&templates, 0);
        let learnt = learn_under(&mut slot, &templates, &series);
        choose_again(&mut slot, &series, &templates);
        let entry = slot.as_ref().unwrap();
        assert_eq!((entry.template, entry.generation), (1, 1));
        let now = entry.chain.detectors().snapshot();
        assert_eq!(
            now[0], learnt[0],
            "the z-score's state was not carried over"
        );
        let fresh = SeriesChain::new(&templates.templates()[1], templates.registry()).unwrap();
        assert_eq!(now[1], fresh.detectors().snapshot()[1]);
        // Appended, but the z-score's parameters changed too: a fresh chain.
        let mut retuned = tenant_template("beta", "zscore", 3.0);
        retuned.detectors[0]
            .params
            .insert("alpha".into(), serde_json::json!(0.05));
        retuned
            .detectors
            .push(aiops_operators::DetectorSpec::new("mad"));
        let retuned = TemplateSet::only(
            vec![tenant_template("acme", "zscore", 3.0), retuned],
            aiops_operators::Registry::builtin(),
        );
        let mut slot = restored_under(&retuned, 0);
        let trained = learn_under(&mut slot, &retuned, &series);
        choose_again(&mut slot, &series, &retuned);
        let now = slot.as_ref().unwrap().chain.detectors().snapshot();
        assert_ne!(now[0], trained[0]);
        let fresh = SeriesChain::new(&retuned.templates()[1], retuned.registry()).unwrap();
        assert_eq!(now, fresh.detectors().snapshot());
        // Another detector in its place (not appended): a fresh chain.
        let other = TemplateSet::only(
            vec![
                tenant_template("acme", "zscore", 3.0),
                tenant_template("beta", "mad", 3.0),
            ],
            aiops_operators::Registry::builtin(),
        );
        let mut slot = restored_under(&other, 0);
        choose_again(&mut slot, &series, &other);
        let entry = slot.as_ref().unwrap();
        assert_eq!(entry.chain.detectors().snapshot().len(), 1);
        assert_eq!(entry.chain.detectors().snapshot()[0].kind, "mad");
    }

    /// A checkpoint written under the previous built-in default (the same detectors but the
    /// last one appended since) restores under the new default instead of starting afresh.
    #[test]
    fn a_checkpoint_from_before_the_default_gained_a_detector_restores() {
        let templates = TemplateSet::builtin();
        let default = templates
            .templates()
            .iter()
            .find(|t| t.name == "default")
            .unwrap();
        let mut previous = default.clone();
        previous.detectors.pop();
        let mut chain = SeriesChain::new(&previous, templates.registry()).unwrap();
        feed(&mut chain, &previous, &series_of("acme"), 120, |i| {
            50.0 + ((i * 7919) % 13) as f64
        });
        let counters = Counters::default();
        let mut series = SeriesMap::default();
        restore(
            &mut series,
            vec![SeriesState {
                partition: PartitionId::default(),
                key: aiops_schemas::SeriesKey(7),
                state: chain.snapshot(&previous).encode(),
            }],
            &templates,
            &counters,
        );
        let stats = counters.read();
        assert_eq!((stats.restored, stats.restore_failures), (1, 0));
        // What the detectors it had learnt is theirs again; the appended one starts afresh.
        let restored = series.get(&7).and_then(Option::as_ref).unwrap();
        let now = restored.chain.detectors().snapshot();
        let learnt = chain.detectors().snapshot();
        assert_eq!(now[..learnt.len()], learnt[..]);
        let fresh = SeriesChain::new(default, templates.registry()).unwrap();
        assert_eq!(now.last(), fresh.detectors().snapshot().last());
    }

    /// Regression: restores did not count their series as held, and counted every restore of
    /// a series again (a partition a rebalance gives back is restored once more).
    #[test]
    fn a_series_restored_twice_is_one_series_restored_once() {
        let templates = TemplateSet::only(
            vec![tenant_template("acme", "zscore", 3.0)],
            aiops_operators::Registry::builtin(),
        );
        let template = &templates.templates()[0];
        let chain = SeriesChain::new(template, templates.registry()).unwrap();
        let state = |key: u64, bytes: Vec<u8>| SeriesState {
            partition: PartitionId::default(),
            key: aiops_schemas::SeriesKey(key),
            state: bytes,
        };
        let good = chain.snapshot(template).encode();
        let counters = Counters::default();
        let mut series = SeriesMap::default();
        restore(
            &mut series,
            vec![state(1, good.clone()), state(2, good.clone())],
            &templates,
            &counters,
        );
        restore(&mut series, vec![state(1, good)], &templates, &counters);
        let stats = counters.read();
        assert_eq!((stats.series, stats.restored), (2, 2));
        // A state that no longer fits drops the series it replaced.
        restore(
            &mut series,
            vec![state(2, vec![0xFF; 3])],
            &templates,
            &counters,
        );
        let stats = counters.read();
        assert_eq!((stats.series, stats.restore_failures), (1, 1));
        assert_eq!(series.len(), 1);
    }

    #[test]
    fn boundaries_fall_every_few_epochs() {
        assert_eq!(boundary_before(0, 10), None);
        assert_eq!(boundary_before(9, 10), None);
        assert_eq!(boundary_before(10, 10), Some(9));
        assert_eq!(boundary_before(25, 10), Some(19));
        assert_eq!(boundary_before(5, 1), Some(4));
        assert_eq!(boundary_before(5, 0), Some(4), "zero means every epoch");
    }
}
