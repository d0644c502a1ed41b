//! What a sink is to the pipeline: where events, dead letters, drift events and scored points
//! go once they leave the dataflow.
//!
//! Workers hand their output to the thread that drives the pipeline, which writes it to one
//! [`Sink`]; [`Fanout`] sends it to several, [`Collect`] keeps everything in memory. The sinks
//! that write somewhere (files, the in-process bus, Redis, Kafka, Parquet) are in
//! `aiops-connectors`.

use aiops_schemas::{AnomalyEvent, ConfigNotice, DriftEvent};

use crate::error::Result;
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

    /// Takes notices about detector configurations (applied or refused by this instance); the
    /// default ignores them.
    fn config(&mut self, _notices: &[ConfigNotice]) -> Result<()> {
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

    fn config(&mut self, notices: &[ConfigNotice]) -> Result<()> {
        self.0.iter_mut().try_for_each(|s| s.config(notices))
    }

    fn flush(&mut self) -> Result<()> {
        self.0.iter_mut().try_for_each(|s| s.flush())
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
    /// The configuration notices, in arrival order.
    pub config: Vec<ConfigNotice>,
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

    fn config(&mut self, notices: &[ConfigNotice]) -> Result<()> {
        self.config.extend_from_slice(notices);
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

    fn config(&mut self, notices: &[ConfigNotice]) -> Result<()> {
        (**self).config(notices)
    }

    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
}
