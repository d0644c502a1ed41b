//! Parsers that turn producers' records into validated [`MetricPoint`]s.
//!
//! A *record* is what one producer call delivers: a Kafka message, one line of a file. Each
//! record either yields all its points or one [`Error`] saying what is wrong with it, so the
//! caller can route the untouched bytes to a dead-letter sink: nothing is half-accepted and
//! nothing is lost. No input makes a parser panic (property-tested).
//!
//! Formats: [`Format::Json`] (see [`json`]), [`Format::Influx`] (see [`influx`]) and
//! [`Format::Csv`] (see [`csv`]).

pub mod cache;
pub mod csv;
pub mod influx;
pub mod json;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Format, Result};
use crate::limits::Limits;
use crate::point::MetricPoint;
use crate::time::{Precision, TimestampMs};

pub use cache::SeriesCache;

/// How records are turned into points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParseOptions {
    /// Tenant of records that name none.
    pub default_tenant: String,
    /// When set, every record belongs to this tenant whatever it says (e.g. one topic per
    /// tenant, where a producer must not be able to write into another tenant's series).
    pub fixed_tenant: Option<String>,
    /// A label (Influx: tag) with this key names the tenant; it is removed from the labels.
    pub tenant_label: Option<String>,
    /// Unit of integer timestamps; `None` means the format's default (Influx: ns, else ms).
    pub precision: Option<Precision>,
    /// Metric name of CSV rows, which carry only `timestamp,value`.
    pub csv_metric: String,
    /// What a record may hold.
    pub limits: Limits,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            default_tenant: "default".to_owned(),
            fixed_tenant: None,
            tenant_label: Some("tenant".to_owned()),
            precision: None,
            csv_metric: "value".to_owned(),
            limits: Limits::default(),
        }
    }
}

impl ParseOptions {
    fn precision_for(&self, format: Format) -> Precision {
        self.precision.unwrap_or(match format {
            Format::Influx => Precision::Nanoseconds,
            Format::Json | Format::Csv => Precision::Milliseconds,
        })
    }

    /// Picks the tenant of a record: the fixed tenant, else the record's own (an explicit field,
    /// else the tenant label), else the default. The tenant label is removed from `labels`.
    fn resolve_tenant<'a>(
        &'a self,
        explicit: Option<&'a str>,
        labels: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
    ) -> Cow<'a, str> {
        let from_label = self.tenant_label.as_deref().and_then(|key| {
            let index = labels.iter().position(|(k, _)| k == key)?;
            Some(labels.swap_remove(index).1)
        });
        if let Some(fixed) = &self.fixed_tenant {
            return Cow::Borrowed(fixed);
        }
        explicit
            .map(Cow::Borrowed)
            .or(from_label)
            .unwrap_or(Cow::Borrowed(&self.default_tenant))
    }

    /// Builds and validates one point, its series from `cache`.
    fn point(
        &self,
        cache: &mut SeriesCache,
        tenant: &str,
        name: &str,
        labels: &[(Cow<'_, str>, Cow<'_, str>)],
        timestamp: TimestampMs,
        value: f64,
    ) -> Result<MetricPoint> {
        let series = cache.series(tenant, name, labels, &self.limits)?;
        MetricPoint::new(series, timestamp, value, &self.limits)
    }
}

/// Parses one record of `format`. `now` is the timestamp given to points that carry none
/// (the ingestion time, in milliseconds since the Unix epoch).
pub fn parse_record(
    format: Format,
    record: &[u8],
    options: &ParseOptions,
    now: TimestampMs,
) -> Result<Vec<MetricPoint>> {
    parse_record_cached(format, record, options, now, &mut SeriesCache::new(0))
}

