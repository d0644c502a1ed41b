//! The backtest report people look at: one self-contained HTML file (inline CSS and SVG, no
//! script, nothing fetched) with the figures and, per series, a plot of its values, the band the
//! detectors expected, its events and its labelled incidents; and the same figures as JSON for
//! machines.

use std::fmt::Write as _;

use serde::Serialize;

use aiops_schemas::{TimestampMs, format_rfc3339};

use crate::backtest::{Figures, Prf};
use crate::nab::Window;

/// One scored point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlotPoint {
    /// The point's time.
    pub timestamp: TimestampMs,
    /// Its value.
    pub value: f64,
    /// The band the detectors expected, once they were warm.
    pub band: Option<(f64, f64)>,
}

/// One series of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesReport {
    /// The series key, 16 hex digits.
    pub key: String,
    /// A readable name (metric and labels).
    pub name: String,
    /// Its points in time order.
    pub points: Vec<PlotPoint>,
    /// Its events' times.
    pub events: Vec<TimestampMs>,
    /// Its labelled incidents.
    pub incidents: Vec<Window>,
    /// Its figures.
    pub figures: Figures,
}

/// A group's sums and ratios (see `aggregate`, feature `polars`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupFigures {
    /// The group.
    pub group: String,
    /// Series in it.
    pub series: u64,
    /// Labelled incidents.
    pub incidents: u64,
    /// Incidents caught.
    pub caught: u64,
    /// Events.
    pub events: u64,
    /// Events inside incidents.
    pub events_inside: u64,
    /// Events inside / events.
    pub precision: Option<f64>,
    /// Incidents caught / incidents.
    pub recall: Option<f64>,
}

/// The figures of the report, for machines.
#[derive(Debug, Clone, Serialize)]
pub struct ReportFigures<'a> {
    /// What was replayed.
    pub title: &'a str,
    /// All series together.
    pub overall: &'a Figures,
    /// Per series: key, name and figures.
    pub series: Vec<SeriesFigures<'a>>,
    /// The same replay under each configuration compared, by name (the first is the one the
    /// rest of the report shows).
    pub configurations: Vec<ConfigurationFigures<'a>>,
    /// Per group (feature `polars`).
    pub groups: &'a [GroupFigures],
}

/// One configuration's entry of [`ReportFigures`].
#[derive(Debug, Clone, Serialize)]
pub struct ConfigurationFigures<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its figures.
    pub figures: &'a Figures,
}

/// One series' entry of [`ReportFigures`].
#[derive(Debug, Clone, Serialize)]
pub struct SeriesFigures<'a> {
    /// The series key.
    pub key: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its figures.
    pub figures: &'a Figures,
}

/// The JSON twin of the HTML report.
pub fn figures_json(
    title: &str,
    overall: &Figures,
    series: &[SeriesReport],
    comparisons: &[(String, Figures)],
    groups: &[GroupFigures],
) -> String {
    let figures = ReportFigures {
        title,
        overall,
        series: series
            .iter()
            .map(|s| SeriesFigures {
                key: &s.key,
                name: &s.name,
                figures: &s.figures,
            })
            .collect(),
        configurations: comparisons
            .iter()
            .map(|(name, figures)| ConfigurationFigures { name, figures })
            .collect(),
        groups,
    };
    serde_json::to_string_pretty(&figures).unwrap_or_default()
}

/// Plot width and height in SVG units, and the most points a plot draws (min and max per
/// bucket, so a spike survives the thinning).
const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 170.0;
const BUCKETS: usize = 800;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ratio(x: Option<f64>) -> String {
    x.map_or("–".to_owned(), |x| format!("{x:.3}"))
}

fn prf_cells(prf: &Prf) -> String {
    format!(
        "<td>{}</td><td>{}</td><td>{}</td>",
        ratio(prf.precision),
        ratio(prf.recall),
        ratio(prf.f1)
    )
}

