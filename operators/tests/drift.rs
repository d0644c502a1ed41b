//! Property tests of the drift tests' state: any stream, however wild, leaves them consistent.

use aiops_operators::drift::{
    Adwin, AdwinConfig, DriftConfig, PageHinkley, PageHinkleyConfig, StreamDrift,
    WindowTestsConfig, kolmogorov_smirnov, population_stability_index, wasserstein,
};
use proptest::prelude::*;

fn values() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![
            8 => -1e6f64..1e6,
            1 => Just(0.0),
            1 => prop::num::f64::ANY,
        ],
        0..600,
    )
}

fn small_windows() -> DriftConfig {
    DriftConfig {
        windows: WindowTestsConfig {
            reference: 40,
            live: 20,
            stride: 3,
            persistence: 1,
            ..WindowTestsConfig::default()
        },
        ..DriftConfig::default()
    }
}

proptest! {
    #[test]
    fn stream_drift_alarms_are_finite_and_above_threshold(values in values()) {
        let mut monitor = StreamDrift::new(small_windows()).unwrap();
        for (t, x) in values.iter().enumerate() {
            for alarm in monitor.update(t as i64, *x) {
                prop_assert!(alarm.statistic.is_finite() && alarm.threshold.is_finite());
                prop_assert!(alarm.statistic > alarm.threshold, "{alarm:?}");
                prop_assert!(alarm.reference.start <= alarm.reference.end);
                prop_assert!(alarm.live.start <= alarm.live.end && alarm.live.end == t as i64);
            }
        }
    }

    #[test]
    fn snapshot_then_restore_gives_the_same_alarms(values in values(), split in 0usize..600) {
        let split = split.min(values.len());
        let mut monitor = StreamDrift::new(small_windows()).unwrap();
        for (t, x) in values[..split].iter().enumerate() {
            monitor.update(t as i64, *x);
        }
        let bytes = postcard::to_allocvec(&monitor).unwrap();
        let mut restored: StreamDrift = postcard::from_bytes(&bytes).unwrap();
        for (t, x) in values.iter().enumerate().skip(split) {
            let a = monitor.update(t as i64, *x);
            let b = restored.update(t as i64, *x);
            prop_assert_eq!(a.len(), b.len());
            for (a, b) in a.iter().zip(&b) {
                prop_assert_eq!(a.test, b.test);
                prop_assert_eq!(a.statistic.to_bits(), b.statistic.to_bits());
            }
        }
    }

    #[test]
    fn adwin_never_holds_more_than_it_was_given(values in values()) {
        let mut adwin = Adwin::new(AdwinConfig { clock: 1, ..AdwinConfig::default() }).unwrap();
        let finite = values.iter().filter(|x| x.is_finite()).count() as u64;
        let mut dropped = 0;
        for x in &values {
            if let Some(cut) = adwin.update(*x) {
                prop_assert!(cut.difference > cut.threshold);
                dropped += cut.dropped;
            }
        }
        prop_assert_eq!(adwin.width() + dropped, finite);
        prop_assert!(adwin.mean().is_finite());
    }

    #[test]
    fn page_hinkley_alarms_exceed_their_threshold(values in values()) {
        let mut test = PageHinkley::new(PageHinkleyConfig::default()).unwrap();
        for x in &values {
            if let Some(alarm) = test.update(*x) {
                prop_assert!(alarm.statistic > alarm.threshold);
            }
        }
    }

    #[test]
    fn distances_are_symmetric_where_they_should_be(
        mut a in prop::collection::vec(-1e3f64..1e3, 1..100),
        mut b in prop::collection::vec(-1e3f64..1e3, 1..100),
    ) {
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let ks = kolmogorov_smirnov(&a, &b);
        prop_assert!((0.0..=1.0).contains(&ks));
        prop_assert!((ks - kolmogorov_smirnov(&b, &a)).abs() < 1e-12);
        let w = wasserstein(&a, &b);
        prop_assert!(w >= 0.0 && (w - wasserstein(&b, &a)).abs() <= 1e-9 * (1.0 + w));
        prop_assert!(population_stability_index(&a, &b, 10) >= 0.0);
    }
}
