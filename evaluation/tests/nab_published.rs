//! The scorer against NAB's own published scores. Needs the NAB corpus with its published
//! result files, which a fresh clone does not have, so the test is opt-in:
//! `AIOPS_NAB_DIR=../shared/data/nab cargo test -p aiops-evaluation -- --ignored`
//! (`scripts/test` runs it whenever the corpus is there).

use std::path::PathBuf;

use aiops_evaluation::nab::{self, Corpus, CostProfile, ThresholdChoice};

fn nab_dir() -> PathBuf {
    std::env::var_os("AIOPS_NAB_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/nab"),
        PathBuf::from,
    )
}

/// Published normalized scores: standard, reward_low_FP_rate, reward_low_FN_rate.
const PUBLISHED: [(&str, [f64; 3]); 2] = [
    ("numenta", [70.10, 63.12, 74.32]),
    ("twitterADVec", [47.06, 33.61, 53.50]),
];

#[test]
#[ignore = "needs the NAB corpus: set AIOPS_NAB_DIR and pass --ignored"]
fn published_scores_are_reproduced_with_nabs_thresholds_and_by_our_sweep() {
    let dir = nab_dir();
    let corpus = Corpus::open(&dir).unwrap();
    assert_eq!(corpus.files().len(), 58);
    let profiles = CostProfile::nab();
    for (detector, published) in PUBLISHED {
        let results = nab::load_results(&corpus, &dir.join("results"), detector).unwrap();
        let given =
            ThresholdChoice::from_nab_thresholds(&dir.join("results/thresholds.json"), detector)
                .unwrap();
        for choice in [given, ThresholdChoice::Sweep] {
            let scores = nab::evaluate(&results, &profiles, &choice).unwrap();
            for (score, expected) in scores.iter().zip(published) {
                let normalized = score.total.normalized.unwrap();
                println!(
                    "{detector} {} threshold {} raw {} normalized {normalized:.3} ({choice:?})",
                    score.profile.name, score.threshold, score.total.tally.raw
                );
                assert!(
                    (normalized - expected).abs() < 0.1,
                    "{detector} {}: {normalized} vs published {expected}",
                    score.profile.name
                );
            }
        }
    }
}
