//! JSON records: one object, or an array of objects, each one point.
//!
//! ```json
//! {"tenant": "acme", "name": "cpu_usage", "labels": {"host": "a"}, "timestamp": 1386018900000, "value": 0.93}
//! ```
//!
//! - `name` (alias `metric`) and `value` are required; `value` is a number or a numeric string
//!   (`"NaN"` parses, then fails validation like any non-finite value).
//! - `labels` (alias `tags`): an object whose values are strings, numbers or booleans; numbers and
//!   booleans become their JSON text.
//! - `timestamp`: an integer or fractional number in the configured precision (default
//!   milliseconds), or a date-time string (see [`crate::time`]); missing means "now".
//! - `tenant`: optional; see [`ParseOptions`] for how the tenant is chosen.
//! - Unknown fields are ignored, so producers can add their own.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::{ParseOptions, SeriesCache, line_column};
use crate::error::{Error, Format, Result, excerpt};
use crate::point::MetricPoint;
use crate::time::{Precision, TimestampMs, parse_timestamp};

/// Parses a JSON record (already checked to be UTF-8 and within the size limit).
pub fn parse(
    text: &str,
    options: &ParseOptions,
    now: TimestampMs,
    cache: &mut SeriesCache,
) -> Result<Vec<MetricPoint>> {
    let raws: Vec<RawPoint<'_>> = match text.trim_start().as_bytes().first() {
        None => return Ok(Vec::new()),
        Some(b'[') => serde_json::from_str(text).map_err(|e| syntax(text, &e))?,
        Some(_) => vec![serde_json::from_str(text).map_err(|e| syntax(text, &e))?],
    };
    let precision = options.precision_for(Format::Json);
    raws.into_iter()
        .map(|raw| raw.into_point(options, precision, now, cache))
        .collect()
}

fn syntax(text: &str, error: &serde_json::Error) -> Error {
    let message = error.to_string();
    let message = match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message,
    };
    let (line, column) = if error.line() == 0 {
        line_column(text, text.len())
    } else {
        (error.line(), error.column())
    };
    Error::Syntax {
        format: Format::Json,
        line,
        column,
        message,
    }
}

#[derive(Deserialize)]
struct RawPoint<'a> {
    #[serde(borrow, default)]
    tenant: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "metric")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "tags")]
    labels: Option<RawLabels<'a>>,
    #[serde(borrow, default)]
    timestamp: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    value: Option<Scalar<'a>>,
}

impl RawPoint<'_> {
    fn into_point(
        self,
        options: &ParseOptions,
        precision: Precision,
        now: TimestampMs,
        cache: &mut SeriesCache,
    ) -> Result<MetricPoint> {
        let name = self.name.ok_or(Error::MissingField { field: "name" })?;
        let value = match self.value.ok_or(Error::MissingField { field: "value" })? {
            Scalar::Int(i) => i as f64,
            Scalar::Float(f) => f,
            Scalar::Text(t) => t.trim().parse::<f64>().map_err(|_| Error::InvalidValue {
                text: excerpt(&t, 64),
            })?,
        };
        let timestamp = match self.timestamp {
            None => now,
            Some(Scalar::Int(i)) => {
                precision
                    .to_millis(i)
                    .ok_or_else(|| Error::InvalidTimestamp {
                        text: i.to_string(),
                    })?
            }
            Some(Scalar::Float(f)) => float_timestamp(f, precision)?,
            Some(Scalar::Text(t)) => parse_timestamp(&t, precision)?,
        };
        let mut labels = self.labels.map(|l| l.0).unwrap_or_default();
        let tenant = options.resolve_tenant(self.tenant.as_deref(), &mut labels);
        options.point(cache, &tenant, &name, &labels, timestamp, value)
    }
}

fn float_timestamp(value: f64, precision: Precision) -> Result<TimestampMs> {
    let per_ms = match precision {
        Precision::Nanoseconds => 1e-6,
        Precision::Microseconds => 1e-3,
        Precision::Milliseconds => 1.0,
        Precision::Seconds => 1e3,
    };
    let ms = (value * per_ms).floor();
    // i64::MAX as f64 rounds up to 2^63, so compare strictly below it.
    if ms.is_finite() && ms >= i64::MIN as f64 && ms < i64::MAX as f64 {
        Ok(ms as i64)
    } else {
        Err(Error::InvalidTimestamp {
            text: value.to_string(),
        })
    }
}

/// A JSON scalar that may be written as a number or as a string.
enum Scalar<'a> {
    Int(i64),
    Float(f64),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct ScalarVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(Scalar::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(Scalar::Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_any(ScalarVisitor(std::marker::PhantomData))
    }
}

/// Labels as written, in order and with duplicates, so [`crate::Labels::from_pairs`] can reject
/// a repeated key instead of silently keeping one. Borrowed from the record where possible.
struct RawLabels<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

/// A string borrowed from the record unless it had escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        match Scalar::deserialize(deserializer)? {
            Scalar::Text(text) => Ok(Text(text)),
            _ => Err(de::Error::custom("expected a string")),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawLabels<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct LabelsVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for LabelsVisitor<'a> {
            type Value = RawLabels<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of labels with string, number or boolean values")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RawLabels<'a>, A::Error> {
                let mut pairs = Vec::new();
                while let Some(Text(key)) = map.next_key::<Text<'a>>()? {
                    let value = match map.next_value::<LabelValue<'a>>()? {
                        LabelValue::Text(text) => text,
                        LabelValue::Invalid(kind) => {
                            return Err(de::Error::custom(format!(
                                "label {key:?} has a {kind} value; use a string"
                            )));
                        }
                    };
                    pairs.push((key, value));
                }
                Ok(RawLabels(pairs))
            }
        }
        deserializer.deserialize_map(LabelsVisitor(std::marker::PhantomData))
    }
}

