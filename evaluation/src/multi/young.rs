//! A generated corpus of young operational series: what a service deployed yesterday looks
//! like. Each series is 50–1,000 points long (minutely or hourly), one of four shapes seen in
//! operations — a latency with a daily cycle, counts near zero, a bounded utilisation, traffic
//! with a strong daily cycle — and carries several labelled incidents from the first tens of
//! points on: spikes, drops and outages, a step after a deployment, bursts of variance or of
//! counts. About 2–3 % of the points are labelled. Deterministic for a seed.
//!
//! The generator also knows what it drew each healthy point from, which no detector does:
//! [`generate_with_ceiling`] gives every point's tail probability under that law and
//! [`ceiling_scores`] turns them into scores. Scored like any entry (`aiops eval --entries
//! ceiling`), that is what a detector reaches that knows normal exactly and judges each point
//! (or the last few) by how unlikely it is. It is a yardstick, not a bound: a detector that
//! also knew the incidents' shapes (that outages are runs of zeros, that spikes go up) could
//! catch some of what it misses.

use aiops_operators::calibration::{fisher_tail, sigma_of_tail, tail_of_sigma};

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

/// What a healthy point is drawn from, as the generator knows it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Healthy {
    /// Gaussian, clamped.
    Gaussian(Clamped),
    /// A Poisson count of `mean`, moved by `shift` and floored at `floor`: each step after a
    /// deployment adds to the count and the generator floors the result at 0, so after a step
    /// down and one up the series can sit on a floor above 0.
    Poisson { mean: f64, shift: f64, floor: f64 },
}

/// A Gaussian around `mean` clamped to [`low`, `high`] (a latency's floor, a utilisation's 0
/// and 100 %).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Clamped {
    mean: f64,
    sd: f64,
    low: f64,
    high: f64,
}

impl Healthy {
    fn gaussian(mean: f64, sd: f64, low: f64, high: f64) -> Healthy {
        Healthy::Gaussian(Clamped {
            mean,
            sd,
            low,
            high,
        })
    }

    /// The same law after a step of `by`, the result clamped to [0, `most`] as the generator
    /// clamps it.
    fn shifted(self, by: f64, most: f64) -> Healthy {
        match self {
            Healthy::Gaussian(g) => Healthy::Gaussian(Clamped {
                mean: g.mean + by,
                low: (g.low + by).clamp(0.0, most),
                high: (g.high + by).clamp(0.0, most),
                ..g
            }),
            Healthy::Poisson { mean, shift, floor } => Healthy::Poisson {
                mean,
                shift: shift + by,
                floor: (floor + by).max(0.0),
            },
        }
    }

    /// `x`'s two-sided tail probability under this law (0: the law never gives `x`). A value
    /// at a clamp is as surprising as reaching the clamp.
    fn tail(self, x: f64) -> f64 {
        match self {
            Healthy::Gaussian(g) if g.sd > 0.0 => {
                let reached = if x >= g.high {
                    g.high.max(g.mean)
                } else if x <= g.low {
                    g.low.min(g.mean)
                } else {
                    x
                };
                tail_of_sigma((reached - g.mean).abs() / g.sd)
            }
            // Every shape has noise; a law without spread would make each value certain or
            // impossible, and says nothing here.
            Healthy::Gaussian(_) => 1.0,
            Healthy::Poisson { floor, .. } if x < floor => 0.0,
            Healthy::Poisson { mean, shift, floor } if x == floor => {
                // Every count that would land below the floor is put on it: the count was at
                // most floor − shift.
                let most = floor - shift;
                if most < 0.0 {
                    0.0
                } else {
                    let most = (most + 1e-9).floor().min(1e6) as u64;
                    (2.0 * poisson_tails(mean, most).0).min(1.0)
                }
            }
            Healthy::Poisson { mean, shift, .. } => {
                let count = x - shift;
                if count < -0.5 {
                    return 0.0;
                }
                let (at_most, at_least) = poisson_tails(mean, count.round().min(1e6) as u64);
                (2.0 * at_most.min(at_least)).min(1.0)
            }
        }
    }
}

