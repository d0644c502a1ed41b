//! Timestamps: milliseconds since the Unix epoch (UTC) on the wire, read from the text forms
//! producers actually send.
//!
//! Accepted text: RFC 3339 (`2013-12-02T21:15:00Z`, `...T21:15:00.250+01:00`), the same with a
//! space instead of `T` and no zone (read as UTC; NAB's CSV files look like this), and integers
//! in a unit the caller names ([`Precision`]). Written form: RFC 3339 with milliseconds, UTC.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, excerpt};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type TimestampMs = i64;

/// The unit of an integer timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Nanoseconds: the InfluxDB line protocol default.
    #[serde(alias = "ns")]
    Nanoseconds,
    /// Microseconds.
    #[serde(alias = "us")]
    Microseconds,
    /// Milliseconds: the JSON default.
    #[default]
    #[serde(alias = "ms")]
    Milliseconds,
    /// Seconds.
    #[serde(alias = "s")]
    Seconds,
}

impl Precision {
    /// Converts an integer in this unit to milliseconds, truncating toward negative infinity;
    /// `None` if the result would overflow.
    pub fn to_millis(self, value: i64) -> Option<TimestampMs> {
        match self {
            Precision::Nanoseconds => Some(value.div_euclid(1_000_000)),
            Precision::Microseconds => Some(value.div_euclid(1_000)),
            Precision::Milliseconds => Some(value),
            Precision::Seconds => value.checked_mul(1_000),
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ns" | "nanoseconds" => Ok(Precision::Nanoseconds),
            "us" | "microseconds" => Ok(Precision::Microseconds),
            "ms" | "milliseconds" => Ok(Precision::Milliseconds),
            "s" | "seconds" => Ok(Precision::Seconds),
            _ => Err(format!("unknown precision {s:?}: use ns, us, ms or s")),
        }
    }
}

/// Reads a timestamp: an integer in `precision`, or a date-time text (see the module docs).
pub fn parse_timestamp(text: &str, precision: Precision) -> Result<TimestampMs> {
    let invalid = || Error::InvalidTimestamp {
        text: excerpt(text, 64),
    };
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix('-').unwrap_or(trimmed);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let value: i64 = trimmed.parse().map_err(|_| invalid())?;
        return precision.to_millis(value).ok_or_else(invalid);
    }
    parse_datetime(trimmed).ok_or_else(invalid)
}

fn parse_datetime(text: &str) -> Option<TimestampMs> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.iter().all(u8::is_ascii_digit) {
            Some(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
        } else {
            None
        }
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if let Some((b'.', frac)) = rest.split_first() {
        let len = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        for (i, d) in frac[..len].iter().take(3).enumerate() {
            millis += i64::from(d - b'0') * [100, 10, 1][i];
        }
        rest = &frac[len..];
    }
    let offset_minutes = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [h1, h2, m1, m2];
            if !digits.iter().all(|d| d.is_ascii_digit()) {
                return None;
            }
            let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 60 + minutes;
            if *sign == b'+' { total } else { -total }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// Writes `timestamp` as RFC 3339 in UTC with milliseconds: `2013-12-02T21:15:00.000Z`.
pub fn format_rfc3339(timestamp: TimestampMs) -> String {
    let days = timestamp.div_euclid(86_400_000);
    let millis_of_day = timestamp.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (millis_of_day / 3_600_000, millis_of_day / 60_000 % 60);
    let (second, millis) = (millis_of_day / 1_000 % 60, millis_of_day % 1_000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Milliseconds since the Unix epoch by the system clock (0 if the clock is before 1970).
pub fn system_now() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            TimestampMs::try_from(d.as_millis()).unwrap_or(TimestampMs::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_forms_producers_send() {
        let ms = Precision::Milliseconds;
        // `date -u -d '2013-12-02 21:15:00' +%s` = 1386018900
        assert_eq!(
            parse_timestamp("2013-12-02 21:15:00", ms),
            Ok(1_386_018_900_000)
        );
        assert_eq!(
            parse_timestamp("2013-12-02T21:15:00Z", ms),
            Ok(1_386_018_900_000)
        );
        assert_eq!(
            parse_timestamp("2013-12-02T22:15:00.25+01:00", ms),
            Ok(1_386_018_900_250)
        );
        assert_eq!(
            parse_timestamp("2013-12-02T21:15:00.123456789Z", ms),
            Ok(1_386_018_900_123)
        );
        assert_eq!(parse_timestamp("1386018900000", ms), Ok(1_386_018_900_000));
        assert_eq!(
            parse_timestamp("1386018900", Precision::Seconds),
            Ok(1_386_018_900_000)
        );
        assert_eq!(
            parse_timestamp("1386018900000000000", Precision::Nanoseconds),
            Ok(1_386_018_900_000)
        );
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z", ms), Ok(0));
        assert_eq!(
            parse_timestamp("2000-02-29T00:00:00Z", ms),
            Ok(951_782_400_000)
        );
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2013-13-02 21:15:00",
            "2013-02-29 00:00:00",
            "2013-12-02 24:00:00",
            "2013-12-02T21:15:00+0100",
            "2013-12-02T21:15:00.Z",
            "2013-12-02T21:15",
            "99999999999999999999999",
            "9223372036854775807",
        ] {
            let precision = Precision::Seconds;
            assert!(parse_timestamp(bad, precision).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(
            format_rfc3339(1_386_018_900_250),
            "2013-12-02T21:15:00.250Z"
        );
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(ms in -62_135_596_800_000i64..253_402_300_799_999) {
            prop_assert_eq!(parse_timestamp(&format_rfc3339(ms), Precision::Milliseconds), Ok(ms));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = parse_timestamp(&text, Precision::Nanoseconds);
        }

        #[test]
        fn parse_never_panics_on_near_dates(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})?") {
            let _ = parse_timestamp(&text, Precision::Nanoseconds);
        }
    }
}
