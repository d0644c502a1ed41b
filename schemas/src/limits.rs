//! Limits on what a record may hold, and the checks that enforce them.
//!
//! The limits protect the pipeline's memory (a series key per distinct label set is state held
//! for as long as the series lives) and the gateway's channel names; their defaults are generous
//! for real metrics and strict for accidents such as a request id used as a label.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Field, Result, excerpt};

/// The Unix epoch: a metric older than that is a unit mistake, not history.
const DEFAULT_MIN_TIMESTAMP_MS: i64 = 0;
/// 2200-01-01T00:00:00Z, in milliseconds. Later than this is almost always nanoseconds read as ms.
const DEFAULT_MAX_TIMESTAMP_MS: i64 = 7_258_118_400_000;

/// What a record may hold. `Limits::default()` is what the pipeline uses unless configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest record, in bytes, before parsing (a Kafka message, a file line).
    pub max_record_bytes: usize,
    /// Longest tenant name in bytes.
    pub max_tenant_bytes: usize,
    /// Longest metric name in bytes.
    pub max_name_bytes: usize,
    /// Most labels on one series.
    pub max_labels: usize,
    /// Longest label key in bytes.
    pub max_label_key_bytes: usize,
    /// Longest label value in bytes.
    pub max_label_value_bytes: usize,
    /// Earliest accepted timestamp, milliseconds since the Unix epoch.
    pub min_timestamp_ms: i64,
    /// Latest accepted timestamp, milliseconds since the Unix epoch.
    pub max_timestamp_ms: i64,
    /// Largest accepted |value|. Squares of larger values overflow `f64`, which would turn a
    /// series' variance into infinity; no real metric comes near 1e150.
    pub max_abs_value: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: 1 << 20,
            max_tenant_bytes: 64,
            max_name_bytes: 256,
            max_labels: 32,
            max_label_key_bytes: 128,
            max_label_value_bytes: 1024,
            min_timestamp_ms: DEFAULT_MIN_TIMESTAMP_MS,
            max_timestamp_ms: DEFAULT_MAX_TIMESTAMP_MS,
            max_abs_value: 1e150,
        }
    }
}

impl Limits {
    /// Checks a tenant name: 1..=max bytes of `[A-Za-z0-9_.-]`, because tenants appear inside
    /// Redis keys and channel names (`aiops:{tenant}:anomalies`) where braces or colons would
    /// break the hash-tag layout and let one tenant's name imitate another's channel.
    pub fn check_tenant(&self, tenant: &str) -> Result<()> {
        check_length(Field::Tenant, tenant, self.max_tenant_bytes)?;
        if let Some(found) = tenant
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(Error::InvalidCharacter {
                field: Field::Tenant,
                text: excerpt(tenant, 64),
                found,
                allowed: "ASCII letters, digits, '_', '.' and '-'",
            });
        }
        Ok(())
    }

    /// Checks a metric name: non-empty, within the limit, no control characters.
    pub fn check_name(&self, name: &str) -> Result<()> {
        check_length(Field::MetricName, name, self.max_name_bytes)?;
        check_no_control(Field::MetricName, name)
    }

    /// Checks one label: a non-empty key and a (possibly empty) value, both within their limits
    /// and free of control characters.
    pub fn check_label(&self, key: &str, value: &str) -> Result<()> {
        check_length(Field::LabelKey, key, self.max_label_key_bytes)?;
        check_no_control(Field::LabelKey, key)?;
        if value.len() > self.max_label_value_bytes {
            return Err(Error::TooLong {
                field: Field::LabelValue,
                len: value.len(),
                max: self.max_label_value_bytes,
            });
        }
        check_no_control(Field::LabelValue, value)
    }

    /// Checks the number of labels.
    pub fn check_label_count(&self, count: usize) -> Result<()> {
        if count > self.max_labels {
            return Err(Error::TooManyLabels {
                count,
                max: self.max_labels,
            });
        }
        Ok(())
    }

    /// Checks a timestamp in milliseconds since the Unix epoch.
    pub fn check_timestamp(&self, timestamp_ms: i64) -> Result<()> {
        if timestamp_ms < self.min_timestamp_ms || timestamp_ms > self.max_timestamp_ms {
            return Err(Error::TimestampOutOfRange {
                timestamp_ms,
                min_ms: self.min_timestamp_ms,
                max_ms: self.max_timestamp_ms,
            });
        }
        Ok(())
    }

    /// Checks a record's size before it is parsed.
    pub fn check_record_size(&self, len: usize) -> Result<()> {
        if len > self.max_record_bytes {
            return Err(Error::RecordTooLarge {
                len,
                max: self.max_record_bytes,
            });
        }
        Ok(())
    }
}

