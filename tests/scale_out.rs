//! Scale-out across processes: a timely cluster of `aiops detect` processes on loopback finds
//! exactly the events of one process. (Processes sharing a consumer group are tested in
//! tests/kafka_redis.rs; several gateways on one Redis in tests/gateway.rs.)

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// JSON lines of `series` seasonal series with spikes, level shifts and noise, `points` each, in
/// time order; deterministic.
fn write_series(path: &Path, series: usize, points: usize) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut noise = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    };
    for t in 0..points {
        for s in 0..series {
            let phase = (t as f64 + s as f64 * 7.0) / 48.0 * std::f64::consts::TAU;
            let mut value = 100.0 + 10.0 * phase.sin() + 2.0 * noise();
            if (t + 13 * s) % 700 == 650 {
                value += 60.0;
            }
            if t > points / 2 && s % 5 == 0 {
                value += 25.0;
            }
            writeln!(
                file,
                r#"{{"name":"m{}","labels":{{"host":"h{s}"}},"timestamp":{},"value":{value:.4}}}"#,
                s % 4,
                1_700_000_000_000u64 + t as u64 * 60_000
            )
            .unwrap();
        }
    }
}

fn light_config(dir: &Path) -> PathBuf {
    let path = dir.join("light.toml");
    std::fs::write(&path, support::LIGHT_DEFAULT_TEMPLATE).unwrap();
    path
}

fn events(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn wait(mut child: Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "a cluster process failed ({status})");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a cluster process did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `processes` `aiops detect` processes as one timely cluster; the union of their events.
fn cluster_run(dir: &Path, input: &Path, config: &Path, processes: usize) -> BTreeSet<String> {
    let hosts = dir.join(format!("hosts-{processes}.txt"));
    let ports: Vec<u16> = (0..processes).map(|_| support::free_port()).collect();
    std::fs::write(
        &hosts,
        ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let outputs: Vec<PathBuf> = (0..processes)
        .map(|p| dir.join(format!("cluster-{processes}-{p}.jsonl")))
        .collect();
    let children: Vec<Child> = (0..processes)
        .map(|p| {
            support::aiops()
                .args(["detect", "--quiet", "--workers", "1", "-i"])
                .arg(input)
                .arg("-c")
                .arg(config)
                .arg("-o")
                .arg(&outputs[p])
                .arg("--cluster-hosts")
                .arg(&hosts)
                .args(["--process", &p.to_string()])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        wait(child, Duration::from_secs(180));
    }
    let mut union = BTreeSet::new();
    for output in &outputs {
        let mine = events(output);
        let before = union.len();
        union.extend(mine.iter().cloned());
        assert_eq!(
            union.len(),
            before + mine.len(),
            "no event is written by two processes"
        );
    }
    union
}

#[test]
fn a_timely_cluster_of_processes_finds_exactly_the_events_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("metrics.jsonl");
    write_series(&input, 24, 2_000);
    let config = light_config(dir.path());
    let reference = dir.path().join("one.jsonl");
    let status = support::aiops()
        .args(["detect", "--quiet", "--workers", "1", "-i"])
        .arg(&input)
        .arg("-c")
        .arg(&config)
        .arg("-o")
        .arg(&reference)
        .status()
        .unwrap();
    assert!(status.success());
    let expected = events(&reference);
    assert!(expected.len() > 50, "{} events", expected.len());
    for processes in [2, 3] {
        let got = cluster_run(dir.path(), &input, &config, processes);
        assert_eq!(
            got.len(),
            expected.len(),
            "{processes} processes: as many events"
        );
        assert!(got == expected, "{processes} processes: the same events");
    }
}

#[test]
fn a_process_outside_the_cluster_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("metrics.jsonl");
    write_series(&input, 2, 10);
    let hosts = dir.path().join("hosts.txt");
    std::fs::write(&hosts, "127.0.0.1:1\n127.0.0.1:2\n").unwrap();
    let output = support::aiops()
        .args(["detect", "-i"])
        .arg(&input)
        .arg("--cluster-hosts")
        .arg(&hosts)
        .args(["--process", "2"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("process 2 of a cluster of 2 (processes are numbered from 0)"),
        "{stderr}"
    );
    let missing = support::aiops()
        .args(["detect", "-i"])
        .arg(&input)
        .args(["--process", "0"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--cluster-hosts"));
}
