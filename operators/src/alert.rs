//! The alert policy: turns a stream of scores into incidents, so one incident gives one event
//! (and at most one escalation), not a storm.
//!
//! Per series, a small state machine:
//!
//! - **idle** → a run of `min_duration` consecutive points at or above `warning` (more during
//!   a series' first `young_points`, unless a detector that judges young series itself spoke)
//!   opens an incident; its event is timestamped at the point that completed the run and carries the
//!   run's first point as `onset`. Severity is critical if that point reaches `critical`.
//! - **open** → a point at or above `critical` while the incident is a warning escalates it
//!   (one more event, flagged). The incident closes after `clear_after` consecutive points below
//!   `clear` (hysteresis: `clear` < `warning`, so a score wobbling around the threshold does not
//!   flap). A point scoring `reannounce` times the incident's highest score so far or more is
//!   announced too (flagged as an escalation): a much larger anomaly inside an incident that a
//!   small one opened is news, not more of the same.
//! - **cooldown**: an incident that opens less than `cooldown_ms` (event time) after the previous
//!   event is tracked but not announced; its escalation still is, since critical matters.
//!
//! Points whose detectors are still warming up count as below `clear`.

use serde::{Deserialize, Serialize};

use aiops_schemas::{Severity, TimestampMs};

use crate::error::{Error, Result};

/// Thresholds and timings of the alert policy. Scores are sigma-equivalents.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// Score at or above which a point counts toward an incident.
    pub warning: f64,
    /// Score at or above which an incident is critical.
    pub critical: f64,
    /// Score below which a point counts toward closing an incident.
    pub clear: f64,
    /// Consecutive points at or above `warning` needed to open an incident.
    pub min_duration: u32,
    /// Consecutive points below `clear` needed to close an incident.
    pub clear_after: u32,
    /// Minimum event time between an event and the next incident's event, in milliseconds.
    pub cooldown_ms: i64,
    /// Inside an open incident, a point scoring at least this many times the incident's
    /// highest score so far is announced again (at or above `warning`); 0: never.
    pub reannounce: f64,
    /// A series' first points, during which opening an incident takes more than `warning`:
    /// `young_warning` at the first point, falling linearly to `warning` at this one (0: off).
    /// A young series' detectors judge by a short history, and a daily cycle's first day sets
    /// records that a series with a day behind it would not. A point where a detector that
    /// judges young series itself ([`crate::Detector::judges_young_series`]: the stuck
    /// detector) scores at least `warning` is exempt: its combined score need only reach
    /// `warning`.
    pub young_points: u32,
    /// The level that opens an incident at a series' first point (see `young_points`).
    pub young_warning: f64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            warning: 5.0,
            critical: 8.0,
            clear: 3.0,
            min_duration: 1,
            // Twenty calm points before an incident closes: on the NAB corpus this halved the
            // events outside labelled windows against five, and kept 99 of 116 windows caught.
            clear_after: 20,
            cooldown_ms: 0,
            reannounce: 3.0,
            young_points: 0,
            young_warning: 0.0,
        }
    }
}

impl AlertConfig {
    /// Checks that `clear ≤ warning ≤ critical` and durations are sensible.
    pub fn validate(&self) -> Result<()> {
        let ordered = self.clear.is_finite()
            && self.warning.is_finite()
            && self.critical.is_finite()
            && self.clear <= self.warning
            && self.warning <= self.critical;
        if !ordered {
            return Err(Error::config(
                "alert",
                format!(
                    "thresholds must satisfy clear ≤ warning ≤ critical (got clear {}, warning {}, critical {})",
                    self.clear, self.warning, self.critical
                ),
            ));
        }
        if self.min_duration == 0 || self.clear_after == 0 {
            return Err(Error::config(
                "alert",
                "min_duration and clear_after must be at least 1",
            ));
        }
        if self.cooldown_ms < 0 {
            return Err(Error::config("alert", "cooldown_ms must not be negative"));
        }
        if !(self.reannounce == 0.0 || self.reannounce >= 1.0) {
            return Err(Error::config(
                "alert",
                format!(
                    "reannounce must be 0 (never) or 1 or more, not {}",
                    self.reannounce
                ),
            ));
        }
        if self.young_points > 0
            && !(self.young_warning.is_finite() && self.young_warning >= self.warning)
        {
            return Err(Error::config(
                "alert",
                format!(
                    "young_warning must be at least warning ({}) when young_points is set, not {}",
                    self.warning, self.young_warning
                ),
            ));
        }
        Ok(())
    }

