//! One place to declare a metric: register it on a [`MetricsRegistry`] with its name and help
//! text, keep the handle, and it appears on every scrape in Prometheus' text format.
//!
//! Counters are registered without their `_total` suffix (the encoder adds it, as Prometheus'
//! conventions ask). Values computed at scrape time (a gauge read from other state, an age)
//! are registered as a closure with [`MetricsRegistry::gauge_fn`].

use std::fmt;
use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Metric, Registry};

pub use prometheus_client::encoding::EncodeLabelSet;
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::metrics::histogram::Histogram;

/// The `Content-Type` of what [`MetricsRegistry::render`] writes (text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A counter of seconds (or any other fraction).
pub type FloatCounter = Counter<f64, AtomicU64>;

/// A gauge of counts (never negative).
pub type CountGauge = Gauge<u64, AtomicU64>;

/// Every metric of one service.
#[derive(Debug, Default)]
pub struct MetricsRegistry {
    registry: Registry,
}

impl MetricsRegistry {
    /// An empty registry.
    pub fn new() -> MetricsRegistry {
        MetricsRegistry::default()
    }

    /// Registers `metric` (a counter, gauge, histogram or family of them) under `name`.
    /// `help` is written as given (prometheus-client would add a full stop; ours have theirs).
    pub fn register(&mut self, name: &str, help: &str, metric: impl Metric) {
        self.registry
            .register(name, help.strip_suffix('.').unwrap_or(help), metric);
    }

    /// A new counter registered as `name` (served as `name_total`).
    pub fn counter(&mut self, name: &str, help: &str) -> Counter {
        let counter = Counter::default();
        self.register(name, help, counter.clone());
        counter
    }

    /// A new gauge of counts registered as `name`.
    pub fn gauge(&mut self, name: &str, help: &str) -> CountGauge {
        let gauge = CountGauge::default();
        self.register(name, help, gauge.clone());
        gauge
    }

    /// A new histogram with upper bounds `buckets`, registered as `name`.
    pub fn histogram(&mut self, name: &str, help: &str, buckets: &[f64]) -> Histogram {
        let histogram = Histogram::new(buckets.iter().copied());
        self.register(name, help, histogram.clone());
        histogram
    }

    /// A gauge whose value `read` computes at each scrape; absent from the page while `read`
    /// gives `None`.
    pub fn gauge_fn(
        &mut self,
        name: &str,
        help: &str,
        read: impl Fn() -> Option<f64> + Send + Sync + 'static,
    ) {
        self.registry.register_collector(Box::new(GaugeFn {
            name: name.to_owned(),
            help: help.strip_suffix('.').unwrap_or(help).to_owned() + ".",
            read: Box::new(read),
        }));
    }

    /// Every registered metric in Prometheus' text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let mut page = String::with_capacity(4096);
        // Writing to a String cannot fail; the encoder's own errors are formatting errors of
        // label values, which ours never produce.
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut page, &self.registry)
        {
            tracing::warn!(%error, "aiops: the metrics page could not be rendered in full");
        }
        page
    }
}

/// A gauge read at scrape time.
struct GaugeFn {
    name: String,
    help: String,
    read: Box<dyn Fn() -> Option<f64> + Send + Sync>,
}

impl fmt::Debug for GaugeFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GaugeFn").field("name", &self.name).finish()
    }
}

impl Collector for GaugeFn {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let Some(value) = (self.read)() else {
            return Ok(());
        };
        let gauge = ConstGauge::new(value);
        let metric =
            encoder.encode_descriptor(&self.name, &self.help, None, gauge.metric_type())?;
        gauge.encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_histograms_render_with_their_help_once() {
        let mut registry = MetricsRegistry::new();
        let requests = registry.counter("x_requests", "Requests served.");
        let open = registry.gauge("x_open", "Connections open.");
        let latency = registry.histogram("x_seconds", "Latency.", &[0.001, 0.1]);
        registry.gauge_fn("x_age_seconds", "Age.", || Some(1.5));
        registry.gauge_fn("x_absent", "Never there.", || None);
        requests.inc_by(3);
        open.set(2);
        latency.observe(0.01);
        let page = registry.render();
        assert!(
            page.contains("# HELP x_requests_total Requests served.\n"),
            "{page}"
        );
        assert!(
            page.contains("# TYPE x_requests_total counter\nx_requests_total 3\n"),
            "{page}"
        );
        assert!(page.contains("# TYPE x_open gauge\nx_open 2\n"), "{page}");
        assert!(
            page.contains("x_seconds_bucket{le=\"0.001\"} 0\n"),
            "{page}"
        );
        assert!(page.contains("x_seconds_bucket{le=\"0.1\"} 1\n"), "{page}");
        assert!(page.contains("x_seconds_count 1\n"), "{page}");
        assert!(page.contains("# HELP x_age_seconds Age.\n"), "{page}");
        assert!(page.contains("x_age_seconds 1.5\n"), "{page}");
        assert!(!page.contains("x_absent"), "{page}");
        assert!(
            !page.contains(".."),
            "help texts keep one full stop: {page}"
        );
    }
}
