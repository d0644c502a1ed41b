//! Retraining on a persisting drift, beside the running pipeline: the drift stage's requests
//! come in over a channel, are gathered per template, and at most once per
//! `min_interval_s` a template is trained on the drifted series' points (with the parameters
//! of its active version), registered, and activated by the configured policy. The pipeline's
//! model watch then swaps the new version in; nothing restarts.
//!
//! Requests that arrive while a template waits for its interval are kept (the latest per
//! series), not dropped, so a drift that persists is retrained as soon as it may be.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aiops_operators::TemplateSet;
use aiops_schemas::{MetricPoint, Series, TimestampMs};

use super::artifact::ModelArtifact;
use super::train::{Evaluation, TrainOptions, evaluate_scores, train};
use super::{Actor, ModelScope, ModelStore};
use crate::config::{Activation, RetrainConfig};
use crate::error::{Error, Result};

/// A persisting drift asks for its template to be retrained on the drifted series' recent
/// points.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainRequest {
    /// The template.
    pub template: String,
    /// The version that was scoring when the drift was seen.
    pub version: String,
    /// The series that drifted.
    pub series: Arc<Series>,
    /// Its points since the drift began, in time order.
    pub points: Vec<(TimestampMs, f64)>,
    /// The running version's combined score of each of those points (`None`: warming up):
    /// how the incumbent actually did, which a new version has to beat.
    pub scores: Vec<Option<f64>>,
    /// Which test fired on which stream, in words.
    pub reason: String,
}

/// What the retrainer has done, for status lines and tests.
#[derive(Debug, Default)]
pub struct RetrainStats {
    /// Requests received.
    pub requests: AtomicU64,
    /// Versions trained and registered.
    pub trained: AtomicU64,
    /// Of which activated.
    pub activated: AtomicU64,
    /// Of which not activated (they did not beat the active version).
    pub rejected: AtomicU64,
    /// Trainings that failed.
    pub failed: AtomicU64,
    last: Mutex<Option<String>>,
}

impl RetrainStats {
    /// What the last training did, in words.
    pub fn last(&self) -> Option<String> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    fn note(&self, text: String) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(text);
        }
    }
}

/// The retraining thread's handles.
pub struct Retrainer {
    /// Where requests go (give it to [`crate::RunOptions::retrain`]).
    pub requests: Sender<RetrainRequest>,
    /// What it has done.
    pub stats: Arc<RetrainStats>,
    /// The thread; it ends when `stop` is set or every sender is dropped.
    pub thread: std::thread::JoinHandle<()>,
}

