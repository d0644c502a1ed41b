//! Labelled series from any source in one shape: values with a 0/1 label per point, grouped in
//! named corpora. Read from (and written to) a plain layout every tool can produce —
//! `<dir>/<corpus>/<series>.csv` with the header `timestamp,value,label` — or adapted from NAB.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::nab;

/// The header of a labelled series file.
pub const HEADER: &str = "timestamp,value,label";

/// One series with a label per point (true: inside a labelled anomaly).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelledSeries {
    /// Name within its corpus (the file name without `.csv`).
    pub name: String,
    /// Milliseconds since the Unix epoch, strictly increasing.
    pub timestamps: Vec<i64>,
    /// Finite values.
    pub values: Vec<f64>,
    /// One label per point.
    pub labels: Vec<bool>,
}

impl LabelledSeries {
    /// Points in the series.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether it has no point.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// A named set of labelled series from one source.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelledCorpus {
    /// Its name (`nab`, `young`, or the directory name).
    pub name: String,
    /// Its series, in name order.
    pub series: Vec<LabelledSeries>,
    /// For NAB: the corpus root, so that NAB's own score can be given too.
    pub nab_root: Option<PathBuf>,
}

impl LabelledCorpus {
    /// Points over all series.
    pub fn points(&self) -> usize {
        self.series.iter().map(LabelledSeries::len).sum()
    }
}

/// Reads every `<dir>/<corpus>/*.csv` as a corpus per sub-directory, in name order.
pub fn read_corpora(dir: &Path) -> Result<Vec<LabelledCorpus>> {
    let mut corpora = Vec::new();
    for entry in sorted_entries(dir)? {
        if entry.is_dir() {
            let corpus = read_corpus(&entry)?;
            if !corpus.series.is_empty() {
                corpora.push(corpus);
            }
        }
    }
    Ok(corpora)
}

/// Reads the `*.csv` files of one directory as a corpus named after it.
pub fn read_corpus(dir: &Path) -> Result<LabelledCorpus> {
    let mut series = Vec::new();
    for path in sorted_entries(dir)? {
        if path.extension().is_some_and(|e| e == "csv") {
            series.push(read_series(&path)?);
        }
    }
    Ok(LabelledCorpus {
        name: file_stem(dir),
        series,
        nab_root: None,
    })
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("cannot list", dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads one labelled series file; every malformed line is an error naming it.
pub fn read_series(path: &Path) -> Result<LabelledSeries> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    parse_series(&file_stem(path), &text)
        .map_err(|(line, message)| Error::malformed(path, Some(line), message))
}

/// Parses the text of a labelled series file; errors carry the 1-based line.
pub fn parse_series(
    name: &str,
    text: &str,
) -> std::result::Result<LabelledSeries, (usize, String)> {
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, l)| l.trim()).unwrap_or_default();
    if header != HEADER {
        return Err((1, format!("expected the header {HEADER}, found {header:?}")));
    }
    let mut series = LabelledSeries {
        name: name.to_owned(),
        ..LabelledSeries::default()
    };
    for (index, line) in lines {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let at = index + 1;
        let mut fields = line.split(',');
        let (Some(t), Some(v), Some(l), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err((at, format!("expected {HEADER}, found {line:?}")));
        };
        let timestamp: i64 = t
            .trim()
            .parse()
            .map_err(|_| (at, format!("timestamp {t:?} is not whole milliseconds")))?;
        if series
            .timestamps
            .last()
            .is_some_and(|&last| timestamp <= last)
        {
            return Err((at, format!("timestamp {timestamp} does not increase")));
        }
        let value: f64 = v
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| (at, format!("value {v:?} is not a finite number")))?;
        let label = match l.trim() {
            "0" | "0.0" => false,
            "1" | "1.0" => true,
            other => return Err((at, format!("label {other:?} is neither 0 nor 1"))),
        };
        series.timestamps.push(timestamp);
        series.values.push(value);
        series.labels.push(label);
    }
    Ok(series)
}

/// Writes a corpus as `<dir>/<corpus>/<series>.csv`.
pub fn write_corpus(dir: &Path, corpus: &LabelledCorpus) -> Result<()> {
    let root = dir.join(&corpus.name);
    std::fs::create_dir_all(&root).map_err(|e| Error::io("cannot create", &root, e))?;
    for series in &corpus.series {
        let mut text = String::with_capacity(series.len() * 24 + HEADER.len() + 1);
        text.push_str(HEADER);
        text.push('\n');
        for ((t, v), l) in series
            .timestamps
            .iter()
            .zip(&series.values)
            .zip(&series.labels)
        {
            text.push_str(&format!("{t},{v},{}\n", u8::from(*l)));
        }
        let path = root.join(format!("{}.csv", series.name));
        std::fs::write(&path, text).map_err(|e| Error::io("cannot write", &path, e))?;
    }
    Ok(())
}

/// The NAB corpus as labelled series: a point is labelled when it lies in an anomaly window.
pub fn from_nab(corpus: &nab::Corpus) -> Result<LabelledCorpus> {
    let mut series = Vec::with_capacity(corpus.files().len());
    for file in corpus.files() {
        let data = corpus.read_series(file)?;
        let labels = data
            .timestamps
            .iter()
            .map(|&t| file.windows.iter().any(|w| w.contains(t)))
            .collect();
        series.push(LabelledSeries {
            // Category and file, so names stay unique and say where they come from.
            name: file
                .name
                .trim_end_matches(".csv")
                .replace(['/', '\\'], "--"),
            timestamps: data.timestamps,
            values: data.values,
            labels,
        });
    }
    Ok(LabelledCorpus {
        name: "nab".to_owned(),
        series,
        nab_root: Some(corpus.root().to_path_buf()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_file_round_trips_and_bad_lines_name_their_line() {
        let text = "timestamp,value,label\n0,1.5,0\n60000,2,1\n120000,-3e2,0\n";
        let series = parse_series("s", text).unwrap();
        assert_eq!(series.values, [1.5, 2.0, -300.0]);
        assert_eq!(series.labels, [false, true, false]);
        let dir = tempfile::tempdir().unwrap();
        let corpus = LabelledCorpus {
            name: "c".into(),
            series: vec![series.clone()],
            nab_root: None,
        };
        write_corpus(dir.path(), &corpus).unwrap();
        let back = read_corpora(dir.path()).unwrap();
        assert_eq!(back, [corpus]);
        for (bad, line) in [
            ("timestamp,value\n", 1),
            ("timestamp,value,label\n0,1,0\n0,1,0\n", 3),
            ("timestamp,value,label\n0,NaN,0\n", 2),
            ("timestamp,value,label\n0,1,2\n", 2),
            ("timestamp,value,label\n0,1\n", 2),
            ("timestamp,value,label\nx,1,0\n", 2),
        ] {
            assert_eq!(parse_series("s", bad).unwrap_err().0, line, "{bad:?}");
        }
    }
}
