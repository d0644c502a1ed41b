//! Distances between two samples of a stream: the reference window a model was trained on and
//! the live window, compared by population stability index, Kolmogorov–Smirnov and Wasserstein.
//!
//! Every function takes both samples **sorted ascending** (the window tests keep them sorted
//! anyway) and ignores nothing: callers drop non-finite values before they get here.

/// Probability floor of an empty bin in the population stability index, so that a bin the live
/// window never visits counts as a large but finite difference instead of an infinite one.
const PSI_FLOOR: f64 = 1e-4;

/// Population stability index of `live` against `reference` over `bins` equal-frequency bins of
/// the reference: `Σ (live% − ref%) · ln(live% / ref%)`. 0 means the same spread over the bins;
/// the customary reading is < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift.
///
/// Bin edges are reference quantiles, so the statistic does not depend on the series' units.
/// Ties in the reference can merge edges; values equal to an edge fall in the upper bin.
pub fn population_stability_index(reference: &[f64], live: &[f64], bins: usize) -> f64 {
    if reference.is_empty() || live.is_empty() || bins < 2 {
        return 0.0;
    }
    let mut edges: Vec<f64> = (1..bins)
        .map(|i| reference[(i * reference.len() / bins).min(reference.len() - 1)])
        .collect();
    edges.dedup();
    let reference_shares = bin_shares(reference, &edges);
    let live_shares = bin_shares(live, &edges);
    reference_shares
        .iter()
        .zip(&live_shares)
        .map(|(&r, &l)| {
            let (r, l) = (r.max(PSI_FLOOR), l.max(PSI_FLOOR));
            (l - r) * (l / r).ln()
        })
        .sum()
}

/// Share of a sorted sample in each bin `(-∞, e0), [e0, e1), …, [e_last, ∞)`.
fn bin_shares(sorted: &[f64], edges: &[f64]) -> Vec<f64> {
    let n = sorted.len() as f64;
    let mut shares = Vec::with_capacity(edges.len() + 1);
    let mut below = 0;
    for &edge in edges {
        let upto = sorted.partition_point(|&x| x < edge);
        shares.push((upto - below) as f64 / n);
        below = upto;
    }
    shares.push((sorted.len() - below) as f64 / n);
    shares
}

/// Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two empirical
/// distribution functions, in [0, 1].
pub fn kolmogorov_smirnov(reference: &[f64], live: &[f64]) -> f64 {
    if reference.is_empty() || live.is_empty() {
        return 0.0;
    }
    let (n, m) = (reference.len(), live.len());
    let (mut i, mut j) = (0, 0);
    // |i/n − j/m| compared as |i·m − j·n| in integers: no division in the loop.
    let mut largest: u64 = 0;
    while i < n && j < m {
        // Step past every copy of the smaller value in both samples before comparing, so ties
        // do not open a gap that the distribution functions do not have.
        let x = reference[i].min(live[j]);
        while i < n && reference[i] <= x {
            i += 1;
        }
        while j < m && live[j] <= x {
            j += 1;
        }
        largest = largest.max((i as u64 * m as u64).abs_diff(j as u64 * n as u64));
    }
    largest as f64 / (n as f64 * m as f64)
}

/// The Kolmogorov–Smirnov statistic above which the two samples differ at significance
/// `alpha` (asymptotic two-sample critical value `c(α) · √((n + m) / (n·m))`).
///
/// The test assumes independent points; metrics are autocorrelated, which makes it fire more
/// often than `alpha` says. The window tests therefore also ask for persistence.
pub fn kolmogorov_smirnov_critical(alpha: f64, n: usize, m: usize) -> f64 {
    let (n, m) = (n.max(1) as f64, m.max(1) as f64);
    let c = (-(alpha / 2.0).ln() / 2.0).sqrt();
    c * ((n + m) / (n * m)).sqrt()
}

