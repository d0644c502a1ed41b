//! `aiops eval` end to end: generated young series and a labelled corpus folder, the shipped
//! templates beside the rolling z-score and a peer's score files, as tables and as JSON.

use std::path::Path;
use std::process::Command;

fn aiops(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(args)
        .output()
        .expect("aiops runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A corpus folder of one series: a level of 10 with noise, spikes at 150 and 300 labelled.
fn write_corpus(root: &Path) {
    let dir = root.join("spikes");
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = String::from("timestamp,value,label\n");
    for i in 0..400i64 {
        let spike = i == 150 || i == 300;
        let value = 10.0 + ((i * 7919) % 13) as f64 / 13.0 + if spike { 30.0 } else { 0.0 };
        text.push_str(&format!("{},{value},{}\n", i * 60_000, u8::from(spike)));
    }
    std::fs::write(dir.join("one.csv"), text).unwrap();
}

#[test]
fn eval_scores_templates_the_reference_and_peers_on_every_corpus() {
    let root = tempfile::tempdir().unwrap();
    write_corpus(root.path());
    // A peer that alarms exactly on the spikes: a perfect composite F1.
    let peer = root.path().join("peers/oracle/spikes");
    std::fs::create_dir_all(&peer).unwrap();
    let scores: String = (0..400)
        .map(|i| if i == 150 || i == 300 { "1\n" } else { "0\n" })
        .collect();
    std::fs::write(peer.join("one.csv"), format!("score\n{scores}")).unwrap();
    let corpora = root.path().to_str().unwrap();
    let peers = root.path().join("peers");
    let (ok, stdout, stderr) = aiops(&[
        "eval",
        "--corpora",
        &format!("{corpora}/"),
        "--young",
        "30",
        "--entries",
        "default,light,range,zscore-100",
        "--peers",
        peers.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let cells: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    // The peers folder lies inside the corpora folder but holds no series at its top, so it is
    // not taken for a corpus.
    let corpora_seen: std::collections::BTreeSet<&str> =
        cells.iter().filter_map(|c| c["corpus"].as_str()).collect();
    assert!(
        corpora_seen.contains("spikes") && corpora_seen.contains("young"),
        "{corpora_seen:?}"
    );
    let cell = |entry: &str, corpus: &str| {
        cells
            .iter()
            .find(|c| c["entry"] == entry && c["corpus"] == corpus)
            .unwrap_or_else(|| panic!("no cell for {entry} on {corpus}: {stdout}"))
    };
    assert_eq!(cell("oracle", "spikes")["f1"], 1.0);
    for entry in ["default", "light", "range", "rolling z-score 100"] {
        let f1 = cell(entry, "young")["f1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f1), "{entry}: {f1}");
    }
    // Templates carry their alert policy's figures; the reference has none.
    assert!(cell("default", "young")["events_f1"].is_number());
    assert!(cell("rolling z-score 100", "young")["events_f1"].is_null());
    // The first 30σ spike on a quiet series is caught by the default template. (The second,
    // of the same size, is not: the range and the calibration learnt the first as usual —
    // issue 17's open part. The rolling z-score catches both.)
    assert!(cell("default", "spikes")["recall"].as_f64().unwrap() >= 0.5);
    assert_eq!(cell("rolling z-score 100", "spikes")["recall"], 1.0);

    // Tables for people; a clear error without any corpus.
    let (ok, stdout, _) = aiops(&["eval", "--young", "10", "--entries", "light,zscore-100"]);
    assert!(
        ok && stdout.contains("young: 10 series") && stdout.contains("rolling z-score 100"),
        "{stdout}"
    );
    let (ok, _, stderr) = aiops(&["eval", "--young", "0"]);
    assert!(!ok && stderr.contains("no corpus"), "{stderr}");
    // The young corpus's ceiling, alone and pooled; nonsense pooling is refused.
    let (ok, stdout, _) = aiops(&["eval", "--young", "10", "--entries", "ceiling,ceiling-3"]);
    assert!(
        ok && stdout.contains("ceiling pooling 3") && stdout.contains("\nceiling "),
        "{stdout}"
    );
    for bad in ["ceiling-0", "ceiling3", "ceiling-x", "ceiling-21"] {
        let (ok, _, stderr) = aiops(&["eval", "--young", "10", "--entries", bad]);
        assert!(!ok && stderr.contains(bad), "{bad}: {stderr}");
    }
    let (ok, _, stderr) = aiops(&["eval", "--young", "0", "--entries", "ceiling"]);
    assert!(!ok && stderr.contains("--young"), "{stderr}");
    // A peer file with a wrong row count is refused, naming the file.
    std::fs::write(peer.join("one.csv"), "score\n1\n").unwrap();
    let (ok, _, stderr) = aiops(&[
        "eval",
        "--corpora",
        corpora,
        "--young",
        "0",
        "--entries",
        "light",
        "--peers",
        peers.to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("one.csv") && stderr.contains("1 scores for 400 points"),
        "{stderr}"
    );
}

#[test]
fn eval_exports_every_corpus_in_the_labelled_layout() {
    let out = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = aiops(&[
        "eval",
        "--young",
        "12",
        "--export",
        out.path().to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("12 series"), "{stdout}");
    let files = std::fs::read_dir(out.path().join("young")).unwrap().count();
    assert_eq!(files, 12);
}