/// A label value: strings as they are, numbers and booleans as their JSON text, anything else
/// an error naming its kind.
enum LabelValue<'a> {
    Text(Cow<'a, str>),
    Invalid(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for LabelValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct ValueVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ValueVisitor<'a> {
            type Value = LabelValue<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(LabelValue::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(LabelValue::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
                Ok(LabelValue::Text(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
                Ok(LabelValue::Text(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
                // The JSON text of the number, as serde_json writes it.
                Ok(LabelValue::Text(Cow::Owned(
                    serde_json::Value::from(v).to_string(),
                )))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Self::Value, E> {
                Ok(LabelValue::Text(Cow::Owned(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
                Ok(LabelValue::Invalid("null"))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(LabelValue::Invalid("array"))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(LabelValue::Invalid("object"))
            }
        }
        deserializer.deserialize_any(ValueVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_record;

    fn parse_one(text: &str) -> Result<Vec<MetricPoint>> {
        parse_record(Format::Json, text.as_bytes(), &ParseOptions::default(), 42)
    }

    #[test]
    fn reads_a_full_object() {
        let p = parse_one(
            r#"{"tenant":"acme","name":"cpu","labels":{"host":"a","core":3},"timestamp":1386018900000,"value":0.5}"#,
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].series.tenant(), "acme");
        assert_eq!(p[0].series.name(), "cpu");
        assert_eq!(p[0].series.labels().get("core"), Some("3"));
        assert_eq!(p[0].timestamp, 1_386_018_900_000);
        assert_eq!(p[0].value, 0.5);
    }

    #[test]
    fn reads_an_array_aliases_and_defaults() {
        let p = parse_one(
            r#"[{"metric":"a","tags":{"tenant":"blue"},"value":"1.5"},{"name":"b","value":2,"timestamp":"2013-12-02T21:15:00Z"}]"#,
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].series.tenant(), "blue", "tenant label");
        assert!(p[0].series.labels().is_empty(), "tenant label is removed");
        assert_eq!(p[0].timestamp, 42, "missing timestamp means now");
        assert_eq!(p[0].value, 1.5);
        assert_eq!(p[1].series.tenant(), "default");
        assert_eq!(p[1].timestamp, 1_386_018_900_000);
    }

    #[test]
    fn fractional_timestamps_in_seconds() {
        let options = ParseOptions {
            precision: Some(Precision::Seconds),
            ..ParseOptions::default()
        };
        let p = parse_record(
            Format::Json,
            br#"{"name":"a","value":1,"timestamp":1386018900.25}"#,
            &options,
            0,
        )
        .unwrap();
        assert_eq!(p[0].timestamp, 1_386_018_900_250);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            parse_one(r#"{"value":1}"#),
            Err(Error::MissingField { field: "name" })
        );
        assert_eq!(
            parse_one(r#"{"name":"a"}"#),
            Err(Error::MissingField { field: "value" })
        );
        assert!(matches!(
            parse_one(r#"{"name":"a","value":"NaN"}"#),
            Err(Error::NonFiniteValue { .. })
        ));
        assert!(matches!(
            parse_one(r#"{"name":"a","value":"abc"}"#),
            Err(Error::InvalidValue { .. })
        ));
        assert!(matches!(
            parse_one(r#"{"name":"a","value":1,"labels":{"x":null}}"#),
            Err(Error::Syntax { ref message, .. }) if message.contains("label \"x\" has a null value")
        ));
        assert!(matches!(
            parse_one(r#"{"name":"a","value":1,"labels":{"x":"1","x":"2"}}"#),
            Err(Error::DuplicateLabel { .. })
        ));
        assert!(matches!(
            parse_one(r#"{"name":"a","value":1,"timestamp":-5}"#),
            Err(Error::TimestampOutOfRange { .. })
        ));
        assert!(matches!(
            parse_one(r#"{"name":"a","value":1,"timestamp":1e300}"#),
            Err(Error::InvalidTimestamp { .. })
        ));
        match parse_one("{\"name\":\"a\",\n\"value\":}") {
            Err(Error::Syntax { line, column, .. }) => assert_eq!((line, column), (2, 9)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_bad_point_rejects_the_whole_record() {
        assert!(parse_one(r#"[{"name":"a","value":1},{"name":"","value":2}]"#).is_err());
    }

    #[test]
    fn a_value_that_is_text_but_not_a_number_is_an_invalid_value_not_a_syntax_error() {
        // Regression: `"high"` was a syntax error "at line 1, column 1" (kind `syntax`), which
        // pointed nowhere and was counted with broken JSON in the dead letters.
        let mut cache = SeriesCache::new(16);
        let error = parse(
            r#"{"name":"svc","value":"high"}"#,
            &ParseOptions::default(),
            0,
            &mut cache,
        )
        .unwrap_err();
        assert!(
            matches!(&error, Error::InvalidValue { text } if text == "high"),
            "{error:?}"
        );
        assert_eq!(error.kind(), "invalid_value");
        assert!(
            error.to_string().contains("\"high\" is not a number"),
            "{error}"
        );
        // A string that holds a number is still read.
        let points = parse(
            r#"{"name":"svc","value":" 2.5 ","timestamp":1700000000000}"#,
            &ParseOptions::default(),
            0,
            &mut cache,
        )
        .unwrap();
        assert_eq!(points[0].value, 2.5);
    }
}