/// `P(X ≤ k)` and `P(X ≥ k)` for a Poisson `X` of `mean`, in (0, 700] (beyond, `e^−mean`
/// underflows; the young counts' means stay below 10). The upper tail is summed from `k` up
/// rather than taken as a complement, so that it keeps its digits far out in the tail.
fn poisson_tails(mean: f64, k: u64) -> (f64, f64) {
    let log_factorial: f64 = (2..=k).map(|i| (i as f64).ln()).sum();
    let at_k = (k as f64 * mean.ln() - mean - log_factorial).exp();
    let mut at_least = 0.0;
    let (mut term, mut j) = (at_k, k);
    while term > 0.0 && term >= at_k * 1e-17 {
        at_least += term;
        j += 1;
        term *= mean / j as f64;
    }
    let mut at_most = 0.0;
    let mut term = (-mean).exp();
    for j in 0..=k {
        if j > 0 {
            term *= mean / j as f64;
        }
        at_most += term;
    }
    (at_most.min(1.0), at_least.min(1.0))
}

/// The most points [`ceiling_scores`] pools: the cost grows with its square, and past a few
/// points pooling only spreads an incident's evidence onto the points after it.
pub const MAX_POOL: usize = 20;

/// The ceiling's scores from a series' tail probabilities ([`generate_with_ceiling`]): at each
/// point the strongest evidence of the last 1 to `pool` points (1 to [`MAX_POOL`]) taken
/// together by Fisher's method, as a sigma-equivalent. Pooling sees what no single point
/// shows, such as a run of zeros on a series that is often zero, at the price of more noise
/// scoring high.
pub fn ceiling_scores(tails: &[f64], pool: usize) -> Vec<f64> {
    let logs: Vec<f64> = tails.iter().map(|p| p.max(1e-300).ln()).collect();
    let pool = pool.clamp(1, MAX_POOL);
    (0..logs.len())
        .map(|t| {
            let mut evidence = 0.0;
            let mut strongest: f64 = 0.0;
            for k in 1..=pool.min(t + 1) {
                evidence -= 2.0 * logs[t + 1 - k];
                // k ≤ MAX_POOL: the cast is exact.
                strongest = strongest.max(sigma_of_tail(fisher_tail(evidence, k as u32)));
            }
            strongest
        })
        .collect()
}

/// `count` young series, deterministic for `seed`.
pub fn generate(count: usize, seed: u64) -> LabelledCorpus {
    generate_with_ceiling(count, seed).0
}

/// [`generate`]'s corpus and, per series and point, the two-sided tail probability of the
/// value under the law the generator drew the healthy point from (its level, daily cycle and
/// noise; for utilisation also the noise carried over from the point before; a step once its
/// labelled points are over). No detector knows more about what is normal here.
pub fn generate_with_ceiling(count: usize, seed: u64) -> (LabelledCorpus, Vec<Vec<f64>>) {
    let (series, ceiling) = (0..count)
        .map(|i| one(i, seed ^ (i as u64).wrapping_mul(0xd1b5_4a32_d192_ed03)))
        .unzip();
    let corpus = LabelledCorpus {
        name: "young".to_owned(),
        series,
        nab_root: None,
    };
    (corpus, ceiling)
}

