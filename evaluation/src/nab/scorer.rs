//! NAB's scoring rules, from its published description and its reference scorer.
//!
//! - The first 15 % of each file's rows (at most 750) are a **probation** period: not scored.
//! - A row is a **detection** when its anomaly score is at or above the threshold.
//! - Inside an anomaly window only the **earliest** detection counts, rewarded by a scaled
//!   sigmoid of its position (`-1` at the window's first row, `0` just past its last), divided
//!   by the reward of the earliest position so a detection on the first row earns the full
//!   `tp_weight`.
//! - A detection outside every window is a **false positive**, costing up to `fp_weight`: the
//!   scaled sigmoid of its distance past the preceding window, in window widths (a false positive
//!   before any window costs the full weight).
//! - Each window without a detection costs `fn_weight`.
//! - The raw score of a corpus is the sum over its files. It is **normalized** so that the null
//!   detector (no detections: every window missed) scores 0 and the perfect detector (every
//!   window caught on its first row, no false positives) scores 100.
//! - The threshold of a profile is chosen by a **sweep**: every distinct anomaly score in the
//!   corpus is tried and the one with the highest raw score wins (ties: the highest threshold).

use aiops_schemas::TimestampMs;

use super::corpus::Window;

/// The share of each file that is probation.
pub const PROBATION_FRACTION: f64 = 0.15;
/// Files longer than this many rows have a probation of `PROBATION_FRACTION` of this.
pub const PROBATION_CAP_ROWS: f64 = 5000.0;

/// How much a profile values catching windows against raising false alarms.
#[derive(Debug, Clone, PartialEq)]
pub struct CostProfile {
    /// NAB's name: `standard`, `reward_low_FP_rate`, `reward_low_FN_rate`.
    pub name: String,
    /// Reward of a detection at the very start of a window.
    pub tp_weight: f64,
    /// Cost of a false positive far from any window.
    pub fp_weight: f64,
    /// Cost of a missed window.
    pub fn_weight: f64,
}

impl CostProfile {
    /// NAB's three application profiles, as in its `config/profiles.json`.
    pub fn nab() -> Vec<CostProfile> {
        let profile = |name: &str, fp_weight, fn_weight| CostProfile {
            name: name.to_owned(),
            tp_weight: 1.0,
            fp_weight,
            fn_weight,
        };
        vec![
            profile("standard", 0.11, 1.0),
            profile("reward_low_FP_rate", 0.22, 1.0),
            profile("reward_low_FN_rate", 0.11, 2.0),
        ]
    }

    /// Reads profiles in NAB's `profiles.json` format:
    /// `{"standard": {"CostMatrix": {"tpWeight": 1.0, "fpWeight": 0.11, "fnWeight": 1.0}}, ...}`.
    pub fn from_nab_json(text: &str) -> Result<Vec<CostProfile>, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let profiles = value
            .as_object()
            .ok_or("expected an object of profiles by name")?;
        profiles
            .iter()
            .map(|(name, profile)| {
                let weight = |key: &str| {
                    profile["CostMatrix"][key]
                        .as_f64()
                        .filter(|w| w.is_finite() && *w >= 0.0)
                        .ok_or_else(|| {
                            format!("profile {name:?}: CostMatrix.{key} must be a number ≥ 0")
                        })
                };
                Ok(CostProfile {
                    name: name.clone(),
                    tp_weight: weight("tpWeight")?,
                    fp_weight: weight("fpWeight")?,
                    fn_weight: weight("fnWeight")?,
                })
            })
            .collect()
    }

    /// The raw score of detecting nothing in a corpus with `windows` windows.
    pub fn null_score(&self, windows: usize) -> f64 {
        -(windows as f64) * self.fn_weight
    }

    /// The raw score of detecting every window on its first row and nothing else.
    pub fn perfect_score(&self, windows: usize) -> f64 {
        windows as f64 * self.tp_weight
    }

    /// A raw score on NAB's 0 (null detector) to 100 (perfect detector) scale; `None` when
    /// there are no windows to tell the two apart.
    pub fn normalize(&self, raw: f64, windows: usize) -> Option<f64> {
        let (null, perfect) = (self.null_score(windows), self.perfect_score(windows));
        (perfect > null).then(|| 100.0 * (raw - null) / (perfect - null))
    }
}

