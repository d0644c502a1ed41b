//! The NAB corpus on disk: data files, their anomaly windows, and detectors' result files.
//!
//! The layout is the NAB repository's: `<root>/data/<category>/<file>.csv` with columns
//! `timestamp,value`, `<root>/labels/combined_windows.json` mapping each file to its windows
//! `[start, end]`, and results under `<results>/<detector>/<category>/<detector>_<file>.csv`
//! with at least the columns `timestamp` and `anomaly_score`, one row per data row.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use aiops_schemas::{Precision, TimestampMs, parse_timestamp};

use crate::error::{Error, Result};

/// The file of anomaly windows, relative to the corpus root.
pub const WINDOWS_FILE: &str = "labels/combined_windows.json";

/// An anomaly window: the labelled span around one anomaly, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first timestamp inside.
    pub start: TimestampMs,
    /// The last timestamp inside.
    pub end: TimestampMs,
}

impl Window {
    /// Whether `t` lies inside.
    pub fn contains(&self, t: TimestampMs) -> bool {
        self.start <= t && t <= self.end
    }
}

/// One data file of the corpus and its windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusFile {
    /// The path below `data/`, with `/` separators: `realKnownCause/nyc_taxi.csv`.
    pub name: String,
    /// Its anomaly windows, in time order.
    pub windows: Vec<Window>,
}

impl CorpusFile {
    /// The category: the folder the file is in.
    pub fn category(&self) -> &str {
        self.name
            .split_once('/')
            .map_or("", |(category, _)| category)
    }

    /// The file name without its folder.
    pub fn file_name(&self) -> &str {
        self.name
            .rsplit_once('/')
            .map_or(&self.name, |(_, file)| file)
    }
}

/// A data file's rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Each row's timestamp.
    pub timestamps: Vec<TimestampMs>,
    /// Each row's value.
    pub values: Vec<f64>,
    /// Each row's timestamp and value as written, so results repeat them exactly.
    pub text: Vec<(String, String)>,
}

impl Series {
    /// How many rows.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }
}

/// The corpus: where it is and which files it holds.
#[derive(Debug, Clone)]
pub struct Corpus {
    root: PathBuf,
    files: Vec<CorpusFile>,
}

impl Corpus {
    /// Opens the corpus at `root` (the folder holding `data/` and `labels/`), reading the
    /// windows of every file.
    pub fn open(root: &Path) -> Result<Corpus> {
        let windows_path = root.join(WINDOWS_FILE);
        if !windows_path.is_file() || !root.join("data").is_dir() {
            return Err(Error::malformed(
                root,
                None,
                format!(
                    "not a NAB corpus: expected data/<category>/<file>.csv and {WINDOWS_FILE} \
                     below it (the layout of the NAB repository)"
                ),
            ));
        }
        let text = read_to_string(&windows_path)?;
        let raw: BTreeMap<String, Vec<Vec<String>>> = serde_json::from_str(&text)
            .map_err(|e| Error::malformed(&windows_path, None, e.to_string()))?;
        let mut files = Vec::with_capacity(raw.len());
        for (name, spans) in raw {
            let mut windows = Vec::with_capacity(spans.len());
            for span in spans {
                let [start, end] = span.as_slice() else {
                    return Err(Error::malformed(
                        &windows_path,
                        None,
                        format!("a window of {name} is not a [start, end] pair"),
                    ));
                };
                let time = |text: &str| {
                    parse_timestamp(text, Precision::Milliseconds)
                        .map_err(|e| Error::malformed(&windows_path, None, format!("{name}: {e}")))
                };
                let window = Window {
                    start: time(start)?,
                    end: time(end)?,
                };
                if window.end < window.start {
                    return Err(Error::malformed(
                        &windows_path,
                        None,
                        format!("{name}: window ends before it starts"),
                    ));
                }
                windows.push(window);
            }
            windows.sort_by_key(|w| w.start);
            files.push(CorpusFile { name, windows });
        }
        Ok(Corpus {
            root: root.to_owned(),
            files,
        })
    }

    /// The corpus root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The files, sorted by name.
    pub fn files(&self) -> &[CorpusFile] {
        &self.files
    }

