//! A generated corpus of young operational series: what a service deployed yesterday looks
//! like. Each series is 50–1,000 points long (minutely or hourly), one of four shapes seen in
//! operations — a latency with a daily cycle, counts near zero, a bounded utilisation, traffic
//! with a strong daily cycle — and carries several labelled incidents from the first tens of
//! points on: spikes, drops and outages, a step after a deployment, bursts of variance or of
//! counts. About 2–3 % of the points are labelled. Deterministic for a seed.

use super::labelled::{LabelledCorpus, LabelledSeries};

/// SplitMix64 with Box-Muller: reproducible draws without a dependency.
pub(super) struct Draw(pub(super) u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
    fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n.saturating_sub(1))
    }
    pub(super) fn gaussian(&mut self) -> f64 {
        let u = self.unit().max(1e-300);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    /// Poisson by inversion (small means) or a rounded normal (large ones).
    fn poisson(&mut self, mean: f64) -> f64 {
        if mean > 30.0 {
            return (mean + mean.sqrt() * self.gaussian()).round().max(0.0);
        }
        let limit = (-mean).exp();
        let (mut k, mut product) = (0.0, self.unit());
        while product > limit {
            k += 1.0;
            product *= self.unit();
        }
        k
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Latency,
    Counts,
    Utilisation,
    Traffic,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Incident {
    Spike,
    Drop,
    Step,
    Burst,
}

/// `count` young series, deterministic for `seed`.
pub fn generate(count: usize, seed: u64) -> LabelledCorpus {
    let series = (0..count)
        .map(|i| one(i, seed ^ (i as u64).wrapping_mul(0xd1b5_4a32_d192_ed03)))
        .collect();
    LabelledCorpus {
        name: "young".to_owned(),
        series,
        nab_root: None,
    }
}

fn one(index: usize, seed: u64) -> LabelledSeries {
    let mut draw = Draw(seed);
    let shapes = [
        Shape::Latency,
        Shape::Counts,
        Shape::Utilisation,
        Shape::Traffic,
    ];
    let shape = shapes[index % shapes.len()];
    let length = 50 + draw.below(951);
    let hourly = draw.unit() < 0.3;
    let step_ms: i64 = if hourly { 3_600_000 } else { 60_000 };
    let period = if hourly { 24.0 } else { 1440.0 };
    let phase = draw.unit() * std::f64::consts::TAU;
    let start = 1_735_689_600_000 + (index as i64) * 86_400_000;

    // The healthy series: a level, a daily cycle, noise of the shape's kind.
    let (level, noise, cycle) = match shape {
        Shape::Latency => {
            let level = draw.between(20.0, 300.0);
            (
                level,
                level * draw.between(0.02, 0.1),
                draw.between(0.0, 0.15) * level,
            )
        }
        Shape::Counts => (draw.between(0.2, 4.0), 0.0, draw.between(0.0, 0.5)),
        Shape::Utilisation => (
            draw.between(15.0, 70.0),
            draw.between(1.0, 5.0),
            draw.between(0.0, 10.0),
        ),
        Shape::Traffic => {
            let level = draw.between(500.0, 5000.0);
            (
                level,
                level * draw.between(0.01, 0.05),
                level * draw.between(0.2, 0.5),
            )
        }
    };
    let mut ar = 0.0;
    let mut values: Vec<f64> = (0..length)
        .map(|t| {
            let season = (std::f64::consts::TAU * t as f64 / period + phase).sin();
            match shape {
                Shape::Latency => (level + cycle * season + noise * draw.gaussian()).max(0.1),
                Shape::Counts => draw.poisson(level * (1.0 + cycle * season).max(0.05)),
                Shape::Utilisation => {
                    ar = 0.7 * ar + noise * draw.gaussian();
                    (level + cycle * season + ar).clamp(0.0, 100.0)
                }
                Shape::Traffic => {
                    (level + cycle * season) * (1.0 + noise / level * draw.gaussian())
                }
            }
        })
        .collect();
    let spread = match shape {
        Shape::Counts => level.sqrt().max(0.5),
        _ => noise,
    };

    // Incidents: about one per 100–200 points, the first within the first 20–80 points.
    let mut labels = vec![false; length];
    let mut at = 20 + draw.below(60);
    while at + 5 < length {
        let kind = [
            Incident::Spike,
            Incident::Drop,
            Incident::Step,
            Incident::Burst,
        ][draw.below(4)];
        let span = match kind {
            Incident::Spike => 1 + draw.below(3),
            Incident::Drop => 3 + draw.below(8),
            Incident::Step => 5,
            Incident::Burst => 4 + draw.below(7),
        };
        let end = (at + span).min(length);
        let size = draw.between(6.0, 14.0) * spread;
        match (kind, shape) {
            (Incident::Spike, _) => values[at..end].iter_mut().for_each(|v| *v += size),
            (Incident::Drop, Shape::Counts | Shape::Traffic) => {
                // An outage: the series stops counting.
                values[at..end].iter_mut().for_each(|v| *v = 0.0)
            }
            (Incident::Drop, _) => values[at..end]
                .iter_mut()
                .for_each(|v| *v = (*v - size).max(0.0)),
            (Incident::Step, _) => {
                // A deployment that moved the level for good; its first points are the incident.
                let step = if draw.unit() < 0.7 {
                    size
                } else {
                    -size.min(level * 0.8)
                };
                values[at..]
                    .iter_mut()
                    .for_each(|v| *v = (*v + step).max(0.0))
            }
            (Incident::Burst, Shape::Counts) => {
                for v in &mut values[at..end] {
                    *v += draw.poisson(6.0 * level + 5.0);
                }
            }
            (Incident::Burst, _) => {
                for v in &mut values[at..end] {
                    *v = (*v + 5.0 * spread * draw.gaussian()).max(0.0);
                }
            }
        }
        if shape == Shape::Utilisation {
            values[at..]
                .iter_mut()
                .for_each(|v| *v = v.clamp(0.0, 100.0));
        }
        labels[at..end].iter_mut().for_each(|l| *l = true);
        at = end + 80 + draw.below(140);
    }
    LabelledSeries {
        name: format!("young-{index:03}-{}", format!("{shape:?}").to_lowercase()),
        timestamps: (0..length as i64).map(|t| start + t * step_ms).collect(),
        values,
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn young_series_are_short_labelled_early_and_reproducible() {
        let corpus = generate(40, 7);
        assert_eq!(corpus, generate(40, 7));
        assert_ne!(corpus, generate(40, 8));
        let (mut points, mut labelled) = (0, 0);
        for s in &corpus.series {
            assert!((50..=1000).contains(&s.len()), "{}", s.len());
            assert!(s.values.iter().all(|v| v.is_finite()));
            assert!(s.timestamps.windows(2).all(|w| w[0] < w[1]));
            let first = s.labels.iter().position(|&l| l).expect("an incident");
            assert!(first < 80, "{first}");
            points += s.len();
            labelled += s.labels.iter().filter(|&&l| l).count();
        }
        let share = labelled as f64 / points as f64;
        assert!((0.01..0.06).contains(&share), "{share}");
    }
}
