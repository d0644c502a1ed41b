//! Detection quality over several labelled corpora at once, so that no single benchmark picks
//! the defaults: NAB, public corpora fetched by `scripts/fetch-corpora`, and a generated corpus
//! of young series ([`young`]). Every entry — an aiops template, the plain rolling z-score
//! reference, or a peer library's scores read from files — is scored the same way:
//!
//! - the composite F1 ([`composite`]) with one threshold swept over each corpus;
//! - false alarms per 1,000 anomaly-free points and the delay to the first alarm, at that
//!   threshold; for aiops templates also at the shipped alert policy (its events);
//! - NAB's standard score (swept) on the NAB corpus;
//! - points per second per core;
//! - leave-one-corpus-out: the F1 on a corpus at the threshold chosen on every *other* corpus,
//!   beside the one at the threshold chosen on all of them.

pub mod composite;
pub mod labelled;
pub mod noise;
pub mod young;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiops_operators::{Registry, SeriesChain, Template};
use aiops_schemas::{Labels, Limits, MetricPoint, Series};

use crate::backtest::{self, NabSeries};
use crate::error::{Error, Result};
pub use composite::{Counts, ScoredSeries};
pub use labelled::{LabelledCorpus, LabelledSeries};

/// Something to evaluate.
#[derive(Debug, Clone)]
pub enum Entry {
    /// An aiops template, run point by point through the chain the pipeline runs.
    Template {
        /// Shown in the table.
        label: String,
        /// The template.
        template: Box<Template>,
        /// Its detectors' registry.
        registry: Registry,
    },
    /// The reference: |x − mean| / std over the previous `window` points.
    RollingZScore {
        /// Points in the window.
        window: usize,
    },
    /// The young corpus's ceiling: each point's surprise under the law the generator drew
    /// its healthy point from ([`young::generate_with_ceiling`]); no run on other corpora, or
    /// on a young corpus this generator and `seed` did not make.
    Ceiling {
        /// The young corpus's seed.
        seed: u64,
        /// Points whose evidence is pooled ([`young::ceiling_scores`]; 1: each point alone).
        pool: usize,
    },
    /// Scores written by another tool: `<dir>/<corpus>/<series>.csv` with the header `score`
    /// and one row per point, and `<dir>/timing.json` = `{"points": n, "seconds": s}`.
    Peer {
        /// Shown in the table.
        label: String,
        /// Where its files are.
        dir: std::path::PathBuf,
        /// Its own measure of its speed, from `timing.json`, if it left one.
        seconds_per_point: Option<f64>,
    },
}