    /// The level that opens an incident at a series' point `age` (0 for its first).
    pub fn warning_at(&self, age: u64) -> f64 {
        let young = u64::from(self.young_points);
        if age >= young {
            return self.warning;
        }
        let left = (young - age) as f64 / young as f64;
        self.warning + (self.young_warning - self.warning) * left
    }

    fn severity(&self, score: f64) -> Severity {
        if score >= self.critical {
            Severity::Critical
        } else {
            Severity::Warning
        }
    }
}

/// What the policy decided for a point that deserves an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    /// Severity of the incident after this point.
    pub severity: Severity,
    /// First point of the run that opened the incident.
    pub onset: TimestampMs,
    /// True when this raises an open warning to critical.
    pub escalation: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Phase {
    Idle {
        /// Consecutive points at or above warning so far, and the first one's timestamp.
        run: u32,
        run_start: TimestampMs,
    },
    Open {
        severity: Severity,
        onset: TimestampMs,
        /// Consecutive points below clear so far.
        calm: u32,
        /// The highest score of the incident so far (single precision: it is only compared
        /// against a multiple, and keeps the state within 32 bytes).
        peak: f32,
    },
}

/// `last_event` before any event (a plain timestamp rather than an `Option` keeps the state
/// at 32 bytes).
const NEVER: TimestampMs = TimestampMs::MIN;

/// Per-series state of the alert policy (24 bytes of phase plus the last event's time).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    phase: Phase,
    last_event: TimestampMs,
}

impl AlertState {
    /// A series with no incident.
    pub fn new() -> AlertState {
        AlertState {
            phase: Phase::Idle {
                run: 0,
                run_start: 0,
            },
            last_event: NEVER,
        }
    }

    /// The time of the last event announced, if any.
    fn announced(&self) -> Option<TimestampMs> {
        (self.last_event != NEVER).then_some(self.last_event)
    }

    /// Whether an incident is open.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// Feeds the score of a series' point `age` (0 for its first; `None` while detectors warm
    /// up); returns the event to emit, if any. `young_exempt`: the point is exempt from the
    /// young series' higher bar (see [`AlertConfig::young_points`]), so `warning` opens an
    /// incident whatever its age.
    pub fn step(
        &mut self,
        config: &AlertConfig,
        age: u64,
        timestamp: TimestampMs,
        score: Option<f64>,
        young_exempt: bool,
    ) -> Option<Alert> {
        let score = score.unwrap_or(0.0);
        let bar = if young_exempt {
            config.warning
        } else {
            config.warning_at(age)
        };
        match &mut self.phase {
            Phase::Idle { run, run_start } => {
                if score < bar {
                    *run = 0;
                    return None;
                }
                if *run == 0 {
                    *run_start = timestamp;
                }
                *run += 1;
                if *run < config.min_duration {
                    return None;
                }
                let onset = *run_start;
                let severity = config.severity(score);
                self.phase = Phase::Open {
                    severity,
                    onset,
                    calm: 0,
                    peak: score as f32,
                };
                let cooling = self
                    .announced()
                    .is_some_and(|last| timestamp.saturating_sub(last) < config.cooldown_ms);
                if cooling {
                    return None;
                }
                self.last_event = timestamp;
                Some(Alert {
                    severity,
                    onset,
                    escalation: false,
                })
            }
            Phase::Open {
                severity,
                onset,
                calm,
                peak,
            } => {
                if score < config.clear {
                    *calm += 1;
                    if *calm >= config.clear_after {
                        self.phase = Phase::Idle {
                            run: 0,
                            run_start: 0,
                        };
                    }
                    return None;
                }
                *calm = 0;
                let much_larger = config.reannounce > 0.0
                    && score >= config.warning
                    && score >= config.reannounce * f64::from(*peak);
                *peak = peak.max(score as f32);
                if much_larger {
                    *severity = (*severity).max(config.severity(score));
                    let (severity, onset) = (*severity, *onset);
                    self.last_event = timestamp;
                    return Some(Alert {
                        severity,
                        onset,
                        escalation: true,
                    });
                }
                if *severity == Severity::Warning && score >= config.critical {
                    *severity = Severity::Critical;
                    let onset = *onset;
                    self.last_event = timestamp;
                    return Some(Alert {
                        severity: Severity::Critical,
                        onset,
                        escalation: true,
                    });
                }
                None
            }
        }
    }

