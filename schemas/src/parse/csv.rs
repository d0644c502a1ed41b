//! NAB-style CSV rows: `timestamp,value`, one point per row.
//!
//! The timestamp is a date-time text (`2013-12-02 21:15:00`, RFC 3339) or an integer in the
//! configured precision. Columns after the second (NAB result files carry `anomaly_score` and
//! `label`) are ignored. The metric name comes from [`ParseOptions::csv_metric`], since a row
//! carries none; a file source sets it from the file name. Header rows are recognised by
//! [`is_header`] and skipped by the caller, not passed here.

use super::{ParseOptions, SeriesCache};
use crate::error::{Error, Format, Result, excerpt};
use crate::point::MetricPoint;
use crate::time::parse_timestamp;

/// Parses one CSV row (already checked to be UTF-8 and within the size limit).
pub fn parse(
    text: &str,
    options: &ParseOptions,
    cache: &mut SeriesCache,
) -> Result<Vec<MetricPoint>> {
    let row = text.trim_end_matches(['\n', '\r']);
    if row.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut columns = row.split(',');
    let timestamp_text = columns.next().unwrap_or_default().trim();
    let value_text = columns.next().ok_or_else(|| Error::Syntax {
        format: Format::Csv,
        line: 1,
        column: row.len() + 1,
        message: "expected two columns, `timestamp,value`".into(),
    })?;
    let timestamp = parse_timestamp(unquote(timestamp_text), options.precision_for(Format::Csv))?;
    let value_text = unquote(value_text.trim());
    let value = value_text.parse::<f64>().map_err(|_| Error::Syntax {
        format: Format::Csv,
        line: 1,
        column: row.find(',').map_or(1, |c| c + 2),
        message: format!("value {:?} is not a number", excerpt(value_text, 64)),
    })?;
    let mut labels = Vec::new();
    let tenant = options.resolve_tenant(None, &mut labels);
    Ok(vec![options.point(
        cache,
        &tenant,
        &options.csv_metric,
        &labels,
        timestamp,
        value,
    )?])
}

/// Whether a CSV row is a header (`timestamp,value`, any case, optionally quoted) rather than data.
pub fn is_header(row: &str) -> bool {
    let first = row.split(',').next().unwrap_or_default().trim();
    unquote(first).eq_ignore_ascii_case("timestamp")
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_record;

    fn options() -> ParseOptions {
        ParseOptions {
            csv_metric: "machine_temperature".into(),
            ..ParseOptions::default()
        }
    }

    #[test]
    fn reads_nab_rows() {
        let p = parse_record(
            Format::Csv,
            b"2013-12-02 21:15:00,73.96732207\n",
            &options(),
            0,
        )
        .unwrap();
        assert_eq!(p[0].series.name(), "machine_temperature");
        assert_eq!(p[0].timestamp, 1_386_018_900_000);
        assert_eq!(p[0].value, 73.96732207);
        let p = parse_record(Format::Csv, b"\"1386018900000\",\"2\",0.5,1", &options(), 0).unwrap();
        assert_eq!((p[0].timestamp, p[0].value), (1_386_018_900_000, 2.0));
    }

    #[test]
    fn recognises_headers() {
        assert!(is_header("timestamp,value"));
        assert!(is_header("\"Timestamp\",\"value\",\"label\""));
        assert!(!is_header("2013-12-02 21:15:00,1"));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(matches!(
            parse_record(Format::Csv, b"2013-12-02 21:15:00", &options(), 0),
            Err(Error::Syntax { .. })
        ));
        assert!(matches!(
            parse_record(Format::Csv, b"2013-12-02 21:15:00,abc", &options(), 0),
            Err(Error::Syntax { column: 21, .. })
        ));
        assert!(matches!(
            parse_record(Format::Csv, b"yesterday,1", &options(), 0),
            Err(Error::InvalidTimestamp { .. })
        ));
        assert!(matches!(
            parse_record(Format::Csv, b"2013-12-02 21:15:00,nan", &options(), 0),
            Err(Error::NonFiniteValue { .. })
        ));
    }
}