impl Entry {
    /// A peer's score files in `dir`, named after the folder; its `timing.json` read once.
    pub fn peer(dir: std::path::PathBuf) -> Entry {
        let label = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let seconds_per_point = std::fs::read_to_string(dir.join("timing.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| Some((v["points"].as_f64()?, v["seconds"].as_f64()?)))
            .filter(|(points, seconds)| *points > 0.0 && *seconds >= 0.0)
            .map(|(points, seconds)| seconds / points);
        Entry::Peer {
            label,
            dir,
            seconds_per_point,
        }
    }

    /// The name shown in the table.
    pub fn label(&self) -> String {
        match self {
            Entry::Template { label, .. } | Entry::Peer { label, .. } => label.clone(),
            Entry::RollingZScore { window } => format!("rolling z-score {window}"),
            Entry::Ceiling { pool: 1, .. } => "ceiling".to_owned(),
            Entry::Ceiling { pool, .. } => format!("ceiling pooling {pool}"),
        }
    }
}

/// One entry's scores on one corpus.
#[derive(Debug, Clone)]
pub struct CorpusRun {
    /// Per series, in corpus order.
    pub scored: Vec<ScoredSeries>,
    /// Per series, the points an alert policy raised an event at (templates only).
    pub events: Option<Vec<Vec<usize>>>,
    /// Points scored.
    pub points: usize,
    /// Time spent scoring, summed over threads.
    pub busy: Duration,
}

/// Runs an entry over a corpus on `threads` threads; `None` for a peer that left no scores for
/// that corpus (it was not run there).
pub fn run(entry: &Entry, corpus: &LabelledCorpus, threads: usize) -> Result<Option<CorpusRun>> {
    match entry {
        Entry::Template {
            template, registry, ..
        } => run_template(template, registry, corpus, threads).map(Some),
        Entry::RollingZScore { window } => {
            let started = Instant::now();
            let scored = corpus
                .series
                .iter()
                .map(|s| ScoredSeries::new(&rolling_zscore(&s.values, *window), &s.labels))
                .collect();
            Ok(Some(CorpusRun {
                scored,
                events: None,
                points: corpus.points(),
                busy: started.elapsed(),
            }))
        }
        Entry::Ceiling { seed, pool } => Ok(young_ceiling(corpus, *seed, *pool)),
        Entry::Peer { dir, .. } if !dir.join(&corpus.name).is_dir() => Ok(None),
        Entry::Peer {
            dir,
            seconds_per_point,
            ..
        } => read_peer(dir, *seconds_per_point, corpus).map(Some),
    }
}

/// The ceiling's scores when `corpus` is the young corpus of `seed`.
fn young_ceiling(corpus: &LabelledCorpus, seed: u64, pool: usize) -> Option<CorpusRun> {
    if corpus.name != "young" {
        return None;
    }
    let (generated, ceiling) = young::generate_with_ceiling(corpus.series.len(), seed);
    // A corpus named young read from disk, or made with another seed, is not the one whose
    // healthy laws these are.
    if generated.series != corpus.series {
        return None;
    }
    let scored = corpus
        .series
        .iter()
        .zip(&ceiling)
        .map(|(s, tails)| ScoredSeries::new(&young::ceiling_scores(tails, pool), &s.labels))
        .collect();
    Some(CorpusRun {
        scored,
        events: None,
        points: corpus.points(),
        // Not a detector: its speed means nothing.
        busy: Duration::ZERO,
    })
}

fn run_template(
    template: &Template,
    registry: &Registry,
    corpus: &LabelledCorpus,
    threads: usize,
) -> Result<CorpusRun> {
    let runs = crate::parallel::map(&corpus.series, threads, |series| {
        score_series(template, registry, &corpus.name, series)
    })?;
    let mut run = CorpusRun {
        scored: Vec::with_capacity(runs.len()),
        events: Some(Vec::with_capacity(runs.len())),
        points: corpus.points(),
        busy: Duration::ZERO,
    };
    for (scored, events, busy) in runs {
        run.scored.push(scored);
        if let Some(all) = &mut run.events {
            all.push(events);
        }
        run.busy += busy;
    }
    Ok(run)
}

/// One series' scores, the points events were raised at, and the time it took.
pub(crate) type SeriesRun = (ScoredSeries, Vec<usize>, Duration);

/// A template over one series: the combined score per point (0 while every detector warms
/// up) and the points the alert policy raised events at.
pub(crate) fn score_series(
    template: &Template,
    registry: &Registry,
    corpus: &str,
    series: &LabelledSeries,
) -> Result<SeriesRun> {
    let labels = Labels::from_pairs([("corpus", corpus)])
        .map_err(|e| Error::malformed(corpus, None, format!("cannot label its series: {e}")))?;
    let identity = Series::new("eval", &series.name, labels, &Limits::default())
        .map_err(|e| Error::malformed(&series.name, None, format!("not a series name: {e}")))?;
    let identity = Arc::new(identity);
    let mut chain = SeriesChain::new(template, registry)?;
    let mut scores = Vec::with_capacity(series.len());
    let mut events = Vec::new();
    let started = Instant::now();
    for (i, (&timestamp, &value)) in series.timestamps.iter().zip(&series.values).enumerate() {
        let point = MetricPoint {
            series: identity.clone(),
            timestamp,
            value,
        };
        let step = chain.step(template, &point);
        let score = step
            .as_ref()
            .and_then(|s| s.combined)
            .map_or(0.0, |c| c.score);
        if step.is_some_and(|s| s.event.is_some()) {
            events.push(i);
        }
        scores.push(score);
    }
    let busy = started.elapsed();
    Ok((ScoredSeries::new(&scores, &series.labels), events, busy))
}

/// |x − mean| / std of the previous `window` points; 0 until two points were seen or while
/// they do not vary. The plain baseline anyone would write first.
pub fn rolling_zscore(values: &[f64], window: usize) -> Vec<f64> {
    let window = window.max(2);
    let (mut sum, mut sum_sq) = (0.0, 0.0);
    let mut scores = Vec::with_capacity(values.len());
    for (i, &x) in values.iter().enumerate() {
        let n = i.min(window);
        let score = if n >= 2 {
            let mean = sum / n as f64;
            let variance = ((sum_sq - n as f64 * mean * mean) / (n - 1) as f64).max(0.0);
            if variance > 1e-12 * mean.abs().max(1.0).powi(2) {
                (x - mean).abs() / variance.sqrt()
            } else {
                0.0
            }
        } else {
            0.0
        };
        scores.push(score);
        sum += x;
        sum_sq += x * x;
        if i >= window {
            let old = values[i - window];
            sum -= old;
            sum_sq -= old * old;
        }
    }
    scores
}

/// Writes a run's scores in the peers' layout: `<dir>/<corpus>/<series>.csv`, header `score`.
pub fn write_scores(dir: &Path, corpus: &LabelledCorpus, run: &CorpusRun) -> Result<()> {
    let root = dir.join(&corpus.name);
    std::fs::create_dir_all(&root).map_err(|e| Error::io("cannot create", &root, e))?;
    for (series, scored) in corpus.series.iter().zip(&run.scored) {
        let mut text = String::from("score\n");
        for score in scored.scores() {
            text.push_str(&format!("{score}\n"));
        }
        let path = root.join(format!("{}.csv", series.name));
        std::fs::write(&path, text).map_err(|e| Error::io("cannot write", &path, e))?;
    }
    Ok(())
}

fn read_peer(
    dir: &Path,
    seconds_per_point: Option<f64>,
    corpus: &LabelledCorpus,
) -> Result<CorpusRun> {
    let mut scored = Vec::with_capacity(corpus.series.len());
    for series in &corpus.series {
        let path = dir.join(&corpus.name).join(format!("{}.csv", series.name));
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::io("cannot read", &path, e))?;
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some("score") {
            return Err(Error::malformed(
                &path,
                Some(1),
                "expected the header score",
            ));
        }
        let scores: Vec<f64> = lines
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                l.trim().parse::<f64>().map_err(|_| {
                    Error::malformed(&path, Some(i + 2), format!("{l:?} is not a number"))
                })
            })
            .collect::<Result<_>>()?;
        if scores.len() != series.len() {
            return Err(Error::malformed(
                &path,
                None,
                format!("{} scores for {} points", scores.len(), series.len()),
            ));
        }
        scored.push(ScoredSeries::new(&scores, &series.labels));
    }
    // The peer's own measure of its time, as this corpus's share.
    let busy = seconds_per_point.map(|s| Duration::from_secs_f64(s * corpus.points() as f64));
    Ok(CorpusRun {
        scored,
        events: None,
        points: corpus.points(),
        busy: busy.unwrap_or(Duration::ZERO),
    })
}