/// NAB's scaled sigmoid of a relative position: about 0.987 at -1 (a window's first row), 0 at
/// 0 (just past its last row), about -0.987 at 1, and -1 from 3 on.
pub fn scaled_sigmoid(position: f64) -> f64 {
    if position >= 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * position).exp()) - 1.0
    }
}

/// Rows of one file before this index are probation.
pub fn probation_rows(rows: usize) -> usize {
    let rows = rows as f64;
    // NAB compares a row index against min(floor(0.15·n), 0.15·5000) as floats.
    (PROBATION_FRACTION * rows)
        .floor()
        .min(PROBATION_FRACTION * PROBATION_CAP_ROWS)
        .ceil() as usize
}

/// One scorable row: its anomaly score, its window (if inside one), and what detecting it is
/// worth before the profile's weights (positive inside a window, zero or negative outside).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    score: f64,
    window: Option<u32>,
    reward: f64,
}

/// One file's rows as the scorer sees them: probation dropped, windows located, every row's
/// reward worked out. Independent of the profile and the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredFile {
    rows: Vec<Row>,
    windows: u32,
}

impl ScoredFile {
    /// Locates the windows among the rows and works out each row's reward.
    ///
    /// A window must start and end on rows' timestamps, as NAB's labels do; otherwise the
    /// message says which window is off.
    pub fn new(
        timestamps: &[TimestampMs],
        scores: &[f64],
        windows: &[Window],
    ) -> Result<ScoredFile, String> {
        if timestamps.len() != scores.len() {
            return Err(format!(
                "{} anomaly scores for {} rows",
                scores.len(),
                timestamps.len()
            ));
        }
        let index_of = |t: TimestampMs, what: &str, window: &Window| {
            timestamps.iter().position(|&x| x == t).ok_or_else(|| {
                format!(
                    "the window {}..{} {what} between rows, not on one",
                    aiops_schemas::format_rfc3339(window.start),
                    aiops_schemas::format_rfc3339(window.end)
                )
            })
        };
        // Each window as (first row, last row).
        let mut spans = Vec::with_capacity(windows.len());
        for window in windows {
            let first = index_of(window.start, "starts", window)?;
            let last = index_of(window.end, "ends", window)?;
            if let Some(&(_, previous_last)) = spans.last()
                && first <= previous_last
            {
                return Err("anomaly windows overlap".to_owned());
            }
            spans.push((first, last));
        }
        let probation = probation_rows(timestamps.len());
        let max_reward = scaled_sigmoid(-1.0);
        let mut rows = Vec::with_capacity(timestamps.len().saturating_sub(probation));
        let mut next = 0;
        // The window the row is in, and the last window passed (its last row and width).
        let mut current: Option<(u32, usize, f64)> = None;
        let mut previous: Option<(usize, f64)> = None;
        let mut scored_windows = std::collections::BTreeSet::new();
        for (i, &score) in scores.iter().enumerate() {
            if current.is_none()
                && let Some(&(first, last)) = spans.get(next)
                && i == first
            {
                current = Some((next as u32, last, (last - first + 1) as f64));
                next += 1;
            }
            let (window, reward) = match current {
                Some((id, last, width)) => {
                    let position = -((last as f64) - (i as f64) + 1.0) / width;
                    (Some(id), scaled_sigmoid(position) / max_reward)
                }
                None => {
                    let position = match previous {
                        None => 3.0,
                        Some((last, width)) if width > 1.0 => {
                            (i as f64 - last as f64).abs() / (width - 1.0)
                        }
                        // NAB divides by zero after a one-row window; count such a false
                        // positive at full cost.
                        Some(_) => 3.0,
                    };
                    (None, scaled_sigmoid(position))
                }
            };
            if i >= probation {
                if let Some(id) = window {
                    scored_windows.insert(id);
                }
                rows.push(Row {
                    score,
                    window,
                    reward,
                });
            }
            if let Some((_, last, width)) = current
                && i == last
            {
                previous = Some((last, width));
                current = None;
            }
        }
        // Windows wholly inside probation are not scored; renumber the rest densely.
        let renumber: Vec<Option<u32>> = (0..spans.len() as u32)
            .map(|id| {
                scored_windows
                    .contains(&id)
                    .then(|| scored_windows.range(..id).count() as u32)
            })
            .collect();
        for row in &mut rows {
            row.window = row.window.and_then(|id| renumber[id as usize]);
        }
        Ok(ScoredFile {
            rows,
            windows: scored_windows.len() as u32,
        })
    }

