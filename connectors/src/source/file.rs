//! The file source: one record per line, in NAB CSV, JSON or Influx line protocol.
//!
//! Lines are cut into batches of `batch_lines`; batch `b` is epoch `b` and belongs to worker
//! `b % peers`. Every worker reads the file and skips the batches of the others, which costs a
//! scan for newlines and buys parallel parsing. A line's number is its position (`seq`), so the
//! order of a series' points is the file's order for any number of workers.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use aiops_schemas::{
    Format, MetricPoint, ParseOptions, SeriesCache, parse::csv::is_header, parse_record_cached,
};

use super::single_format;
use aiops_pipeline::dataflow::RecordFormats;
use aiops_pipeline::record::{PartitionId, RawRecord};
use aiops_pipeline::source::{Batch, Poll, Source, SourceContext, WorkerSource};
use aiops_pipeline::{Error, Result};

/// Lines per batch (and epoch) unless configured.
pub const DEFAULT_BATCH_LINES: usize = 1024;

/// A file of records.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
    format: Format,
    batch_lines: usize,
    max_line_bytes: usize,
}

impl FileSource {
    /// A file source; `format` is detected from the name or the first line when `None`.
    pub fn new(path: impl Into<PathBuf>, format: Option<Format>) -> Result<FileSource> {
        let path = path.into();
        let file = File::open(&path).map_err(|e| Error::io("cannot read", &path, e))?;
        let format = match format {
            Some(format) => format,
            None => detect_format(&path, file)?,
        };
        Ok(FileSource {
            path,
            format,
            batch_lines: DEFAULT_BATCH_LINES,
            max_line_bytes: ParseOptions::default().limits.max_record_bytes,
        })
    }

    /// Sets the lines per batch (at least 1).
    pub fn with_batch_lines(mut self, batch_lines: usize) -> FileSource {
        self.batch_lines = batch_lines.max(1);
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format its lines are parsed as.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Every valid point of the file in file order, and how many records were rejected: for
    /// offline uses (training) that need the points rather than a dataflow.
    pub fn read_points(&self, base: &ParseOptions) -> Result<(Vec<MetricPoint>, u64)> {
        let options = ParseOptions {
            csv_metric: self.metric_name(),
            ..base.clone()
        };
        let mut reader = self.worker(0, 1)?;
        let mut cache = SeriesCache::new(4096);
        let now = aiops_schemas::system_now();
        let (mut points, mut rejected) = (Vec::new(), 0);
        while reader.read_line()? {
            if reader.is_record() {
                match parse_record_cached(self.format, &reader.buffer, &options, now, &mut cache) {
                    Ok(mut parsed) => points.append(&mut parsed),
                    Err(_) => rejected += 1,
                }
            }
            reader.line_number += 1;
        }
        Ok((points, rejected))
    }

    /// The metric name CSV rows get: the file name without its extension.
    pub fn metric_name(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "value".to_owned())
    }
}

/// Picks a format from the extension, else from the first non-empty line.
fn detect_format(path: &Path, file: File) -> Result<Format> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("csv") => return Ok(Format::Csv),
        Some("json" | "jsonl" | "ndjson") => return Ok(Format::Json),
        Some("influx" | "lp" | "line") => return Ok(Format::Influx),
        _ => {}
    }
    let mut reader = BufReader::new(file.take(64 * 1024));
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            line.clear();
            continue;
        }
        return Ok(if trimmed.starts_with('{') || trimmed.starts_with('[') {
            Format::Json
        } else if is_header(trimmed) {
            Format::Csv
        } else if trimmed.contains(' ') && trimmed.contains('=') {
            Format::Influx
        } else if trimmed.contains(',') {
            Format::Csv
        } else {
            break;
        });
    }
    Err(Error::UnknownFormat {
        path: path.to_owned(),
    })
}

impl Source for FileSource {
    fn describe(&self) -> String {
        format!("file {} ({})", self.path.display(), self.format)
    }