/// One cell of the table: an entry on a corpus.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cell {
    /// The entry.
    pub entry: String,
    /// The corpus.
    pub corpus: String,
    /// Best composite F1 with one threshold over the corpus.
    pub f1: f64,
    /// Point precision there.
    pub precision: f64,
    /// Incident recall there.
    pub recall: f64,
    /// The threshold.
    pub threshold: f64,
    /// False alarms per 1,000 anomaly-free points there.
    pub false_alarms_per_1000: f64,
    /// Mean points from an incident's start to its first alarm there.
    pub delay: Option<f64>,
    /// At the shipped alert policy (templates): composite F1 of its events.
    pub events_f1: Option<f64>,
    /// At the shipped alert policy: incident recall of its events.
    pub events_recall: Option<f64>,
    /// At the shipped alert policy: false events per 1,000 anomaly-free points.
    pub events_false_per_1000: Option<f64>,
    /// NAB's standard profile, normalized, threshold swept (the NAB corpus only).
    pub nab_standard: Option<f64>,
    /// Points per second per core (None when not measured).
    pub points_per_second: Option<f64>,
    /// F1 on this corpus at the threshold chosen on every corpus together.
    pub f1_all_threshold: Option<f64>,
    /// F1 on this corpus at the threshold chosen on every other corpus (leave-one-out).
    pub f1_leave_one_out: Option<f64>,
}

