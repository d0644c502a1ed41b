//! How right a replay was: its events (and, when given, its per-point scores) against labelled
//! incidents, as precision, recall and F1 event-wise and point-wise, and detection delay.
//!
//! - **Labels** come as NAB window files (`{"category/file.csv": [[start, end], ...]}`, keyed by
//!   the file's stem, which is the metric name a replay of that CSV gives), a JSON list of
//!   incidents (`[{"series": "cpu" | "<16 hex digits>", "start": ..., "end": ...}]`, times in
//!   RFC 3339 or milliseconds), or a label column (runs of 1s become incidents).
//! - **Event-wise**: an incident is caught when an event of its series falls inside it; an event
//!   is a true positive when it falls inside an incident of its series. Recall counts incidents,
//!   precision counts events; the delay is from an incident's start to its first event.
//! - **Point-wise** (with scores): a point is flagged when its score reaches the threshold (the
//!   template's warning level); recall counts labelled points, precision counts flagged points.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use aiops_schemas::{Precision, TimestampMs, parse_timestamp};

use crate::error::{Error, Result};
use crate::nab::Window;

/// Labelled incidents per series, by metric name or series key (16 hex digits).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    incidents: BTreeMap<String, Vec<Window>>,
}

impl Labels {
    /// The incidents of a series, looked up by its key first, then by its metric name.
    pub fn of(&self, key: &str, metric: &str) -> &[Window] {
        self.incidents
            .get(key)
            .or_else(|| self.incidents.get(metric))
            .map_or(&[], Vec::as_slice)
    }

    /// Every labelled series and its incidents.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Window])> {
        self.incidents
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    fn add(&mut self, series: String, window: Window) {
        let windows = self.incidents.entry(series).or_default();
        windows.push(window);
        windows.sort_by_key(|w| w.start);
    }

    /// NAB's window file; `name` names it in errors.
    pub fn from_nab_windows(name: &str, text: &str) -> Result<Labels> {
        let malformed = |message: String| Error::malformed(name, None, message);
        let raw: BTreeMap<String, Vec<Vec<String>>> =
            serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        let mut labels = Labels::default();
        for (file, spans) in raw {
            let stem = file
                .rsplit('/')
                .next()
                .unwrap_or(&file)
                .trim_end_matches(".csv")
                .to_owned();
            for span in spans {
                let [start, end] = span.as_slice() else {
                    return Err(malformed(format!(
                        "a window of {file} is not a [start, end] pair"
                    )));
                };
                let window = window(time(start), time(end))
                    .map_err(|m| malformed(format!("{file}: {m}")))?;
                labels.add(stem.clone(), window);
            }
        }
        Ok(labels)
    }

    /// A JSON list of incidents; `name` names it in errors.
    pub fn from_incidents_json(name: &str, text: &str) -> Result<Labels> {
        #[derive(Deserialize)]
        struct Incident {
            series: String,
            start: serde_json::Value,
            end: serde_json::Value,
        }
        let incidents: Vec<Incident> = serde_json::from_str(text).map_err(|e| {
            Error::malformed(
                name,
                None,
                format!("expected [{{\"series\", \"start\", \"end\"}}, ...]: {e}"),
            )
        })?;
        let mut labels = Labels::default();
        for (i, incident) in incidents.into_iter().enumerate() {
            let at = |v: &serde_json::Value| match v {
                serde_json::Value::Number(n) => {
                    n.as_i64().ok_or_else(|| format!("{n} is not a time"))
                }
                serde_json::Value::String(s) => time(s),
                other => Err(format!("{other} is not a time")),
            };
            let window = window(at(&incident.start), at(&incident.end))
                .map_err(|m| Error::malformed(name, None, format!("incident {}: {m}", i + 1)))?;
            labels.add(incident.series, window);
        }
        Ok(labels)
    }