    fn formats(&self, base: &ParseOptions) -> RecordFormats {
        let options = ParseOptions {
            csv_metric: self.metric_name(),
            ..base.clone()
        };
        single_format(self.format, &options)
    }

    fn open(
        &self,
        index: usize,
        peers: usize,
        _context: &SourceContext,
    ) -> Result<Box<dyn WorkerSource>> {
        Ok(Box::new(self.worker(index, peers)?))
    }
}

impl FileSource {
    /// Worker `index` of `peers`' share of the file (batches of lines in turn).
    fn worker(&self, index: usize, peers: usize) -> Result<FileWorker> {
        let file = File::open(&self.path).map_err(|e| Error::io("cannot read", &self.path, e))?;
        Ok(FileWorker {
            path: self.path.clone(),
            reader: BufReader::with_capacity(256 * 1024, file),
            format: self.format,
            batch_lines: self.batch_lines as u64,
            max_line_bytes: self.max_line_bytes,
            index: index as u64,
            peers: peers as u64,
            line_number: 0,
            done: false,
            buffer: Vec::new(),
        })
    }
}

/// Every record file under a directory (recursively, in path order) as one source: each file
/// goes whole to one worker (files in turn), so a file's series stay in order on one worker;
/// a CSV file's rows are named after the file, as with one file. Records carry their file's
/// number as partition, so the parse stage picks each file's format.
#[derive(Debug, Clone)]
pub struct DirectorySource {
    root: PathBuf,
    files: Vec<FileSource>,
}

impl DirectorySource {
    /// The record files under `root` (by extension: csv, json, jsonl, ndjson, influx, lp,
    /// line); `format` forces one format for all.
    pub fn new(root: impl Into<PathBuf>, format: Option<Format>) -> Result<DirectorySource> {
        let root = root.into();
        let mut paths = Vec::new();
        collect_files(&root, &mut paths)?;
        paths.sort();
        let files = paths
            .into_iter()
            .filter(|p| {
                let extension = p
                    .extension()
                    .map(|e| e.to_string_lossy().to_ascii_lowercase());
                matches!(
                    extension.as_deref(),
                    Some("csv" | "json" | "jsonl" | "ndjson" | "influx" | "lp" | "line")
                )
            })
            .map(|p| FileSource::new(p, format))
            .collect::<Result<Vec<_>>>()?;
        if files.is_empty() {
            return Err(Error::config(format!(
                "no record files (csv, json lines, influx lines) under {}",
                root.display()
            )));
        }
        if files.len() > usize::from(u16::MAX) {
            return Err(Error::config(format!(
                "{} files under {}: at most 65535",
                files.len(),
                root.display()
            )));
        }
        Ok(DirectorySource { root, files })
    }