    /// Anomaly windows that are scored (not wholly inside probation).
    pub fn windows(&self) -> usize {
        self.windows as usize
    }

    /// The score at a threshold: rows scoring at or above it are detections.
    pub fn tally(&self, profile: &CostProfile, threshold: f64) -> Tally {
        let mut best: Vec<Option<f64>> = vec![None; self.windows as usize];
        let mut tally = Tally {
            windows: self.windows as usize,
            ..Tally::default()
        };
        let mut false_positive_cost = 0.0;
        for row in self.rows.iter().filter(|r| r.score >= threshold) {
            match row.window {
                Some(id) => {
                    let slot = &mut best[id as usize];
                    *slot = Some(slot.map_or(row.reward, |b: f64| b.max(row.reward)));
                    tally.window_detections += 1;
                }
                None => {
                    false_positive_cost += row.reward * profile.fp_weight;
                    tally.false_positives += 1;
                }
            }
        }
        tally.detected = best.iter().flatten().count();
        tally.raw = best
            .iter()
            .map(|b| b.map_or(-profile.fn_weight, |r| r * profile.tp_weight))
            .sum::<f64>()
            + false_positive_cost;
        tally
    }
}

/// What a detector scored at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tally {
    /// The raw NAB score.
    pub raw: f64,
    /// Anomaly windows scored.
    pub windows: usize,
    /// Windows with at least one detection.
    pub detected: usize,
    /// Detections inside windows (only the earliest of each window earns a reward).
    pub window_detections: usize,
    /// Detections outside every window.
    pub false_positives: usize,
}

impl Tally {
    /// Adds another file's tally.
    pub fn add(&mut self, other: &Tally) {
        self.raw += other.raw;
        self.windows += other.windows;
        self.detected += other.detected;
        self.window_detections += other.window_detections;
        self.false_positives += other.false_positives;
    }
}

/// The tally of several files at one threshold.
pub fn tally_files<'a>(
    files: impl IntoIterator<Item = &'a ScoredFile>,
    profile: &CostProfile,
    threshold: f64,
) -> Tally {
    let mut total = Tally::default();
    for file in files {
        total.add(&file.tally(profile, threshold));
    }
    total
}

/// A threshold tried by the sweep and what it scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepPoint {
    /// Rows scoring at or above it are detections.
    pub threshold: f64,
    /// The corpus' score at it.
    pub tally: Tally,
}