fn duration(ms: Option<f64>) -> String {
    ms.map_or("–".to_owned(), |ms| {
        let minutes = ms / 60_000.0;
        if minutes < 120.0 {
            format!("{minutes:.0} min")
        } else {
            format!("{:.1} h", minutes / 60.0)
        }
    })
}

/// The SVG plot of one series.
pub fn plot(series: &SeriesReport) -> String {
    let mut svg = String::new();
    let (Some(first), Some(last)) = (series.points.first(), series.points.last()) else {
        return "<p>no points</p>".to_owned();
    };
    let (t0, t1) = (first.timestamp, last.timestamp.max(first.timestamp + 1));
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in &series.points {
        low = low.min(p.value);
        high = high.max(p.value);
    }
    // The band may be wide while detectors warm up: show it within a margin of the values.
    let span = (high - low).max(1e-9);
    let (floor, ceiling) = (low - 0.25 * span, high + 0.25 * span);
    let x = |t: TimestampMs| (t - t0) as f64 / (t1 - t0) as f64 * WIDTH;
    let y = |v: f64| {
        let v = v.clamp(floor, ceiling);
        HEIGHT - (v - floor) / (ceiling - floor) * HEIGHT
    };
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" role="img" aria-label="{}">"#,
        escape(&series.name)
    );
    for incident in &series.incidents {
        let (a, b) = (x(incident.start.max(t0)), x(incident.end.min(t1)));
        if b >= a {
            let _ = write!(
                svg,
                r#"<rect class="incident" x="{a:.1}" y="0" width="{:.1}" height="{HEIGHT}"/>"#,
                (b - a).max(1.0)
            );
        }
    }
    // Buckets of points: min, max and mean band of each.
    let per_bucket = series.points.len().div_ceil(BUCKETS).max(1);
    let mut line = Vec::new();
    let mut upper = Vec::new();
    let mut lower = Vec::new();
    for chunk in series.points.chunks(per_bucket) {
        let (mut lo, mut hi) = (chunk[0], chunk[0]);
        for p in chunk {
            if p.value < lo.value {
                lo = *p;
            }
            if p.value > hi.value {
                hi = *p;
            }
        }
        let (a, b) = if lo.timestamp <= hi.timestamp {
            (lo, hi)
        } else {
            (hi, lo)
        };
        line.push(format!("{:.1},{:.1}", x(a.timestamp), y(a.value)));
        if b.timestamp != a.timestamp {
            line.push(format!("{:.1},{:.1}", x(b.timestamp), y(b.value)));
        }
        let bands: Vec<(f64, f64)> = chunk.iter().filter_map(|p| p.band).collect();
        if !bands.is_empty() {
            let n = bands.len() as f64;
            let mid = chunk[chunk.len() / 2].timestamp;
            lower.push((x(mid), y(bands.iter().map(|b| b.0).sum::<f64>() / n)));
            upper.push((x(mid), y(bands.iter().map(|b| b.1).sum::<f64>() / n)));
        }
    }
    if !upper.is_empty() {
        let mut polygon: Vec<String> = upper
            .iter()
            .map(|(a, b)| format!("{a:.1},{b:.1}"))
            .collect();
        polygon.extend(lower.iter().rev().map(|(a, b)| format!("{a:.1},{b:.1}")));
        let _ = write!(
            svg,
            r#"<polygon class="band" points="{}"/>"#,
            polygon.join(" ")
        );
    }
    let _ = write!(
        svg,
        r#"<polyline class="values" points="{}"/>"#,
        line.join(" ")
    );
    let value_at = |t: TimestampMs| {
        let i = series.points.partition_point(|p| p.timestamp < t);
        series.points.get(i).map_or(last.value, |p| p.value)
    };
    for &event in &series.events {
        let _ = write!(
            svg,
            r#"<circle class="event" cx="{:.1}" cy="{:.1}" r="4"><title>{}</title></circle>"#,
            x(event),
            y(value_at(event)),
            format_rfc3339(event)
        );
    }
    svg.push_str("</svg>");
    svg
}

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d232a; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin: 28px 0 6px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
td, th { border-bottom: 1px solid #dde2e7; padding: 3px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.series { margin: 18px 0 28px; }
.series h3 { font-size: 14px; margin: 0 0 4px; font-weight: 600; }
.series p { margin: 0 0 4px; color: #56606b; }
svg { width: 100%; height: 170px; background: #f7f9fb; border: 1px solid #e3e7eb; }
.values { fill: none; stroke: #2c5d8f; stroke-width: 1; vector-effect: non-scaling-stroke; }
.band { fill: #8fb8de; fill-opacity: 0.35; stroke: none; }
.incident { fill: #f2a33a; fill-opacity: 0.25; }
.event { fill: #d23c3c; stroke: white; stroke-width: 1; vector-effect: non-scaling-stroke; }
.legend span { display: inline-block; margin-right: 14px; }
.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: middle; margin-right: 4px; }
";

/// The self-contained HTML report; `comparisons` (configuration name, figures) become a
/// side-by-side table.
pub fn html(
    title: &str,
    overall: &Figures,
    series: &[SeriesReport],
    comparisons: &[(String, Figures)],
    groups: &[GroupFigures],
) -> String {
    let mut page = String::with_capacity(64 * 1024 + series.len() * 40 * 1024);
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    );
    let _ = write!(page, "<h1>{}</h1>", escape(title));
    let _ = write!(
        page,
        "<p>{} series, {} labelled incidents, {} events.</p>",
        series.len(),
        overall.incidents,
        overall.events
    );
    page.push_str("<table><tr><th></th><th>precision</th><th>recall</th><th>F1</th><th>median delay</th><th>mean delay</th></tr>");
    let _ = write!(
        page,
        "<tr><td>event-wise (incidents caught, events inside)</td>{}<td>{}</td><td>{}</td></tr>",
        prf_cells(&overall.event_wise),
        duration(overall.median_delay_ms),
        duration(overall.mean_delay_ms)
    );
    if let Some(points) = &overall.point_wise {
        let _ = write!(
            page,
            "<tr><td>point-wise (points at or above warning)</td>{}<td></td><td></td></tr>",
            prf_cells(points)
        );
    }
    page.push_str("</table>");
    if let Some(nab) = &overall.nab {
        let score = |x: Option<f64>| x.map_or("–".to_owned(), |x| format!("{x:.2}"));
        let _ = write!(
            page,
            "<p>NAB standard-profile score: <b>{}</b> at the template's threshold, <b>{}</b> with \
             NAB's threshold sweep ({:.4}; {} of {} windows detected).</p>",
            score(nab.at_threshold),
            score(nab.swept),
            nab.swept_threshold,
            nab.detected,
            nab.windows
        );
    }
    if !comparisons.is_empty() {
        page.push_str("<h2>Configurations side by side</h2><table><tr><th>configuration</th><th>events</th><th>incidents caught</th><th>precision</th><th>recall</th><th>F1</th><th>point-wise F1</th><th>median delay</th><th>NAB at threshold</th><th>NAB swept</th></tr>");
        for (name, f) in comparisons {
            let nab = |pick: fn(&crate::backtest::NabFigures) -> Option<f64>| {
                f.nab
                    .as_ref()
                    .and_then(pick)
                    .map_or("–".to_owned(), |x| format!("{x:.2}"))
            };
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{} / {}</td>{}<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(name),
                f.events,
                f.event_wise.true_positives,
                f.incidents,
                prf_cells(&f.event_wise),
                ratio(f.point_wise.as_ref().and_then(|p| p.f1)),
                duration(f.median_delay_ms),
                nab(|n| n.at_threshold),
                nab(|n| n.swept)
            );
        }
        page.push_str("</table>");
    }
    if !groups.is_empty() {
        page.push_str("<h2>Per group</h2><table><tr><th>group</th><th>series</th><th>incidents</th><th>caught</th><th>events</th><th>inside</th><th>precision</th><th>recall</th></tr>");
        for g in groups {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&g.group),
                g.series,
                g.incidents,
                g.caught,
                g.events,
                g.events_inside,
                ratio(g.precision),
                ratio(g.recall)
            );
        }
        page.push_str("</table>");
    }
    page.push_str("<h2>Per series</h2><table><tr><th>series</th><th>incidents</th><th>caught</th><th>events</th><th>precision</th><th>recall</th><th>F1</th><th>median delay</th></tr>");
    for (i, s) in series.iter().enumerate() {
        let e = &s.figures.event_wise;
        let _ = write!(
            page,
            "<tr><td><a href=\"#s{i}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td>{}<td>{}</td></tr>",
            escape(&s.name),
            s.figures.incidents,
            e.true_positives,
            s.figures.events,
            prf_cells(e),
            duration(s.figures.median_delay_ms)
        );
    }
    page.push_str("</table>");
    page.push_str("<h2>Plots</h2><p class=\"legend\"><span><i class=\"swatch\" style=\"background:#2c5d8f\"></i>values</span><span><i class=\"swatch\" style=\"background:#8fb8de\"></i>expected band</span><span><i class=\"swatch\" style=\"background:#d23c3c\"></i>events</span><span><i class=\"swatch\" style=\"background:#f2a33a\"></i>labelled incidents</span></p>");
    for (i, s) in series.iter().enumerate() {
        let range = match (s.points.first(), s.points.last()) {
            (Some(a), Some(b)) => format!(
                "{} to {}",
                format_rfc3339(a.timestamp),
                format_rfc3339(b.timestamp)
            ),
            _ => String::new(),
        };
        let _ = write!(
            page,
            "<div class=\"series\" id=\"s{i}\"><h3>{}</h3><p>{} points, {range}; {} events, {} incidents</p>{}</div>",
            escape(&s.name),
            s.points.len(),
            s.events.len(),
            s.incidents.len(),
            plot(s)
        );
    }
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> SeriesReport {
        let points = (0..5000)
            .map(|i| PlotPoint {
                timestamp: i * 60_000,
                value: if i == 2500 { 50.0 } else { (i % 10) as f64 },
                band: (i > 100).then_some((0.0, 9.0)),
            })
            .collect();
        SeriesReport {
            key: "00000000000000ab".into(),
            name: "cpu{host=\"a\"} <x>".into(),
            points,
            events: vec![2500 * 60_000],
            incidents: vec![Window {
                start: 2400 * 60_000,
                end: 2600 * 60_000,
            }],
            figures: Figures::default(),
        }
    }

    #[test]
    fn the_plot_thins_points_but_keeps_the_spike_and_draws_band_events_and_incidents() {
        let svg = plot(&series());
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        let line = svg.split("class=\"values\" points=\"").nth(1).unwrap();
        let points = line.split('"').next().unwrap().split(' ').count();
        assert!(points <= 2 * BUCKETS, "{points} points drawn");
        // The spike (value 50, the top of the plot area minus the margin) is drawn.
        let top = HEIGHT - (50.0 - (0.0 - 12.5)) / (62.5 - (0.0 - 12.5)) * HEIGHT;
        assert!(line.contains(&format!(",{top:.1}")), "spike at y {top:.1}");
        assert_eq!(svg.matches("class=\"event\"").count(), 1);
        assert_eq!(svg.matches("class=\"incident\"").count(), 1);
        assert!(svg.contains("class=\"band\""));
    }

    #[test]
    fn the_page_is_self_contained_and_escapes_names() {
        let s = series();
        let compared = [("only <z>".to_owned(), Figures::default())];
        let page = html(
            "Backtest <1>",
            &Figures::default(),
            std::slice::from_ref(&s),
            &compared,
            &[],
        );
        assert!(
            page.contains("only &lt;z&gt;"),
            "the comparison table names its configurations"
        );
        assert!(page.contains("Backtest &lt;1&gt;"));
        assert!(page.contains("cpu{host=&quot;a&quot;} &lt;x&gt;"));
        assert!(!page.contains("<script"), "no script");
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "nothing fetched"
        );
        let json = figures_json("t", &Figures::default(), &[s], &compared, &[]);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["series"][0]["key"], "00000000000000ab");
    }
}
