//! Training a template: replay a stretch of history through its chains, series by series, and
//! evaluate what they learnt on a held-back tail.
//!
//! Each series' points are split in time: the first `1 − holdout` train the chain, the rest are
//! scored by the chain trained on the head (the figures), and then learnt too, so the state the
//! version keeps is as recent as the range. Without labels, the figures measure quietness on
//! data taken to be normal: how many tail points score at or above the template's warning
//! threshold (per 1,000), the events raised, and the distribution of the combined score. A
//! candidate "beats" another when fewer of the same tail points score as anomalies (ties: a
//! lower mean score); both are trained on the same head, the incumbent continuing from its
//! own stored state.

use std::collections::BTreeMap;

use aiops_operators::{Registry, SeriesChain, Template};
use aiops_schemas::{MetricPoint, Severity, TimestampMs};

use super::artifact::ModelArtifact;
use super::{NewModel, TrainingRange};
use crate::error::{Error, Result};

/// How a training run splits and judges its data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    /// Fraction of each series' points held back for evaluation, in [0, 0.9].
    pub holdout: f64,
    /// Series with fewer points than this are left out.
    pub min_points: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            holdout: 0.2,
            min_points: 20,
        }
    }
}

/// Figures of a chain's behaviour on held-back points.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Evaluation {
    /// Points scored.
    pub points: u64,
    /// Points whose combined score reached the warning threshold.
    pub flagged: u64,
    /// Events raised.
    pub events: u64,
    /// Critical events raised.
    pub critical: u64,
    /// Mean combined score.
    pub mean_score: f64,
    /// Largest combined score.
    pub max_score: f64,
}

impl Evaluation {
    fn per_1000(&self, count: u64) -> f64 {
        if self.points == 0 {
            0.0
        } else {
            count as f64 * 1000.0 / self.points as f64
        }
    }

    /// Points at or above the warning threshold per 1,000 scored: what versions are compared
    /// by (lower is better on data taken to be normal).
    pub fn flagged_per_1000(&self) -> f64 {
        self.per_1000(self.flagged)
    }

    /// Events per 1,000 points scored.
    pub fn events_per_1000(&self) -> f64 {
        self.per_1000(self.events)
    }

    /// Whether these figures are better than `other`'s.
    pub fn better_than(&self, other: &Evaluation) -> bool {
        let (mine, theirs) = (self.flagged_per_1000(), other.flagged_per_1000());
        mine < theirs || (mine == theirs && self.mean_score < other.mean_score)
    }

    /// The figures as stored with a version.
    pub fn figures(&self) -> BTreeMap<String, f64> {
        [
            ("evaluation_points", self.points as f64),
            ("flagged", self.flagged as f64),
            ("flagged_per_1000", self.flagged_per_1000()),
            ("events", self.events as f64),
            ("critical", self.critical as f64),
            ("events_per_1000", self.events_per_1000()),
            ("mean_score", self.mean_score),
            ("max_score", self.max_score),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Adds another series' figures.
    pub fn add(&mut self, other: &Evaluation) {
        let total = self.points + other.points;
        if total > 0 {
            self.mean_score = (self.mean_score * self.points as f64
                + other.mean_score * other.points as f64)
                / total as f64;
        }
        self.points = total;
        self.flagged += other.flagged;
        self.events += other.events;
        self.critical += other.critical;
        self.max_score = self.max_score.max(other.max_score);
    }
}

/// What a training run produced.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The learnt state.
    pub artifact: ModelArtifact,
    /// The range used.
    pub training: TrainingRange,
    /// The candidate's figures on the held-back tail.
    pub evaluation: Evaluation,
    /// The incumbent's figures on the same tail, when one was given.
    pub incumbent: Option<Evaluation>,
}

impl Trained {
    /// Whether the candidate beats the incumbent (always, when there is none).
    pub fn beats_incumbent(&self) -> bool {
        self.incumbent
            .is_none_or(|old| self.evaluation.better_than(&old))
    }

