//! The in-memory broker: events published in-process, with a bounded history per channel.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::{Broker, BrokerError, History};
use crate::hub::Hub;
use crate::protocol::EventHead;

/// See the module docs.
pub struct MemoryBroker {
    hub: Arc<Hub>,
    history: Mutex<HashMap<String, VecDeque<(String, String)>>>,
    capacity: usize,
}

impl MemoryBroker {
    /// A broker feeding `hub`, keeping `capacity` events per channel.
    pub fn new(hub: Arc<Hub>, capacity: usize) -> MemoryBroker {
        MemoryBroker {
            hub,
            history: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Publishes an event (its JSON) on a broker channel (`aiops:{tenant}:anomalies`).
    pub fn publish(&self, channel: &str, payload: &str) {
        let id = serde_json::from_str::<EventHead>(payload)
            .map(|h| h.id)
            .unwrap_or_default();
        {
            let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
            let entries = history.entry(channel.to_owned()).or_default();
            if entries.len() >= self.capacity {
                entries.pop_front();
            }
            entries.push_back((id, payload.to_owned()));
        }
        self.hub.publish(channel, payload.as_bytes());
    }
}

impl Broker for MemoryBroker {
    fn subscribe(
        &self,
        _channel: &str,
    ) -> impl std::future::Future<Output = Result<(), BrokerError>> + Send + 'static {
        std::future::ready(Ok(()))
    }

    fn unsubscribe(&self, _channel: &str) {}

    async fn history_after(&self, channel: &str, since: &str) -> Result<History, BrokerError> {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entries) = history.get(channel) else {
            return Ok(History::default());
        };
        Ok(match entries.iter().position(|(id, _)| id == since) {
            Some(index) => History {
                found: true,
                entries: entries.iter().skip(index + 1).cloned().collect(),
            },
            None => History::default(),
        })
    }

    fn is_ready(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[tokio::test]
    async fn history_after_an_id_and_its_bound() {
        let broker = MemoryBroker::new(Arc::new(Hub::new(8, 8, Arc::new(Metrics::default()))), 3);
        for id in ["a", "b", "c", "d"] {
            broker.publish("ch", &format!(r#"{{"id":"{id}"}}"#));
        }
        let after_b = broker.history_after("ch", "b").await.unwrap();
        assert!(after_b.found);
        assert_eq!(
            after_b
                .entries
                .iter()
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>(),
            ["c", "d"]
        );
        let gone = broker.history_after("ch", "a").await.unwrap();
        assert!(!gone.found, "a fell out of the bounded history");
    }
}
