//! Offline evaluation of detectors: how right their scores are on labelled data.
//!
//! - [`nab`]: the Numenta Anomaly Benchmark — its corpus layout, its scoring rules (windows,
//!   probation, scaled sigmoid, cost profiles, threshold sweep, normalization) and a runner that
//!   feeds every corpus file through a detector template and writes results in NAB's layout.
//!
//! - [`multi`]: several labelled corpora at once (NAB, fetched public corpora, generated young
//!   series) by composite F1, false alarms, delay and leave-one-corpus-out, aiops templates
//!   beside the rolling z-score and peer libraries' scores.
//! - [`backtest`]: a replay's events and scores against labelled incidents (precision, recall,
//!   F1 event- and point-wise, detection delay).
//! - [`report`]: the self-contained HTML backtest report with SVG plots, and its JSON twin.
//! - `aggregate` (feature `polars`): per-group figures of a backtest, aggregated with polars.
//!
//! Nothing here runs in the live pipeline; it reads files, scores them and writes files.

#[cfg(feature = "polars")]
pub mod aggregate;
pub mod backtest;
pub mod error;
pub mod multi;
pub mod nab;
mod parallel;
pub mod report;

pub use error::{Error, Result};
