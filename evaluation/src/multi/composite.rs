//! The composite F-score of labelled incidents, one threshold for a whole set of series.
//!
//! Recall counts **incidents** (maximal runs of labelled points): one is caught when an alarm
//! falls inside it or within [`GRACE`] points after its end. Precision counts **alarmed
//! points**: an alarm is true when it falls inside an incident or its grace. So a detector is
//! paid for catching each incident once and charged for every other point it alarms on — the
//! way an on-call engineer experiences it. A point is alarmed when its score is at or above the
//! threshold and above 0; [`sweep`] finds the threshold with the best F over every series of a
//! set at once, the way one deployed setting has to serve every series.
//!
//! Also: false alarms per 1,000 points of anomaly-free stretches, and the delay from an
//! incident's first point to its first alarm.

/// Points after an incident's last one where an alarm still counts for it.
pub const GRACE: usize = 3;

/// One series' scores and labels, ready to count at any threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredSeries {
    scores: Vec<f64>,
    /// Per point: the incident its alarm would count for, if any.
    incident_of: Vec<Option<u32>>,
    /// Each incident's first point.
    starts: Vec<usize>,
}

impl ScoredSeries {
    /// Pairs scores with labels; both must have one entry per point (the shorter wins).
    pub fn new(scores: &[f64], labels: &[bool]) -> ScoredSeries {
        let n = scores.len().min(labels.len());
        let mut incident_of = vec![None; n];
        let mut starts = Vec::new();
        let mut i = 0;
        while i < n {
            if !labels[i] {
                i += 1;
                continue;
            }
            let start = i;
            while i < n && labels[i] {
                i += 1;
            }
            let id = starts.len() as u32;
            starts.push(start);
            for slot in &mut incident_of[start..(i + GRACE).min(n)] {
                slot.get_or_insert(id);
            }
        }
        ScoredSeries {
            scores: scores[..n]
                .iter()
                .map(|s| if s.is_finite() { s.max(0.0) } else { 0.0 })
                .collect(),
            incident_of,
            starts,
        }
    }

    /// The scores, cleaned (non-finite and negative ones are 0).
    pub fn scores(&self) -> &[f64] {
        &self.scores
    }

    /// Labelled incidents.
    pub fn incidents(&self) -> usize {
        self.starts.len()
    }

    /// Points outside every incident and its grace.
    pub fn free_points(&self) -> usize {
        self.incident_of.iter().filter(|i| i.is_none()).count()
    }

    /// The counts at one threshold.
    pub fn counts(&self, threshold: f64) -> Counts {
        let alarmed = self.scores.iter().map(|&s| s > 0.0 && s >= threshold);
        self.counts_of(alarmed)
    }

    /// The counts of alarms at the given point indexes (an alert policy's events).
    pub fn counts_at(&self, alarms: &[usize]) -> Counts {
        let mut alarmed = vec![false; self.scores.len()];
        for &i in alarms {
            if let Some(slot) = alarmed.get_mut(i) {
                *slot = true;
            }
        }
        self.counts_of(alarmed.into_iter())
    }

    fn counts_of(&self, alarmed: impl Iterator<Item = bool>) -> Counts {
        let mut counts = Counts {
            incidents: self.starts.len(),
            free_points: 0,
            ..Counts::default()
        };
        let mut first_alarm: Vec<Option<usize>> = vec![None; self.starts.len()];
        for (i, (alarm, incident)) in alarmed.zip(&self.incident_of).enumerate() {
            if incident.is_none() {
                counts.free_points += 1;
            }
            if !alarm {
                continue;
            }
            counts.alarms += 1;
            match incident {
                Some(id) => {
                    counts.true_alarms += 1;
                    first_alarm[*id as usize].get_or_insert(i);
                }
                None => counts.false_alarms += 1,
            }
        }
        for (first, start) in first_alarm.iter().zip(&self.starts) {
            if let Some(at) = first {
                counts.caught += 1;
                counts.delay_sum += at.saturating_sub(*start);
            }
        }
        counts
    }
}

/// What alarms did on a set of series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Labelled incidents.
    pub incidents: usize,
    /// Incidents with an alarm inside or in the grace after.
    pub caught: usize,
    /// Alarmed points.
    pub alarms: usize,
    /// Alarmed points inside an incident or its grace.
    pub true_alarms: usize,
    /// Alarmed points elsewhere.
    pub false_alarms: usize,
    /// Points outside every incident and its grace.
    pub free_points: usize,
    /// Points from each caught incident's start to its first alarm, summed.
    pub delay_sum: usize,
}

impl Counts {
    /// Adds another set's counts.
    pub fn add(&mut self, other: &Counts) {
        self.incidents += other.incidents;
        self.caught += other.caught;
        self.alarms += other.alarms;
        self.true_alarms += other.true_alarms;
        self.false_alarms += other.false_alarms;
        self.free_points += other.free_points;
        self.delay_sum += other.delay_sum;
    }