    /// Labels in any of the three formats, told apart by the text: NAB windows (an object),
    /// incidents (a list), or a CSV with `timestamp` and `label` columns whose series is
    /// `series` (a label of `0`, `false` or nothing is unlabelled). `name` names the file in
    /// errors.
    pub fn parse(name: &str, series: &str, text: &str) -> Result<Labels> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            return Labels::from_nab_windows(name, text);
        }
        if trimmed.starts_with('[') {
            return Labels::from_incidents_json(name, text);
        }
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .collect();
        let column = |wanted: &str| header.iter().position(|h| h.eq_ignore_ascii_case(wanted));
        let (Some(time_column), Some(label_column)) = (column("timestamp"), column("label")) else {
            return Err(Error::malformed(
                name,
                None,
                "not NAB windows (an object), not incidents (a list), and not a CSV with \
                 timestamp and label columns",
            ));
        };
        let mut rows = Vec::new();
        for (number, line) in lines.enumerate() {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let (Some(at), Some(label)) = (fields.get(time_column), fields.get(label_column))
            else {
                continue;
            };
            let at = time(at).map_err(|e| Error::malformed(name, Some(number + 2), e))?;
            rows.push((at, !matches!(*label, "0" | "" | "false")));
        }
        Ok(Labels::from_label_column(series, &rows))
    }

    /// A label column of one series: each run of labelled points becomes an incident from its
    /// first to its last point.
    pub fn from_label_column(series: &str, rows: &[(TimestampMs, bool)]) -> Labels {
        let mut labels = Labels::default();
        let mut run: Option<Window> = None;
        for &(t, labelled) in rows {
            if !labelled {
                if let Some(window) = run.take() {
                    labels.add(series.to_owned(), window);
                }
                continue;
            }
            match &mut run {
                Some(window) => window.end = t,
                None => run = Some(Window { start: t, end: t }),
            }
        }
        if let Some(window) = run {
            labels.add(series.to_owned(), window);
        }
        labels
    }
}

fn time(text: &str) -> std::result::Result<TimestampMs, String> {
    parse_timestamp(text, Precision::Milliseconds).map_err(|e| e.to_string())
}

fn window(
    start: std::result::Result<TimestampMs, String>,
    end: std::result::Result<TimestampMs, String>,
) -> std::result::Result<Window, String> {
    let (start, end) = (start?, end?);
    if end < start {
        return Err("the incident ends before it starts".into());
    }
    Ok(Window { start, end })
}

/// An event of the replay, as the evaluation needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventAt {
    /// The series key, 16 hex digits.
    pub key: String,
    /// The metric name.
    pub metric: String,
    /// The point's time.
    pub timestamp: TimestampMs,
}

/// A scored point of the replay.
#[derive(Debug, Clone, PartialEq)]
pub struct PointAt {
    /// The series key, 16 hex digits.
    pub key: String,
    /// The metric name.
    pub metric: String,
    /// The point's time.
    pub timestamp: TimestampMs,
    /// Whether its score reached the threshold.
    pub flagged: bool,
}

/// A scored point of a replay with the warning level of the template that scored it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPoint {
    /// The series key, 16 hex digits.
    pub key: String,
    /// The metric name.
    pub metric: String,
    /// The point's time.
    pub timestamp: TimestampMs,
    /// The combined score (`None` while the detectors warm up).
    pub score: Option<f64>,
    /// The score at which the template warns.
    pub warning: f64,
}

impl ScoredPoint {
    /// The point as the point-wise figures see it: flagged when its score reached the warning
    /// level.
    pub fn at(&self) -> PointAt {
        PointAt {
            key: self.key.clone(),
            metric: self.metric.clone(),
            timestamp: self.timestamp,
            flagged: self.score.is_some_and(|score| score >= self.warning),
        }
    }
}