    /// The version to register.
    pub fn new_model(
        &self,
        scope: super::ModelScope,
        parameters: Template,
        note: String,
    ) -> NewModel {
        let mut figures = self.evaluation.figures();
        if let Some(old) = &self.incumbent {
            figures.insert("incumbent_flagged_per_1000".into(), old.flagged_per_1000());
            figures.insert("incumbent_mean_score".into(), old.mean_score);
        }
        NewModel {
            scope,
            parameters,
            training: Some(self.training.clone()),
            figures,
            note,
        }
    }
}

/// The version a candidate is compared with: its parameters and stored state.
pub struct Incumbent<'a> {
    /// Its template (parameters).
    pub template: &'a Template,
    /// Its trained state.
    pub artifact: &'a ModelArtifact,
}

/// Trains `template` on `points` (any order across series; each series' points in time
/// order), evaluating on each series' tail, and the incumbent on the same tail.
pub fn train(
    template: &Template,
    registry: &Registry,
    points: impl IntoIterator<Item = MetricPoint>,
    source: &str,
    options: TrainOptions,
    incumbent: Option<Incumbent<'_>>,
) -> Result<Trained> {
    if !(0.0..=0.9).contains(&options.holdout) {
        return Err(Error::config(format!(
            "holdout must be between 0 and 0.9, not {}",
            options.holdout
        )));
    }
    let mut by_series: BTreeMap<u64, Vec<MetricPoint>> = BTreeMap::new();
    for point in points {
        by_series
            .entry(point.series.key().0)
            .or_default()
            .push(point);
    }
    let mut artifact = ModelArtifact::new(&template.name);
    let mut evaluation = Evaluation::default();
    let mut incumbent_evaluation = incumbent.as_ref().map(|_| Evaluation::default());
    let (mut from, mut to): (Option<TimestampMs>, Option<TimestampMs>) = (None, None);
    let (mut training_points, mut evaluation_points) = (0u64, 0u64);
    for (key, points) in by_series {
        if points.len() < options.min_points {
            continue;
        }
        let (train_part, tail) = points.split_at(head_length(points.len(), options.holdout));
        let (first, last) = (points[0].timestamp, points[points.len() - 1].timestamp);
        from = Some(from.map_or(first, |f| f.min(first)));
        to = Some(to.map_or(last, |t| t.max(last)));
        training_points += train_part.len() as u64;
        evaluation_points += tail.len() as u64;

        let mut chain = SeriesChain::new(template, registry)?;
        run(&mut chain, template, train_part);
        evaluation.add(&run(&mut chain, template, tail));
        artifact.insert(key, &chain, template);

        if let (Some(old), Some(figures)) = (&incumbent, incumbent_evaluation.as_mut()) {
            // A state that does not fit any more starts afresh, as in the pipeline.
            let mut chain = match old.artifact.restore(key, old.template, registry) {
                Some(Ok(chain)) => chain,
                _ => SeriesChain::new(old.template, registry)?,
            };
            run(&mut chain, old.template, train_part);
            figures.add(&run(&mut chain, old.template, tail));
        }
    }
    let series = artifact.series.len() as u64;
    if series == 0 {
        return Err(Error::config(format!(
            "nothing to train on in {source}: no series of template {:?} has {} points or more",
            template.name, options.min_points
        )));
    }
    Ok(Trained {
        artifact,
        training: TrainingRange {
            source: source.to_owned(),
            from: from.unwrap_or(0),
            to: to.unwrap_or(0),
            training_points,
            evaluation_points,
            series,
        },
        evaluation,
        incumbent: incumbent_evaluation,
    })
}

/// How many of a series' `len` points train, the rest being held back.
pub fn head_length(len: usize, holdout: f64) -> usize {
    len - (len as f64 * holdout).round() as usize
}

/// The figures of scores a running version gave a series' points, over the same held-back
/// tail [`train`] evaluates a candidate on: what the incumbent actually did.
pub fn evaluate_scores(scores: &[Option<f64>], holdout: f64, warning: f64) -> Evaluation {
    let tail = &scores[head_length(scores.len(), holdout)..];
    let mut figures = Evaluation {
        points: tail.len() as u64,
        ..Evaluation::default()
    };
    let mut sum = 0.0;
    for score in tail.iter().flatten() {
        sum += score;
        figures.max_score = figures.max_score.max(*score);
        figures.flagged += u64::from(*score >= warning);
    }
    if figures.points > 0 {
        figures.mean_score = sum / figures.points as f64;
    }
    figures
}

