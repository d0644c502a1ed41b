//! Sinks that write JSON lines: events to any writer (stdout, a file), dead letters to a file.

use std::io::Write;

use aiops_pipeline::record::DeadLetter;
use aiops_pipeline::sink::Sink;
use aiops_pipeline::{Error, Result};
use aiops_schemas::AnomalyEvent;

/// Events as JSON lines (one object per line) to a writer: stdout, a file.
pub struct JsonLines<W: Write> {
    name: String,
    writer: W,
}

impl<W: Write> JsonLines<W> {
    /// Writes to `writer`; `name` appears in errors (`stdout`, the file's path).
    pub fn new(name: impl Into<String>, writer: W) -> JsonLines<W> {
        JsonLines {
            name: name.into(),
            writer,
        }
    }

    fn fail(&self, source: std::io::Error) -> Error {
        Error::Sink {
            sink: self.name.clone(),
            source,
        }
    }
}

impl<W: Write> Sink for JsonLines<W> {
    fn events(&mut self, events: &[AnomalyEvent]) -> Result<()> {
        for event in events {
            serde_json::to_writer(&mut self.writer, event).map_err(|e| self.fail(e.into()))?;
            self.writer.write_all(b"\n").map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.writer.flush().map_err(|e| self.fail(e))
    }
}

/// Dead letters as JSON lines (`seq`, `format`, `kind`, `reason`, and the record).
pub struct DeadLetterFile<W: Write> {
    name: String,
    writer: W,
}

impl<W: Write> DeadLetterFile<W> {
    /// Writes to `writer`; `name` appears in errors.
    pub fn new(name: impl Into<String>, writer: W) -> DeadLetterFile<W> {
        DeadLetterFile {
            name: name.into(),
            writer,
        }
    }
}

impl<W: Write> Sink for DeadLetterFile<W> {
    fn events(&mut self, _events: &[AnomalyEvent]) -> Result<()> {
        Ok(())
    }

    fn dead_letters(&mut self, letters: &[DeadLetter]) -> Result<()> {
        let fail = |source| Error::Sink {
            sink: self.name.clone(),
            source,
        };
        for letter in letters {
            let line = letter.to_json().to_string();
            self.writer.write_all(line.as_bytes()).map_err(fail)?;
            self.writer.write_all(b"\n").map_err(fail)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.writer.flush().map_err(|source| Error::Sink {
            sink: self.name.clone(),
            source,
        })
    }
}