/// [`parse_record`], reusing the series of earlier records from `cache`.
pub fn parse_record_cached(
    format: Format,
    record: &[u8],
    options: &ParseOptions,
    now: TimestampMs,
    cache: &mut SeriesCache,
) -> Result<Vec<MetricPoint>> {
    options.limits.check_record_size(record.len())?;
    let text = std::str::from_utf8(record).map_err(|e| Error::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let points = match format {
        Format::Json => json::parse(text, options, now, cache)?,
        Format::Influx => influx::parse(text, options, now, cache)?,
        Format::Csv => csv::parse(text, options, cache)?,
    };
    if points.is_empty() {
        return Err(Error::EmptyRecord);
    }
    Ok(points)
}

/// 1-based (line, column) of byte `offset` in `text`, for error messages.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn oversize_and_non_utf8_records_are_rejected_before_parsing() {
        let options = ParseOptions {
            limits: Limits {
                max_record_bytes: 8,
                ..Limits::default()
            },
            ..ParseOptions::default()
        };
        assert_eq!(
            parse_record(Format::Influx, b"cpu value=1 1", &options, 0),
            Err(Error::RecordTooLarge { len: 13, max: 8 })
        );
        assert_eq!(
            parse_record(Format::Json, b"{\xff}", &ParseOptions::default(), 0),
            Err(Error::InvalidUtf8 { offset: 1 })
        );
    }

    #[test]
    fn empty_records_are_an_error_not_silence() {
        for format in [Format::Json, Format::Influx, Format::Csv] {
            assert_eq!(
                parse_record(format, b"", &ParseOptions::default(), 0),
                Err(Error::EmptyRecord),
                "{format}"
            );
        }
        assert_eq!(
            parse_record(Format::Json, b"[]", &ParseOptions::default(), 0),
            Err(Error::EmptyRecord)
        );
    }

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn fixed_tenant_overrides_what_the_record_says() {
        let options = ParseOptions {
            fixed_tenant: Some("blue".into()),
            ..ParseOptions::default()
        };
        let points =
            parse_record(Format::Influx, b"cpu,tenant=red value=1 0", &options, 0).unwrap();
        assert_eq!(points[0].series.tenant(), "blue");
        assert!(points[0].series.labels().is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn no_bytes_make_a_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            for format in [Format::Json, Format::Influx, Format::Csv] {
                let _ = parse_record(format, &bytes, &ParseOptions::default(), 0);
            }
        }

        #[test]
        fn the_series_cache_changes_nothing(
            records in proptest::collection::vec(
                (0usize..3, 0usize..3, 0usize..3, -1e6f64..1e6),
                1..60,
            ),
        ) {
            // Few distinct names and labels, written in varying orders: many hits, some misses.
            let names = ["cpu", "mem", "disk"];
            let hosts = ["a", "b", "c d"];
            let mut cache = SeriesCache::new(4);
            for (name, host, order, value) in records {
                let json = match order {
                    0 => format!(r#"{{"name":"{}","labels":{{"host":"{}","dc":"x"}},"value":{value},"timestamp":5}}"#, names[name], hosts[host]),
                    1 => format!(r#"{{"name":"{}","labels":{{"dc":"x","host":"{}"}},"value":{value},"timestamp":5}}"#, names[name], hosts[host]),
                    _ => format!(r#"{{"name":"{}","tags":{{"tenant":"t{}"}},"value":{value},"timestamp":5}}"#, names[name], host),
                };
                let cached = parse_record_cached(Format::Json, json.as_bytes(), &ParseOptions::default(), 0, &mut cache);
                let fresh = parse_record(Format::Json, json.as_bytes(), &ParseOptions::default(), 0);
                prop_assert_eq!(cached, fresh);
                let line = format!("{},host={} value={value} 5", names[name], hosts[host].replace(' ', "\\ "));
                let cached = parse_record_cached(Format::Influx, line.as_bytes(), &ParseOptions::default(), 0, &mut cache);
                let fresh = parse_record(Format::Influx, line.as_bytes(), &ParseOptions::default(), 0);
                prop_assert_eq!(cached, fresh);
            }
        }

        #[test]
        fn no_near_valid_influx_makes_the_parser_panic(
            line in "[a-z\\\\, =\"]{0,6}(,[a-z\\\\=\" ]{0,4}=[a-z\\\\ ,\"]{0,4}){0,3} [a-z\\\\\"]{0,4}=(-?[0-9.e]{0,6}[iu]?|\"[a-z\\\\\" ,]{0,6}\"|true|F)(,[a-z]{1,3}=[0-9]{1,3})? ?-?[0-9]{0,20}"
        ) {
            let _ = parse_record(Format::Influx, line.as_bytes(), &ParseOptions::default(), 0);
        }

        #[test]
        fn no_near_valid_json_makes_the_parser_panic(
            text in "[\\[{]?\"(name|value|timestamp|labels|tenant)\":( ?-?[0-9.e]{0,25}|\"[a-z0-9 :T-]{0,20}\"|\\{\"[a-z]{0,3}\":[\"0-9a-z]{0,4}\\}|null|true),?[}\\]]?"
        ) {
            let _ = parse_record(Format::Json, text.as_bytes(), &ParseOptions::default(), 0);
        }
    }
}