    /// The files, in the order their records are numbered.
    pub fn files(&self) -> &[FileSource] {
        &self.files
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("cannot read", dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| Error::io("cannot read", dir, e))?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

impl Source for DirectorySource {
    fn describe(&self) -> String {
        format!("{} files under {}", self.files.len(), self.root.display())
    }

    fn formats(&self, base: &ParseOptions) -> RecordFormats {
        RecordFormats::per_topic(
            self.files
                .iter()
                .map(|f| {
                    let options = ParseOptions {
                        csv_metric: f.metric_name(),
                        ..base.clone()
                    };
                    (f.format, options)
                })
                .collect(),
        )
    }

    fn open(
        &self,
        index: usize,
        peers: usize,
        _context: &SourceContext,
    ) -> Result<Box<dyn WorkerSource>> {
        let mine: Vec<(PartitionId, FileSource)> = self
            .files
            .iter()
            .enumerate()
            .filter(|(i, _)| i % peers.max(1) == index)
            .map(|(i, f)| (PartitionId::new(i, 0), f.clone()))
            .collect();
        Ok(Box::new(DirectoryWorker {
            files: mine.into_iter().collect(),
            current: None,
            epoch_base: 0,
        }))
    }
}

/// One worker's files, read whole one after the other, with epochs running on across files.
struct DirectoryWorker {
    files: std::collections::VecDeque<(PartitionId, FileSource)>,
    current: Option<(PartitionId, FileWorker)>,
    epoch_base: u64,
}

impl WorkerSource for DirectoryWorker {
    fn poll(&mut self) -> Result<Poll> {
        loop {
            if self.current.is_none() {
                let Some((partition, file)) = self.files.pop_front() else {
                    return Ok(Poll::Done);
                };
                self.current = Some((partition, file.worker(0, 1)?));
            }
            let Some((partition, worker)) = self.current.as_mut() else {
                continue;
            };
            match worker.poll()? {
                Poll::Ready { epoch, batch } => {
                    let batch = match batch {
                        Batch::Raw(mut records) => {
                            for record in &mut records {
                                record.partition = *partition;
                            }
                            Batch::Raw(records)
                        }
                        other => other,
                    };
                    return Ok(Poll::Ready {
                        epoch: self.epoch_base + epoch,
                        batch,
                    });
                }
                Poll::Idle => return Ok(Poll::Idle),
                Poll::Done => {
                    self.epoch_base += worker.next_epoch();
                    self.current = None;
                }
            }
        }
    }

    fn next_epoch(&self) -> u64 {
        self.epoch_base + self.current.as_ref().map_or(0, |(_, w)| w.next_epoch())
    }
}

struct FileWorker {
    path: PathBuf,
    reader: BufReader<File>,
    format: Format,
    batch_lines: u64,
    max_line_bytes: usize,
    index: u64,
    peers: u64,
    line_number: u64,
    done: bool,
    buffer: Vec<u8>,
}

impl FileWorker {
    /// Reads the next line into `self.buffer` without its line ending; false at the end. A line
    /// longer than the record limit is cut one byte past it (so the parser still rejects it as
    /// too large) and the rest is skipped, so one huge line cannot exhaust memory.
    fn read_line(&mut self) -> Result<bool> {
        self.buffer.clear();
        let limit = self.max_line_bytes as u64 + 1;
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buffer)
            .map_err(|e| Error::io("cannot read", &self.path, e))?;
        if read == 0 {
            return Ok(false);
        }
        if self.buffer.last() == Some(&b'\n') {
            self.buffer.pop();
        } else if self.buffer.len() as u64 == limit {
            // Skip the rest of an oversize line.
            loop {
                let available = self
                    .reader
                    .fill_buf()
                    .map_err(|e| Error::io("cannot read", &self.path, e))?;
                if available.is_empty() {
                    break;
                }
                match available.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        self.reader.consume(end + 1);
                        break;
                    }
                    None => {
                        let n = available.len();
                        self.reader.consume(n);
                    }
                }
            }
        }
        if self.buffer.last() == Some(&b'\r') {
            self.buffer.pop();
        }
        Ok(true)
    }

    fn is_record(&self) -> bool {
        let text = self.buffer.trim_ascii();
        if text.is_empty() {
            return false;
        }
        match self.format {
            Format::Csv => {
                !(self.line_number == 0 && std::str::from_utf8(text).is_ok_and(is_header))
            }
            Format::Influx => !text.starts_with(b"#"),
            Format::Json => true,
        }
    }
}

impl WorkerSource for FileWorker {
    fn poll(&mut self) -> Result<Poll> {
        while !self.done {
            let batch_index = self.line_number / self.batch_lines;
            let mine = batch_index % self.peers == self.index;
            let mut records = Vec::new();
            let batch_end = (batch_index + 1) * self.batch_lines;
            while self.line_number < batch_end {
                if !self.read_line()? {
                    self.done = true;
                    break;
                }
                if mine && self.is_record() {
                    records.push(RawRecord {
                        seq: self.line_number,
                        partition: PartitionId::default(),
                        received: aiops_schemas::system_now(),
                        key: None,
                        bytes: self.buffer.clone(),
                    });
                }
                self.line_number += 1;
            }
            if mine && !records.is_empty() {
                return Ok(Poll::Ready {
                    epoch: batch_index,
                    batch: Batch::Raw(records),
                });
            }
        }
        Ok(Poll::Done)
    }

