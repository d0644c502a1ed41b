//! InfluxDB line protocol, as Telegraf writes it to Kafka.
//!
//! ```text
//! measurement[,tag=value...] field=value[,field=value...] [timestamp]
//! ```
//!
//! - Escapes: in the measurement `\,` and `\ `; in tag keys, tag values and field keys `\,`,
//!   `\=` and `\ `; in string field values `\"` and `\\`. A backslash before anything else is
//!   a literal backslash, as in InfluxDB.
//! - Field values: floats (`1.5`, `-3e2`), integers (`7i`), unsigned integers (`7u`), booleans
//!   (`t`, `true`, `F`, `FALSE`, ... become 1 and 0) and strings (`"up"`, skipped: they are not
//!   metrics). A line without a numeric field is an error.
//! - Each numeric field is one point named `measurement_field`, or `measurement` when the field
//!   is called `value` (Telegraf's Prometheus naming); the tags are its labels.
//! - The timestamp is an integer in the configured precision (default nanoseconds); missing means
//!   "now". Empty lines and `#` comments are skipped; a record may hold many lines.

use std::borrow::Cow;

use super::{ParseOptions, SeriesCache, line_column};
use crate::error::{Error, Format, Result};
use crate::point::MetricPoint;
use crate::time::{Precision, TimestampMs};

/// Parses an Influx record (already checked to be UTF-8 and within the size limit).
pub fn parse(
    text: &str,
    options: &ParseOptions,
    now: TimestampMs,
    cache: &mut SeriesCache,
) -> Result<Vec<MetricPoint>> {
    let precision = options.precision_for(Format::Influx);
    let mut points = Vec::new();
    let mut offset = 0;
    for raw_line in text.split_inclusive('\n') {
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let start = offset;
        offset += raw_line.len();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let lead = line.len() - trimmed.len();
        let mut parser = LineParser {
            bytes: trimmed.as_bytes(),
            text: trimmed,
            pos: 0,
        };
        let parsed = parser.line().map_err(|(at, message)| {
            let (line, column) = line_column(text, start + lead + at);
            Error::Syntax {
                format: Format::Influx,
                line,
                column,
                message,
            }
        })?;
        parsed.into_points(options, precision, now, cache, &mut points)?;
    }
    Ok(points)
}

/// A syntax error: byte offset within the line, and what went wrong.
type SyntaxError = (usize, String);

struct ParsedLine<'a> {
    measurement: Cow<'a, str>,
    tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    fields: Vec<(Cow<'a, str>, f64)>,
    timestamp: Option<i64>,
}

impl ParsedLine<'_> {
    fn into_points(
        self,
        options: &ParseOptions,
        precision: Precision,
        now: TimestampMs,
        cache: &mut SeriesCache,
        out: &mut Vec<MetricPoint>,
    ) -> Result<()> {
        let timestamp = match self.timestamp {
            None => now,
            Some(t) => precision
                .to_millis(t)
                .ok_or_else(|| Error::InvalidTimestamp {
                    text: t.to_string(),
                })?,
        };
        let mut tags = self.tags;
        let tenant = options.resolve_tenant(None, &mut tags);
        let mut name = String::new();
        for (field, value) in self.fields {
            name.clear();
            name.push_str(&self.measurement);
            if field != "value" {
                name.push('_');
                name.push_str(&field);
            }
            out.push(options.point(cache, &tenant, &name, &tags, timestamp, value)?);
        }
        Ok(())
    }
}