/// Scores an entry's runs over every corpus into one cell per corpus it ran on (`runs[i]`
/// belongs to `corpora[i]`).
pub fn cells(entry: &str, corpora: &[LabelledCorpus], runs: &[Option<CorpusRun>]) -> Vec<Cell> {
    let (corpora, runs): (Vec<&LabelledCorpus>, Vec<&CorpusRun>) = corpora
        .iter()
        .zip(runs)
        .filter_map(|(c, r)| Some((c, r.as_ref()?)))
        .unzip();
    let all: Vec<&ScoredSeries> = runs.iter().flat_map(|r| r.scored.iter()).collect();
    let all_threshold = composite::sweep(&all).map(|(t, _)| t);
    corpora
        .iter()
        .zip(&runs)
        .enumerate()
        .map(|(k, (corpus, run))| {
            let own: Vec<&ScoredSeries> = run.scored.iter().collect();
            let (threshold, f1) = composite::sweep(&own).unwrap_or((f64::INFINITY, 0.0));
            let at = composite::counts(&own, threshold);
            let events = run.events.as_ref().map(|events| {
                let mut total = Counts::default();
                for (s, e) in run.scored.iter().zip(events) {
                    total.add(&s.counts_at(e));
                }
                total
            });
            let others: Vec<&ScoredSeries> = runs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .flat_map(|(_, r)| r.scored.iter())
                .collect();
            let loo_threshold = composite::sweep(&others).map(|(t, _)| t);
            let f1_at = |t: Option<f64>| t.map(|t| composite::counts(&own, t).f1());
            Cell {
                entry: entry.to_owned(),
                corpus: corpus.name.clone(),
                f1,
                precision: at.precision(),
                recall: at.recall(),
                threshold,
                false_alarms_per_1000: at.false_alarms_per_1000(),
                delay: at.mean_delay(),
                events_f1: events.map(|c| c.f1()),
                events_recall: events.map(|c| c.recall()),
                events_false_per_1000: events.map(|c| c.false_alarms_per_1000()),
                nab_standard: corpus
                    .nab_root
                    .as_ref()
                    .and_then(|_| nab_standard(corpus, run)),
                points_per_second: (run.busy > Duration::ZERO)
                    .then(|| run.points as f64 / run.busy.as_secs_f64()),
                f1_all_threshold: (corpora.len() > 1).then(|| f1_at(all_threshold)).flatten(),
                f1_leave_one_out: (corpora.len() > 1).then(|| f1_at(loo_threshold)).flatten(),
            }
        })
        .collect()
}

