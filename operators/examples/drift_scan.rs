//! Runs the drift tests over streams read from standard input, for the drift evaluation under
//! `benches/peers/drift` (and for trying a configuration on your own data).
//!
//! Input: CSV lines `stream,index,value` (a header line is skipped), each stream's points
//! consecutive and in order. Output: one CSV line `stream,index,test,statistic,threshold` per
//! alarm, then a `# points=N seconds=S` line with the time spent in the tests.
//! Configuration: an optional JSON file with a `DriftConfig` as the first argument.
//!
//! `cargo run --release -p aiops-operators --example drift_scan -- [config.json] < streams.csv`

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use aiops_operators::drift::{DriftConfig, StreamDrift};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config: DriftConfig = match std::env::args().nth(1) {
        Some(path) => serde_json::from_str(&std::fs::read_to_string(&path)?)?,
        None => DriftConfig::default(),
    };
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "stream,index,test,statistic,threshold")?;
    let mut current: Option<(String, StreamDrift)> = None;
    let mut spent = Duration::ZERO;
    let mut points = 0u64;
    for (number, line) in stdin.lines().enumerate() {
        let line = line?;
        let mut fields = line.split(',');
        let (Some(stream), Some(index), Some(value)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!("line {}: expected stream,index,value", number + 1).into());
        };
        let (Ok(index), Ok(value)) = (index.trim().parse::<i64>(), value.trim().parse::<f64>())
        else {
            if number == 0 {
                continue; // header
            }
            return Err(format!("line {}: index or value is not a number", number + 1).into());
        };
        if current.as_ref().is_none_or(|(name, _)| name != stream) {
            current = Some((stream.to_owned(), StreamDrift::new(config.clone())?));
        }
        let Some((_, monitor)) = current.as_mut() else {
            continue;
        };
        let started = Instant::now();
        let alarms = monitor.update(index, value);
        spent += started.elapsed();
        points += 1;
        for alarm in alarms {
            let test = serde_json::to_value(alarm.test)?;
            let test = test.as_str().unwrap_or("?");
            writeln!(
                out,
                "{stream},{index},{test},{},{}",
                alarm.statistic, alarm.threshold
            )?;
        }
    }
    writeln!(out, "# points={points} seconds={}", spent.as_secs_f64())?;
    Ok(())
}
