//! The Kafka sink: dead letters to `<source topic><suffix>` (the original key and bytes, the
//! reason in headers) and, when configured, anomaly events to an anomalies topic (keyed by
//! series key). A batch returns only once the broker has acknowledged every record of it.
//!
//! Dead-letter headers: `aiops-reason`, `aiops-kind`, `aiops-format`, `aiops-source-topic`,
//! `aiops-source-partition`, `aiops-source-offset`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use aiops_schemas::AnomalyEvent;

use aiops_pipeline::config::KafkaConfig;
use aiops_pipeline::record::DeadLetter;
use aiops_pipeline::sink::Sink;
use aiops_pipeline::{Error, Result};

/// Collects delivery failures reported by librdkafka.
#[derive(Default, Clone)]
struct Deliveries {
    failures: Arc<Mutex<Vec<String>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            use rdkafka::message::Message;
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            failures.push(format!("{}: {error}", message.topic()));
        }
    }
}

/// See the module docs.
pub struct KafkaSink {
    producer: BaseProducer<Deliveries>,
    deliveries: Deliveries,
    topics: Vec<String>,
    suffix: String,
    anomalies_topic: Option<String>,
}

impl KafkaSink {
    /// A producer for the dead-letter topics of `config.topics` and its anomalies topic.
    pub fn new(config: &KafkaConfig) -> Result<KafkaSink> {
        let deliveries = Deliveries::default();
        let producer = crate::source::kafka::client_config(config)
            .set("acks", "all")
            .set("linger.ms", "1")
            .create_with_context(deliveries.clone())
            .map_err(|e| {
                Error::kafka(
                    format!("cannot create a producer for {}", config.brokers),
                    e,
                )
            })?;
        Ok(KafkaSink {
            producer,
            deliveries,
            topics: config.topics.iter().map(|t| t.name.clone()).collect(),
            suffix: config.dead_letter_suffix.clone(),
            anomalies_topic: config.anomalies_topic.clone(),
        })
    }

    fn send(&self, mut record: BaseRecord<'_, [u8], [u8]>) -> Result<()> {
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    back,
                )) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((error, _)) => return Err(Error::kafka("cannot produce", error)),
            }
        }
    }

    /// Waits until every record sent is acknowledged; fails if any was not.
    fn acknowledge(&self) -> Result<()> {
        // Not `Producer::flush`: it sleeps in steps of 100 ms, which every checkpoint would pay.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while self.producer.in_flight_count() > 0 {
            if std::time::Instant::now() > deadline {
                return Err(Error::kafka_message(format!(
                    "{} records not acknowledged within 60 s",
                    self.producer.in_flight_count()
                )));
            }
            self.producer.poll(Duration::from_millis(1));
        }
        let failures = std::mem::take(
            &mut *self
                .deliveries
                .failures
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        match failures.first() {
            None => Ok(()),
            Some(first) => Err(Error::kafka_message(format!(
                "{} records were not delivered, the first to {first}",
                failures.len()
            ))),
        }
    }
}

impl Sink for KafkaSink {
    fn events(&mut self, events: &[AnomalyEvent]) -> Result<()> {
        let Some(topic) = &self.anomalies_topic else {
            return Ok(());
        };
        for event in events {
            let payload = serde_json::to_vec(event).unwrap_or_default();
            let key = event.series.key.to_string();
            self.send(
                BaseRecord::to(topic)
                    .key(key.as_bytes())
                    .payload(&payload[..]),
            )?;
        }
        self.acknowledge()
    }

    fn dead_letters(&mut self, letters: &[DeadLetter]) -> Result<()> {
        for letter in letters {
            let id = letter.partition;
            let source_topic = self
                .topics
                .get(id.topic_index())
                .cloned()
                .unwrap_or_default();
            let topic = format!("{source_topic}{}", self.suffix);
            let (partition, offset) = (id.partition().to_string(), letter.seq.to_string());
            let format = letter.format.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "aiops-reason",
                    value: Some(letter.reason.as_bytes()),
                })
                .insert(Header {
                    key: "aiops-kind",
                    value: Some(letter.kind.as_bytes()),
                })
                .insert(Header {
                    key: "aiops-format",
                    value: Some(format.as_bytes()),
                })
                .insert(Header {
                    key: "aiops-source-topic",
                    value: Some(source_topic.as_bytes()),
                })
                .insert(Header {
                    key: "aiops-source-partition",
                    value: Some(partition.as_bytes()),
                })
                .insert(Header {
                    key: "aiops-source-offset",
                    value: Some(offset.as_bytes()),
                });
            let mut record = BaseRecord::to(&topic)
                .payload(&letter.bytes[..])
                .headers(headers);
            if let Some(key) = &letter.key {
                record = record.key(&key[..]);
            }
            self.send(record)?;
        }
        self.acknowledge()
    }

    fn flush(&mut self) -> Result<()> {
        self.acknowledge()
    }
}