/// NAB's threshold sweep over a corpus: the score at every distinct anomaly score (and at a
/// threshold above all of them), highest threshold first. One pass over the rows sorted by
/// score, so the whole corpus sweeps in O(n log n).
pub fn sweep(files: &[ScoredFile], profile: &CostProfile) -> Vec<SweepPoint> {
    // Rows of all files, with window ids made unique across files.
    let mut rows: Vec<Row> = Vec::with_capacity(files.iter().map(|f| f.rows.len()).sum());
    let mut offset = 0;
    for file in files {
        rows.extend(file.rows.iter().map(|r| Row {
            window: r.window.map(|id| id + offset),
            ..*r
        }));
        offset += file.windows;
    }
    rows.sort_by(|a, b| b.score.total_cmp(&a.score));
    let windows = offset as usize;
    let mut best: Vec<Option<f64>> = vec![None; windows];
    let mut tally = Tally {
        raw: profile.null_score(windows),
        windows,
        ..Tally::default()
    };
    // NAB starts its sweep at 1.1, above any score in [0, 1].
    let top = rows.first().map_or(0.0, |r| r.score);
    let start = if top < 1.1 { 1.1 } else { f64::INFINITY };
    let mut points = vec![SweepPoint {
        threshold: start,
        tally,
    }];
    let mut i = 0;
    while i < rows.len() {
        let threshold = rows[i].score;
        while i < rows.len() && rows[i].score == threshold {
            let row = rows[i];
            match row.window {
                Some(id) => {
                    let reward = row.reward * profile.tp_weight;
                    let slot = &mut best[id as usize];
                    match *slot {
                        None => {
                            tally.raw += profile.fn_weight + reward;
                            tally.detected += 1;
                            *slot = Some(reward);
                        }
                        Some(previous) if reward > previous => {
                            tally.raw += reward - previous;
                            *slot = Some(reward);
                        }
                        Some(_) => {}
                    }
                    tally.window_detections += 1;
                }
                None => {
                    tally.raw += row.reward * profile.fp_weight;
                    tally.false_positives += 1;
                }
            }
            i += 1;
        }
        points.push(SweepPoint { threshold, tally });
    }
    points
}

