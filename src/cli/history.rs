//! Where `aiops train` and `aiops replay` read history from: a file, or a Kafka topic read
//! through a throwaway consumer group that never commits.

use std::path::PathBuf;

use clap::Args;

use aiops_pipeline::PipelineConfig;
use aiops_schemas::{Format, TimestampMs, parse_timestamp};

use crate::error::{Error, Result};

/// A file or a topic.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// A file of records (NAB CSV, JSON lines, Influx lines).
    #[arg(
        long,
        short = 'i',
        value_name = "FILE",
        required_unless_present = "topic",
        conflicts_with = "topic"
    )]
    pub input: Option<PathBuf>,

    /// Or a Kafka topic (read through a throwaway consumer group that never commits).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,

    /// Kafka brokers for --topic [default: `[kafka] brokers` of the configuration].
    #[arg(long, env = "AIOPS_KAFKA_BROKERS", value_name = "HOST:PORT")]
    pub brokers: Option<String>,

    /// Record format [default: from the file name or first line; JSON for a topic unless the
    /// configuration's [kafka] topics say otherwise].
    #[arg(long, short = 'f', value_parser = ["csv", "json", "influx"])]
    pub format: Option<String>,
}

impl HistoryArgs {
    /// The format asked for, if any.
    pub fn format(&self) -> Option<Format> {
        self.format.as_deref().map(|f| match f {
            "csv" => Format::Csv,
            "json" => Format::Json,
            _ => Format::Influx,
        })
    }

    /// The Kafka settings and the topic's, from the configuration and the arguments.
    #[cfg(feature = "kafka")]
    pub fn kafka(
        &self,
        config: &PipelineConfig,
        topic: &str,
    ) -> Result<(
        aiops_pipeline::config::KafkaConfig,
        aiops_pipeline::config::TopicConfig,
    )> {
        use aiops_pipeline::config::{KafkaConfig, TopicConfig};
        let kafka = match (&config.kafka, &self.brokers) {
            (Some(kafka), brokers) => KafkaConfig {
                brokers: brokers.clone().unwrap_or_else(|| kafka.brokers.clone()),
                ..kafka.clone()
            },
            (None, Some(brokers)) => KafkaConfig {
                brokers: brokers.clone(),
                group: "aiops".into(),
                topics: Vec::new(),
                dead_letter_suffix: ".dlq".into(),
                anomalies_topic: None,
                options: Default::default(),
                instance_id: None,
                rejoin_stalled_after_ms: aiops_pipeline::config::DEFAULT_REJOIN_STALLED_MS,
            },
            (None, None) => {
                return Err(Error::Usage(
                    "--topic needs --brokers (or AIOPS_KAFKA_BROKERS, or a [kafka] section)".into(),
                ));
            }
        };
        let mut topic_config = kafka
            .topics
            .iter()
            .find(|t| t.name == topic)
            .cloned()
            .unwrap_or(TopicConfig {
                name: topic.to_owned(),
                format: Format::Json,
                tenant: None,
                precision: None,
            });
        if let Some(format) = self.format() {
            topic_config.format = format;
        }
        Ok((kafka, topic_config))
    }
}

/// A time on the command line: RFC 3339 or milliseconds since the epoch.
pub fn parse_time(text: &str) -> Result<TimestampMs> {
    parse_timestamp(text, aiops_schemas::Precision::Milliseconds)
        .map_err(|e| Error::Usage(format!("cannot read time {text:?}: {e}")))
}

/// The error of a build without Kafka.
#[cfg(not(feature = "kafka"))]
pub fn no_kafka<T>() -> Result<T> {
    Err(Error::Usage(
        "this build has no Kafka support (feature kafka)".into(),
    ))
}
