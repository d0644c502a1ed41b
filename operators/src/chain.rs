//! The per-series chain a template describes: features → detectors → ensemble → alert policy →
//! event, as pieces the dataflow runs in separate stages and as one [`SeriesChain`] for tests,
//! benches and offline evaluation.

use serde::{Deserialize, Serialize};

use aiops_schemas::{AnomalyEvent, MetricPoint, SeriesRef, anomaly_id};

use crate::alert::{Alert, AlertState, AlertStateV2};
use crate::detector::{Detector, Registry, Score, Snapshot, WeightTensor};
use crate::ensemble::{Combined, EnsembleState, contributions};
use crate::error::{Error, Result};
use crate::features::{FeatureExtractor, Features};
use crate::template::Template;

/// Most detectors one template may run; scores travel between stages in a fixed-size array.
pub const MAX_DETECTORS: usize = 12;

/// Every detector's score for one point, in template order (`None`: warming up).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorScores {
    scores: [Option<f64>; MAX_DETECTORS],
    len: u8,
}

impl DetectorScores {
    fn from_scores(scores: &[Option<Score>]) -> DetectorScores {
        let mut out = DetectorScores {
            scores: [None; MAX_DETECTORS],
            len: scores.len().min(MAX_DETECTORS) as u8,
        };
        for (slot, score) in out.scores.iter_mut().zip(scores) {
            *slot = score.map(|s| s.score);
        }
        out
    }

    /// The scores, in template order.
    pub fn as_slice(&self) -> &[Option<f64>] {
        &self.scores[..self.len as usize]
    }
}

/// The detectors of one series, built from its template.
#[derive(Debug)]
pub struct SeriesDetectors {
    detectors: Vec<Box<dyn Detector>>,
    ensemble: EnsembleState,
}

impl SeriesDetectors {
    /// Builds the template's detectors.
    pub fn new(template: &Template, registry: &Registry) -> Result<SeriesDetectors> {
        if template.detectors.len() > MAX_DETECTORS {
            return Err(Error::config(
                format!("template {:?}", template.name),
                format!("at most {MAX_DETECTORS} detectors per template"),
            ));
        }
        Ok(SeriesDetectors {
            detectors: template.build_detectors(registry)?,
            ensemble: EnsembleState::new(template.detectors.len(), &template.ensemble),
        })
    }

    /// Scores a point with every detector, learns from it, and combines the (calibrated)
    /// scores; the scores returned are the ones combined.
    #[inline]
    pub fn observe(
        &mut self,
        template: &Template,
        features: &Features,
    ) -> (DetectorScores, Option<Combined>) {
        let mut scores = [None; MAX_DETECTORS];
        let mut kinds = [""; MAX_DETECTORS];
        let mut self_calibrated = [false; MAX_DETECTORS];
        let n = self.detectors.len();
        for (i, detector) in self.detectors.iter_mut().enumerate() {
            scores[i] = detector.observe(features);
            kinds[i] = detector.kind();
            self_calibrated[i] = detector.self_calibrated();
        }
        let combined = self.ensemble.combine(
            &template.ensemble,
            &kinds[..n],
            &self_calibrated[..n],
            &mut scores[..n],
        );
        (DetectorScores::from_scores(&scores[..n]), combined)
    }

    /// Whether a detector that judges young series itself (see
    /// [`Detector::judges_young_series`]) scored at least the alert policy's `warning`, weighed
    /// as the ensemble weighs it, among `scores` (this chain's last, from
    /// [`SeriesDetectors::observe`]).
    pub fn young_exempt(&self, template: &Template, scores: &DetectorScores) -> bool {
        self.detectors
            .iter()
            .zip(scores.as_slice())
            .any(|(detector, score)| {
                detector.judges_young_series()
                    && score.is_some_and(|s| {
                        template.ensemble.weight(detector.kind()) * s >= template.alert.warning
                    })
            })
    }

    /// Every detector's state, in template order.
    pub fn snapshot(&self) -> Vec<Snapshot> {
        self.detectors.iter().map(|d| d.snapshot()).collect()
    }

    /// The ensemble's state (calibration).
    pub fn ensemble_state(&self) -> &EnsembleState {
        &self.ensemble
    }

    /// Replaces the ensemble's state.
    pub fn set_ensemble_state(&mut self, state: EnsembleState) {
        self.ensemble = state;
    }