/// The figures of a replay's events and scored points between `from` and `to` (inclusive,
/// open where `None`) against the labels: event-wise, point-wise, and NAB's score at the
/// warning level of the first point's template.
pub fn evaluate_range(
    labels: &Labels,
    events: &[EventAt],
    points: &[ScoredPoint],
    from: Option<TimestampMs>,
    to: Option<TimestampMs>,
) -> Figures {
    let in_range = |t: TimestampMs| from.is_none_or(|f| t >= f) && to.is_none_or(|u| t <= u);
    let scored: Vec<&ScoredPoint> = points.iter().filter(|p| in_range(p.timestamp)).collect();
    let flagged: Vec<PointAt> = scored.iter().map(|p| p.at()).collect();
    let series: Vec<(String, String)> = flagged
        .iter()
        .map(|p| (p.key.clone(), p.metric.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut figures = evaluate(labels, &series, events, Some(&flagged));
    figures.nab = range_nab(labels, &scored);
    figures
}

/// NAB's score of scored points, series by series (each series' rows in time order), at the
/// warning level of the first point's template.
fn range_nab(labels: &Labels, points: &[&ScoredPoint]) -> Option<NabFigures> {
    let threshold = points.first()?.warning;
    if !threshold.is_finite() {
        return None;
    }
    // (series key, metric) -> (time, score) rows.
    type Rows = Vec<(TimestampMs, Option<f64>)>;
    let mut rows: BTreeMap<(&str, &str), Rows> = BTreeMap::new();
    for p in points {
        rows.entry((p.key.as_str(), p.metric.as_str()))
            .or_default()
            .push((p.timestamp, p.score));
    }
    let series: Vec<NabSeries<'_>> = rows
        .into_iter()
        .map(|((key, metric), mut rows)| {
            rows.sort_by_key(|(t, _)| *t);
            NabSeries {
                timestamps: rows.iter().map(|(t, _)| *t).collect(),
                scores: rows.iter().map(|(_, s)| *s).collect(),
                incidents: labels.of(key, metric),
            }
        })
        .collect();
    nab_figures(&series, threshold)
}

/// Precision, recall and F1 with their counts; a ratio is `None` when its denominator is 0.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Prf {
    /// True positives (caught incidents for recall, events or points inside for precision).
    pub true_positives: u64,
    /// False positives.
    pub false_positives: u64,
    /// False negatives (missed incidents or labelled points).
    pub false_negatives: u64,
    /// Precision.
    pub precision: Option<f64>,
    /// Recall.
    pub recall: Option<f64>,
    /// F1.
    pub f1: Option<f64>,
}

impl Prf {
    fn new(hits_of_positives: u64, positives: u64, hits_of_labels: u64, labels: u64) -> Prf {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let precision = ratio(hits_of_positives, positives);
        let recall = ratio(hits_of_labels, labels);
        let f1 = match (precision, recall) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
        Prf {
            true_positives: hits_of_labels,
            false_positives: positives - hits_of_positives,
            false_negatives: labels - hits_of_labels,
            precision,
            recall,
            f1,
        }
    }
}

/// The figures of one replay.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Figures {
    /// Labelled incidents in the replay's series.
    pub incidents: u64,
    /// Events in all.
    pub events: u64,
    /// Event-wise figures.
    pub event_wise: Prf,
    /// Point-wise figures, when scores were given.
    pub point_wise: Option<Prf>,
    /// Mean delay from an incident's start to its first event, caught incidents only.
    pub mean_delay_ms: Option<f64>,
    /// Median of the same.
    pub median_delay_ms: Option<f64>,
    /// NAB's standard-profile score of the points' scores (when given and every incident
    /// starts and ends on a point, as NAB's windows do).
    pub nab: Option<NabFigures>,
}

/// NAB's standard-profile score of a replay, at the template's threshold and swept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NabFigures {
    /// At the template's warning level (as a NAB unit score).
    pub at_threshold: Option<f64>,
    /// The threshold of NAB's own sweep, and the score there.
    pub swept_threshold: f64,
    /// The swept score.
    pub swept: Option<f64>,
    /// Windows with a detection at the swept threshold.
    pub detected: usize,
    /// Windows.
    pub windows: usize,
}

/// One series' rows for NAB's score: times, sigma-equivalent scores (`None`: warming up), and
/// incidents.
pub struct NabSeries<'a> {
    /// Row times, in order.
    pub timestamps: Vec<TimestampMs>,
    /// Row scores.
    pub scores: Vec<Option<f64>>,
    /// The series' incidents.
    pub incidents: &'a [Window],
}

