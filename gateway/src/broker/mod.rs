//! Brokers: where the gateway's events come from. Both feed the [`Hub`](crate::hub::Hub) and
//! answer history queries for resuming clients.
//!
//! - [`redis::RedisBroker`]: subscribes to a Redis channel on its first local subscriber and
//!   unsubscribes after its last; reconnects with backoff after an outage, resubscribes, and
//!   catches up from the capped stream what was published meanwhile. History comes from the
//!   stream `aiops:{tenant}:anomalies:log`.
//! - [`memory::MemoryBroker`]: the embedded default, fed in-process (by `aiops demo`), with a
//!   bounded history per channel.

pub mod memory;
pub mod redis;

use std::future::Future;

/// Events after a given one, for a resuming client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Whether the event the client saw last is still in history; when false, events may have
    /// been missed and `entries` is empty.
    pub found: bool,
    /// (event id, event JSON) after it, oldest first.
    pub entries: Vec<(String, String)>,
}

/// Why a broker could not serve a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The broker is unreachable now.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The channel keeps no history.
    #[error("channel {0} keeps no history")]
    NoHistory(String),
}

/// A source of events for the hub.
///
/// `subscribe` and `unsubscribe` make their request when called (not when awaited), so a caller
/// can order requests with the hub's bookkeeping under one lock.
pub trait Broker: Send + Sync + 'static {
    /// Starts delivering `channel`'s events to the hub; the future resolves once they flow.
    /// Subscribing to a channel already subscribed is harmless and confirms it is live.
    fn subscribe(
        &self,
        channel: &str,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send + 'static;

    /// Stops delivering `channel`'s events.
    fn unsubscribe(&self, channel: &str);

    /// The events of `channel` after the one with id `since`.
    fn history_after(
        &self,
        channel: &str,
        since: &str,
    ) -> impl Future<Output = Result<History, BrokerError>> + Send;

    /// Whether the broker is connected (for `/readyz`).
    fn is_ready(&self) -> bool;
}

/// The Redis stream keeping a channel's history, if it has one: `aiops:{tenant}:anomalies`
/// keeps `aiops:{tenant}:anomalies:log`; drift channels keep none.
pub fn history_key(channel: &str) -> Option<String> {
    aiops_schemas::ChannelKey::parse(channel)?.history_key()
}
