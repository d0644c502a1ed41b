//! The in-process event bus: the embedded broker between the pipeline and a gateway running in
//! the same process, used when no Redis is configured.
//!
//! It follows the Redis layout: messages are published on the channel names of
//! `aiops_schemas` (`aiops:{tenant}:anomalies`), and each event is encoded to JSON once, the
//! same bytes going to every subscriber. Subscribers that fall more than the bus capacity
//! behind lose the oldest messages and are told how many (`RecvError::Lagged`): the bus never
//! slows the pipeline down.

use std::sync::Arc;

use tokio::sync::broadcast;

use aiops_schemas::{AnomalyEvent, anomalies_channel};

use super::Sink;
use crate::error::Result;

/// One published message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    /// The channel, e.g. `aiops:{acme}:anomalies`.
    pub channel: Arc<str>,
    /// The JSON-encoded event.
    pub payload: Arc<[u8]>,
}

/// A broadcast bus; clones share it.
#[derive(Debug, Clone)]
pub struct Bus {
    sender: broadcast::Sender<BusMessage>,
}

impl Bus {
    /// A bus that buffers `capacity` messages for its slowest subscriber.
    pub fn new(capacity: usize) -> Bus {
        Bus {
            sender: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Publishes a message; returns how many subscribers will see it.
    pub fn publish(&self, message: BusMessage) -> usize {
        self.sender.send(message).unwrap_or(0)
    }

    /// A new subscriber, seeing messages published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BusMessage> {
        self.sender.subscribe()
    }
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(65_536)
    }
}

impl Sink for Bus {
    fn events(&mut self, events: &[AnomalyEvent]) -> Result<()> {
        for event in events {
            // Serializing a plain struct of strings and numbers cannot fail.
            let payload = serde_json::to_vec(event).unwrap_or_default();
            self.publish(BusMessage {
                channel: anomalies_channel(&event.tenant).into(),
                payload: payload.into(),
            });
        }
        Ok(())
    }
}