impl Retrainer {
    /// Starts the thread. `templates` are the configured ones: a template with no active
    /// version is retrained with its configured parameters.
    pub fn spawn(
        store: Arc<dyn ModelStore>,
        templates: Arc<TemplateSet>,
        config: RetrainConfig,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Retrainer> {
        let (requests, receiver) = channel();
        let stats = Arc::new(RetrainStats::default());
        let worker = Worker {
            store,
            templates,
            config,
            stats: stats.clone(),
            pending: BTreeMap::new(),
            last_trained: BTreeMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("aiops-retrain".into())
            .spawn(move || worker.run(receiver, &stop))?;
        Ok(Retrainer {
            requests,
            stats,
            thread,
        })
    }
}

struct Worker {
    store: Arc<dyn ModelStore>,
    templates: Arc<TemplateSet>,
    config: RetrainConfig,
    stats: Arc<RetrainStats>,
    /// Waiting requests per template, the latest per series.
    pending: BTreeMap<String, BTreeMap<u64, RetrainRequest>>,
    last_trained: BTreeMap<String, Instant>,
}

impl Worker {
    fn run(mut self, receiver: Receiver<RetrainRequest>, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            match receiver.recv_timeout(Duration::from_millis(50)) {
                Ok(request) => {
                    self.stats.requests.fetch_add(1, Ordering::Relaxed);
                    self.pending
                        .entry(request.template.clone())
                        .or_default()
                        .insert(request.series.key().0, request);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.train_due();
        }
    }

    fn train_due(&mut self) {
        let interval = Duration::from_secs(self.config.min_interval_s);
        let due: Vec<String> = self
            .pending
            .keys()
            .filter(|t| {
                self.last_trained
                    .get(*t)
                    .is_none_or(|last| last.elapsed() >= interval)
            })
            .cloned()
            .collect();
        for template in due {
            let Some(requests) = self.pending.remove(&template) else {
                continue;
            };
            self.last_trained.insert(template.clone(), Instant::now());
            match self.retrain(&template, requests.into_values().collect()) {
                Ok(summary) => self.stats.note(summary),
                Err(error) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .note(format!("retraining template {template:?} failed: {error}"));
                }
            }
        }
    }

    fn retrain(&self, template_name: &str, requests: Vec<RetrainRequest>) -> Result<String> {
        let scope = ModelScope::template(template_name);
        let active = match self.store.active()?.get(&scope) {
            Some(id) => Some(self.store.get(id)?),
            None => None,
        };
        let parameters = match &active {
            Some(version) => version.parameters.clone(),
            None => self
                .templates
                .templates()
                .iter()
                .find(|t| t.name == template_name)
                .cloned()
                .ok_or_else(|| {
                    Error::config(format!("no template {template_name:?} to retrain"))
                })?,
        };
        let reasons: Vec<String> = requests
            .iter()
            .map(|r| format!("{} ({})", r.series, r.reason))
            .collect();
        let points = requests.iter().flat_map(|r| {
            r.points.iter().map(|&(timestamp, value)| MetricPoint {
                series: r.series.clone(),
                timestamp,
                value,
            })
        });
        let options = TrainOptions {
            holdout: self.config.holdout,
            ..TrainOptions::default()
        };
        let mut trained = train(
            &parameters,
            self.templates.registry(),
            points,
            "drift",
            options,
            None,
        )?;
        // The incumbent is judged by what it actually scored on the same tail while running:
        // its stored state may not even hold these series, the live pipeline's does.
        let mut live = Evaluation::default();
        for request in &requests {
            if request.points.len() >= options.min_points {
                live.add(&evaluate_scores(
                    &request.scores,
                    options.holdout,
                    parameters.alert.warning,
                ));
            }
        }
        trained.incumbent = Some(live);
        if let Some(version) = &active {
            let earlier = ModelArtifact::decode(&version.id, &self.store.artifact(&version.id)?)?;
            trained.artifact.carry_over(&earlier);
        }
        let note = format!("drift: {}", reasons.join("; "));
        let actor = Actor::new("drift", note.clone());
        let version = self.store.register(
            trained.new_model(scope, parameters, note),
            &trained.artifact.encode(),
            &actor,
        )?;
        self.stats.trained.fetch_add(1, Ordering::Relaxed);
        let activate = match self.config.activation {
            Activation::Always => true,
            Activation::Never => false,
            Activation::Auto => trained.beats_incumbent(),
        };
        let figures = format!(
            "{:.2} per 1000 flagged on the held-back tail{}",
            trained.evaluation.flagged_per_1000(),
            trained.incumbent.map_or(String::new(), |old| format!(
                " (active version: {:.2})",
                old.flagged_per_1000()
            ))
        );
        if activate {
            self.store.activate(&version.id, &actor)?;
            self.stats.activated.fetch_add(1, Ordering::Relaxed);
            Ok(format!(
                "{} trained on drift and activated: {figures}",
                version.id
            ))
        } else {
            if self.config.activation == Activation::Auto {
                self.store.reject(
                    &version.id,
                    &Actor::new(
                        "drift",
                        "did not beat the active version on the held-back tail",
                    ),
                )?;
            }
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            Ok(format!(
                "{} trained on drift, not activated: {figures}",
                version.id
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditAction;
    use crate::sqlite::SqliteStore;
    use aiops_operators::{Registry, Template};
    use aiops_schemas::{Labels, Limits, Series};

    fn request(host: &str, running_score: f64) -> RetrainRequest {
        let labels = Labels::from_pairs([("host", host)]).unwrap();
        let series = Arc::new(Series::new("acme", "cpu", labels, &Limits::default()).unwrap());
        let points: Vec<(i64, f64)> = (0..100)
            .map(|i| (i * 1000, 10.0 + (i * 37 % 11) as f64))
            .collect();
        RetrainRequest {
            template: "default".into(),
            version: "builtin".into(),
            series,
            scores: vec![Some(running_score); points.len()],
            points,
            reason: "test".into(),
        }
    }

    fn start(
        activation: Activation,
        min_interval_s: u64,
    ) -> (
        tempfile::TempDir,
        Arc<dyn ModelStore>,
        Retrainer,
        Arc<AtomicBool>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ModelStore> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let template = Template {
            name: "default".into(),
            ..Template::light()
        };
        let templates = Arc::new(TemplateSet::new(vec![template], Registry::builtin()).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let config = RetrainConfig {
            min_interval_s,
            activation,
            ..RetrainConfig::default()
        };
        let retrainer = Retrainer::spawn(store.clone(), templates, config, stop.clone()).unwrap();
        (dir, store, retrainer, stop)
    }

    fn wait_until(done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_template_is_retrained_at_most_once_per_interval_and_later_requests_wait() {
        let (_dir, store, retrainer, stop) = start(Activation::Always, 3600);
        retrainer.requests.send(request("a", 9.0)).unwrap();
        wait_until(|| retrainer.stats.trained.load(Ordering::Relaxed) == 1);
        retrainer.requests.send(request("b", 9.0)).unwrap();
        retrainer.requests.send(request("c", 9.0)).unwrap();
        wait_until(|| retrainer.stats.requests.load(Ordering::Relaxed) == 3);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(retrainer.stats.trained.load(Ordering::Relaxed), 1);
        assert_eq!(store.list(None).unwrap().len(), 1);
        assert_eq!(store.active().unwrap().len(), 1);
        stop.store(true, Ordering::Relaxed);
        retrainer.thread.join().unwrap();
    }

    #[test]
    fn auto_activation_keeps_a_running_version_that_was_already_quiet() {
        // The running version scored every point 0: a candidate cannot do better.
        let (_dir, store, retrainer, stop) = start(Activation::Auto, 0);
        retrainer.requests.send(request("a", 0.0)).unwrap();
        wait_until(|| retrainer.stats.rejected.load(Ordering::Relaxed) == 1);
        assert!(store.active().unwrap().is_empty());
        let actions: Vec<AuditAction> = store.audit().unwrap().iter().map(|e| e.action).collect();
        assert_eq!(actions, vec![AuditAction::Register, AuditAction::Reject]);
        // A running version that alarmed all the time is replaced.
        retrainer.requests.send(request("b", 9.0)).unwrap();
        wait_until(|| retrainer.stats.activated.load(Ordering::Relaxed) == 1);
        assert_eq!(store.active().unwrap().len(), 1);
        assert!(retrainer.stats.last().unwrap().contains("activated"));
        stop.store(true, Ordering::Relaxed);
        retrainer.thread.join().unwrap();
    }
}