    fn next_epoch(&self) -> u64 {
        // The first batch at or after the current line that belongs to this worker.
        let batch = self.line_number.div_ceil(self.batch_lines);
        batch + (self.index + self.peers - batch % self.peers) % self.peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        (dir, path)
    }

    fn drain(source: &FileSource, index: usize, peers: usize) -> Vec<(u64, u64, String)> {
        let mut worker = source
            .open(index, peers, &crate::source::tests::context())
            .unwrap();
        let mut out = Vec::new();
        loop {
            match worker.poll().unwrap() {
                Poll::Ready {
                    epoch,
                    batch: Batch::Raw(records),
                } => {
                    assert!(worker.next_epoch() > epoch);
                    for r in records {
                        out.push((epoch, r.seq, String::from_utf8(r.bytes).unwrap()));
                    }
                }
                Poll::Done => return out,
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn detects_formats() {
        for (name, text, format) in [
            ("a.csv", "x", Format::Csv),
            ("a.jsonl", "x", Format::Json),
            ("a.lp", "x", Format::Influx),
            ("a.txt", "\n{\"name\":\"a\",\"value\":1}\n", Format::Json),
            ("a.txt", "# c\ncpu,host=a value=1 1\n", Format::Influx),
            ("a.txt", "timestamp,value\n", Format::Csv),
            ("a.txt", "2013-12-02 21:15:00,1\n", Format::Csv),
        ] {
            let (_dir, path) = file(name, text);
            assert_eq!(
                FileSource::new(&path, None).unwrap().format(),
                format,
                "{name}: {text:?}"
            );
        }
        let (_dir, path) = file("a.txt", "hello\n");
        assert!(matches!(
            FileSource::new(&path, None),
            Err(Error::UnknownFormat { .. })
        ));
        assert!(matches!(
            FileSource::new("/nonexistent/x.csv", None),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn workers_share_batches_in_turn_and_skip_headers_and_blank_lines() {
        let text = "timestamp,value\n2020-01-01 00:00:00,1\n\n2020-01-01 00:01:00,2\r\n2020-01-01 00:02:00,3\n2020-01-01 00:03:00,4";
        let (_dir, path) = file("m.csv", text);
        let source = FileSource::new(&path, None).unwrap().with_batch_lines(2);
        assert_eq!(source.metric_name(), "m");
        let w0 = drain(&source, 0, 2);
        let w1 = drain(&source, 1, 2);
        // Batches of two lines: [header, 1] [blank, 2] [3, 4].
        assert_eq!(
            w0,
            [
                (0, 1, "2020-01-01 00:00:00,1".into()),
                (2, 4, "2020-01-01 00:02:00,3".into()),
                (2, 5, "2020-01-01 00:03:00,4".into()),
            ]
        );
        assert_eq!(w1, [(1, 3, "2020-01-01 00:01:00,2".into())]);
        let single = drain(&source, 0, 1);
        assert_eq!(single.len(), 4);
    }

    #[test]
    fn oversize_lines_are_cut_and_the_rest_skipped() {
        let long = "x".repeat(100);
        let (_dir, path) = file(
            "a.jsonl",
            &format!("{long}\n{{\"name\":\"a\",\"value\":1}}\n"),
        );
        let mut source = FileSource::new(&path, None).unwrap();
        source.max_line_bytes = 30;
        let records = drain(&source, 0, 1);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].2.len(), 31, "cut one byte past the limit");
        assert_eq!(records[1].2, "{\"name\":\"a\",\"value\":1}");
    }
}