/// The best point of a sweep: the highest raw score, the highest threshold among equals.
pub fn best(points: &[SweepPoint]) -> Option<SweepPoint> {
    points.iter().copied().reduce(|best, p| {
        if p.tally.raw > best.tally.raw {
            p
        } else {
            best
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standard() -> CostProfile {
        CostProfile::nab().remove(0)
    }

    /// Rows 0..n one minute apart.
    fn minutes(n: usize) -> Vec<TimestampMs> {
        (0..n as i64).map(|i| i * 60_000).collect()
    }

    fn window(first: usize, last: usize) -> Window {
        Window {
            start: first as i64 * 60_000,
            end: last as i64 * 60_000,
        }
    }

    #[test]
    fn scaled_sigmoid_matches_nabs_documented_values() {
        assert!((scaled_sigmoid(-1.0) - 0.98661).abs() < 1e-5);
        assert!((scaled_sigmoid(-0.5) - 0.84828).abs() < 1e-5);
        assert_eq!(scaled_sigmoid(0.0), 0.0);
        assert!((scaled_sigmoid(1.0) + 0.98661).abs() < 1e-5);
        assert_eq!(scaled_sigmoid(3.0), -1.0);
    }

    #[test]
    fn probation_is_fifteen_percent_capped_at_750_rows() {
        assert_eq!(probation_rows(100), 15);
        assert_eq!(probation_rows(4032), 604);
        assert_eq!(probation_rows(5000), 750);
        assert_eq!(probation_rows(22_695), 750);
        assert_eq!(probation_rows(6), 0);
    }

    /// 100 rows (probation 15), one window on rows 40..=49 (width 10).
    fn one_window(scores: &[(usize, f64)]) -> ScoredFile {
        let mut all = vec![0.0; 100];
        for &(i, s) in scores {
            all[i] = s;
        }
        ScoredFile::new(&minutes(100), &all, &[window(40, 49)]).unwrap()
    }

    #[test]
    fn hand_derived_scores_of_one_window() {
        let profile = standard();
        // Nothing detected: the window is missed.
        assert_eq!(one_window(&[]).tally(&profile, 0.5).raw, -1.0);
        // Detected on its first row: position -(49 - 40 + 1)/10 = -1, the full reward.
        let first = one_window(&[(40, 1.0)]).tally(&profile, 0.5);
        assert!((first.raw - 1.0).abs() < 1e-12, "{first:?}");
        assert_eq!((first.detected, first.false_positives), (1, 0));
        // Detected on its sixth row: position -(49 - 45 + 1)/10 = -0.5.
        let middle = one_window(&[(45, 1.0)]).tally(&profile, 0.5).raw;
        assert!((middle - 0.84828 / 0.98661).abs() < 1e-4, "{middle}");
        // Two detections: only the earliest counts, the later one costs nothing.
        let both = one_window(&[(45, 1.0), (48, 1.0)]).tally(&profile, 0.5).raw;
        assert_eq!(both, middle);
        // A false positive before any window costs the full fp weight (0.11).
        let early = one_window(&[(20, 1.0)]).tally(&profile, 0.5);
        assert!((early.raw - (-1.0 - 0.11)).abs() < 1e-12, "{early:?}");
        // One right after the window is nearly free: position |49 - 50| / 9 = 1/9.
        let after = one_window(&[(50, 1.0)]).tally(&profile, 0.5).raw;
        let expected = -1.0 + 0.11 * (2.0 / (1.0 + (5.0f64 / 9.0).exp()) - 1.0);
        assert!((after - expected).abs() < 1e-12, "{after} vs {expected}");
        // Detections during probation are ignored.
        assert_eq!(one_window(&[(10, 1.0)]).tally(&profile, 0.5).raw, -1.0);
    }

    #[test]
    fn thresholds_count_rows_at_or_above() {
        let profile = standard();
        let file = one_window(&[(40, 0.7), (20, 0.6)]);
        assert_eq!(file.tally(&profile, 0.7).false_positives, 0);
        assert_eq!(file.tally(&profile, 0.6).false_positives, 1);
        assert_eq!(file.tally(&profile, 0.70001).detected, 0);
    }

    #[test]
    fn the_sweep_agrees_with_tallies_and_picks_the_best_threshold() {
        let profile = standard();
        let files = [
            one_window(&[(40, 0.9), (20, 0.8), (60, 0.95), (45, 0.8)]),
            one_window(&[(42, 0.6), (90, 0.6), (30, 0.3)]),
        ];
        let points = sweep(&files, &profile);
        let thresholds: Vec<f64> = points.iter().map(|p| p.threshold).collect();
        assert_eq!(thresholds, [1.1, 0.95, 0.9, 0.8, 0.6, 0.3, 0.0]);
        for point in &points {
            let direct = tally_files(&files, &profile, point.threshold);
            assert!(
                (direct.raw - point.tally.raw).abs() < 1e-9,
                "at {}: {direct:?} vs {:?}",
                point.threshold,
                point.tally
            );
            assert_eq!(direct.detected, point.tally.detected);
            assert_eq!(direct.false_positives, point.tally.false_positives);
        }
        // By hand: at 0.6 both windows are caught (rows 40 and 42), with false positives at
        // rows 20, 60 and 90; no other threshold catches both.
        let best = best(&points).unwrap();
        assert_eq!(best.threshold, 0.6);
        assert_eq!(best.tally.detected, 2);
    }

    #[test]
    fn normalization_puts_null_at_0_and_perfect_at_100() {
        let profile = standard();
        assert_eq!(profile.normalize(-116.0, 116), Some(0.0));
        assert_eq!(profile.normalize(116.0, 116), Some(100.0));
        let numenta = profile.normalize(46.634450197137596, 116).unwrap();
        assert!((numenta - 70.10).abs() < 0.005, "{numenta}");
        assert_eq!(profile.normalize(0.0, 0), None);
    }

    #[test]
    fn windows_off_the_rows_are_reported() {
        let off = Window {
            start: 30_000,
            end: 120_000,
        };
        let err = ScoredFile::new(&minutes(10), &[0.0; 10], &[off]).unwrap_err();
        assert!(err.contains("starts between rows"), "{err}");
        let err = ScoredFile::new(&minutes(10), &[0.0; 9], &[]).unwrap_err();
        assert!(err.contains("9 anomaly scores for 10 rows"), "{err}");
    }

    #[test]
    fn profiles_read_from_nabs_json() {
        let text = r#"{"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}}}"#;
        let profiles = CostProfile::from_nab_json(text).unwrap();
        assert_eq!(profiles, [standard()]);
        let bad = r#"{"x": {"CostMatrix": {"tpWeight": 1.0}}}"#;
        assert!(
            CostProfile::from_nab_json(bad)
                .unwrap_err()
                .contains("fpWeight")
        );
    }
}