/// NAB's standard-profile score over series (the way `aiops nab score` scores a corpus), at
/// `threshold` (sigma-equivalent) and swept; `None` when an incident does not start and end on
/// a row (NAB's rules need that) or there are no incidents.
pub fn nab_figures(series: &[NabSeries<'_>], threshold: f64) -> Option<NabFigures> {
    use crate::nab::run::unit_score;
    use crate::nab::scorer::{self, CostProfile};
    let mut files = Vec::with_capacity(series.len());
    for s in series {
        let scores: Vec<f64> = s.scores.iter().map(|x| x.map_or(0.0, unit_score)).collect();
        files.push(crate::nab::ScoredFile::new(&s.timestamps, &scores, s.incidents).ok()?);
    }
    let profile = CostProfile::nab().into_iter().next()?;
    let windows: usize = series.iter().map(|s| s.incidents.len()).sum();
    if windows == 0 {
        return None;
    }
    let fixed = scorer::tally_files(&files, &profile, unit_score(threshold));
    let best = scorer::best(&scorer::sweep(&files, &profile))?;
    Some(NabFigures {
        at_threshold: profile.normalize(fixed.raw, fixed.windows),
        swept_threshold: best.threshold,
        swept: profile.normalize(best.tally.raw, best.tally.windows),
        detected: best.tally.detected,
        windows,
    })
}

/// Scores a replay's events (and points) against `labels`. Only series the replay saw count:
/// `series` lists them as (key, metric).
pub fn evaluate(
    labels: &Labels,
    series: &[(String, String)],
    events: &[EventAt],
    points: Option<&[PointAt]>,
) -> Figures {
    let mut incidents = 0u64;
    let mut caught = 0u64;
    let mut delays = Vec::new();
    for (key, metric) in series {
        for window in labels.of(key, metric) {
            incidents += 1;
            let first = events
                .iter()
                .filter(|e| e.key == *key && window.contains(e.timestamp))
                .map(|e| e.timestamp)
                .min();
            if let Some(first) = first {
                caught += 1;
                delays.push((first - window.start) as f64);
            }
        }
    }
    let inside = |key: &str, metric: &str, t: TimestampMs| {
        labels.of(key, metric).iter().any(|w| w.contains(t))
    };
    let events_inside = events
        .iter()
        .filter(|e| inside(&e.key, &e.metric, e.timestamp))
        .count() as u64;
    let event_wise = Prf::new(events_inside, events.len() as u64, caught, incidents);
    let point_wise = points.map(|points| {
        let (mut flagged, mut flagged_inside, mut labelled, mut labelled_flagged) = (0, 0, 0, 0);
        for p in points {
            let within = inside(&p.key, &p.metric, p.timestamp);
            flagged += u64::from(p.flagged);
            flagged_inside += u64::from(p.flagged && within);
            labelled += u64::from(within);
            labelled_flagged += u64::from(within && p.flagged);
        }
        Prf::new(flagged_inside, flagged, labelled_flagged, labelled)
    });
    delays.sort_by(f64::total_cmp);
    let median = (!delays.is_empty()).then(|| {
        let mid = delays.len() / 2;
        if delays.len() % 2 == 1 {
            delays[mid]
        } else {
            (delays[mid - 1] + delays[mid]) / 2.0
        }
    });
    Figures {
        incidents,
        events: events.len() as u64,
        event_wise,
        point_wise,
        mean_delay_ms: (!delays.is_empty())
            .then(|| delays.iter().sum::<f64>() / delays.len() as f64),
        median_delay_ms: median,
        nab: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(key: &str, t: i64) -> EventAt {
        EventAt {
            key: key.into(),
            metric: "cpu".into(),
            timestamp: t,
        }
    }

    #[test]
    fn event_wise_figures_by_hand() {
        // Incidents [10, 20] and [100, 120] on series a; events at 15, 18 (inside the first),
        // 50 (outside) and 130 (outside): 1 of 2 incidents caught, 2 of 4 events inside.
        let labels = Labels::from_incidents_json(
            "test",
            r#"[{"series": "a", "start": 10, "end": 20}, {"series": "a", "start": 100, "end": 120}]"#,
        )
        .unwrap();
        let series = vec![("a".to_owned(), "cpu".to_owned())];
        let events = [
            event("a", 15),
            event("a", 18),
            event("a", 50),
            event("a", 130),
        ];
        let figures = evaluate(&labels, &series, &events, None);
        assert_eq!(figures.incidents, 2);
        let e = figures.event_wise;
        assert_eq!(
            (e.true_positives, e.false_positives, e.false_negatives),
            (1, 2, 1)
        );
        assert_eq!(e.precision, Some(0.5));
        assert_eq!(e.recall, Some(0.5));
        assert_eq!(e.f1, Some(0.5));
        assert_eq!(figures.mean_delay_ms, Some(5.0));
        assert_eq!(figures.median_delay_ms, Some(5.0));
        assert_eq!(figures.point_wise, None);
    }

    #[test]
    fn point_wise_figures_by_hand() {
        // Labelled points 2, 3 (one incident [2, 3]); flagged 3 and 5: precision 1/2, recall 1/2.
        let labels = Labels::from_label_column(
            "cpu",
            &[(1, false), (2, true), (3, true), (4, false), (5, false)],
        );
        assert_eq!(labels.of("x", "cpu"), [Window { start: 2, end: 3 }]);
        let points: Vec<PointAt> = (1..=5)
            .map(|t| PointAt {
                key: "x".into(),
                metric: "cpu".into(),
                timestamp: t,
                flagged: t == 3 || t == 5,
            })
            .collect();
        let series = vec![("x".to_owned(), "cpu".to_owned())];
        let figures = evaluate(&labels, &series, &[], Some(&points));
        let p = figures.point_wise.unwrap();
        assert_eq!((p.precision, p.recall), (Some(0.5), Some(0.5)));
        assert_eq!(figures.event_wise.recall, Some(0.0));
        assert_eq!(
            figures.event_wise.precision, None,
            "no events: no precision"
        );
    }

    #[test]
    fn nab_figures_follow_nabs_rules() {
        // 1,000 rows; one window on rows 500..=599. A detection at the window's first row
        // earns NAB's largest reward; nothing elsewhere: a perfect score, 100.
        let timestamps: Vec<i64> = (0..1000).collect();
        let mut scores = vec![Some(0.0); 1000];
        scores[500] = Some(9.0);
        let incidents = [Window {
            start: 500,
            end: 599,
        }];
        let series = [NabSeries {
            timestamps: timestamps.clone(),
            scores: scores.clone(),
            incidents: &incidents,
        }];
        let figures = nab_figures(&series, 5.0).unwrap();
        assert!(
            (figures.at_threshold.unwrap() - 100.0).abs() < 1e-9,
            "{figures:?}"
        );
        assert_eq!((figures.detected, figures.windows), (1, 1));
        // Below the threshold: no detection, the null detector's score, 0.
        let figures = nab_figures(&series, 10.0).unwrap();
        assert!(figures.at_threshold.unwrap().abs() < 1e-9, "{figures:?}");
        // A window between rows: no NAB score rather than a wrong one.
        let off = [Window {
            start: 500,
            end: 10_000,
        }];
        let series = [NabSeries {
            timestamps,
            scores,
            incidents: &off,
        }];
        assert!(nab_figures(&series, 5.0).is_none());
    }

    #[test]
    fn nab_windows_are_keyed_by_the_file_stem_and_bad_labels_are_clear_errors() {
        let labels = Labels::from_nab_windows(
            "combined_windows.json",
            r#"{"realKnownCause/machine_temperature.csv": [["2013-12-10 06:25:00.000000", "2013-12-12 05:35:00.000000"]]}"#,
        )
        .unwrap();
        assert_eq!(
            labels.of("0123456789abcdef", "machine_temperature").len(),
            1
        );
        let err = Labels::from_incidents_json(
            "incidents.json",
            r#"[{"series": "a", "start": 20, "end": 10}]"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("incidents.json")
                && err.contains("incident 1")
                && err.contains("ends before"),
            "{err}"
        );
        assert!(Labels::from_incidents_json("x", "{}").is_err());
        assert!(Labels::from_nab_windows("y", r#"{"a.csv": [["2013-12-10"]]}"#).is_err());
    }
}
