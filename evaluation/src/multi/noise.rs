//! Pure noise: how often a template raises an event on series with nothing to find —
//! stationary Gaussian series around a level, events counted in each series' first points and
//! after them. Issue 17's target for the default template is at most 0.1 events per 1,000
//! points after 300 points; `examples/noise_rate.rs` prints the figures for any template and
//! `tests/pure_noise.rs` holds the default to the target.

use aiops_operators::{Registry, Template};

use super::labelled::LabelledSeries;
use super::score_series;
use super::young::Draw;
use crate::error::Result;

/// The series to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseSpec {
    /// Number of series.
    pub series: usize,
    /// Points per series, one a minute.
    pub points: usize,
    /// Points at the start of each series counted apart, as its young phase.
    pub warmup: usize,
    /// The level the noise is around.
    pub level: f64,
    /// The noise's standard deviation.
    pub sigma: f64,
    /// Seed of the draws: the same seed gives the same series.
    pub seed: u64,
}

impl Default for NoiseSpec {
    fn default() -> Self {
        NoiseSpec {
            series: 200,
            points: 1_300,
            warmup: 300,
            level: 100.0,
            sigma: 5.0,
            seed: 1,
        }
    }
}

/// Events a template raised on the noise, before and after the warm-up.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NoiseRate {
    /// Events in the first `warmup` points of the series.
    pub young_events: u64,
    /// Events after them.
    pub events_after: u64,
    /// Points in the first `warmup` of the series.
    pub young_points: u64,
    /// Points after them.
    pub points_after: u64,
}

impl NoiseRate {
    /// Events per 1,000 points in the young phase.
    pub fn young_per_thousand(&self) -> f64 {
        per_thousand(self.young_events, self.young_points)
    }

    /// Events per 1,000 points after the warm-up.
    pub fn per_thousand_after(&self) -> f64 {
        per_thousand(self.events_after, self.points_after)
    }
}

fn per_thousand(events: u64, points: u64) -> f64 {
    if points == 0 {
        0.0
    } else {
        events as f64 * 1000.0 / points as f64
    }
}

/// Series `index` of the noise `spec` describes (unlabelled: nothing in it is an anomaly).
pub fn noise_series(spec: &NoiseSpec, index: usize) -> LabelledSeries {
    // One stream per series, far apart, so series do not share draws.
    let mut draw = Draw(spec.seed ^ (index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    LabelledSeries {
        name: format!("noise-{index}"),
        timestamps: (0..spec.points)
            .map(|i| 1_700_000_000_000 + i as i64 * 60_000)
            .collect(),
        values: (0..spec.points)
            .map(|_| spec.level + spec.sigma * draw.gaussian())
            .collect(),
        labels: vec![false; spec.points],
    }
}

/// Runs `template` over every series of the noise `spec` describes, each in a chain of its own.
pub fn noise_rate(template: &Template, registry: &Registry, spec: &NoiseSpec) -> Result<NoiseRate> {
    let mut rate = NoiseRate::default();
    for index in 0..spec.series {
        let series = noise_series(spec, index);
        let (_, events, _) = score_series(template, registry, "noise", &series)?;
        let young = events.iter().filter(|&&i| i < spec.warmup).count() as u64;
        rate.young_events += young;
        rate.events_after += events.len() as u64 - young;
        let young_points = spec.warmup.min(spec.points) as u64;
        rate.young_points += young_points;
        rate.points_after += spec.points as u64 - young_points;
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_counted_per_phase_and_the_same_seed_gives_the_same_figures() {
        let spec = NoiseSpec {
            series: 4,
            points: 400,
            warmup: 100,
            ..NoiseSpec::default()
        };
        // Alerting at one sigma: plenty of events on noise, in both phases.
        let mut eager = Template::light();
        eager.alert.warning = 1.0;
        eager.alert.critical = 2.0;
        eager.alert.clear = 0.5;
        eager.alert.clear_after = 1;
        let registry = Registry::builtin();
        let rate = noise_rate(&eager, &registry, &spec).unwrap();
        assert_eq!((rate.young_points, rate.points_after), (400, 1200));
        assert!(rate.young_events > 0 && rate.events_after > 0, "{rate:?}");
        let quiet = noise_rate(&Template::light(), &registry, &spec).unwrap();
        assert!(quiet.per_thousand_after() < rate.per_thousand_after());
        assert_eq!(noise_rate(&eager, &registry, &spec).unwrap(), rate);
        let other = NoiseSpec { seed: 2, ..spec };
        assert_ne!(
            noise_series(&other, 0).values,
            noise_series(&spec, 0).values
        );
    }

    #[test]
    fn the_noise_has_the_level_and_spread_asked_for() {
        let spec = NoiseSpec {
            points: 20_000,
            ..NoiseSpec::default()
        };
        let values = noise_series(&spec, 3).values;
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        assert!((mean - 100.0).abs() < 0.2, "{mean}");
        assert!((var.sqrt() - 5.0).abs() < 0.2, "{}", var.sqrt());
    }
}