    /// Keeps only the files whose name matches the glob (`*` any run, `?` one character).
    pub fn retain_matching(&mut self, pattern: &str) {
        self.files
            .retain(|f| aiops_schemas::glob::glob_match(pattern, &f.name));
    }

    /// The path of a data file.
    pub fn data_path(&self, file: &CorpusFile) -> PathBuf {
        self.root.join("data").join(&file.name)
    }

    /// Reads a data file.
    pub fn read_series(&self, file: &CorpusFile) -> Result<Series> {
        let path = self.data_path(file);
        let text = read_to_string(&path)?;
        let mut series = Series::default();
        let mut lines = text.lines().enumerate();
        let header = lines.next().map(|(_, l)| l.trim()).unwrap_or_default();
        if header != "timestamp,value" {
            return Err(Error::malformed(
                &path,
                Some(1),
                format!("expected the header timestamp,value, found {header:?}"),
            ));
        }
        for (index, line) in lines {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let bad = |message: String| Error::malformed(&path, Some(index + 1), message);
            let (time_text, value_text) = line
                .split_once(',')
                .ok_or_else(|| bad("expected timestamp,value".into()))?;
            let timestamp = parse_timestamp(time_text, Precision::Milliseconds)
                .map_err(|e| bad(e.to_string()))?;
            let value: f64 = value_text
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| bad(format!("value {value_text:?} is not a finite number")))?;
            series.timestamps.push(timestamp);
            series.values.push(value);
            series
                .text
                .push((time_text.to_owned(), value_text.to_owned()));
        }
        Ok(series)
    }
}

/// Where a detector's results for a file go: `<results>/<detector>/<category>/<detector>_<file>`.
pub fn results_path(results: &Path, detector: &str, file: &CorpusFile) -> PathBuf {
    results
        .join(detector)
        .join(file.category())
        .join(format!("{detector}_{}", file.file_name()))
}

/// Reads the `anomaly_score` column of a result file, checking it has one row per data row
/// with the same timestamps.
pub fn read_scores(path: &Path, series: &Series) -> Result<Vec<f64>> {
    let text = read_to_string(path)?;
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, l)| l.trim().split(',').collect())
        .unwrap_or_default();
    let column = |name: &str| {
        header.iter().position(|h| *h == name).ok_or_else(|| {
            Error::malformed(path, Some(1), format!("no {name} column in the header"))
        })
    };
    let (time_column, score_column) = (column("timestamp")?, column("anomaly_score")?);
    let mut scores = Vec::with_capacity(series.len());
    for (index, line) in lines {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let bad = |message: String| Error::malformed(path, Some(index + 1), message);
        let fields: Vec<&str> = line.split(',').collect();
        let field = |i: usize| {
            fields
                .get(i)
                .copied()
                .ok_or_else(|| bad(format!("expected {} columns", header.len())))
        };
        let row = scores.len();
        let Some(&expected) = series.timestamps.get(row) else {
            return Err(bad(format!(
                "more rows than the data file's {}",
                series.len()
            )));
        };
        let timestamp = parse_timestamp(field(time_column)?, Precision::Milliseconds)
            .map_err(|e| bad(e.to_string()))?;
        if timestamp != expected {
            return Err(bad(format!(
                "timestamp {} differs from the data file's {} on the same row",
                field(time_column)?,
                series.text[row].0
            )));
        }
        let score_text = field(score_column)?;
        let score: f64 = score_text
            .trim()
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite())
            .ok_or_else(|| {
                bad(format!(
                    "anomaly_score {score_text:?} is not a finite number"
                ))
            })?;
        scores.push(score);
    }
    if scores.len() != series.len() {
        return Err(Error::malformed(
            path,
            None,
            format!(
                "{} rows, but the data file has {}",
                scores.len(),
                series.len()
            ),
        ));
    }
    Ok(scores)
}

/// Writes a result file: `timestamp,value,anomaly_score,label`, one row per data row, where
/// `label` is 1 inside an anomaly window.
pub fn write_scores(
    path: &Path,
    series: &Series,
    windows: &[Window],
    scores: &[f64],
) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    }
    let mut out = String::with_capacity(series.len() * 48 + 40);
    out.push_str("timestamp,value,anomaly_score,label\n");
    for ((timestamp, (time_text, value_text)), score) in
        series.timestamps.iter().zip(&series.text).zip(scores)
    {
        let label = u8::from(windows.iter().any(|w| w.contains(*timestamp)));
        // `{}` writes the shortest text that reads back as the same f64.
        let _ = writeln!(out, "{time_text},{value_text},{score},{label}");
    }
    std::fs::write(path, out).map_err(|e| Error::io("cannot write", path, e))
}

fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-file corpus in a temporary folder.
    pub(crate) fn tiny_corpus() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("data/cat")).unwrap();
        std::fs::create_dir_all(root.join("labels")).unwrap();
        std::fs::write(
            root.join("data/cat/a.csv"),
            "timestamp,value\n2020-01-01 00:00:00,1.0\n2020-01-01 00:05:00,2\n2020-01-01 00:10:00,3.5\n",
        )
        .unwrap();
        std::fs::write(
            root.join("data/cat/b.csv"),
            "timestamp,value\n2020-01-01 00:00:00,7\n",
        )
        .unwrap();
        std::fs::write(
            root.join(WINDOWS_FILE),
            r#"{"cat/a.csv": [["2020-01-01 00:05:00.000000", "2020-01-01 00:10:00.000000"]], "cat/b.csv": []}"#,
        )
        .unwrap();
        dir
    }

    #[test]
    fn reads_files_windows_and_rows() {
        let dir = tiny_corpus();
        let corpus = Corpus::open(dir.path()).unwrap();
        let names: Vec<_> = corpus.files().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["cat/a.csv", "cat/b.csv"]);
        let a = &corpus.files()[0];
        assert_eq!((a.category(), a.file_name()), ("cat", "a.csv"));
        assert_eq!(a.windows.len(), 1);
        let series = corpus.read_series(a).unwrap();
        assert_eq!(series.values, [1.0, 2.0, 3.5]);
        assert_eq!(series.timestamps[1] - series.timestamps[0], 300_000);
        assert!(a.windows[0].contains(series.timestamps[1]));
        assert!(!a.windows[0].contains(series.timestamps[0]));
    }

    #[test]
    fn results_round_trip_in_nab_layout() {
        let dir = tiny_corpus();
        let corpus = Corpus::open(dir.path()).unwrap();
        let file = &corpus.files()[0];
        let series = corpus.read_series(file).unwrap();
        let out = dir.path().join("results");
        let path = results_path(&out, "zscore", file);
        assert!(path.ends_with("zscore/cat/zscore_a.csv"));
        write_scores(&path, &series, &file.windows, &[0.0, 0.25, 1.0 / 3.0]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().take(3).collect::<Vec<_>>(),
            [
                "timestamp,value,anomaly_score,label",
                "2020-01-01 00:00:00,1.0,0,0",
                "2020-01-01 00:05:00,2,0.25,1"
            ]
        );
        assert_eq!(read_scores(&path, &series).unwrap(), [0.0, 0.25, 1.0 / 3.0]);
    }

    #[test]
    fn result_files_that_do_not_line_up_are_rejected_with_the_line() {
        let dir = tiny_corpus();
        let corpus = Corpus::open(dir.path()).unwrap();
        let series = corpus.read_series(&corpus.files()[0]).unwrap();
        let path = dir.path().join("r.csv");
        let check = |text: &str| {
            std::fs::write(&path, text).unwrap();
            read_scores(&path, &series).unwrap_err().to_string()
        };
        let short = check("timestamp,anomaly_score\n2020-01-01 00:00:00,0.5\n");
        assert!(short.contains("1 rows, but the data file has 3"), "{short}");
        let shifted = check("timestamp,anomaly_score\n2020-01-01 00:05:00,0.5\n");
        assert!(
            shifted.contains(":2:") && shifted.contains("differs"),
            "{shifted}"
        );
        let nan = check("anomaly_score,timestamp\nnan,2020-01-01 00:00:00\n");
        assert!(nan.contains("not a finite number"), "{nan}");
        let no_column = check("timestamp,score\n");
        assert!(no_column.contains("no anomaly_score column"), "{no_column}");
    }

    #[test]
    fn a_folder_without_the_nab_layout_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Corpus::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a NAB corpus"), "{err}");
    }
}
