//! Per-group figures of a backtest, aggregated with polars (feature `polars`): each series'
//! counts in a data frame, summed by group (a NAB category, a metric...), the ratios worked out
//! from the sums.

use polars::prelude::*;

use crate::error::{Error, Result};

/// One series' counts, and the group it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesCounts {
    /// The group.
    pub group: String,
    /// Labelled incidents.
    pub incidents: u64,
    /// Incidents with an event inside.
    pub caught: u64,
    /// Events.
    pub events: u64,
    /// Events inside an incident.
    pub events_inside: u64,
}

pub use crate::report::GroupFigures;

fn failed(e: PolarsError) -> Error {
    Error::Malformed {
        path: "backtest figures".into(),
        line: None,
        message: format!("polars: {e}"),
    }
}

/// Sums the counts by group, groups in name order.
pub fn by_group(rows: &[SeriesCounts]) -> Result<Vec<GroupFigures>> {
    let counts = |f: fn(&SeriesCounts) -> u64| rows.iter().map(f).collect::<Vec<u64>>();
    let frame = df!(
        "group" => rows.iter().map(|r| r.group.clone()).collect::<Vec<String>>(),
        "incidents" => counts(|r| r.incidents),
        "caught" => counts(|r| r.caught),
        "events" => counts(|r| r.events),
        "events_inside" => counts(|r| r.events_inside),
    )
    .map_err(failed)?;
    let summed = frame
        .lazy()
        .group_by([col("group")])
        .agg([
            len().alias("series"),
            col("incidents").sum(),
            col("caught").sum(),
            col("events").sum(),
            col("events_inside").sum(),
        ])
        .sort(["group"], SortMultipleOptions::default())
        .collect()
        .map_err(failed)?;
    let text = |name: &str| -> Result<Vec<String>> {
        let column = summed.column(name).map_err(failed)?;
        let values = column.str().map_err(failed)?;
        Ok((0..values.len())
            .map(|i| values.get(i).unwrap_or_default().to_owned())
            .collect())
    };
    let number = |name: &str| -> Result<Vec<u64>> {
        let column = summed
            .column(name)
            .map_err(failed)?
            .cast(&DataType::UInt64)
            .map_err(failed)?;
        let values = column.u64().map_err(failed)?;
        Ok((0..values.len())
            .map(|i| values.get(i).unwrap_or(0))
            .collect())
    };
    let (groups, series) = (text("group")?, number("series")?);
    let (incidents, caught) = (number("incidents")?, number("caught")?);
    let (events, inside) = (number("events")?, number("events_inside")?);
    let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    Ok((0..groups.len())
        .map(|i| GroupFigures {
            group: groups[i].clone(),
            series: series[i],
            incidents: incidents[i],
            caught: caught[i],
            events: events[i],
            events_inside: inside[i],
            precision: ratio(inside[i], events[i]),
            recall: ratio(caught[i], incidents[i]),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_summed_by_group_and_ratios_taken_from_the_sums() {
        let row = |group: &str, incidents, caught, events, inside| SeriesCounts {
            group: group.into(),
            incidents,
            caught,
            events,
            events_inside: inside,
        };
        let groups = by_group(&[
            row("b", 2, 1, 4, 1),
            row("a", 1, 1, 2, 2),
            row("b", 2, 2, 6, 2),
        ])
        .unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].group, "a");
        let b = &groups[1];
        assert_eq!(
            (b.series, b.incidents, b.caught, b.events, b.events_inside),
            (2, 4, 3, 10, 3)
        );
        assert_eq!(b.recall, Some(0.75));
        assert_eq!(b.precision, Some(0.3));
        assert!(by_group(&[]).unwrap().is_empty());
    }
}