fn one(index: usize, seed: u64) -> (LabelledSeries, Vec<f64>) {
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
    // The largest value the shape can take after a step.
    let most = if shape == Shape::Utilisation {
        100.0
    } else {
        f64::INFINITY
    };
    let mut healthy = Vec::with_capacity(length);
    let mut values: Vec<f64> = (0..length)
        .map(|t| {
            let season = (std::f64::consts::TAU * t as f64 / period + phase).sin();
            match shape {
                Shape::Latency => {
                    let mean = level + cycle * season;
                    healthy.push(Healthy::gaussian(mean, noise, 0.1, f64::INFINITY));
                    (mean + noise * draw.gaussian()).max(0.1)
                }
                Shape::Counts => {
                    let mean = level * (1.0 + cycle * season).max(0.05);
                    healthy.push(Healthy::Poisson {
                        mean,
                        shift: 0.0,
                        floor: 0.0,
                    });
                    draw.poisson(mean)
                }
                Shape::Utilisation => {
                    // What carries over from the point before is known; only the new draw
                    // is noise.
                    let mean = level + cycle * season + 0.7 * ar;
                    healthy.push(Healthy::gaussian(mean, noise, 0.0, 100.0));
                    ar = 0.7 * ar + noise * draw.gaussian();
                    (level + cycle * season + ar).clamp(0.0, 100.0)
                }
                Shape::Traffic => {
                    let mean = level + cycle * season;
                    let sd = mean.abs() * noise / level;
                    healthy.push(Healthy::gaussian(
                        mean,
                        sd,
                        f64::NEG_INFINITY,
                        f64::INFINITY,
                    ));
                    mean * (1.0 + noise / level * draw.gaussian())
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
                    .for_each(|v| *v = (*v + step).max(0.0));
                // Once the step's labelled points are over it is the new normal.
                healthy[end..]
                    .iter_mut()
                    .for_each(|h| *h = h.shifted(step, most));
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
    let ceiling = healthy
        .iter()
        .zip(&values)
        .map(|(h, &x)| h.tail(x))
        .collect();
    let series = LabelledSeries {
        name: format!("young-{index:03}-{}", format!("{shape:?}").to_lowercase()),
        timestamps: (0..length as i64).map(|t| start + t * step_ms).collect(),
        values,
        labels,
    };
    (series, ceiling)
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

    #[test]
    fn healthy_points_are_as_surprising_as_the_law_they_were_drawn_from_says() {
        // On every unlabelled point (right after an incident too: a step is the new normal
        // from the point after its labelled ones) the tail probability falls below α about as
        // often as α: 0.27 % below a 3σ tail (the discrete counts and the clamps make it
        // rarer, never likelier), none below 6σ. A law that forgot the utilisation's carried
        // noise or the clamps at 0 and 100 % put about 2 % beyond 5σ; one that moved a step's
        // law a point late would put that point beyond 6σ.
        let (corpus, tails) = generate_with_ceiling(200, 17);
        let (mut points, mut beyond_3, mut beyond_6) = (0usize, 0usize, 0usize);
        for (series, tails) in corpus.series.iter().zip(&tails) {
            assert_eq!(tails.len(), series.len());
            for (&p, _) in tails.iter().zip(&series.labels).filter(|(_, l)| !**l) {
                assert!((0.0..=1.0).contains(&p), "{p}");
                points += 1;
                beyond_3 += usize::from(p < tail_of_sigma(3.0));
                beyond_6 += usize::from(p < tail_of_sigma(6.0));
            }
        }
        let share = beyond_3 as f64 / points as f64;
        assert!((0.001..0.005).contains(&share), "{share} of {points}");
        assert_eq!(beyond_6, 0);
        // And the incidents are mostly far out: most have a point beyond 6σ.
        let (mut incidents, mut visible) = (0, 0);
        for (series, tails) in corpus.series.iter().zip(&tails) {
            for t in 0..series.len() {
                if series.labels[t] && (t == 0 || !series.labels[t - 1]) {
                    let end = (t..series.len())
                        .find(|&e| !series.labels[e])
                        .unwrap_or(series.len());
                    incidents += 1;
                    visible += usize::from(tails[t..end].iter().any(|&p| p < tail_of_sigma(6.0)));
                }
            }
        }
        assert!(visible * 10 > incidents * 7, "{visible} of {incidents}");
    }

    #[test]
    fn poisson_tails_add_up_and_reach_far() {
        for mean in [0.2, 2.0, 9.5] {
            for k in 0..30u64 {
                let (at_most, at_least) = poisson_tails(mean, k);
                let mass = (k as f64 * f64::ln(mean)
                    - mean
                    - (2..=k).map(|i| (i as f64).ln()).sum::<f64>())
                .exp();
                // P(X ≤ k) + P(X ≥ k) counts P(X = k) twice.
                assert!(
                    (at_most + at_least - 1.0 - mass).abs() < 1e-9,
                    "{mean} {k}: {at_most} {at_least}"
                );
            }
        }
        assert!((poisson_tails(2.0, 0).0 - (-2.0f64).exp()).abs() < 1e-15);
        // 40 events at a mean of 1: about 4.6e-49, which a complement would round to 0.
        let far = poisson_tails(1.0, 40).1;
        assert!(far > 1e-49 && far < 1e-47, "{far}");
    }

    #[test]
    fn counts_after_steps_keep_their_floor() {
        let count = Healthy::Poisson {
            mean: 2.0,
            shift: 0.0,
            floor: 0.0,
        };
        // A zero: the lower tail, P(X = 0) = e^−2, doubled.
        assert!((count.tail(0.0) - 2.0 * (-2.0f64).exp()).abs() < 1e-15);
        // Up by 15: a value below 15 is one no draw gives.
        let up = count.shifted(15.0, f64::INFINITY);
        assert_eq!(up.tail(0.0), 0.0);
        assert_eq!(up.tail(3.0), 0.0);
        assert!(up.tail(17.0) > 0.5);
        // Down by 2.6 (floored at 0): a 0 means a count of at most 2, not 3.
        let down = count.shifted(-2.6, f64::INFINITY);
        let (at_most_2, _) = poisson_tails(2.0, 2);
        assert!((down.tail(0.0) - (2.0 * at_most_2).min(1.0)).abs() < 1e-15);
        // Then up by 4: the series sits on a floor of 4 (a count of at most 2) and never
        // below it.
        let both = down.shifted(4.0, f64::INFINITY);
        assert_eq!(both.tail(4.0), down.tail(0.0));
        assert_eq!(both.tail(3.9), 0.0);
        assert!((both.tail(4.4) - count.tail(3.0)).abs() < 1e-15);
    }

    #[test]
    fn a_clamped_gaussian_is_as_surprising_at_its_clamp_as_reaching_it() {
        let utilisation = Healthy::gaussian(95.0, 2.0, 0.0, 100.0);
        assert!((utilisation.tail(100.0) - tail_of_sigma(2.5)).abs() < 1e-12);
        let pinned = utilisation.shifted(20.0, 100.0);
        assert_eq!(pinned.tail(100.0), 1.0);
    }

    #[test]
    fn pooling_takes_the_strongest_run_of_evidence() {
        let tails = [0.5, 0.01, 0.01, 0.01, 0.9];
        let alone = ceiling_scores(&tails, 1);
        for (score, p) in alone.iter().zip(tails) {
            assert!((score - sigma_of_tail(p)).abs() < 1e-12);
        }
        let pooled = ceiling_scores(&tails, 3);
        // Three points at 1 % each: Fisher's χ² with 6 degrees of freedom (27.6, a tail of
        // 1.1e-4), 3.87σ, more than any one of them (2.58σ).
        assert!(pooled[3] > alone[3] + 0.5, "{pooled:?}");
        assert!(pooled.iter().zip(&alone).all(|(p, a)| p >= a));
        assert!((pooled[3] - 3.87).abs() < 0.01, "{}", pooled[3]);
        // With 2 degrees of freedom the χ² tail is the product itself; with 2k it is the
        // closed form, here against a sum of its terms done by hand (x = 30, k = 4).
        assert!((fisher_tail(-2.0 * 0.01f64.ln(), 1) - 0.01).abs() < 1e-15);
        let by_hand = (-15.0f64).exp() * (1.0 + 15.0 + 112.5 + 562.5);
        assert!((fisher_tail(30.0, 4) / by_hand - 1.0).abs() < 1e-12);
        // Far out the tail underflows, and scores the most a sigma-equivalent gives.
        let far = ceiling_scores(&[1e-300; 5], 5);
        assert_eq!(far[4], sigma_of_tail(0.0));
        // Pooling stops at MAX_POOL points.
        let long = vec![0.5; 100];
        assert_eq!(ceiling_scores(&long, 1000), ceiling_scores(&long, MAX_POOL));
    }

    #[test]
    fn the_corpus_is_the_one_every_published_figure_was_measured_on() {
        // A checksum of every value and label of the default corpus (seed 17, 200 series):
        // the F1 figures in docs/detection.md hold for exactly this corpus, and a change to
        // the generator's draws must be seen, not slip by.
        let corpus = generate(200, 17);
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for series in &corpus.series {
            for (value, label) in series.values.iter().zip(&series.labels) {
                for byte in value
                    .to_bits()
                    .to_le_bytes()
                    .into_iter()
                    .chain([u8::from(*label)])
                {
                    hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        assert_eq!(corpus.points(), 101_742);
        assert_eq!(hash, 1_921_904_041_835_618_045);
    }
}
