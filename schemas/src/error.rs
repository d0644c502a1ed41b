//! The one error type of `aiops-schemas`: everything that can be wrong with a metric record.
//!
//! Every variant names what was wrong and, where it helps, the limit that was crossed, so the
//! message can go verbatim into a dead-letter header and still tell a producer what to fix.

use std::fmt;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The part of a record a name-related error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The tenant the series belongs to.
    Tenant,
    /// The metric name (Influx: measurement, possibly joined with the field key).
    MetricName,
    /// A label (Influx: tag) key.
    LabelKey,
    /// A label (Influx: tag) value.
    LabelValue,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Tenant => "tenant",
            Field::MetricName => "metric name",
            Field::LabelKey => "label key",
            Field::LabelValue => "label value",
        })
    }
}

/// The record formats this crate parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object, or an array of them, per record.
    Json,
    /// InfluxDB line protocol, one or more lines per record (what Telegraf writes).
    Influx,
    /// NAB-style CSV: `timestamp,value`, one row per record.
    Csv,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Json => "json",
            Format::Influx => "influx",
            Format::Csv => "csv",
        })
    }
}

/// Why a record was rejected. Bad input never panics: it becomes one of these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The value is NaN or infinite; only finite numbers can be scored.
    #[error("value {value} is not a finite number")]
    NonFiniteValue {
        /// The offending value as parsed.
        value: f64,
    },
    /// The value's magnitude is above the configured limit.
    #[error("value {value:e} is beyond ±{max:e}")]
    ValueOutOfRange {
        /// The offending value.
        value: f64,
        /// The configured maximum magnitude.
        max: f64,
    },
    /// A tenant, metric name or label key is empty.
    #[error("{field} is empty")]
    Empty {
        /// Which part was empty.
        field: Field,
    },
    /// A name or label is longer than the configured limit (in bytes).
    #[error("{field} is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Which part was too long.
        field: Field,
        /// Its length in bytes.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A name or label contains a character that is not allowed there.
    #[error("{field} {text:?} contains {found:?}, which is not allowed ({allowed})")]
    InvalidCharacter {
        /// Which part held the character.
        field: Field,
        /// The offending text (truncated to 64 bytes).
        text: String,
        /// The first character that is not allowed.
        found: char,
        /// What is allowed, in words.
        allowed: &'static str,
    },
    /// The series has more labels than the configured limit.
    #[error("{count} labels; the limit is {max}")]
    TooManyLabels {
        /// How many labels the record had.
        count: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The same label key appears twice in one series.
    #[error("label {key:?} appears more than once")]
    DuplicateLabel {
        /// The repeated key.
        key: String,
    },
    /// The timestamp lies outside the accepted range.
    #[error(
        "timestamp {timestamp_ms} ms is outside the accepted range [{min_ms}, {max_ms}] ms since 1970-01-01"
    )]
    TimestampOutOfRange {
        /// The timestamp, in milliseconds since the Unix epoch.
        timestamp_ms: i64,
        /// The earliest accepted timestamp.
        min_ms: i64,
        /// The latest accepted timestamp.
        max_ms: i64,
    },
    /// The value is text that is not a number (`"high"`). (Before, this was a syntax error "at
    /// line 1, column 1", which pointed nowhere and was counted with broken JSON.)
    #[error("value {text:?} is not a number; send a JSON number (or a string that holds one)")]
    InvalidValue {
        /// The text that was given (truncated to 64 bytes).
        text: String,
    },
    /// A timestamp string could not be read.
    #[error(
        "cannot read timestamp {text:?}: expected RFC 3339 (2024-05-01T12:00:00Z), `YYYY-MM-DD HH:MM:SS` or an integer"
    )]
    InvalidTimestamp {
        /// The text that was given (truncated to 64 bytes).
        text: String,
    },
    /// The record is not valid UTF-8.
    #[error("record is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The record is larger than the configured limit.
    #[error("record is {len} bytes; the limit is {max}")]
    RecordTooLarge {
        /// The record's size in bytes.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The record is empty or holds no metric.
    #[error("record holds no metric")]
    EmptyRecord,
    /// The record does not follow the syntax of its format.
    #[error("{format} syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// The format that was being parsed.
        format: Format,
        /// 1-based line within the record.
        line: usize,
        /// 1-based byte column within that line.
        column: usize,
        /// What was expected or found.
        message: String,
    },
    /// A required field is missing from a JSON object.
    #[error("missing field {field:?}")]
    MissingField {
        /// The field's name.
        field: &'static str,
    },
}

impl Error {
    /// A short, stable identifier of the variant, for counters and dead-letter headers.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NonFiniteValue { .. } => "non_finite_value",
            Error::ValueOutOfRange { .. } => "value_out_of_range",
            Error::Empty { .. } => "empty_name",
            Error::TooLong { .. } => "too_long",
            Error::InvalidCharacter { .. } => "invalid_character",
            Error::TooManyLabels { .. } => "too_many_labels",
            Error::DuplicateLabel { .. } => "duplicate_label",
            Error::TimestampOutOfRange { .. } => "timestamp_out_of_range",
            Error::InvalidValue { .. } => "invalid_value",
            Error::InvalidTimestamp { .. } => "invalid_timestamp",
            Error::InvalidUtf8 { .. } => "invalid_utf8",
            Error::RecordTooLarge { .. } => "record_too_large",
            Error::EmptyRecord => "empty_record",
            Error::Syntax { .. } => "syntax",
            Error::MissingField { .. } => "missing_field",
        }
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, for quoting user input in messages.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
