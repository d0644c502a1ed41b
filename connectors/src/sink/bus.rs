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

use aiops_schemas::{AnomalyEvent, ConfigNotice, anomalies_channel, config_channel};

use aiops_pipeline::Result;
use aiops_pipeline::sink::Sink;

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

    fn config(&mut self, notices: &[ConfigNotice]) -> Result<()> {
        for notice in notices {
            let payload = serde_json::to_vec(notice).unwrap_or_default();
            self.publish(BusMessage {
                channel: config_channel(&notice.tenant).into(),
                payload: payload.into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_schemas::{Band, Labels, Limits, Series, SeriesRef, Severity, anomaly_id};
    use tokio::sync::broadcast::error::TryRecvError;

    fn event(tenant: &str, timestamp: i64) -> AnomalyEvent {
        let series = Series::new(tenant, "cpu", Labels::new(), &Limits::default()).unwrap();
        AnomalyEvent {
            schema_version: 1,
            id: anomaly_id(&series, timestamp, "zscore", "v1"),
            tenant: tenant.into(),
            series: SeriesRef::from(&series),
            timestamp,
            onset: timestamp,
            value: 1.0,
            expected: Band {
                lower: 0.0,
                upper: 0.5,
            },
            score: 6.0,
            severity: Severity::Warning,
            escalation: false,
            detector: "zscore".into(),
            template: "default".into(),
            model_version: "v1".into(),
            contributions: vec![],
        }
    }

    #[test]
    fn events_are_encoded_once_and_published_on_their_tenant_channel() {
        let mut bus = Bus::new(8);
        let mut first = bus.subscribe();
        let mut second = bus.subscribe();
        bus.events(&[event("acme", 1), event("globex", 2)]).unwrap();
        let a = first.try_recv().unwrap();
        let b = first.try_recv().unwrap();
        assert_eq!(&*a.channel, "aiops:{acme}:anomalies");
        assert_eq!(&*b.channel, "aiops:{globex}:anomalies");
        let decoded: AnomalyEvent = serde_json::from_slice(&a.payload).unwrap();
        assert_eq!(decoded, event("acme", 1));
        // Both subscribers share the same encoded bytes.
        let a2 = second.try_recv().unwrap();
        assert!(Arc::ptr_eq(&a.payload, &a2.payload));
    }

    #[test]
    fn a_slow_subscriber_loses_the_oldest_messages_and_is_told() {
        let mut bus = Bus::new(2);
        let mut slow = bus.subscribe();
        let events: Vec<_> = (0..5).map(|t| event("acme", t)).collect();
        bus.events(&events).unwrap();
        assert_eq!(slow.try_recv(), Err(TryRecvError::Lagged(3)));
        let next: AnomalyEvent = serde_json::from_slice(&slow.try_recv().unwrap().payload).unwrap();
        assert_eq!(next.timestamp, 3);
    }

    #[test]
    fn publishing_without_subscribers_is_fine() {
        let mut bus = Bus::default();
        bus.events(&[event("acme", 1)]).unwrap();
    }
}
