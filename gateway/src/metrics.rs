//! The gateway's metrics, declared once on the shared telemetry registry and served on the
//! admin endpoint's `/metrics` (never on the client port).

use aiops_telemetry::MetricsRegistry;
use aiops_telemetry::metrics::{CountGauge, Counter};

/// Live counters and gauges; each field is registered under its Prometheus name in
/// [`Metrics::default`].
#[derive(Debug)]
pub struct Metrics {
    /// Connections open now (also the admission count against `max_connections`).
    pub connections: CountGauge,
    /// Connections accepted since start.
    pub connections_total: Counter,
    /// Channel subscriptions open, set from the hub at each scrape.
    pub subscriptions: CountGauge,
    /// Upgrades refused for a missing or invalid token.
    pub rejected_auth: Counter,
    /// Connections refused over the connection limit.
    pub rejected_capacity: Counter,
    /// Connections refused over an IP address's rate.
    pub rejected_rate: Counter,
    /// Clients disconnected for falling behind.
    pub slow_disconnects: Counter,
    /// Events received from the broker and delivered to the hub.
    pub events_in: Counter,
    /// Events dropped as duplicates of a recent id.
    pub events_duplicate: Counter,
    /// Broker messages that were not events.
    pub events_invalid: Counter,
    /// Event frames queued to clients.
    pub frames_out: Counter,
    /// Events replayed from history to resuming clients.
    pub replayed: Counter,
    /// Broker reconnections.
    pub broker_reconnects: Counter,
    registry: MetricsRegistry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = MetricsRegistry::new();
        Metrics {
            connections: r.gauge(
                "aiops_gateway_open_connections",
                "WebSocket connections open.",
            ),
            connections_total: r.counter(
                "aiops_gateway_connections",
                "WebSocket connections accepted.",
            ),
            subscriptions: r.gauge("aiops_gateway_subscriptions", "Channel subscriptions open."),
            rejected_auth: r.counter(
                "aiops_gateway_rejected_auth",
                "Upgrades refused for the token.",
            ),
            rejected_capacity: r.counter(
                "aiops_gateway_rejected_capacity",
                "Connections refused over max_connections.",
            ),
            rejected_rate: r.counter(
                "aiops_gateway_rejected_rate",
                "Connections refused over the per-IP rate.",
            ),
            slow_disconnects: r.counter(
                "aiops_gateway_slow_disconnects",
                "Clients disconnected for falling behind.",
            ),
            events_in: r.counter("aiops_gateway_events", "Events received from the broker."),
            events_duplicate: r.counter(
                "aiops_gateway_events_duplicate",
                "Events dropped as duplicates.",
            ),
            events_invalid: r.counter(
                "aiops_gateway_events_invalid",
                "Broker messages that were not events.",
            ),
            frames_out: r.counter("aiops_gateway_frames", "Event frames queued to clients."),
            replayed: r.counter(
                "aiops_gateway_replayed",
                "Events replayed to resuming clients.",
            ),
            broker_reconnects: r
                .counter("aiops_gateway_broker_reconnects", "Broker reconnections."),
            registry: r,
        }
    }
}

impl Metrics {
    /// The page in Prometheus' text format, with `subscriptions` open now.
    pub fn render(&self, subscriptions: usize) -> String {
        self.subscriptions.set(subscriptions as u64);
        self.registry.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_keeps_its_name_type_and_help() {
        let metrics = Metrics::default();
        metrics.events_in.inc_by(3);
        metrics.connections.inc();
        let page = metrics.render(2);
        for (name, kind) in [
            ("aiops_gateway_open_connections", "gauge"),
            ("aiops_gateway_connections_total", "counter"),
            ("aiops_gateway_subscriptions", "gauge"),
            ("aiops_gateway_events_total", "counter"),
            ("aiops_gateway_broker_reconnects_total", "counter"),
        ] {
            assert!(page.contains(&format!("# TYPE {name} {kind}\n")), "{page}");
        }
        assert!(
            page.contains("# HELP aiops_gateway_events_total Events received from the broker.\n")
        );
        assert!(page.contains("aiops_gateway_events_total 3\n"), "{page}");
        assert!(page.contains("aiops_gateway_subscriptions 2\n"), "{page}");
        assert!(
            page.contains("aiops_gateway_open_connections 1\n"),
            "{page}"
        );
        assert_eq!(page.matches("# TYPE ").count(), 13);
    }
}
