//! The Redis sink: each event is appended to the capped stream `aiops:{tenant}:anomalies:log`
//! (fields `id` and `event`) for history and resume, then published live on
//! `aiops:{tenant}:anomalies`: on one node in one pipelined round trip per batch; on a Redis
//! Cluster (`[redis] cluster = true`) with `SPUBLISH` on the tenant's shard, after the shard's
//! replicas have the stream entries.
//!
//! A batch returns only once Redis has acknowledged it, which is what lets the runner commit
//! offsets behind it. When Redis is unreachable the sink retries with backoff (the pipeline
//! stalls, Kafka keeps the data) and gives up after `give_up_after_ms`; a retried batch may
//! append an event twice, with the same id.

use std::time::{Duration, Instant};

use aiops_schemas::{
    AnomalyEvent, ConfigNotice, DriftEvent, anomalies_channel, anomalies_log_key, config_channel,
    config_log_key, drift_channel,
};

use aiops_pipeline::config::RedisConfig;
use aiops_pipeline::sink::Sink;
use aiops_pipeline::{Error, Result};

use crate::redis_client::{RedisClient, RedisConnection};

/// How long a batch waits for its replicas before it is published anyway.
const REPLICA_WAIT: Duration = Duration::from_secs(1);
/// After a batch found too few replicas, how long batches are published without waiting.
const UNREPLICATED_FOR: Duration = Duration::from_secs(10);

/// Whether Redis at `url` (a cluster's seed nodes with `cluster`) answers a `PING` within
/// `timeout` (for readiness probes).
pub fn ping(url: &str, cluster: bool, timeout: Duration) -> Result<()> {
    let unreachable = |e: redis::RedisError| Error::redis(url, e);
    let client = RedisClient::open(url, cluster).map_err(unreachable)?;
    let mut connection = client.connect(timeout).map_err(unreachable)?;
    redis::cmd("PING")
        .query::<String>(connection.commands())
        .map_err(unreachable)?;
    Ok(())
}

/// One record of a resumable channel: its stream, its channel, its id and its bytes.
struct Logged {
    log_key: String,
    channel: String,
    id: String,
    payload: Vec<u8>,
}

/// See the module docs.
pub struct RedisSink {
    client: RedisClient,
    connection: Option<RedisConnection>,
    config: RedisConfig,
    /// When a batch last went out with fewer replicas than asked (logged once a minute).
    under_replicated: Option<Instant>,
    /// Until when batches do not wait for replicas: a shard that lost its replica (its primary
    /// died and the replica took over) would otherwise hold every batch for [`REPLICA_WAIT`].
    unreplicated_until: Option<Instant>,
}

impl RedisSink {
    /// A sink for `config.url`; connects lazily, so a Redis that starts later is fine.
    pub fn new(config: RedisConfig) -> Result<RedisSink> {
        let client = RedisClient::open(&config.url, config.cluster)
            .map_err(|e| Error::redis(format!("invalid URL {:?}", config.url), e))?;
        Ok(RedisSink {
            client,
            connection: None,
            config,
            under_replicated: None,
            unreplicated_until: None,
        })
    }

    fn connection(&mut self) -> redis::RedisResult<&mut RedisConnection> {
        if self.connection.is_none() {
            self.connection = Some(self.client.connect(Duration::from_secs(5))?);
        }
        Ok(self.connection.as_mut().expect("connection was just set"))
    }