impl Limits {
    /// Checks a value: only finite numbers within `max_abs_value` can be scored.
    pub fn check_value(&self, value: f64) -> Result<()> {
        if !value.is_finite() {
            return Err(Error::NonFiniteValue { value });
        }
        if value.abs() > self.max_abs_value {
            return Err(Error::ValueOutOfRange {
                value,
                max: self.max_abs_value,
            });
        }
        Ok(())
    }
}

fn check_length(field: Field, text: &str, max: usize) -> Result<()> {
    if text.is_empty() {
        return Err(Error::Empty { field });
    }
    if text.len() > max {
        return Err(Error::TooLong {
            field,
            len: text.len(),
            max,
        });
    }
    Ok(())
}

fn check_no_control(field: Field, text: &str) -> Result<()> {
    match text.chars().find(|c| c.is_control()) {
        Some(found) => Err(Error::InvalidCharacter {
            field,
            text: excerpt(text, 64),
            found,
            allowed: "any character but control characters",
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_rejects_characters_that_would_break_channel_names() {
        let limits = Limits::default();
        assert!(limits.check_tenant("acme-prod.eu_1").is_ok());
        for bad in ["a}b", "a:b", "a b", "ü", "{x}"] {
            assert!(
                matches!(
                    limits.check_tenant(bad),
                    Err(Error::InvalidCharacter {
                        field: Field::Tenant,
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            limits.check_tenant(""),
            Err(Error::Empty {
                field: Field::Tenant
            })
        );
    }

    #[test]
    fn lengths_are_checked_in_bytes() {
        let limits = Limits {
            max_name_bytes: 4,
            ..Limits::default()
        };
        assert!(limits.check_name("abcd").is_ok());
        assert_eq!(
            limits.check_name("abcé"),
            Err(Error::TooLong {
                field: Field::MetricName,
                len: 5,
                max: 4
            })
        );
    }

    #[test]
    fn control_characters_are_rejected_in_names_and_labels() {
        let limits = Limits::default();
        assert!(limits.check_name("cpu\nload").is_err());
        assert!(limits.check_label("host", "a\u{0}b").is_err());
        assert!(limits.check_label("host", "").is_ok());
        assert!(limits.check_label("", "x").is_err());
    }

    #[test]
    fn timestamps_outside_the_range_are_rejected() {
        let limits = Limits::default();
        assert!(limits.check_timestamp(1_386_018_900_000).is_ok());
        assert!(limits.check_timestamp(-1).is_err());
        // Nanoseconds mistaken for milliseconds land far in the future.
        assert!(limits.check_timestamp(1_386_018_900_000_000_000).is_err());
    }

    #[test]
    fn non_finite_and_huge_values_are_rejected() {
        let limits = Limits::default();
        assert!(limits.check_value(1.5).is_ok());
        assert!(limits.check_value(-1e150).is_ok());
        assert!(matches!(
            limits.check_value(f64::NAN),
            Err(Error::NonFiniteValue { .. })
        ));
        assert!(limits.check_value(f64::INFINITY).is_err());
        assert!(limits.check_value(f64::NEG_INFINITY).is_err());
        assert!(matches!(
            limits.check_value(-1e151),
            Err(Error::ValueOutOfRange { .. })
        ));
    }
}