struct LineParser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> LineParser<'a> {
    fn line(&mut self) -> std::result::Result<ParsedLine<'a>, SyntaxError> {
        let measurement = self.token(b", ", false);
        if measurement.is_empty() {
            return Err((self.pos, "missing measurement".into()));
        }
        let mut tags = Vec::new();
        while self.peek() == Some(b',') {
            self.pos += 1;
            let key_at = self.pos;
            let key = self.token(b"=, ", true);
            if self.peek() != Some(b'=') {
                return Err((self.pos, format!("tag {key:?} has no '=value'")));
            }
            if key.is_empty() {
                return Err((key_at, "empty tag key".into()));
            }
            self.pos += 1;
            let value = self.token(b", ", true);
            if value.is_empty() {
                return Err((self.pos, format!("tag {key:?} has an empty value")));
            }
            tags.push((key, value));
        }
        if !self.skip_spaces() {
            return Err((self.pos, "expected a space and the field set".into()));
        }
        let mut fields = Vec::new();
        loop {
            let key_at = self.pos;
            let key = self.token(b"=, ", true);
            if key.is_empty() {
                return Err((key_at, "expected a field key".into()));
            }
            if self.peek() != Some(b'=') {
                return Err((self.pos, format!("field {key:?} has no '=value'")));
            }
            self.pos += 1;
            if let Some(value) = self.field_value(&key)? {
                fields.push((key, value));
            }
            match self.peek() {
                Some(b',') => self.pos += 1,
                _ => break,
            }
        }
        let timestamp = if self.skip_spaces() && self.pos < self.bytes.len() {
            let at = self.pos;
            let end = self.bytes[at..]
                .iter()
                .position(|b| *b == b' ' || *b == b'\t')
                .map_or(self.bytes.len(), |p| at + p);
            let text = &self.text[at..end];
            self.pos = end;
            Some(
                text.parse::<i64>()
                    .map_err(|_| (at, format!("timestamp {text:?} is not an integer")))?,
            )
        } else {
            None
        };
        self.skip_spaces();
        if self.pos != self.bytes.len() {
            return Err((self.pos, "unexpected text after the timestamp".into()));
        }
        if fields.is_empty() {
            // The loop above read at least one field, so all of them were strings.
            return Err((
                0,
                "line has only string fields; at least one numeric field is needed".into(),
            ));
        }
        Ok(ParsedLine {
            measurement,
            tags,
            fields,
            timestamp,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips spaces and tabs; true if there were any.
    fn skip_spaces(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Reads up to the first unescaped byte in `stops`, unescaping `\` before a stop byte (and
    /// before `=` when `escape_equals`). Stops are ASCII, so byte positions are char boundaries.
    /// Borrowed from the line unless something was unescaped.
    fn token(&mut self, stops: &[u8], escape_equals: bool) -> Cow<'a, str> {
        let start = self.pos;
        let mut out: Option<String> = None;
        let mut run_start = self.pos;
        while let Some(b) = self.peek() {
            if b == b'\\' {
                if let Some(&next) = self.bytes.get(self.pos + 1)
                    && (stops.contains(&next) || next == b' ' || (escape_equals && next == b'='))
                {
                    let out = out.get_or_insert_with(String::new);
                    out.push_str(&self.text[run_start..self.pos]);
                    out.push(next as char);
                    self.pos += 2;
                    run_start = self.pos;
                    continue;
                }
                self.pos += 1;
                continue;
            }
            if stops.contains(&b) || b == b'\t' {
                break;
            }
            self.pos += 1;
        }
        match out {
            None => Cow::Borrowed(&self.text[start..self.pos]),
            Some(mut out) => {
                out.push_str(&self.text[run_start..self.pos]);
                Cow::Owned(out)
            }
        }
    }

    /// Reads a field value; `None` for string fields, which are not metrics.
    fn field_value(&mut self, key: &str) -> std::result::Result<Option<f64>, SyntaxError> {
        let at = self.pos;
        if self.peek() == Some(b'"') {
            self.pos += 1;
            while let Some(b) = self.peek() {
                match b {
                    b'\\' => self.pos += 2,
                    b'"' => {
                        self.pos += 1;
                        return Ok(None);
                    }
                    _ => self.pos += 1,
                }
            }
            return Err((at, format!("string field {key:?} is not closed")));
        }
        let end = self.bytes[at..]
            .iter()
            .position(|b| matches!(b, b',' | b' ' | b'\t'))
            .map_or(self.bytes.len(), |p| at + p);
        self.pos = end;
        let text = &self.text[at..end];
        let bad = || (at, format!("field {key:?} has an invalid value {text:?}"));
        let value = match text {
            "" => return Err((at, format!("field {key:?} has no value"))),
            "t" | "T" | "true" | "True" | "TRUE" => 1.0,
            "f" | "F" | "false" | "False" | "FALSE" => 0.0,
            _ if text.ends_with('i') => {
                text[..text.len() - 1].parse::<i64>().map_err(|_| bad())? as f64
            }
            _ if text.ends_with('u') => {
                text[..text.len() - 1].parse::<u64>().map_err(|_| bad())? as f64
            }
            _ => {
                // Rust also reads "inf" and "NaN"; the line protocol does not.
                if !text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
                {
                    return Err(bad());
                }
                text.parse::<f64>().map_err(|_| bad())?
            }
        };
        Ok(Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_record;

    fn parse_text(text: &str) -> Result<Vec<MetricPoint>> {
        parse_record(Format::Influx, text.as_bytes(), &ParseOptions::default(), 7)
    }

    fn summary(points: &[MetricPoint]) -> Vec<String> {
        points
            .iter()
            .map(|p| {
                format!(
                    "{}|{}|{}|{}",
                    p.series,
                    p.timestamp,
                    p.value,
                    p.series.tenant()
                )
            })
            .collect()
    }

    #[test]
    fn telegraf_line_with_tags_several_fields_and_timestamp() {
        let points = parse_text(
            "cpu,host=server01,region=us-west usage_idle=92.5,usage_user=3i,online=true,state=\"ok\" 1386018900000000000",
        )
        .unwrap();
        assert_eq!(
            summary(&points),
            [
                r#"default/cpu_usage_idle{host="server01",region="us-west"}|1386018900000|92.5|default"#,
                r#"default/cpu_usage_user{host="server01",region="us-west"}|1386018900000|3|default"#,
                r#"default/cpu_online{host="server01",region="us-west"}|1386018900000|1|default"#,
            ]
        );
    }

    #[test]
    fn escaping_rules() {
        let points = parse_text(
            r#"disk\ io\,x,path=/var\ log,k\=1=a\,b used\ pct=1,msg="a \"quoted\", b=2" 0"#,
        )
        .unwrap();
        assert_eq!(points.len(), 1);
        let s = &points[0].series;
        assert_eq!(s.name(), "disk io,x_used pct");
        assert_eq!(s.labels().get("path"), Some("/var log"));
        assert_eq!(s.labels().get("k=1"), Some("a,b"));
        // A backslash before an ordinary character stays.
        let p = parse_text(r"m,path=C:\temp value=1 0").unwrap();
        assert_eq!(p[0].series.labels().get("path"), Some(r"C:\temp"));
    }

    #[test]
    fn value_field_keeps_the_measurement_name_and_tenant_tag_is_used() {
        let p = parse_text("latency,tenant=acme,svc=api value=12.5 1000000").unwrap();
        assert_eq!(p[0].series.name(), "latency");
        assert_eq!(p[0].series.tenant(), "acme");
        assert_eq!(p[0].series.labels().len(), 1);
        assert_eq!(p[0].timestamp, 1);
    }

    #[test]
    fn several_lines_comments_and_missing_timestamp() {
        let p = parse_text("# comment\na x=1\r\n\n  b y=-2.5e1\n").unwrap();
        assert_eq!(
            summary(&p),
            ["default/a_x|7|1|default", "default/b_y|7|-25|default"]
        );
    }

    #[test]
    fn precision_is_configurable() {
        let options = ParseOptions {
            precision: Some(Precision::Seconds),
            ..ParseOptions::default()
        };
        let p = parse_record(Format::Influx, b"a value=1 1386018900", &options, 0).unwrap();
        assert_eq!(p[0].timestamp, 1_386_018_900_000);
    }

    #[test]
    fn syntax_errors_point_at_the_problem() {
        let cases = [
            ("cpu", 1, 4, "expected a space and the field set"),
            ("cpu value", 1, 10, "field \"value\" has no '=value'"),
            ("cpu value=", 1, 11, "field \"value\" has no value"),
            ("cpu value=abc", 1, 11, "invalid value \"abc\""),
            ("cpu value=inf", 1, 11, "invalid value \"inf\""),
            (
                "cpu value=1 12x",
                1,
                13,
                "timestamp \"12x\" is not an integer",
            ),
            ("cpu,host value=1", 1, 9, "tag \"host\" has no '=value'"),
            (
                "cpu,host= value=1",
                1,
                10,
                "tag \"host\" has an empty value",
            ),
            ("cpu s=\"x", 1, 7, "string field \"s\" is not closed"),
            ("cpu s=\"x\"", 1, 1, "only string fields"),
            ("a x=1\n,b y=2", 2, 1, "missing measurement"),
            ("cpu value=1 1 2", 1, 15, "unexpected text"),
            ("cpu value=1i5", 1, 11, "invalid value"),
        ];
        for (text, line, column, needle) in cases {
            match parse_text(text) {
                Err(Error::Syntax {
                    line: l,
                    column: c,
                    message,
                    ..
                }) => {
                    assert!(message.contains(needle), "{text:?}: {message}");
                    assert_eq!((l, c), (line, column), "{text:?}: {message}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn validation_errors_reject_the_record() {
        assert!(matches!(
            parse_text("cpu value=1e400 0"),
            Err(Error::NonFiniteValue { .. })
        ));
        assert!(matches!(
            parse_text("cpu,a=1,a=2 value=1 0"),
            Err(Error::DuplicateLabel { .. })
        ));
        assert!(matches!(
            parse_text("cpu value=1 -9223372036854775808"),
            Err(Error::TimestampOutOfRange { .. })
        ));
    }
}