/// First Wasserstein (earth mover's) distance between the two empirical distributions, in the
/// samples' units: the area between their quantile functions.
pub fn wasserstein(reference: &[f64], live: &[f64]) -> f64 {
    if reference.is_empty() || live.is_empty() {
        return 0.0;
    }
    let (n, m) = (reference.len() as u64, live.len() as u64);
    // Walk both quantile functions together: each step advances to the next point where either
    // one jumps, and adds |difference| × the width of that probability interval. Positions are
    // counted in units of 1/(n·m), so the loop has no division; widths are scaled as they are
    // added so that huge values cannot overflow the sum where the distance itself does not.
    let unit = 1.0 / (n as f64 * m as f64);
    let (mut i, mut j) = (0u64, 0u64);
    let mut at = 0u64;
    let mut area = 0.0;
    while i < n && j < m {
        let next_reference = (i + 1) * m;
        let next_live = (j + 1) * n;
        let next = next_reference.min(next_live);
        area += (reference[i as usize] - live[j as usize]).abs() * ((next - at) as f64 * unit);
        at = next;
        if next_reference <= next {
            i += 1;
        }
        if next_live <= next {
            j += 1;
        }
    }
    area
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut values: Vec<f64>) -> Vec<f64> {
        values.sort_by(f64::total_cmp);
        values
    }

    #[test]
    fn identical_samples_are_at_distance_zero() {
        let a: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(kolmogorov_smirnov(&a, &a), 0.0);
        assert_eq!(wasserstein(&a, &a), 0.0);
        assert!(population_stability_index(&a, &a, 10).abs() < 1e-12);
    }

    #[test]
    fn wasserstein_of_a_shift_is_the_shift() {
        let a: Vec<f64> = (0..100).map(f64::from).collect();
        let b: Vec<f64> = a.iter().map(|x| x + 2.5).collect();
        assert!((wasserstein(&a, &b) - 2.5).abs() < 1e-9);
        // Unequal sizes: {0, 1} against {0, 0.5, 1, 1.5}: the quantile functions differ by 0.5
        // on (1/4, 1/2] and on (3/4, 1], and agree elsewhere: area 0.25.
        assert!((wasserstein(&[0.0, 1.0], &[0.0, 0.5, 1.0, 1.5]) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn kolmogorov_smirnov_by_hand() {
        // F_a jumps at 1, 2, 3, 4 (quarters); F_b at 3, 4, 5, 6. Largest gap at x in [2, 3): 0.5.
        assert!(
            (kolmogorov_smirnov(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]) - 0.5).abs() < 1e-12
        );
        // Disjoint samples: 1.
        assert_eq!(kolmogorov_smirnov(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        // Ties across samples do not open a gap.
        assert_eq!(
            kolmogorov_smirnov(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]),
            1.0 / 3.0
        );
    }

    #[test]
    fn kolmogorov_smirnov_critical_value_matches_tables() {
        // c(0.05) = 1.358; n = m = 100 gives 1.358 · √(2/100) = 0.1921.
        assert!((kolmogorov_smirnov_critical(0.05, 100, 100) - 0.1921).abs() < 1e-3);
    }

    #[test]
    fn psi_by_hand() {
        // Reference 0..10 in two bins (edge 5): 50 % / 50 %. Live all in the upper bin:
        // (0.0001 − 0.5)·ln(0.0001/0.5) + (1 − 0.5)·ln(1/0.5).
        let reference: Vec<f64> = (0..10).map(f64::from).collect();
        let live = vec![7.0; 10];
        let expected = (PSI_FLOOR - 0.5) * (PSI_FLOOR / 0.5).ln() + 0.5 * 2f64.ln();
        assert!((population_stability_index(&reference, &live, 2) - expected).abs() < 1e-12);
    }

    #[test]
    fn distances_grow_with_the_shift() {
        let base = sorted(
            (0..500)
                .map(|i| ((i * 7919) % 500) as f64 / 100.0)
                .collect(),
        );
        let mut last = [0.0; 3];
        for shift in [0.5, 1.0, 2.0] {
            let moved: Vec<f64> = base.iter().map(|x| x + shift).collect();
            let now = [
                population_stability_index(&base, &moved, 10),
                kolmogorov_smirnov(&base, &moved),
                wasserstein(&base, &moved),
            ];
            for (n, l) in now.iter().zip(&last) {
                assert!(n > l, "{now:?} after {last:?}");
            }
            last = now;
        }
    }

    #[test]
    fn empty_samples_are_not_a_drift() {
        assert_eq!(kolmogorov_smirnov(&[], &[1.0]), 0.0);
        assert_eq!(wasserstein(&[1.0], &[]), 0.0);
        assert_eq!(population_stability_index(&[], &[1.0], 10), 0.0);
    }
}