    /// Every detector's state with neural weights apart, each tensor tagged with its
    /// detector's index (see [`Detector::snapshot_split`]).
    pub fn snapshot_split(&self) -> (Vec<Snapshot>, Vec<(usize, WeightTensor)>) {
        let mut weights = Vec::new();
        let snapshots = self
            .detectors
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let (snapshot, tensors) = d.snapshot_split();
                weights.extend(tensors.into_iter().map(|t| (i, t)));
                snapshot
            })
            .collect();
        (snapshots, weights)
    }

    /// Restores every detector from [`SeriesDetectors::snapshot_split`]'s parts; on error
    /// nothing is changed.
    pub fn restore_split(
        &mut self,
        snapshots: &[Snapshot],
        weights: &[(usize, WeightTensor)],
    ) -> Result<()> {
        if let Some((index, _)) = weights.iter().find(|(index, _)| *index >= snapshots.len()) {
            return Err(Error::SnapshotCorrupt {
                kind: "chain".into(),
                message: format!(
                    "weights for detector {index} but {} detector snapshots",
                    snapshots.len()
                ),
            });
        }
        self.restore_each(snapshots, |detector, i, snapshot| {
            let mine: Vec<WeightTensor> = weights
                .iter()
                .filter(|(index, _)| *index == i)
                .map(|(_, t)| t.clone())
                .collect();
            detector.restore_split(snapshot, &mine)
        })
    }

    /// Restores every detector; on error nothing is changed.
    pub fn restore(&mut self, snapshots: &[Snapshot]) -> Result<()> {
        self.restore_each(snapshots, |detector, _, snapshot| {
            detector.restore(snapshot)
        })
    }

    /// Restores the first `snapshots.len()` detectors, which must be at most as many as the
    /// template's: a snapshot taken before detectors were appended to a template (a new
    /// built-in default) restores the detectors it has, and the appended ones keep their
    /// state (in a chain just built, none). Each snapshot is checked against its detector's
    /// kind and format by the detector's own restore.
    fn restore_each(
        &mut self,
        snapshots: &[Snapshot],
        restore: impl Fn(&mut Box<dyn Detector>, usize, &Snapshot) -> Result<()>,
    ) -> Result<()> {
        if snapshots.len() > self.detectors.len() {
            return Err(count_mismatch(snapshots.len(), self.detectors.len()));
        }
        // Each detector's restore is all-or-nothing; undo the ones before a failure.
        let backups = self.snapshot();
        for (i, snapshot) in snapshots.iter().enumerate() {
            if let Err(error) = restore(&mut self.detectors[i], i, snapshot) {
                for (detector, backup) in self.detectors[..i].iter_mut().zip(&backups) {
                    // A detector's own snapshot always restores.
                    let _ = detector.restore(backup);
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// Bytes of detector state.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.detectors.capacity() * std::mem::size_of::<Box<dyn Detector>>()
            + self
                .detectors
                .iter()
                .map(|d| d.state_bytes())
                .sum::<usize>()
            + self.ensemble.size_bytes()
            - std::mem::size_of::<EnsembleState>()
    }
}

/// Builds the event for a point the alert policy flagged.
pub fn build_event(
    template: &Template,
    point: &MetricPoint,
    combined: &Combined,
    scores: &DetectorScores,
    alert: &Alert,
) -> AnomalyEvent {
    let detector = template.detector_label();
    AnomalyEvent {
        schema_version: AnomalyEvent::SCHEMA_VERSION,
        id: anomaly_id(&point.series, point.timestamp, detector, &template.version),
        tenant: point.series.tenant().to_owned(),
        series: SeriesRef::from(point.series.as_ref()),
        timestamp: point.timestamp,
        onset: alert.onset,
        value: point.value,
        expected: combined.expected,
        score: combined.score,
        severity: alert.severity,
        escalation: alert.escalation,
        detector: detector.to_owned(),
        template: template.name.clone(),
        model_version: template.version.clone(),
        contributions: contributions(&template.detectors, scores.as_slice()),
    }
}

/// Format version of [`ChainSnapshot`].
pub const CHAIN_SNAPSHOT_VERSION: u16 = 3;

/// Everything a series' chain has learnt, for checkpoints: restoring it into a chain built from
/// the same template gives exactly the scores and events the original would have given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainSnapshot {
    /// Format version; see [`CHAIN_SNAPSHOT_VERSION`].
    pub version: u16,
    /// The template the chain was built from, by name.
    pub template: String,
    /// The feature stage's state.
    pub features: FeatureExtractor,
    /// Each detector's state, in template order.
    pub detectors: Vec<Snapshot>,
    /// The ensemble's state: each detector's calibration.
    pub ensemble: EnsembleState,
    /// The alert policy's state.
    pub alert: AlertState,
}

impl ChainSnapshot {
    /// Encodes the snapshot (postcard).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Decodes a snapshot, checking its format version; format 2 (before incidents kept their
    /// peak score) is read too.
    pub fn decode(bytes: &[u8]) -> Result<ChainSnapshot> {
        let corrupt = |e: postcard::Error| Error::SnapshotCorrupt {
            kind: "chain".into(),
            message: e.to_string(),
        };
        // The version is the first field: a u16, varint-encoded.
        let (version, _): (u16, _) = postcard::take_from_bytes(bytes).map_err(corrupt)?;
        if version == 2 {
            let old: ChainSnapshotV2 = postcard::from_bytes(bytes).map_err(corrupt)?;
            return Ok(ChainSnapshot {
                version: CHAIN_SNAPSHOT_VERSION,
                template: old.template,
                features: old.features,
                detectors: old.detectors,
                ensemble: old.ensemble,
                alert: old.alert.into(),
            });
        }
        let snapshot: ChainSnapshot = postcard::from_bytes(bytes).map_err(corrupt)?;
        if snapshot.version != CHAIN_SNAPSHOT_VERSION {
            return Err(Error::SnapshotVersion {
                kind: "chain".into(),
                expected: CHAIN_SNAPSHOT_VERSION,
                found: snapshot.version,
            });
        }
        Ok(snapshot)
    }
}

/// [`ChainSnapshot`] as format 2 wrote it.
#[derive(Deserialize)]
struct ChainSnapshotV2 {
    #[allow(dead_code)]
    version: u16,
    template: String,
    features: FeatureExtractor,
    detectors: Vec<Snapshot>,
    ensemble: EnsembleState,
    alert: AlertStateV2,
}

/// A snapshot holding `found` detectors' states where `expected` cannot take them.
fn count_mismatch(found: usize, expected: usize) -> Error {
    Error::SnapshotCorrupt {
        kind: "chain".into(),
        message: format!("{found} detector snapshots for {expected} detectors"),
    }
}

/// The whole chain for one series in one place.
#[derive(Debug)]
pub struct SeriesChain {
    features: FeatureExtractor,
    detectors: SeriesDetectors,
    alert: AlertState,
}

/// What the chain made of one point.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainStep {
    /// The point's features.
    pub features: Features,
    /// Each detector's score.
    pub scores: DetectorScores,
    /// The ensemble's score, once any detector is warm.
    pub combined: Option<Combined>,
    /// The event, if the alert policy raised one.
    pub event: Option<AnomalyEvent>,
}

