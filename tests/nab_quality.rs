//! Detection quality as the product ships it: the default template over the NAB corpus, scored
//! by NAB's rules, must stay above Numenta HTM's published standard score (70.5, the best of
//! its published runs) both with NAB's threshold sweep and at the template's own warning level.
//! Needs the NAB corpus, which a fresh clone does not have, so the test is opt-in:
//! `AIOPS_NAB_DIR=../shared/data/nab cargo test --test nab_quality -- --ignored`
//! (`scripts/test` runs it whenever the corpus is there). About 20 s in a debug build.

mod support;

use std::path::PathBuf;

/// Numenta HTM's best published standard-profile score.
const NUMENTA_HTM_STANDARD: f64 = 70.5;

fn nab_dir() -> PathBuf {
    std::env::var_os("AIOPS_NAB_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/nab"),
        PathBuf::from,
    )
}

/// `aiops` with these arguments; its standard output, after checking it succeeded.
fn aiops(args: &[&str]) -> String {
    let output = support::aiops().args(args).output().expect("aiops runs");
    assert!(
        output.status.success(),
        "aiops {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// The normalized scores of the three profiles (standard, low FP, low FN) in `aiops nab score
/// --json` output.
fn normalized_scores(json: &str) -> Vec<f64> {
    let scores: serde_json::Value = serde_json::from_str(json).expect("JSON scores");
    scores["profiles"]
        .as_array()
        .expect("a profiles array")
        .iter()
        .map(|profile| profile["normalized"].as_f64().expect("a normalized score"))
        .collect()
}

#[test]
#[ignore = "needs the NAB corpus: set AIOPS_NAB_DIR and pass --ignored"]
fn the_default_template_scores_above_numenta_htm_on_nab_swept_and_at_its_warning_level() {
    let data = nab_dir();
    let data = data.to_str().expect("a UTF-8 path");
    let out = tempfile::tempdir().unwrap();
    let out = out.path().to_str().expect("a UTF-8 path");
    aiops(&["nab", "--data", data, "--out", out, "--no-score"]);
    let score = |extra: &[&str]| {
        let mut args = vec![
            "nab",
            "score",
            "--data",
            data,
            "--results",
            out,
            "--detector",
            "ensemble",
            "--json",
        ];
        args.extend_from_slice(extra);
        normalized_scores(&aiops(&args))
    };
    let swept = score(&[]);
    // The default template's warning level 2 is 2 / (2 + 3) = 0.4 on NAB's [0, 1] scale.
    let fixed = score(&["--threshold", "0.4"]);
    println!("standard / low FP / low FN: swept {swept:.2?}, at the warning level {fixed:.2?}");
    assert_eq!((swept.len(), fixed.len()), (3, 3));
    assert!(swept[0] > NUMENTA_HTM_STANDARD, "swept {swept:?}");
    assert!(
        fixed[0] > NUMENTA_HTM_STANDARD,
        "at the warning level {fixed:?}"
    );
    // The sweep picks the best threshold, so it can only be at least as good.
    for (s, f) in swept.iter().zip(&fixed) {
        assert!(s >= f, "swept {swept:?} below fixed {fixed:?}");
    }
}
