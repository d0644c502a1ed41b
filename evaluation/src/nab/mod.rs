//! The Numenta Anomaly Benchmark: run detectors over its corpus and score the results by its
//! rules.
//!
//! - [`corpus`]: the files on disk (data, windows, results in NAB's layout).
//! - [`scorer`]: NAB's scoring rules and threshold sweep, with hand-checked tests.
//! - [`run`]: a detector template over every file, writing NAB result files.
//!
//! [`evaluate`] puts them together: load a detector's results, choose each profile's threshold
//! (NAB's sweep, a fixed one, or given ones) and report raw and normalized scores, overall and
//! per category.

pub mod corpus;
pub mod run;
pub mod scorer;

use std::collections::BTreeMap;
use std::path::Path;

pub use corpus::{Corpus, CorpusFile, Series, Window};
pub use scorer::{CostProfile, ScoredFile, SweepPoint, Tally};

use crate::error::{Error, Result};

/// How each profile's threshold is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdChoice {
    /// NAB's sweep over the whole corpus, per profile (how the published scores were made).
    Sweep,
    /// One threshold for every profile: what a deployed detector with a fixed setting scores.
    Fixed(f64),
    /// A threshold per profile name, e.g. from NAB's `thresholds.json`.
    PerProfile(BTreeMap<String, f64>),
}

impl ThresholdChoice {
    /// Reads the thresholds of `detector` from a file in the format of NAB's
    /// `config/thresholds.json`: `{"<detector>": {"<profile>": {"threshold": t, ...}}}`.
    pub fn from_nab_thresholds(path: &Path, detector: &str) -> Result<ThresholdChoice> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::malformed(path, None, e.to_string()))?;
        let profiles = value[detector].as_object().ok_or_else(|| {
            Error::malformed(
                path,
                None,
                format!("no thresholds for detector {detector:?}"),
            )
        })?;
        let mut thresholds = BTreeMap::new();
        for (profile, entry) in profiles {
            let threshold = entry["threshold"].as_f64().ok_or_else(|| {
                Error::malformed(
                    path,
                    None,
                    format!("{detector}.{profile}.threshold is not a number"),
                )
            })?;
            thresholds.insert(profile.clone(), threshold);
        }
        Ok(ThresholdChoice::PerProfile(thresholds))
    }
}

/// One file's results, ready to score.
#[derive(Debug, Clone)]
pub struct FileResults {
    /// The corpus file.
    pub file: CorpusFile,
    /// Its rows with rewards worked out.
    pub scored: ScoredFile,
}

/// Reads a detector's result file for every corpus file.
pub fn load_results(corpus: &Corpus, results: &Path, detector: &str) -> Result<Vec<FileResults>> {
    corpus
        .files()
        .iter()
        .map(|file| {
            let series = corpus.read_series(file)?;
            let path = corpus::results_path(results, detector, file);
            let scores = corpus::read_scores(&path, &series)?;
            let scored = ScoredFile::new(&series.timestamps, &scores, &file.windows)
                .map_err(|message| Error::malformed(corpus.data_path(file), None, message))?;
            Ok(FileResults {
                file: file.clone(),
                scored,
            })
        })
        .collect()
}

/// A score on part of the corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct PartScore {
    /// The raw score and counts.
    pub tally: Tally,
    /// On NAB's 0–100 scale; `None` for a part without windows.
    pub normalized: Option<f64>,
}

/// What a detector scored under one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileScore {
    /// The profile.
    pub profile: CostProfile,
    /// The threshold used.
    pub threshold: f64,
    /// The whole corpus.
    pub total: PartScore,
    /// Each category (data folder), by name.
    pub categories: BTreeMap<String, PartScore>,
}

/// Scores results under each profile, choosing thresholds as asked.
pub fn evaluate(
    results: &[FileResults],
    profiles: &[CostProfile],
    choice: &ThresholdChoice,
) -> Result<Vec<ProfileScore>> {
    let scored: Vec<ScoredFile> = results.iter().map(|r| r.scored.clone()).collect();
    let part = |tally: Tally, profile: &CostProfile| PartScore {
        normalized: profile.normalize(tally.raw, tally.windows),
        tally,
    };
    profiles
        .iter()
        .map(|profile| {
            let threshold = match choice {
                ThresholdChoice::Sweep => {
                    scorer::best(&scorer::sweep(&scored, profile)).map_or(1.1, |p| p.threshold)
                }
                ThresholdChoice::Fixed(t) => *t,
                ThresholdChoice::PerProfile(map) => {
                    *map.get(&profile.name).ok_or_else(|| Error::Malformed {
                        path: "thresholds".into(),
                        line: None,
                        message: format!("no threshold for profile {:?}", profile.name),
                    })?
                }
            };
            let mut categories: BTreeMap<String, Tally> = BTreeMap::new();
            let mut total = Tally::default();
            for result in results {
                let tally = result.scored.tally(profile, threshold);
                total.add(&tally);
                categories
                    .entry(result.file.category().to_owned())
                    .or_default()
                    .add(&tally);
            }
            Ok(ProfileScore {
                profile: profile.clone(),
                threshold,
                total: part(total, profile),
                categories: categories
                    .into_iter()
                    .map(|(name, tally)| (name, part(tally, profile)))
                    .collect(),
            })
        })
        .collect()
}