impl SeriesChain {
    /// A chain for a new series.
    pub fn new(template: &Template, registry: &Registry) -> Result<SeriesChain> {
        Ok(SeriesChain {
            features: FeatureExtractor::new(),
            detectors: SeriesDetectors::new(template, registry)?,
            alert: AlertState::new(),
        })
    }

    /// Runs one point through the chain; `None` for a non-finite value (skipped, state intact).
    pub fn step(&mut self, template: &Template, point: &MetricPoint) -> Option<ChainStep> {
        let features = self
            .features
            .next(&template.features, point.timestamp, point.value)?;
        let (scores, combined) = self.detectors.observe(template, &features);
        // The point's age: the feature stage has learnt it already.
        let age = self.features.points().saturating_sub(1);
        // Only a young series has a higher bar to be exempt from.
        let young_exempt = age < u64::from(template.alert.young_points)
            && self.detectors.young_exempt(template, &scores);
        let alert = self.alert.step(
            &template.alert,
            age,
            point.timestamp,
            combined.map(|c| c.score),
            young_exempt,
        );
        let event = match (alert, combined) {
            (Some(alert), Some(combined)) => {
                Some(build_event(template, point, &combined, &scores, &alert))
            }
            _ => None,
        };
        Some(ChainStep {
            features,
            scores,
            combined,
            event,
        })
    }

