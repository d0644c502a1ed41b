//! Counters of the gateway, served as Prometheus text on `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters. Gauges (connections open) are counters that also go down.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connections open now.
    pub connections: AtomicU64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Upgrades refused for a missing or invalid token.
    pub rejected_auth: AtomicU64,
    /// Connections refused over the connection limit.
    pub rejected_capacity: AtomicU64,
    /// Connections refused over an IP address's rate.
    pub rejected_rate: AtomicU64,
    /// Clients disconnected for falling behind.
    pub slow_disconnects: AtomicU64,
    /// Events received from the broker and delivered to the hub.
    pub events_in: AtomicU64,
    /// Events dropped as duplicates of a recent id.
    pub events_duplicate: AtomicU64,
    /// Broker messages that were not events.
    pub events_invalid: AtomicU64,
    /// Event frames queued to clients.
    pub frames_out: AtomicU64,
    /// Events replayed from history to resuming clients.
    pub replayed: AtomicU64,
    /// Broker reconnections.
    pub broker_reconnects: AtomicU64,
}

impl Metrics {
    /// Adds to a counter.
    pub fn add(&self, counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self, subscriptions: usize) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut line = |name: &str, kind: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        line(
            "aiops_gateway_open_connections",
            "gauge",
            "WebSocket connections open.",
            get(&self.connections),
        );
        line(
            "aiops_gateway_connections_total",
            "counter",
            "WebSocket connections accepted.",
            get(&self.connections_total),
        );
        line(
            "aiops_gateway_subscriptions",
            "gauge",
            "Channel subscriptions open.",
            subscriptions as u64,
        );
        line(
            "aiops_gateway_rejected_auth_total",
            "counter",
            "Upgrades refused for the token.",
            get(&self.rejected_auth),
        );
        line(
            "aiops_gateway_rejected_capacity_total",
            "counter",
            "Connections refused over max_connections.",
            get(&self.rejected_capacity),
        );
        line(
            "aiops_gateway_rejected_rate_total",
            "counter",
            "Connections refused over the per-IP rate.",
            get(&self.rejected_rate),
        );
        line(
            "aiops_gateway_slow_disconnects_total",
            "counter",
            "Clients disconnected for falling behind.",
            get(&self.slow_disconnects),
        );
        line(
            "aiops_gateway_events_total",
            "counter",
            "Events received from the broker.",
            get(&self.events_in),
        );
        line(
            "aiops_gateway_events_duplicate_total",
            "counter",
            "Events dropped as duplicates.",
            get(&self.events_duplicate),
        );
        line(
            "aiops_gateway_events_invalid_total",
            "counter",
            "Broker messages that were not events.",
            get(&self.events_invalid),
        );
        line(
            "aiops_gateway_frames_total",
            "counter",
            "Event frames queued to clients.",
            get(&self.frames_out),
        );
        line(
            "aiops_gateway_replayed_total",
            "counter",
            "Events replayed to resuming clients.",
            get(&self.replayed),
        );
        line(
            "aiops_gateway_broker_reconnects_total",
            "counter",
            "Broker reconnections.",
            get(&self.broker_reconnects),
        );
        out
    }
}