/// Runs points through a chain; returns what it raised.
fn run(chain: &mut SeriesChain, template: &Template, points: &[MetricPoint]) -> Evaluation {
    let mut figures = Evaluation::default();
    let mut score_sum = 0.0;
    for point in points {
        let Some(step) = chain.step(template, point) else {
            continue;
        };
        figures.points += 1;
        if let Some(combined) = step.combined {
            score_sum += combined.score;
            figures.max_score = figures.max_score.max(combined.score);
            figures.flagged += u64::from(combined.score >= template.alert.warning);
        }
        if let Some(event) = step.event {
            figures.events += 1;
            figures.critical += u64::from(event.severity == Severity::Critical);
        }
    }
    if figures.points > 0 {
        figures.mean_score = score_sum / figures.points as f64;
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_schemas::{Labels, Limits, Series};
    use std::sync::Arc;

    pub(crate) fn series_points(name: &str, values: &[f64]) -> Vec<MetricPoint> {
        let series =
            Arc::new(Series::new("acme", name, Labels::new(), &Limits::default()).unwrap());
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| MetricPoint {
                series: series.clone(),
                timestamp: 1_700_000_000_000 + i as i64 * 60_000,
                value,
            })
            .collect()
    }

    fn wave(n: usize, level: f64, spread: f64) -> Vec<f64> {
        (0..n)
            .map(|i| level + spread * (((i * 7919) % 101) as f64 / 50.0 - 1.0))
            .collect()
    }

    #[test]
    fn training_keeps_state_per_series_and_reports_the_range() {
        let template = Template::light();
        let registry = Registry::builtin();
        let mut points = series_points("a", &wave(500, 10.0, 1.0));
        points.extend(series_points("b", &wave(300, 50.0, 5.0)));
        points.extend(series_points("short", &wave(5, 1.0, 1.0)));
        let trained = train(
            &template,
            &registry,
            points,
            "test",
            TrainOptions::default(),
            None,
        )
        .unwrap();
        assert_eq!(trained.training.series, 2);
        assert_eq!(trained.training.training_points, 400 + 240);
        assert_eq!(trained.training.evaluation_points, 100 + 60);
        assert_eq!(trained.evaluation.points, 160);
        assert_eq!(trained.training.from, 1_700_000_000_000);
        assert_eq!(trained.training.to, 1_700_000_000_000 + 499 * 60_000);
        trained
            .artifact
            .check("t-v1", &template, &registry)
            .unwrap();
        assert!(trained.beats_incumbent());
    }

    #[test]
    fn a_candidate_trained_on_the_new_regime_beats_an_incumbent_from_the_old_one() {
        // A MAD over a long window adapts slowly: the old state keeps flagging the new regime.
        let mut mad = aiops_operators::DetectorSpec::new("mad");
        mad.params.insert("window".into(), serde_json::json!(255));
        let template = Template {
            detectors: vec![mad],
            ..Template::light()
        };
        let registry = Registry::builtin();
        let old = train(
            &template,
            &registry,
            series_points("a", &wave(1000, 10.0, 1.0)),
            "old",
            TrainOptions::default(),
            None,
        )
        .unwrap();
        // The series now swings ten times as wide.
        let new_regime = series_points("a", &wave(150, 10.0, 10.0));
        let candidate = train(
            &template,
            &registry,
            new_regime,
            "new",
            TrainOptions::default(),
            Some(Incumbent {
                template: &template,
                artifact: &old.artifact,
            }),
        )
        .unwrap();
        let incumbent = candidate.incumbent.unwrap();
        assert!(incumbent.flagged > 0, "{incumbent:?}");
        assert!(
            candidate.evaluation.flagged_per_1000() < incumbent.flagged_per_1000(),
            "{:?} vs {incumbent:?}",
            candidate.evaluation
        );
        assert!(candidate.beats_incumbent());
    }

    #[test]
    fn nothing_to_train_on_is_a_clear_error() {
        let err = train(
            &Template::light(),
            &Registry::builtin(),
            series_points("a", &[1.0, 2.0]),
            "tiny.csv",
            TrainOptions::default(),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("tiny.csv") && err.contains("20 points"),
            "{err}"
        );
    }
}