    /// Everything the chain has learnt, tagged with the template's name.
    pub fn snapshot(&self, template: &Template) -> ChainSnapshot {
        ChainSnapshot {
            version: CHAIN_SNAPSHOT_VERSION,
            template: template.name.clone(),
            features: self.features.clone(),
            detectors: self.detectors.snapshot(),
            ensemble: self.detectors.ensemble_state().clone(),
            alert: self.alert,
        }
    }

    /// Everything the chain has learnt, with neural weights apart (for model artifacts).
    pub fn snapshot_split(
        &self,
        template: &Template,
    ) -> (ChainSnapshot, Vec<(usize, WeightTensor)>) {
        let (detectors, weights) = self.detectors.snapshot_split();
        let snapshot = ChainSnapshot {
            version: CHAIN_SNAPSHOT_VERSION,
            template: template.name.clone(),
            features: self.features.clone(),
            detectors,
            ensemble: self.detectors.ensemble_state().clone(),
            alert: self.alert,
        };
        (snapshot, weights)
    }

    /// [`SeriesChain::restore`] from the parts of [`SeriesChain::snapshot_split`].
    pub fn restore_split(
        &mut self,
        template: &Template,
        snapshot: &ChainSnapshot,
        weights: &[(usize, WeightTensor)],
    ) -> Result<()> {
        self.check_fits(template, snapshot)?;
        // Artifacts are written under exactly their version's template: a shorter one is cut.
        if snapshot.detectors.len() != self.detectors.detectors.len() {
            return Err(count_mismatch(
                snapshot.detectors.len(),
                self.detectors.detectors.len(),
            ));
        }
        self.detectors.restore_split(&snapshot.detectors, weights)?;
        self.adopt(template, snapshot);
        Ok(())
    }

    fn check_fits(&self, template: &Template, snapshot: &ChainSnapshot) -> Result<()> {
        if snapshot.template != template.name {
            return Err(Error::SnapshotKind {
                expected: format!("template {:?}", template.name),
                found: format!("template {:?}", snapshot.template),
            });
        }
        if !snapshot.ensemble.fits(snapshot.detectors.len()) {
            return Err(Error::SnapshotCorrupt {
                kind: "chain".into(),
                message: "the ensemble's calibration does not match the detectors".into(),
            });
        }
        if snapshot.detectors.is_empty() && !self.detectors.detectors.is_empty() {
            return Err(Error::SnapshotCorrupt {
                kind: "chain".into(),
                message: "no detector's state".into(),
            });
        }
        Ok(())
    }

    fn adopt(&mut self, template: &Template, snapshot: &ChainSnapshot) {
        let mut ensemble = snapshot.ensemble.clone();
        // Detectors appended to the template since the snapshot calibrate from scratch.
        ensemble.grow(self.detectors.detectors.len(), &template.ensemble);
        self.detectors.set_ensemble_state(ensemble);
        self.features = snapshot.features.clone();
        self.alert = snapshot.alert;
    }

    /// Replaces the learnt state with a snapshot's. Fails, changing nothing, when the snapshot
    /// was taken under another template or its detectors do not match the template's (by
    /// kind and position: a snapshot does not record their parameters). A snapshot taken
    /// before detectors were appended to the template restores all but those: upgrading to a
    /// default template that gained a detector keeps what every series has learnt. Meant for
    /// a chain just built: the appended detectors keep the state they have (none) and
    /// calibrate from scratch.
    pub fn restore(&mut self, template: &Template, snapshot: &ChainSnapshot) -> Result<()> {
        self.check_fits(template, snapshot)?;
        self.detectors.restore(&snapshot.detectors)?;
        self.adopt(template, snapshot);
        Ok(())
    }

    /// Bytes of state held for the series: features, detectors and alert policy.
    pub fn state_bytes(&self) -> usize {
        self.features.size_bytes() + self.detectors.state_bytes() + self.alert.size_bytes()
    }

    /// The detectors, for snapshots.
    pub fn detectors(&self) -> &SeriesDetectors {
        &self.detectors
    }