    /// True alarms over alarms (0 without alarms).
    pub fn precision(&self) -> f64 {
        ratio(self.true_alarms, self.alarms)
    }

    /// Caught incidents over incidents (0 without incidents).
    pub fn recall(&self) -> f64 {
        ratio(self.caught, self.incidents)
    }

    /// The composite F1: harmonic mean of point precision and incident recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        }
    }

    /// False alarms per 1,000 anomaly-free points.
    pub fn false_alarms_per_1000(&self) -> f64 {
        1000.0 * ratio(self.false_alarms, self.free_points)
    }

    /// Mean points from an incident's start to its first alarm, over caught incidents.
    pub fn mean_delay(&self) -> Option<f64> {
        (self.caught > 0).then(|| self.delay_sum as f64 / self.caught as f64)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The counts over every series at one threshold.
pub fn counts(series: &[&ScoredSeries], threshold: f64) -> Counts {
    let mut total = Counts::default();
    for s in series {
        total.add(&s.counts(threshold));
    }
    total
}

/// The threshold with the best composite F1 over every series together, and its F1. Every
/// distinct positive score is tried (in one pass, from the highest down); `None` when no
/// series has a positive score.
pub fn sweep(series: &[&ScoredSeries]) -> Option<(f64, f64)> {
    let incidents: usize = series.iter().map(|s| s.incidents()).sum();
    // (score, series, incident) of every positive score, highest first.
    let mut points: Vec<(f64, u32, Option<u32>)> = series
        .iter()
        .enumerate()
        .flat_map(|(k, s)| {
            s.scores
                .iter()
                .zip(&s.incident_of)
                .filter(|(score, _)| **score > 0.0)
                .map(move |(&score, &incident)| (score, k as u32, incident))
        })
        .collect();
    points.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut caught: std::collections::HashSet<(u32, u32)> = std::collections::HashSet::new();
    let (mut alarms, mut true_alarms) = (0usize, 0usize);
    let mut best: Option<(f64, f64)> = None;
    let mut i = 0;
    while i < points.len() {
        let threshold = points[i].0;
        // Every point with this very score turns on at once.
        while i < points.len() && points[i].0 == threshold {
            let (_, k, incident) = points[i];
            alarms += 1;
            if let Some(id) = incident {
                true_alarms += 1;
                caught.insert((k, id));
            }
            i += 1;
        }
        let f1 = Counts {
            incidents,
            caught: caught.len(),
            alarms,
            true_alarms,
            ..Counts::default()
        }
        .f1();
        if best.is_none_or(|(_, b)| f1 > b) {
            best = Some((threshold, f1));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_definition() {
        // Incidents at 2..=3 and 10; grace 3 after each.
        let mut labels = vec![false; 20];
        labels[2] = true;
        labels[3] = true;
        labels[10] = true;
        let mut scores = vec![0.0; 20];
        scores[6] = 5.0; // grace of the first incident (3 + 3): true, caught with delay 4
        scores[7] = 5.0; // past the grace: false
        scores[15] = 1.0; // false, low
        let s = ScoredSeries::new(&scores, &labels);
        assert_eq!(s.incidents(), 2);
        let c = s.counts(2.0);
        assert_eq!(
            (c.caught, c.alarms, c.true_alarms, c.false_alarms),
            (1, 2, 1, 1)
        );
        assert_eq!(c.mean_delay(), Some(4.0));
        assert_eq!(c.free_points, 20 - 5 - 4);
        assert!((c.f1() - 0.5).abs() < 1e-12);
        // At the lowest threshold the false alarm at 15 joins: precision 1/3, recall 1/2.
        let c = s.counts(1.0);
        assert!((c.f1() - 0.4).abs() < 1e-12, "{}", c.f1());
        // Events at the given indexes count the same way.
        assert_eq!(s.counts_at(&[6, 7, 99]), s.counts(2.0));
        assert_eq!(sweep(&[&s]), Some((5.0, 0.5)));
    }

    #[test]
    fn the_sweep_finds_the_best_threshold_over_every_series_together() {
        let a = ScoredSeries::new(
            &[0.0, 9.0, 0.0, 0.0, 0.0, 0.0, 3.0],
            &[false, true, false, false, false, false, false],
        );
        let b = ScoredSeries::new(
            &[4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0],
            &[false, false, false, false, false, false, false, true],
        );
        // 9 alone: P 1, R 1/2 → 0.667; down to 4: P 1/2 → 0.5; to 3: P 1/3; to 2: P 1/2, R 1 → 0.667.
        let (threshold, f1) = sweep(&[&a, &b]).unwrap();
        assert!((f1 - 2.0 / 3.0).abs() < 1e-12);
        // Ties keep the first (highest) threshold found.
        assert_eq!(threshold, 9.0);
        let total = counts(&[&a, &b], 2.0);
        assert_eq!((total.caught, total.alarms), (2, 4));
        assert_eq!(sweep(&[&ScoredSeries::new(&[0.0; 3], &[true; 3])]), None);
    }
}