    /// Runs `write` until Redis acknowledges it, reconnecting with backoff.
    fn execute(
        &mut self,
        mut write: impl FnMut(&mut RedisConnection) -> redis::RedisResult<()>,
    ) -> Result<()> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        let mut reported = false;
        loop {
            let attempt = self.connection().and_then(&mut write);
            match attempt {
                Ok(()) => {
                    if reported {
                        let down_s = started.elapsed().as_secs_f64();
                        tracing::info!(down_s, "aiops: redis: reachable again after {down_s:.1} s");
                    }
                    return Ok(());
                }
                Err(error) => {
                    self.connection = None;
                    if started.elapsed() >= Duration::from_millis(self.config.give_up_after_ms) {
                        return Err(Error::redis(
                            format!(
                                "{} (gave up after {} ms)",
                                self.config.url, self.config.give_up_after_ms
                            ),
                            error,
                        ));
                    }
                    if !reported {
                        let url = &self.config.url;
                        tracing::warn!(url, %error, "aiops: redis: {url}: {error}; retrying");
                        reported = true;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Writes records of resumable channels: history first, then live. A subscriber that
    /// resumes subscribes, then reads the history, so a record it did not see published must
    /// already be in the stream. On one node without replicas to wait for, both go in one
    /// round trip; otherwise the stream entries are written, replicated (`WAIT` on each
    /// shard written to), and only then published, so no subscriber sees an event a failover
    /// could lose (a shard with fewer replicas than asked delays its batch by [`REPLICA_WAIT`]
    /// and is logged).
    fn log_and_publish(&mut self, records: &[Logged]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let (maxlen, mut replicas) = (
            self.config.stream_maxlen,
            self.config.replicas_to_wait_for(),
        );
        if self
            .unreplicated_until
            .is_some_and(|until| Instant::now() < until)
        {
            replicas = 0;
        }
        let mut short = false;
        let cluster = self.client.is_cluster();
        let result = self.execute(|connection| {
            short = false;
            let xadd = |record: &Logged| {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(&record.log_key)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(maxlen)
                    .arg("*")
                    .arg("id")
                    .arg(&record.id)
                    .arg("event")
                    .arg(&record.payload);
                cmd
            };
            let publishes = |connection: &RedisConnection| {
                records
                    .iter()
                    .map(|r| connection.publish(&r.channel, &r.payload))
                    .collect::<Vec<_>>()
            };
            if replicas == 0 && !cluster {
                // One node, nothing to wait for: history and live in one round trip.
                let publishes = publishes(connection);
                return connection.pipeline(
                    records
                        .iter()
                        .map(xadd)
                        .zip(publishes)
                        .flat_map(|(a, b)| [a, b]),
                );
            }
            connection.pipeline(records.iter().map(xadd))?;
            if replicas > 0 {
                // One WAIT per shard written to (a tenant's keys share a hash tag, hence a
                // slot); on one node, one WAIT covers every write.
                let mut shards: Vec<&str> = records.iter().map(|r| r.log_key.as_str()).collect();
                shards.sort_unstable();
                shards.dedup();
                if !cluster {
                    shards.truncate(1);
                }
                for key in shards {
                    let acknowledged = connection.wait_for_replicas(key, replicas, REPLICA_WAIT)?;
                    short |= acknowledged < replicas;
                }
            }
            let publishes = publishes(connection);
            connection.pipeline(publishes)
        });
        if short {
            self.unreplicated_until = Some(Instant::now() + UNREPLICATED_FOR);
        }
        if short
            && self
                .under_replicated
                .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
        {
            self.under_replicated = Some(Instant::now());
            tracing::warn!(
                replicas,
                "aiops: redis: a shard has fewer than {replicas} replicas answering; its events were published unreplicated after {} ms",
                REPLICA_WAIT.as_millis()
            );
        }
        result
    }
}

impl Sink for RedisSink {
    fn events(&mut self, events: &[AnomalyEvent]) -> Result<()> {
        let records: Vec<Logged> = events
            .iter()
            .map(|event| Logged {
                log_key: anomalies_log_key(&event.tenant),
                channel: anomalies_channel(&event.tenant),
                id: event.id.clone(),
                // Encoded once: the same bytes are published and logged.
                payload: serde_json::to_vec(event).unwrap_or_default(),
            })
            .collect();
        self.log_and_publish(&records)
    }

    fn config(&mut self, notices: &[ConfigNotice]) -> Result<()> {
        // Logged too, so a UI that resumes its `config` subscription misses no confirmation.
        let records: Vec<Logged> = notices
            .iter()
            .map(|notice| Logged {
                log_key: config_log_key(&notice.tenant),
                channel: config_channel(&notice.tenant),
                id: notice.id.clone(),
                payload: serde_json::to_vec(notice).unwrap_or_default(),
            })
            .collect();
        self.log_and_publish(&records)
    }

    fn drift(&mut self, events: &[DriftEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let payloads: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|e| {
                (
                    drift_channel(&e.tenant),
                    serde_json::to_vec(e).unwrap_or_default(),
                )
            })
            .collect();
        self.execute(|connection| {
            let publishes: Vec<redis::Cmd> = payloads
                .iter()
                .map(|(channel, payload)| connection.publish(channel, payload))
                .collect();
            connection.pipeline(publishes)
        })
    }
}
