//! Telemetry both aiops services share: metrics declared once on a [prometheus-client]
//! registry and rendered in Prometheus' text format ([`metrics`]), and the admin HTTP endpoint
//! that serves them with the health probes ([`admin`]).
//!
//! A service declares each metric in one place, by registering it with a name and a help text
//! ([`metrics::MetricsRegistry`]); the registry renders every registered metric at each scrape.
//! The admin endpoint listens apart from any public port, so a client of the gateway never
//! reaches `/metrics`.
//!
//! [prometheus-client]: prometheus_client

#[cfg(feature = "admin")]
pub mod admin;
pub mod metrics;

#[cfg(feature = "admin")]
pub use admin::{AdminServer, Readiness};
pub use metrics::MetricsRegistry;

/// What can go wrong when starting the admin endpoint.
#[cfg(feature = "admin")]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The admin address cannot be listened on.
    #[error("cannot listen for the admin endpoint on {address}: {source}")]
    Listen {
        /// The address asked for.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The thread that serves the endpoint could not be started.
    #[error("cannot start the admin endpoint's thread: {0}")]
    Thread(#[source] std::io::Error),
}
