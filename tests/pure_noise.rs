//! The default template on pure noise (issue 17): stationary Gaussian series must stay quiet
//! once they are past their first points, and stay fairly quiet before. The noise and the
//! counting are `aiops_evaluation::multi::noise`; `examples/noise_rate.rs` prints the same
//! figures for other templates and seeds.

use aiops_evaluation::multi::noise::{NoiseSpec, noise_rate};
use aiops_operators::{Registry, Template};

#[test]
fn the_default_template_raises_at_most_one_event_per_10000_points_of_pure_noise() {
    // 200 series of N(100, 5), 1,300 points each (a point a minute: about 22 hours), the first
    // 300 counted apart.
    let spec = NoiseSpec::default();
    let rate = noise_rate(&Template::default(), &Registry::builtin(), &spec).unwrap();
    println!(
        "default template on pure noise: {:.3} events per 1,000 points in the first {}, {:.3} after ({rate:?})",
        rate.young_per_thousand(),
        spec.warmup,
        rate.per_thousand_after()
    );
    assert_eq!(rate.points_after, 200_000);
    assert!(
        rate.per_thousand_after() <= 0.1,
        "{:.3} events per 1,000 points after the warm-up",
        rate.per_thousand_after()
    );
    // The young phase is held too, less tightly: the range watches from the 21st point and has
    // only those to know the noise by. (The template before issue 17's noise floors raised 8.2
    // per 1,000 there, and 2.9 after.)
    assert!(
        rate.young_per_thousand() <= 1.5,
        "{:.3} events per 1,000 points in the first {}",
        rate.young_per_thousand(),
        spec.warmup
    );
}

/// The other half of staying quiet: a spike far larger than what opened an incident is still
/// announced, not swallowed by the incident (an outside run saw a 50σ spike swallowed by an
/// open noise incident under an earlier default). Fails with the alert policy's `reannounce`
/// turned off (checked).
#[test]
fn a_huge_spike_inside_an_open_incident_is_announced_under_the_default_template() {
    use aiops_schemas::{Labels, Limits, MetricPoint, Series};
    use std::sync::Arc;

    let template = Template::default();
    let registry = Registry::builtin();
    let series = Arc::new(
        Series::new(
            "noise",
            "value",
            Labels::from_pairs([("s", "spike")]).unwrap(),
            &Limits::default(),
        )
        .unwrap(),
    );
    let mut chain = aiops_operators::SeriesChain::new(&template, &registry).unwrap();
    let noise = aiops_evaluation::multi::noise::noise_series(&NoiseSpec::default(), 7).values;
    let mut events = Vec::new();
    for (i, value) in noise.iter().enumerate().take(700) {
        // A level shift of 8 sigma from point 600 opens an incident; 20 points in, while it is
        // still open, one point 50 sigma above the level.
        let value = match i {
            620 => 100.0 + 50.0 * 5.0,
            600..=659 => value + 8.0 * 5.0,
            _ => *value,
        };
        let point = MetricPoint {
            series: series.clone(),
            timestamp: 1_700_000_000_000 + i as i64 * 60_000,
            value,
        };
        if let Some(event) = chain.step(&template, &point).and_then(|s| s.event) {
            events.push((i, event.escalation));
        }
    }
    assert!(
        events.iter().any(|(i, _)| (600..620).contains(i)),
        "the shift opens an incident: {events:?}"
    );
    assert!(
        events.iter().any(|&(i, escalation)| i == 620 && escalation),
        "the spike inside it is announced as an escalation: {events:?}"
    );
}