/// NAB's standard profile on a corpus whose labels are NAB windows, threshold swept (the way
/// a backtest scores NAB: [`backtest::nab_figures`]).
fn nab_standard(corpus: &LabelledCorpus, run: &CorpusRun) -> Option<f64> {
    let labels: Vec<backtest::Labels> = corpus
        .series
        .iter()
        .map(|s| {
            let rows: Vec<(i64, bool)> = s
                .timestamps
                .iter()
                .copied()
                .zip(s.labels.iter().copied())
                .collect();
            backtest::Labels::from_label_column(&s.name, &rows)
        })
        .collect();
    let series: Vec<NabSeries<'_>> = corpus
        .series
        .iter()
        .zip(&run.scored)
        .zip(&labels)
        .map(|((s, scored), labels)| NabSeries {
            timestamps: s.timestamps.clone(),
            scores: scored.scores().iter().map(|&x| Some(x)).collect(),
            incidents: labels.of(&s.name, &s.name),
        })
        .collect();
    // The threshold only sets the figure at a fixed threshold, which is not reported here.
    backtest::nab_figures(&series, 1.0)?.swept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rolling_zscore_scores_against_the_previous_window_only() {
        let mut values: Vec<f64> = (0..50)
            .map(|i| if i % 2 == 0 { 9.0 } else { 11.0 })
            .collect();
        values.push(20.0);
        let scores = rolling_zscore(&values, 10);
        assert_eq!(scores[0], 0.0);
        assert_eq!(scores[1], 0.0);
        // Window of ten alternating 9 and 11: mean 10, sample std sqrt(10/9).
        let expected = 10.0 / (10.0f64 / 9.0).sqrt();
        assert!((scores[50] - expected).abs() < 1e-9, "{}", scores[50]);
        assert!(rolling_zscore(&[5.0; 10], 4).iter().all(|&s| s == 0.0));
    }

    #[test]
    fn the_ceiling_runs_on_its_own_young_corpus_only() {
        let entry = Entry::Ceiling { seed: 3, pool: 1 };
        let young = young::generate(20, 3);
        let ceiling = run(&entry, &young, 1).unwrap().expect("its own corpus");
        let reference = run(&Entry::RollingZScore { window: 100 }, &young, 1)
            .unwrap()
            .unwrap();
        let f1 = |r: &CorpusRun| {
            composite::sweep(&r.scored.iter().collect::<Vec<_>>()).map_or(0.0, |(_, f)| f)
        };
        assert!(
            f1(&ceiling) > f1(&reference),
            "{} {}",
            f1(&ceiling),
            f1(&reference)
        );
        assert!(run(&entry, &young::generate(20, 4), 1).unwrap().is_none());
        let mut renamed = young.clone();
        renamed.name = "other".into();
        assert!(run(&entry, &renamed, 1).unwrap().is_none());
        let mut altered = young;
        altered.series[0].values[0] += 1.0;
        assert!(run(&entry, &altered, 1).unwrap().is_none());
        assert_eq!(
            Entry::Ceiling { seed: 3, pool: 3 }.label(),
            "ceiling pooling 3"
        );
    }

    #[test]
    fn a_template_is_scored_on_a_generated_corpus_with_every_figure() {
        let corpus = young::generate(8, 1);
        let entry = Entry::Template {
            label: "light".into(),
            template: Box::new(Template::light()),
            registry: Registry::builtin(),
        };
        let reference = Entry::RollingZScore { window: 100 };
        let mut other = young::generate(6, 2);
        other.name = "other".into();
        let corpora = [corpus, other];
        for entry in [entry, reference] {
            let runs: Vec<Option<CorpusRun>> =
                corpora.iter().map(|c| run(&entry, c, 2).unwrap()).collect();
            let cells = cells(&entry.label(), &corpora, &runs);
            assert_eq!(cells.len(), 2);
            for cell in &cells {
                assert!((0.0..=1.0).contains(&cell.f1), "{cell:?}");
                assert!(cell.f1 > 0.0, "{cell:?}");
                assert!(cell.f1_leave_one_out.is_some());
                assert_eq!(cell.nab_standard, None);
                assert_eq!(
                    cell.events_f1.is_some(),
                    matches!(entry, Entry::Template { .. })
                );
            }
        }
    }
}
