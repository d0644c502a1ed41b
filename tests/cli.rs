//! The `aiops` command as a user runs it: files and stdin in, JSON lines out, clear errors.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use support::Service;

fn aiops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(args)
        .output()
        .expect("the aiops binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// 500 rows of a steady series with a spike at row 300, and one broken row.
fn spike_csv(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("checkout_latency.csv");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "timestamp,value").unwrap();
    for i in 0..500 {
        let value = if i == 300 {
            250.0
        } else {
            100.0 + (i % 7) as f64
        };
        writeln!(file, "2024-03-01 {:02}:{:02}:00,{value}", i / 60, i % 60).unwrap();
        if i == 10 {
            writeln!(file, "2024-03-01 00:10:30,fast").unwrap();
        }
    }
    path
}

#[test]
fn detect_writes_one_json_event_for_one_spike_and_reports_rejected_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = spike_csv(&dir);
    let dead = dir.path().join("rejected.jsonl");
    let out = aiops(&[
        "detect",
        "--input",
        input.to_str().unwrap(),
        "--dead-letters",
        dead.to_str().unwrap(),
        "--workers",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{}", text(&out.stdout));
    assert_eq!(events[0]["series"]["name"], "checkout_latency");
    assert_eq!(events[0]["value"], 250.0);
    assert_eq!(events[0]["severity"], "critical");
    // 2024-03-01 05:00:00 UTC
    assert_eq!(events[0]["timestamp"], 1_709_269_200_000i64);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("500 points of 1 series"), "{stderr}");
    assert!(
        stderr.contains("1 anomalies (1 critical), 1 rejected records"),
        "{stderr}"
    );
    assert!(
        stderr.contains("rejected line 13: csv syntax error"),
        "{stderr}"
    );
    let rejected = std::fs::read_to_string(&dead).unwrap();
    let letter: serde_json::Value = serde_json::from_str(rejected.trim()).unwrap();
    assert_eq!(letter["record"], "2024-03-01 00:10:30,fast");
    assert_eq!(letter["kind"], "syntax");
}

#[test]
fn log_format_json_writes_one_structured_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = spike_csv(&dir);
    let out = aiops(&[
        "--log-format",
        "json",
        "detect",
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["target"], "aiops", "{line}");
        assert!(
            line["timestamp"].as_str().is_some_and(|t| t.contains('T')),
            "{line}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l["message"].as_str().unwrap().starts_with("aiops detect: ")),
        "the summary is a log event: {lines:?}"
    );
    // Events still go to standard output, untouched.
    assert_eq!(text(&out.stdout).lines().count(), 1);
    // The filter applies: warnings only leaves the summary out.
    let quiet = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args([
            "--log-format",
            "json",
            "detect",
            "--input",
            input.to_str().unwrap(),
        ])
        .env("AIOPS_LOG", "warn")
        .output()
        .unwrap();
    assert!(quiet.status.success());
    assert!(
        !text(&quiet.stderr).contains("aiops detect: "),
        "{}",
        text(&quiet.stderr)
    );
}

