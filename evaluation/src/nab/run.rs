//! Runs a detector template over every file of a NAB corpus and writes NAB result files.
//!
//! Each file is one series, fed point by point through the same feature stage, detectors and
//! ensemble the live pipeline runs, so the scores are exactly the ones it would have given.
//! NAB wants anomaly scores in [0, 1]; a sigma-equivalent score `s` is written as
//! [`unit_score`]`(s) = s / (s + 3)`, which keeps the order of scores (all NAB looks at) and
//! maps the usual alerting range (3 to 10 sigma) to 0.5 to 0.77.

use std::path::Path;
use std::time::{Duration, Instant};

use aiops_operators::{FeatureExtractor, Registry, SeriesDetectors, Template};

use super::corpus::{self, Corpus, Series};
use crate::error::Result;

/// A sigma-equivalent score on NAB's [0, 1] scale; order-preserving.
pub fn unit_score(sigma: f64) -> f64 {
    if sigma.is_finite() && sigma > 0.0 {
        sigma / (sigma + 3.0)
    } else {
        0.0
    }
}

/// The inverse of [`unit_score`], to read a NAB threshold as a sigma-equivalent one.
pub fn sigma_of_unit(unit: f64) -> f64 {
    if unit >= 1.0 {
        f64::INFINITY
    } else {
        3.0 * unit.max(0.0) / (1.0 - unit.max(0.0))
    }
}

/// The template's scores for each row of a series, on the [0, 1] scale; 0 while every
/// detector is warming up.
pub fn score_series(template: &Template, registry: &Registry, series: &Series) -> Result<Vec<f64>> {
    let mut features = FeatureExtractor::new();
    let mut detectors = SeriesDetectors::new(template, registry)?;
    let mut scores = Vec::with_capacity(series.len());
    for (&timestamp, &value) in series.timestamps.iter().zip(&series.values) {
        let score = features
            .next(&template.features, timestamp, value)
            .and_then(|f| detectors.observe(template, &f).1)
            .map_or(0.0, |combined| unit_score(combined.score));
        scores.push(score);
    }
    Ok(scores)
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSummary {
    /// Files scored.
    pub files: usize,
    /// Rows scored.
    pub rows: usize,
    /// Wall time spent scoring (reading and writing files included).
    pub elapsed: Duration,
    /// Time spent in the detectors alone, summed over threads.
    pub detector_time: Duration,
}

/// Scores every file of the corpus with the template, writing
/// `<out>/<label>/<category>/<label>_<file>.csv`. Files are spread over `threads` threads.
pub fn run_corpus(
    corpus: &Corpus,
    template: &Template,
    registry: &Registry,
    label: &str,
    out: &Path,
    threads: usize,
) -> Result<RunSummary> {
    let started = Instant::now();
    let done = crate::parallel::map(corpus.files(), threads, |file| {
        let series = corpus.read_series(file)?;
        let timer = Instant::now();
        let scores = score_series(template, registry, &series)?;
        let spent = timer.elapsed();
        let path = corpus::results_path(out, label, file);
        corpus::write_scores(&path, &series, &file.windows, &scores)?;
        Ok((series.len(), spent))
    })?;
    let rows = done.iter().map(|(rows, _)| rows).sum();
    let detector_time = done.iter().map(|(_, spent)| *spent).sum();
    Ok(RunSummary {
        files: corpus.files().len(),
        rows,
        elapsed: started.elapsed(),
        detector_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_scores_keep_order_and_invert() {
        let sigmas = [0.0, 0.5, 3.0, 5.0, 10.0, 1e6];
        let units: Vec<f64> = sigmas.iter().map(|&s| unit_score(s)).collect();
        assert!(units.windows(2).all(|w| w[0] < w[1]), "{units:?}");
        assert_eq!(unit_score(3.0), 0.5);
        for s in sigmas {
            assert!((sigma_of_unit(unit_score(s)) - s).abs() < 1e-6 * s.max(1.0));
        }
        assert_eq!(unit_score(f64::NAN), 0.0);
        assert_eq!(unit_score(-1.0), 0.0);
    }
}
