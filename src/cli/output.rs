//! Text for people: event lines, counts, rates.

use aiops_schemas::{AnomalyEvent, Severity, format_rfc3339};

use crate::error::{Error, Result};

/// Writes to stdout; a closed stdout (`| head`) is an error the caller reports quietly, never a
/// panic.
pub fn emit(text: &str) -> Result<()> {
    std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()).map_err(|source| {
        Error::Write {
            path: "standard output".into(),
            source,
        }
    })
}

/// `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A value with about four significant digits, without exponent for everyday magnitudes.
pub fn number(x: f64) -> String {
    let magnitude = x.abs();
    if magnitude != 0.0 && !(1e-3..1e9).contains(&magnitude) {
        format!("{x:.3e}")
    } else if magnitude >= 1000.0 {
        format!("{x:.0}")
    } else {
        let text = format!("{x:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// One line per event: time, severity, series, value against the expected band, score, and
/// each detector's score.
pub fn event_line(event: &AnomalyEvent) -> String {
    let severity = match (event.severity, event.escalation) {
        (Severity::Critical, true) => "CRITICAL↑",
        (Severity::Critical, false) => "CRITICAL ",
        (Severity::Warning, _) => "warning  ",
    };
    let labels = if event.series.labels.is_empty() {
        String::new()
    } else {
        event.series.labels.to_string()
    };
    let contributions = event
        .contributions
        .iter()
        .map(|c| format!("{} {:.1}", c.detector, c.score))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{}  {severity}  {}/{}{labels}  value {} expected [{}, {}]  score {:.1} ({contributions})",
        format_rfc3339(event.timestamp),
        event.tenant,
        event.series.name,
        number(event.value),
        number(event.expected.lower),
        number(event.expected.upper),
        event.score,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_numbers() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(number(73.96732207), "73.967");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(12345.6), "12346");
        assert_eq!(number(5.5e9), "5.500e9");
        assert_eq!(number(0.0), "0");
    }
}