#[test]
fn detect_reads_influx_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args([
            "detect",
            "--input",
            "-",
            "--format",
            "influx",
            "--precision",
            "s",
            "--quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..400 {
        let value = if i == 350 { 5000 } else { 1000 + (i % 5) * 10 };
        writeln!(
            stdin,
            "http,tenant=acme,route=/pay requests={value}i {}",
            1_700_000_000 + i * 60
        )
        .unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{stdout}");
    assert_eq!(events[0]["tenant"], "acme");
    assert_eq!(events[0]["series"]["name"], "http_requests");
    assert_eq!(events[0]["series"]["labels"]["route"], "/pay");
    assert_eq!(events[0]["timestamp"], (1_700_000_000i64 + 350 * 60) * 1000);
    assert!(out.stderr.is_empty(), "--quiet: {}", text(&out.stderr));
}

#[test]
fn errors_are_one_clear_line_without_a_panic() {
    let missing = aiops(&["detect", "--input", "/nonexistent/metrics.csv"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        text(&missing.stderr).trim(),
        "error: cannot read /nonexistent/metrics.csv: No such file or directory (os error 2)"
    );

    let stdin_without_format = aiops(&["detect", "--input", "-"]);
    assert_eq!(stdin_without_format.status.code(), Some(1));
    assert!(text(&stdin_without_format.stderr).contains("needs --format"));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[[templates]]\nname = \"x\"\ndetectors = [{ kind = \"prophet\" }]\n",
    )
    .unwrap();
    let input = spike_csv(&dir);
    let bad_config = aiops(&[
        "detect",
        "-i",
        input.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(bad_config.status.code(), Some(1));
    let stderr = text(&bad_config.stderr);
    // The list of known detectors grows with the crate's features; its order is alphabetical.
    assert!(
        stderr.contains("unknown detector \"prophet\"; known detectors: iforest, jump, ")
            && stderr.contains("mad, newcomer, range, residual, seasonal, sequence, stuck, zscore"),
        "{stderr}"
    );

    let unknown = aiops(&["detect", "--input", "x.csv", "--format", "parquet"]);
    assert_eq!(unknown.status.code(), Some(2), "usage errors exit with 2");
    assert!(text(&unknown.stderr).contains("invalid value 'parquet'"));

    let bad_duration = aiops(&["demo", "--duration", "soon"]);
    assert_eq!(bad_duration.status.code(), Some(2));

    for out in [
        missing,
        stdin_without_format,
        bad_config,
        unknown,
        bad_duration,
    ] {
        let stderr = text(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{stderr}"
        );
    }
}

#[test]
fn help_is_available_everywhere() {
    for args in [&["--help"][..], &["detect", "--help"], &["demo", "--help"]] {
        let out = aiops(args);
        assert!(out.status.success());
        assert!(text(&out.stdout).contains("Usage: aiops"), "{args:?}");
    }
}

#[test]
fn demo_runs_for_its_duration_and_scores_itself() {
    let out = aiops(&[
        "demo",
        "--duration",
        "3s",
        "--rate",
        "0",
        "--series",
        "50",
        "--workers",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("aiops demo: "), "{stderr}");
    assert!(stderr.contains("injected anomalies caught: "), "{stderr}");
    for line in text(&out.stdout).lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["tenant"], "demo");
    }
}

#[test]
fn token_mints_a_token_the_gateway_accepts() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.example.toml");
    let out = aiops(&[
        "token",
        "--config",
        example,
        "--tenant",
        "acme",
        "--channels",
        "anomalies",
        "--ttl",
        "10m",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    let config = aiops_gateway::GatewayConfig::from_file(std::path::Path::new(example)).unwrap();
    let claims = aiops_gateway::Authenticator::from_config(&config.auth)
        .unwrap()
        .verify(&token)
        .unwrap();
    assert_eq!(claims.tenant, "acme");
    assert_eq!(claims.channels, ["anomalies"]);
    let bad = aiops(&["token", "--config", example, "--tenant", "a b"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("--tenant"),
        "{}",
        text(&bad.stderr)
    );
}

/// Regression: status lines went through `eprintln!`, which panics when standard error is closed
/// (`aiops demo 2>&1 | head -1`).
#[test]
fn a_closed_standard_error_does_not_make_the_demo_panic() {
    use std::io::BufRead;
    let mut demo = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args([
            "demo",
            "--duration",
            "3s",
            "--series",
            "10",
            "--rate",
            "2000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(demo.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("aiops demo:"), "{first}");
    // The reader is gone: every later status line hits a closed pipe.
    let status = demo.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// A one-file NAB-style corpus: 600 points with a spike at 450 inside the labelled window.
fn tiny_nab_corpus(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let root = dir.path().join("nab");
    std::fs::create_dir_all(root.join("data/cat")).unwrap();
    std::fs::create_dir_all(root.join("labels")).unwrap();
    let mut file = std::fs::File::create(root.join("data/cat/s.csv")).unwrap();
    writeln!(file, "timestamp,value").unwrap();
    let stamp = |i: usize| format!("2024-03-01 {:02}:{:02}:00", i / 60, i % 60);
    for i in 0..600 {
        let value = if i == 450 {
            90.0
        } else {
            10.0 + (i % 5) as f64
        };
        writeln!(file, "{},{value}", stamp(i)).unwrap();
    }
    std::fs::write(
        root.join("labels/combined_windows.json"),
        format!(
            r#"{{"cat/s.csv": [["{}.000000", "{}.000000"]]}}"#,
            stamp(430),
            stamp(470)
        ),
    )
    .unwrap();
    root
}

#[test]
fn nab_scores_a_corpus_and_a_closed_stdout_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_nab_corpus(&dir);
    let out = dir.path().join("results");
    let run = aiops(&[
        "nab",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--detector",
        "zscore",
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let table = text(&run.stdout);
    assert!(table.contains("NAB sweep over the corpus"), "{table}");
    assert!(
        table.contains("1/1"),
        "the spike's window is found: {table}"
    );
    assert!(out.join("zscore/cat/zscore_s.csv").exists());

    // Regression: `aiops nab score --json | head -c 1` used to panic on the closed pipe.
    let mut score = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args([
            "nab",
            "score",
            "--data",
            data.to_str().unwrap(),
            "--results",
            out.to_str().unwrap(),
            "--detector",
            "zscore",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(score.stdout.take());
    let finished = score.wait_with_output().unwrap();
    let stderr = text(&finished.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(finished.status.code(), Some(0), "{stderr}");
}

/// A configuration whose default template is z-score and MAD: quick in a debug build.
fn zscore_mad_config(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let config = dir.path().join("aiops.toml");
    std::fs::write(
        &config,
        "[[templates]]\nname = \"default\"\ndetectors = [{ kind = \"zscore\" }, { kind = \"mad\" }]\n",
    )
    .unwrap();
    config
}

/// Two hosts of one metric as JSON lines, `points` each; after `change` the swing is six
/// times wider.
fn regime_change_jsonl(
    dir: &tempfile::TempDir,
    points: usize,
    change: usize,
) -> std::path::PathBuf {
    let path = dir.path().join("cpu.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..points {
        for host in ["a", "b"] {
            let wiggle = ((i * 7919 + host.len() * 13) % 101) as f64 / 50.0 - 1.0;
            let spread = if i < change { 1.0 } else { 6.0 };
            writeln!(
                file,
                r#"{{"tenant":"acme","name":"cpu","labels":{{"host":"{host}"}},"timestamp":{},"value":{}}}"#,
                1_700_000_000_000i64 + i as i64 * 60_000,
                50.0 + spread * wiggle
            )
            .unwrap();
        }
    }
    path
}

#[test]
fn train_registers_versions_and_models_manages_them_with_an_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let input = regime_change_jsonl(&dir, 1500, 1000);
    let config = dir.path().join("aiops.toml");
    std::fs::write(
        &config,
        "[models]\ndir = \"store\"\n\n[[templates]]\nname = \"default\"\n\
         detectors = [{ kind = \"mad\", window = 255 }]\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend([
            "--store",
            store.to_str().unwrap(),
            "-c",
            config.to_str().unwrap(),
        ]);
        all.extend(["--by", "tester"]);
        aiops(&all)
    };
    let input = input.to_str().unwrap();

    // The first version becomes active: nothing to beat.
    let out = run(&[
        "train",
        "-t",
        "default",
        "-i",
        input,
        "--to",
        "1700059940000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "default-v1 is active");
    assert!(text(&out.stderr).contains("2 series, 1600 training + 400 evaluation points"));
    // Registered only, on request.
    let out = run(&["train", "-t", "default", "-i", input, "--activate", "never"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "default-v2 registered, not activated"
    );

    let list = text(&run(&["models", "list"]).stdout);
    assert!(
        list.contains("* default-v1") && list.contains("  default-v2"),
        "{list}"
    );
    let out = run(&["models", "activate", "default-v2", "--reason", "new week"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["models", "rollback", "default", "--reason", "noisy"]);
    assert_eq!(
        text(&out.stdout).trim(),
        "template \"default\": default-v1 is active again"
    );
    let shown: serde_json::Value =
        serde_json::from_slice(&run(&["models", "show", "default-v1"]).stdout).unwrap();
    assert_eq!(shown["active"], true);
    assert_eq!(shown["training"]["series"], 2);
    assert!(shown["figures"]["flagged_per_1000"].is_number());
    let diff = text(&run(&["models", "diff", "default-v1", "default-v2"]).stdout);
    assert_eq!(
        diff.trim(),
        "default-v1 and default-v2 have the same parameters"
    );

    // Mistakes get one clear line and change nothing.
    let out = run(&["models", "delete", "default-v1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is the active version"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["models", "activate", "default-v9"]);
    assert!(text(&out.stderr).contains("no model version \"default-v9\""));
    assert!(!text(&out.stderr).contains("panicked"));

    let audit: Vec<serde_json::Value> = text(&run(&["models", "audit", "--json"]).stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<(String, String)> = audit
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["model"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [
        ("register", "default-v1"),
        ("activate", "default-v1"),
        ("register", "default-v2"),
        ("activate", "default-v2"),
        ("rollback", "default-v1"),
    ];
    assert_eq!(steps.len(), expected.len(), "{steps:?}");
    for ((action, model), (a, m)) in steps.iter().zip(expected) {
        assert_eq!((action.as_str(), model.as_str()), (a, m));
    }
    assert!(audit.iter().all(|e| e["who"] == "tester"));
    assert_eq!(audit[4]["why"], "noisy");

    // A tenant's own version is numbered and named apart.
    let out = run(&["train", "-t", "default", "-i", input, "--tenant", "acme"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "acme.default-v1 is active");
    let out = run(&["train", "-t", "default", "-i", input, "--tenant", "nobody"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nothing to train on"),
        "{}",
        text(&out.stderr)
    );
}

/// Points 900 to 1199 of each host of [`regime_change_jsonl`].
const REPLAY_RANGE: (i64, i64) = (
    1_700_000_000_000 + 900 * 60_000,
    1_700_000_000_000 + 1199 * 60_000,
);

/// `aiops replay` of [`REPLAY_RANGE`] of `input` with `workers` workers.
fn replay_range(
    input: &std::path::Path,
    config: &std::path::Path,
    workers: &str,
    extra: &[&str],
) -> Output {
    let (from, to) = (REPLAY_RANGE.0.to_string(), REPLAY_RANGE.1.to_string());
    let mut args = vec![
        "replay",
        "-i",
        input.to_str().unwrap(),
        "-c",
        config.to_str().unwrap(),
        "-w",
        workers,
        "--from",
        &from,
        "--to",
        &to,
    ];
    args.extend_from_slice(extra);
    aiops(&args)
}

/// The regime change of [`regime_change_jsonl`] (points 1000 to 1100) as a JSON incident of
/// metric `cpu` (so of both hosts).
fn regime_change_incident(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let labels = dir.path().join("incidents.json");
    std::fs::write(
        &labels,
        format!(
            r#"[{{"series": "cpu", "start": {}, "end": {}}}]"#,
            1_700_000_000_000i64 + 1000 * 60_000,
            1_700_000_000_000i64 + 1100 * 60_000
        ),
    )
    .unwrap();
    labels
}

/// `aiops replay` of the whole of `input`.
fn replay_whole(input: &std::path::Path, config: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "replay",
        "-i",
        input.to_str().unwrap(),
        "-c",
        config.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    aiops(&args)
}

#[test]
fn replay_writes_the_same_bytes_for_any_worker_count_and_only_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let input = regime_change_jsonl(&dir, 1500, 1000);
    let config = zscore_mad_config(&dir);
    let (from, to) = REPLAY_RANGE;
    let outputs: Vec<Vec<u8>> = ["1", "2", "4"]
        .iter()
        .map(|workers| {
            let out = replay_range(&input, &config, workers, &[]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            assert!(
                text(&out.stderr).contains("3,000 points"),
                "{}",
                text(&out.stderr)
            );
            out.stdout
        })
        .collect();
    assert_eq!(outputs[0], outputs[1], "1 and 2 workers");
    assert_eq!(outputs[0], outputs[2], "1 and 4 workers");
    let events: Vec<serde_json::Value> = text(&outputs[0])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !events.is_empty(),
        "the regime change at point 1000 raises events"
    );
    for event in &events {
        let t = event["timestamp"].as_i64().unwrap();
        assert!((from..=to).contains(&t), "{t} outside the range");
    }
    // The whole replay has more events than the range.
    let all = aiops(&[
        "replay",
        "-i",
        input.to_str().unwrap(),
        "-c",
        config.to_str().unwrap(),
        "-q",
    ]);
    assert!(text(&all.stdout).lines().count() >= events.len());
}

#[test]
fn replay_parquet_is_read_back_by_pyarrow_with_the_documented_schema() {
    if !support::available(&[Service::Pyarrow]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = regime_change_jsonl(&dir, 1500, 1000);
    let config = zscore_mad_config(&dir);
    let parquet = dir.path().join("events.parquet");
    let out = replay_whole(
        &input,
        &config,
        &["--parquet", parquet.to_str().unwrap(), "-q"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json_events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!json_events.is_empty());
    let script = r#"
import json, sys
import pyarrow.parquet as pq
table = pq.read_table(sys.argv[1])
print(json.dumps({
    "rows": table.num_rows,
    "schema": [[f.name, str(f.type)] for f in table.schema],
    "first": {k: (v if not hasattr(v, "isoformat") else v.isoformat()) for k, v in table.slice(0, 1).to_pylist()[0].items()},
}))
"#;
    let read = support::pyarrow_python()
        .args(["-c", script, parquet.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", text(&read.stderr));
    let report: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(report["rows"], json_events.len());
    let schema: Vec<(String, String)> = report["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f[0].as_str().unwrap().into(), f[1].as_str().unwrap().into()))
        .collect();
    let expected = [
        ("id", "string"),
        ("schema_version", "uint32"),
        ("tenant", "string"),
        ("series_key", "string"),
        ("metric", "string"),
        ("labels", "string"),
        ("timestamp", "timestamp[ms, tz=UTC]"),
        ("onset", "timestamp[ms, tz=UTC]"),
        ("value", "double"),
        ("expected_lower", "double"),
        ("expected_upper", "double"),
        ("score", "double"),
        ("severity", "string"),
        ("escalation", "bool"),
        ("detector", "string"),
        ("template", "string"),
        ("model_version", "string"),
        ("contributions", "string"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, t)| ((*n).into(), (*t).into()))
        .collect();
    assert_eq!(schema, expected);
    // The first row is the first JSON event.
    let first = &report["first"];
    assert_eq!(first["id"], json_events[0]["id"]);
    assert_eq!(first["value"], json_events[0]["value"]);
    assert_eq!(first["series_key"], json_events[0]["series"]["key"]);
}

#[test]
fn replay_scores_list_every_point_of_the_range_by_series_then_time() {
    let dir = tempfile::tempdir().unwrap();
    let input = regime_change_jsonl(&dir, 1500, 1000);
    let config = zscore_mad_config(&dir);
    let files: Vec<Vec<u8>> = ["1", "2"]
        .iter()
        .map(|workers| {
            let scores = dir.path().join(format!("scores-{workers}.jsonl"));
            let out = replay_range(
                &input,
                &config,
                workers,
                &["--scores", scores.to_str().unwrap(), "-q"],
            );
            assert!(out.status.success(), "{}", text(&out.stderr));
            std::fs::read(&scores).unwrap()
        })
        .collect();
    assert_eq!(files[0], files[1], "the same bytes for 1 and 2 workers");
    let rows: Vec<serde_json::Value> = text(&files[0])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows.len(),
        2 * 300,
        "every point of both hosts in the range"
    );
    for pair in rows.windows(2) {
        let key = |r: &serde_json::Value| {
            (
                r["series_key"].as_str().unwrap().to_owned(),
                r["timestamp"].as_i64().unwrap(),
            )
        };
        assert!(key(&pair[0]) < key(&pair[1]), "sorted by series then time");
    }
    for row in &rows {
        assert!(row["score"].is_number() && row["lower"].is_number() && row["upper"].is_number());
        assert!(row["lower"].as_f64().unwrap() <= row["upper"].as_f64().unwrap());
    }
}

#[test]
fn replay_is_evaluated_against_labelled_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let input = regime_change_jsonl(&dir, 1500, 1000);
    let config = zscore_mad_config(&dir);
    // The regime change at point 1000 is the incident, on host a only (by series key it would
    // be one host; by metric name it is both).
    let labels = regime_change_incident(&dir);
    let figures = dir.path().join("figures.json");
    let events = dir.path().join("events.jsonl");
    let out = replay_whole(
        &input,
        &config,
        &[
            "--labels",
            labels.to_str().unwrap(),
            "--figures",
            figures.to_str().unwrap(),
            "-o",
            events.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("event-wise precision"),
        "{}",
        text(&out.stderr)
    );
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&figures).unwrap()).unwrap();
    // Both hosts carry the metric name the incident names: two incidents, both caught.
    assert_eq!(figures["incidents"], 2);
    assert_eq!(figures["event_wise"]["recall"], 1.0);
    let events = figures["events"].as_u64().unwrap();
    let inside = events - figures["event_wise"]["false_positives"].as_u64().unwrap();
    assert!(inside >= 2, "{figures}");
    assert!(figures["median_delay_ms"].as_f64().unwrap() >= 0.0);
    let points = &figures["point_wise"];
    assert!(points["recall"].as_f64().unwrap() > 0.0, "{figures}");
    // Labels that cannot be read are one clear error.
    std::fs::write(&labels, "[{\"series\": \"cpu\"}]").unwrap();
    let out = aiops(&[
        "replay",
        "-i",
        input.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("incidents.json"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("panicked"));
}

#[test]
fn replay_report_is_a_self_contained_page_with_a_plot_per_series_and_chromium_renders_it() {
    if !support::available(&[Service::Chromium]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = regime_change_jsonl(&dir, 1500, 1000);
    let config = zscore_mad_config(&dir);
    let labels = regime_change_incident(&dir);
    let report = dir.path().join("report");
    let out = replay_whole(
        &input,
        &config,
        &[
            "--labels",
            labels.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "-o",
            dir.path().join("events.jsonl").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 2, "one plot per host");
    assert_eq!(html.matches("class=\"incident\"").count(), 2);
    assert!(html.matches("class=\"event\"").count() >= 2);
    assert!(
        !html.contains("<script") && !html.contains("http"),
        "self-contained"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["series"].as_array().unwrap().len(), 2);
    assert_eq!(json["overall"]["incidents"], 2);

    // Headless Chromium (scripts/services install puts it there) renders it to a picture.
    let png = dir.path().join("report.png");
    let shot = support::chromium()
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,1400",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", report.join("report.html").display()))
        .output()
        .expect("chromium runs (scripts/services install)");
    assert!(shot.status.success(), "{}", text(&shot.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // Width and height from the PNG header.
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 1400));
    assert!(
        bytes.len() > 20_000,
        "a page with plots, not a blank one: {} bytes",
        bytes.len()
    );
    // Kept for people to look at: target/test-output/report.png.
    let keep = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output");
    std::fs::create_dir_all(&keep).unwrap();
    std::fs::copy(&png, keep.join("report.png")).unwrap();
}

#[test]
fn replay_compares_configurations_and_each_detector_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let input = regime_change_jsonl(&dir, 1500, 1000);
    let config = zscore_mad_config(&dir);
    let labels = regime_change_incident(&dir);
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        "[[templates]]\nname = \"default\"\ndetectors = [{ kind = \"range\" }]\n",
    )
    .unwrap();
    let report = dir.path().join("report");
    let out = replay_whole(
        &input,
        &config,
        &[
            "--labels",
            labels.to_str().unwrap(),
            "--compare",
            other.to_str().unwrap(),
            "--each-detector",
            "--report",
            report.to_str().unwrap(),
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    let names: Vec<&str> = json["configurations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names[0].ends_with("aiops.toml") && names[1].ends_with("other.toml"));
    assert_eq!(&names[2..], ["zscore alone", "mad alone"]);
    // The first configuration is the report's own.
    assert_eq!(json["configurations"][0]["figures"], json["overall"]);
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(html.contains("Configurations side by side"));
    assert!(html.contains("mad alone"));
    // Comparing without labels is refused: there would be nothing to compare.
    let out = replay_whole(&input, &config, &["--each-detector"]);
    assert!(!out.status.success());
}

/// With polars (`cargo test --features polars`), the report sums its series by group: for a
/// directory, the folder each file is in (NAB's categories).
#[cfg(feature = "polars")]
#[test]
fn replay_report_sums_series_by_folder_with_polars() {
    let dir = tempfile::tempdir().unwrap();
    let root = tiny_nab_corpus(&dir);
    // A second category with a copy of the series under another name.
    std::fs::create_dir_all(root.join("data/other")).unwrap();
    std::fs::copy(root.join("data/cat/s.csv"), root.join("data/other/t.csv")).unwrap();
    let windows = std::fs::read_to_string(root.join("labels/combined_windows.json")).unwrap();
    let both = windows.replacen(
        '{',
        "{\"other/t.csv\": [[\"2024-03-01 07:10:00.000000\", \"2024-03-01 07:50:00.000000\"]], ",
        1,
    );
    std::fs::write(root.join("labels/combined_windows.json"), both).unwrap();
    let config = zscore_mad_config(&dir);
    let report = dir.path().join("report");
    let out = aiops(&[
        "replay",
        "-i",
        root.join("data").to_str().unwrap(),
        "-c",
        config.to_str().unwrap(),
        "--labels",
        root.join("labels/combined_windows.json").to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "-q",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    let groups = json["groups"].as_array().unwrap();
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cat", "other"]);
    for group in groups {
        assert_eq!(group["series"], 1);
        assert_eq!(group["incidents"], 1);
    }
    // The sums agree with the overall figures.
    let total: u64 = groups.iter().map(|g| g["events"].as_u64().unwrap()).sum();
    assert_eq!(total, json["overall"]["events"].as_u64().unwrap());
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(html.contains("Per group"));
}

#[test]
fn replay_reads_a_metrics_parquet_file_written_by_pyarrow_as_it_reads_json_lines() {
    if !support::available(&[Service::Pyarrow]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = regime_change_jsonl(&dir, 1500, 1000);
    let config = zscore_mad_config(&dir);
    // The same points as a Parquet file, written by pyarrow: metric, tenant, a label column,
    // timestamp[ms, UTC] and value.
    let parquet = dir.path().join("cpu.parquet");
    let script = r#"
import json, sys
import pyarrow as pa, pyarrow.parquet as pq
rows = [json.loads(line) for line in open(sys.argv[1])]
table = pa.table({
    "timestamp": pa.array([r["timestamp"] for r in rows], type=pa.timestamp("ms", tz="UTC")),
    "value": pa.array([r["value"] for r in rows], type=pa.float64()),
    "metric": [r["name"] for r in rows],
    "tenant": [r["tenant"] for r in rows],
    "host": [r["labels"]["host"] for r in rows],
})
pq.write_table(table, sys.argv[2])
"#;
    let wrote = support::pyarrow_python()
        .args([
            "-c",
            script,
            input.to_str().unwrap(),
            parquet.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(wrote.status.success(), "{}", text(&wrote.stderr));
    let from_json = replay_whole(&input, &config, &["-q"]);
    let from_parquet = replay_whole(&parquet, &config, &["-q", "-w", "2"]);
    assert!(
        from_parquet.status.success(),
        "{}",
        text(&from_parquet.stderr)
    );
    assert!(!from_json.stdout.is_empty());
    assert_eq!(
        from_parquet.stdout, from_json.stdout,
        "the same events, byte for byte"
    );
    // A Parquet file without the needed columns is refused with a clear message.
    let bad = dir.path().join("bad.parquet");
    let wrote = support::pyarrow_python()
        .args([
            "-c",
            "import sys, pyarrow as pa, pyarrow.parquet as pq; pq.write_table(pa.table({'x': [1]}), sys.argv[1])",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(wrote.status.success());
    let out = replay_whole(&bad, &config, &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("\"timestamp\" column"),
        "{}",
        text(&out.stderr)
    );
}