    /// Bytes held, for state accounting.
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

/// The alert state as chain snapshots of format 2 held it (no incident peak).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct AlertStateV2 {
    phase: PhaseV2,
    last_event: Option<TimestampMs>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum PhaseV2 {
    Idle {
        run: u32,
        run_start: TimestampMs,
    },
    Open {
        severity: Severity,
        onset: TimestampMs,
        calm: u32,
    },
}

impl From<AlertStateV2> for AlertState {
    /// An incident open in an old snapshot has no known peak: it is not announced again.
    fn from(old: AlertStateV2) -> AlertState {
        let phase = match old.phase {
            PhaseV2::Idle { run, run_start } => Phase::Idle { run, run_start },
            PhaseV2::Open {
                severity,
                onset,
                calm,
            } => Phase::Open {
                severity,
                onset,
                calm,
                peak: f32::INFINITY,
            },
        };
        AlertState {
            phase,
            last_event: old.last_event.unwrap_or(NEVER),
        }
    }
}

impl Default for AlertState {
    fn default() -> Self {
        AlertState::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs scores at timestamps 0, 1, 2, ... and lists (timestamp, severity, onset, escalation).
    fn run(config: &AlertConfig, scores: &[f64]) -> Vec<(i64, Severity, i64, bool)> {
        let mut state = AlertState::new();
        scores
            .iter()
            .enumerate()
            .filter_map(|(t, &s)| {
                state
                    .step(config, t as u64, t as i64, Some(s), false)
                    .map(|a| (t as i64, a.severity, a.onset, a.escalation))
            })
            .collect()
    }

    const W: Severity = Severity::Warning;
    const C: Severity = Severity::Critical;

    #[test]
    fn a_young_series_needs_more_to_open_an_incident() {
        let config = AlertConfig {
            warning: 2.0,
            critical: 8.0,
            clear: 1.0,
            clear_after: 1,
            young_points: 100,
            young_warning: 4.0,
            ..AlertConfig::default()
        };
        assert_eq!(config.warning_at(0), 4.0);
        assert_eq!(config.warning_at(50), 3.0);
        assert_eq!(config.warning_at(100), 2.0);
        assert_eq!(config.warning_at(u64::MAX), 2.0);
        // A 3.5 at point 10 (level 3.8) is not enough; at point 60 (level 2.8) it opens an
        // incident; a 2.3 is not enough at point 80 (level 2.4) and opens one at point 150.
        let mut scores = vec![0.0; 200];
        scores[10] = 3.5;
        scores[60] = 3.5;
        scores[80] = 2.3;
        scores[150] = 2.3;
        let events: Vec<_> = run(&config, &scores).iter().map(|e| e.0).collect();
        assert_eq!(events, [60, 150]);
        // An exempt point at 10 is not held back: a 3.5 opens an incident there, and a score
        // under `warning` does not, exempt or not.
        let mut state = AlertState::new();
        assert!(state.step(&config, 10, 10, Some(3.5), true).is_some());
        let mut state = AlertState::new();
        assert!(state.step(&config, 10, 10, Some(1.5), true).is_none());
        // Off by default: the same scores open an incident each.
        let off = AlertConfig {
            young_points: 0,
            ..config
        };
        assert_eq!(run(&off, &scores).len(), 4);
        let inverted = AlertConfig {
            young_warning: 1.0,
            ..config
        };
        assert!(
            inverted
                .validate()
                .unwrap_err()
                .to_string()
                .contains("young_warning")
        );
        assert!(config.validate().is_ok() && off.validate().is_ok());
    }

    #[test]
    fn one_incident_gives_one_event() {
        let config = AlertConfig::default();
        let scores = [0.0, 6.0, 6.0, 7.0, 6.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(run(&config, &scores), [(1, W, 1, false)]);
    }

    #[test]
    fn a_much_larger_spike_inside_an_open_incident_is_announced() {
        // Issue 17: a small incident (score 5.5) was open when a 50σ spike came; it was swallowed.
        let config = AlertConfig {
            critical: 100.0,
            ..AlertConfig::default()
        };
        let scores = [0.0, 5.5, 4.0, 5.0, 50.0, 6.0, 60.0, 0.0];
        assert_eq!(run(&config, &scores), [(1, W, 1, false), (4, W, 1, true)]);
        // At the critical level it escalates as well, once per threefold rise over the peak so
        // far (30 here, so 95 is news).
        let config = AlertConfig::default();
        let scores = [0.0, 5.5, 20.0, 30.0, 95.0];
        assert_eq!(
            run(&config, &scores),
            [(1, W, 1, false), (2, C, 1, true), (4, C, 1, true)]
        );
        // Off: only the usual escalation.
        let off = AlertConfig {
            reannounce: 0.0,
            ..AlertConfig::default()
        };
        assert_eq!(run(&off, &scores), [(1, W, 1, false), (2, C, 1, true)]);
        assert!(
            AlertConfig {
                reannounce: 0.5,
                ..AlertConfig::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            AlertConfig {
                reannounce: f64::NAN,
                ..AlertConfig::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn escalation_is_announced_once() {
        let config = AlertConfig::default();
        let scores = [0.0, 6.0, 9.0, 9.0, 6.0, 9.0];
        assert_eq!(run(&config, &scores), [(1, W, 1, false), (2, C, 1, true)]);
    }

    #[test]
    fn hysteresis_keeps_a_wobbling_score_in_one_incident() {
        let config = AlertConfig {
            clear_after: 5,
            ..AlertConfig::default()
        };
        // Dips below warning (5) but not below clear (3), or not for clear_after (5) points.
        let scores = [
            6.0, 4.0, 6.0, 2.0, 2.0, 2.0, 6.0, 4.0, 2.0, 2.0, 2.0, 2.0, 2.0, 6.0,
        ];
        assert_eq!(
            run(&config, &scores),
            [(0, W, 0, false), (13, W, 13, false)]
        );
    }

    #[test]
    fn min_duration_ignores_short_blips_and_reports_onset() {
        let config = AlertConfig {
            min_duration: 3,
            ..AlertConfig::default()
        };
        let scores = [6.0, 6.0, 0.0, 6.0, 6.0, 9.0, 0.0];
        assert_eq!(run(&config, &scores), [(5, C, 3, false)]);
    }

    #[test]
    fn cooldown_suppresses_a_quick_second_incident() {
        let config = AlertConfig {
            clear_after: 1,
            cooldown_ms: 5,
            ..AlertConfig::default()
        };
        let scores = [6.0, 0.0, 6.0, 0.0, 0.0, 0.0, 0.0, 0.0, 6.0, 0.0, 9.0];
        // t=2 opens within 5 ms of t=0: silent. t=8 is past the cooldown. t=10 critical is not an
        // escalation (the t=8 incident closed at t=9) but a new incident inside the cooldown.
        assert_eq!(run(&config, &scores), [(0, W, 0, false), (8, W, 8, false)]);
    }

    #[test]
    fn warming_up_counts_as_calm() {
        let config = AlertConfig {
            clear_after: 2,
            ..AlertConfig::default()
        };
        let mut state = AlertState::new();
        assert!(state.step(&config, 0, 0, Some(9.0), false).is_some());
        state.step(&config, 1, 1, None, false);
        state.step(&config, 2, 2, None, false);
        assert!(!state.is_open());
    }

    #[test]
    fn thresholds_must_be_ordered() {
        assert!(
            AlertConfig {
                clear: 6.0,
                ..AlertConfig::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            AlertConfig {
                critical: 4.0,
                ..AlertConfig::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            AlertConfig {
                min_duration: 0,
                ..AlertConfig::default()
            }
            .validate()
            .is_err()
        );
        assert!(AlertConfig::default().validate().is_ok());
    }
}
