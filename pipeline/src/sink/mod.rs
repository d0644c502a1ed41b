//! Sinks: where events and dead letters go once they leave the dataflow.
//!
//! Workers hand their output to the thread that drives the pipeline, which writes it to one
//! [`Sink`]; [`Fanout`] sends it to several. Sinks here: JSON lines to any writer
//! ([`JsonLines`]), a dead-letter file ([`DeadLetterFile`]), and the in-process broadcast
//! [`bus::Bus`], the embedded default the gateway reads from; with features, Redis
//! (`redis::RedisSink`) and Kafka dead-letter and anomalies topics (`kafka::KafkaSink`); and
//! Parquet files of events (`parquet::write_events`, feature `parquet`).

pub mod bus;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "parquet")]
pub mod parquet;
#[cfg(feature = "redis")]
pub mod redis;

use std::io::Write;

use aiops_schemas::{AnomalyEvent, DriftEvent};

use crate::error::{Error, Result};
use crate::record::{DeadLetter, ScoreSample};

/// A destination for the pipeline's output.
pub trait Sink {
    /// Takes a batch of events.
    fn events(&mut self, events: &[AnomalyEvent]) -> Result<()>;

    /// Takes a batch of dead letters; the default ignores them (they are still counted).
    fn dead_letters(&mut self, _letters: &[DeadLetter]) -> Result<()> {
        Ok(())
    }

    /// Takes a batch of drift events; the default ignores them (they are still counted).
    fn drift(&mut self, _events: &[DriftEvent]) -> Result<()> {
        Ok(())
    }

    /// Takes a batch of scored points (only with `RunOptions::samples`); the default ignores
    /// them.
    fn samples(&mut self, _samples: &[ScoreSample]) -> Result<()> {
        Ok(())
    }

    /// Writes out anything buffered.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Every sink in turn.
#[derive(Default)]
pub struct Fanout<'a>(pub Vec<Box<dyn Sink + 'a>>);

impl Sink for Fanout<'_> {
    fn events(&mut self, events: &[AnomalyEvent]) -> Result<()> {
        self.0.iter_mut().try_for_each(|s| s.events(events))
    }

    fn dead_letters(&mut self, letters: &[DeadLetter]) -> Result<()> {
        self.0.iter_mut().try_for_each(|s| s.dead_letters(letters))
    }

    fn drift(&mut self, events: &[DriftEvent]) -> Result<()> {
        self.0.iter_mut().try_for_each(|s| s.drift(events))
    }

    fn samples(&mut self, samples: &[ScoreSample]) -> Result<()> {
        self.0.iter_mut().try_for_each(|s| s.samples(samples))
    }

    fn flush(&mut self) -> Result<()> {
        self.0.iter_mut().try_for_each(|s| s.flush())
    }
}

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

/// Keeps everything in memory: for tests and for callers that post-process a run.
#[derive(Debug, Default)]
pub struct Collect {
    /// The events, in arrival order.
    pub events: Vec<AnomalyEvent>,
    /// The dead letters, in arrival order.
    pub dead_letters: Vec<DeadLetter>,
    /// The drift events, in arrival order.
    pub drift: Vec<DriftEvent>,
    /// The scored points, in arrival order (only with `RunOptions::samples`).
    pub samples: Vec<ScoreSample>,
}

impl Sink for Collect {
    fn events(&mut self, events: &[AnomalyEvent]) -> Result<()> {
        self.events.extend_from_slice(events);
        Ok(())
    }

    fn dead_letters(&mut self, letters: &[DeadLetter]) -> Result<()> {
        self.dead_letters.extend_from_slice(letters);
        Ok(())
    }

    fn drift(&mut self, events: &[DriftEvent]) -> Result<()> {
        self.drift.extend_from_slice(events);
        Ok(())
    }

    fn samples(&mut self, samples: &[ScoreSample]) -> Result<()> {
        self.samples.extend_from_slice(samples);
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn events(&mut self, events: &[AnomalyEvent]) -> Result<()> {
        (**self).events(events)
    }

    fn dead_letters(&mut self, letters: &[DeadLetter]) -> Result<()> {
        (**self).dead_letters(letters)
    }

    fn drift(&mut self, events: &[DriftEvent]) -> Result<()> {
        (**self).drift(events)
    }

    fn samples(&mut self, samples: &[ScoreSample]) -> Result<()> {
        (**self).samples(samples)
    }

    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
}