    /// The detectors, for restores.
    pub fn detectors_mut(&mut self) -> &mut SeriesDetectors {
        &mut self.detectors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_schemas::{Labels, Limits, Series};
    use std::sync::Arc;

    #[test]
    fn a_format_2_snapshot_still_decodes() {
        #[derive(Serialize)]
        struct V2<'a> {
            version: u16,
            template: &'a str,
            features: &'a FeatureExtractor,
            detectors: &'a [Snapshot],
            ensemble: &'a EnsembleState,
            alert: AlertStateV2,
        }
        let template = Template::light();
        let registry = Registry::builtin();
        let chain = SeriesChain::new(&template, &registry).unwrap();
        let now = chain.snapshot(&template);
        let old: AlertStateV2 =
            postcard::from_bytes(&postcard::to_stdvec(&(0u8, 0u32, 0i64, None::<i64>)).unwrap())
                .unwrap();
        let bytes = postcard::to_stdvec(&V2 {
            version: 2,
            template: &now.template,
            features: &now.features,
            detectors: &now.detectors,
            ensemble: &now.ensemble,
            alert: old,
        })
        .unwrap();
        let decoded = ChainSnapshot::decode(&bytes).unwrap();
        assert_eq!(decoded, now);
        assert!(ChainSnapshot::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut future = now.encode();
        future[0] = 9;
        assert!(matches!(
            ChainSnapshot::decode(&future),
            Err(Error::SnapshotVersion { found: 9, .. })
        ));
    }

    /// One test series.
    fn series() -> Arc<Series> {
        Arc::new(Series::new("t", "m", Labels::new(), &Limits::default()).unwrap())
    }

    /// The series' `i`-th point, a minute after the one before.
    fn point(series: &Arc<Series>, i: i64, value: f64) -> MetricPoint {
        MetricPoint {
            series: series.clone(),
            timestamp: i * 60_000,
            value,
        }
    }

    #[test]
    fn a_snapshot_whose_calibration_does_not_fit_is_refused_and_changes_nothing() {
        let template = Template::light();
        let registry = Registry::builtin();
        let series = series();
        let mut chain = SeriesChain::new(&template, &registry).unwrap();
        for i in 0..50 {
            chain.step(&template, &point(&series, i, (i % 7) as f64));
        }
        let good = chain.snapshot(&template);
        let mut bad = good.clone();
        bad.ensemble = EnsembleState::new(1, &template.ensemble);
        let mut other = SeriesChain::new(&template, &registry).unwrap();
        let before = other.snapshot(&template);
        assert!(other.restore(&template, &bad).is_err());
        assert_eq!(other.snapshot(&template), before);
        other.restore(&template, &good).unwrap();
        assert_eq!(other.snapshot(&template), good);
    }

    #[test]
    fn a_young_series_that_freezes_is_announced() {
        // The default template on a series whose reading freezes at point 200, well inside its
        // young phase (the alert policy asks 4 falling to 2 over 1,440 points; at point 200
        // about 3.7). The stuck detector announces the run at 3: the young bar must not hold
        // that back, or a service deployed yesterday whose exporter hangs goes unnoticed for
        // half a day.
        let template = Template::default();
        let registry = Registry::builtin();
        let series = series();
        let mut chain = SeriesChain::new(&template, &registry).unwrap();
        let mut normal = crate::rng::Rng(5);
        let mut value = 50.0;
        let mut events = Vec::new();
        for i in 0..300 {
            if i < 200 {
                value = 50.0 + 2.0 * normal.normal();
            }
            let step = chain.step(&template, &point(&series, i, value));
            if let Some(event) = step.and_then(|s| s.event) {
                let stuck = event
                    .contributions
                    .iter()
                    .find(|c| c.detector == "stuck")
                    .map(|c| c.score);
                events.push((i, stuck));
            }
        }
        // Announced within a few points of the freeze, by the stuck detector at 3.
        assert!(
            events
                .iter()
                .any(|(i, stuck)| (200..230).contains(i) && stuck.is_some_and(|s| s >= 3.0)),
            "{events:?}"
        );
        assert!(events.iter().all(|(i, _)| *i >= 200), "{events:?}");
    }

    #[test]
    fn only_a_detector_that_judges_young_series_exempts_a_point_and_as_weighed() {
        let mut template = Template::default();
        let registry = Registry::builtin();
        let detectors = SeriesDetectors::new(&template, &registry).unwrap();
        let stuck = template
            .detectors
            .iter()
            .position(|d| d.kind == "stuck")
            .unwrap();
        let with = |i: usize, score: f64| {
            let mut scores = vec![None; template.detectors.len()];
            scores[i] = Some(Score {
                score,
                expected: aiops_schemas::Band {
                    lower: 0.0,
                    upper: 0.0,
                },
            });
            DetectorScores::from_scores(&scores)
        };
        assert!(detectors.young_exempt(&template, &with(stuck, 3.0)));
        assert!(!detectors.young_exempt(&template, &with(stuck, 1.9)));
        // The range is judged by the young warning: a 9 from it exempts nothing.
        assert!(!detectors.young_exempt(&template, &with(0, 9.0)));
        // Weighed as the ensemble weighs it: at half weight stuck's 3 counts 1.5.
        template.ensemble.weights.insert("stuck".into(), 0.5);
        assert!(!detectors.young_exempt(&template, &with(stuck, 3.0)));
        assert!(detectors.young_exempt(&template, &with(stuck, 4.0)));
    }

    /// The light template with the default's calibration and `max`, so a test sees whether the
    /// calibration's state is carried.
    fn calibrating() -> Template {
        let mut template = Template::light();
        template.ensemble.calibrate = true;
        template.ensemble.method = crate::ensemble::Combine::Max;
        template
    }

    #[test]
    fn a_snapshot_from_before_detectors_were_appended_restores_the_ones_it_has() {
        let registry = Registry::builtin();
        let old = calibrating();
        let mut new = calibrating();
        new.detectors
            .push(crate::detector::DetectorSpec::new("jump"));
        let series = series();
        let point = |i: i64| {
            let value = ((i * 7919) % 23) as f64 + if i > 700 { 40.0 } else { 0.0 };
            point(&series, i, value)
        };
        let mut before = SeriesChain::new(&old, &registry).unwrap();
        for i in 0..500 {
            before.step(&old, &point(i));
        }
        let snapshot = before.snapshot(&old);
        let mut after = SeriesChain::new(&new, &registry).unwrap();
        after.restore(&new, &snapshot).unwrap();
        let fresh = SeriesChain::new(&new, &registry).unwrap();
        // The calibration learnt is carried; the appended detector's calibrator is fresh.
        let mut expected = snapshot.ensemble.clone();
        expected.grow(3, &new.ensemble);
        assert_eq!(after.detectors().ensemble_state(), &expected);
        assert_ne!(&snapshot.ensemble, fresh.detectors().ensemble_state());
        assert_eq!(after.detectors().snapshot()[..2], snapshot.detectors[..]);
        assert_eq!(
            after.detectors().snapshot()[2],
            fresh.detectors().snapshot()[2]
        );
        // The detectors it had score (calibrated) exactly as they would have gone on to.
        for i in 500..800 {
            let a = before.step(&old, &point(i)).unwrap();
            let b = after.step(&new, &point(i)).unwrap();
            assert_eq!(a.scores.as_slice(), &b.scores.as_slice()[..2], "point {i}");
        }

        // Refused, changing nothing: more detectors than the template; another kind where the
        // template has one; no detector at all.
        let refused = |template: &Template, snapshot: &ChainSnapshot| {
            let mut chain = SeriesChain::new(template, &registry).unwrap();
            let unchanged = chain.snapshot(template);
            let refused = chain.restore(template, snapshot).is_err();
            assert_eq!(chain.snapshot(template), unchanged);
            refused
        };
        assert!(refused(&old, &after.snapshot(&new)));
        let mut other_kind = calibrating();
        other_kind.detectors[1] = crate::detector::DetectorSpec::new("range");
        other_kind
            .detectors
            .push(crate::detector::DetectorSpec::new("jump"));
        assert!(refused(&other_kind, &snapshot));
        let empty = ChainSnapshot {
            detectors: Vec::new(),
            ensemble: EnsembleState::new(0, &new.ensemble),
            ..snapshot.clone()
        };
        assert!(refused(&new, &empty));

        // Model artifacts hold every detector of their version: a shorter one is refused, and
        // so are weights for a detector the snapshot does not have.
        let mut chain = SeriesChain::new(&new, &registry).unwrap();
        assert!(chain.restore_split(&new, &snapshot, &[]).is_err());
        let (whole, _) = after.snapshot_split(&new);
        let stray = crate::detector::WeightTensor {
            name: "w".into(),
            shape: vec![1],
            values: vec![0.0],
        };
        assert!(chain.restore_split(&new, &whole, &[(3, stray)]).is_err());
        chain.restore_split(&new, &whole, &[]).unwrap();
    }
}
