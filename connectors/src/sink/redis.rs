//! The Redis sink: each event is appended to the capped stream `aiops:{tenant}:anomalies:log`
//! (fields `id` and `event`) for history and resume, then published live on
//! `aiops:{tenant}:anomalies`, all in one pipelined round trip per batch.
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

/// Whether Redis at `url` answers a `PING` within `timeout` (for readiness probes).
pub fn ping(url: &str, timeout: Duration) -> Result<()> {
    let unreachable = |e: redis::RedisError| Error::redis(url, e);
    let client = redis::Client::open(url).map_err(unreachable)?;
    let mut connection = client
        .get_connection_with_timeout(timeout)
        .map_err(unreachable)?;
    connection
        .set_read_timeout(Some(timeout))
        .map_err(unreachable)?;
    redis::cmd("PING")
        .query::<String>(&mut connection)
        .map_err(unreachable)?;
    Ok(())
}

/// See the module docs.
pub struct RedisSink {
    client: redis::Client,
    connection: Option<redis::Connection>,
    config: RedisConfig,
}

impl RedisSink {
    /// A sink for `config.url`; connects lazily, so a Redis that starts later is fine.
    pub fn new(config: RedisConfig) -> Result<RedisSink> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| Error::redis(format!("invalid URL {:?}", config.url), e))?;
        Ok(RedisSink {
            client,
            connection: None,
            config,
        })
    }

    fn connection(&mut self) -> redis::RedisResult<&mut redis::Connection> {
        if self.connection.is_none() {
            let timeout = Duration::from_secs(5);
            let connection = self.client.get_connection_with_timeout(timeout)?;
            connection.set_read_timeout(Some(timeout))?;
            connection.set_write_timeout(Some(timeout))?;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("connection was just set"))
    }

    /// Runs `pipe` until Redis acknowledges it, reconnecting with backoff.
    fn execute(&mut self, pipe: &redis::Pipeline) -> Result<()> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        let mut reported = false;
        loop {
            let attempt = self.connection().and_then(|c| pipe.query::<()>(c));
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
}

/// Queues one record of a resumable channel: history first, then live. A subscriber that
/// resumes subscribes, then reads the history, so a record it did not see published must
/// already be in the stream.
fn log_and_publish(
    pipe: &mut redis::Pipeline,
    (log_key, channel): (String, String),
    id: &str,
    payload: &[u8],
    maxlen: u64,
) {
    pipe.cmd("XADD")
        .arg(log_key)
        .arg("MAXLEN")
        .arg("~")
        .arg(maxlen)
        .arg("*")
        .arg("id")
        .arg(id)
        .arg("event")
        .arg(payload)
        .ignore();
    pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
}

impl Sink for RedisSink {
    fn events(&mut self, events: &[AnomalyEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for event in events {
            // Encoded once: the same bytes are published and logged.
            let payload = serde_json::to_vec(event).unwrap_or_default();
            let keys = (
                anomalies_log_key(&event.tenant),
                anomalies_channel(&event.tenant),
            );
            log_and_publish(
                &mut pipe,
                keys,
                &event.id,
                &payload,
                self.config.stream_maxlen,
            );
        }
        self.execute(&pipe)
    }

    fn config(&mut self, notices: &[ConfigNotice]) -> Result<()> {
        if notices.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for notice in notices {
            // Logged too, so a UI that resumes its `config` subscription misses no confirmation.
            let payload = serde_json::to_vec(notice).unwrap_or_default();
            let keys = (
                config_log_key(&notice.tenant),
                config_channel(&notice.tenant),
            );
            log_and_publish(
                &mut pipe,
                keys,
                &notice.id,
                &payload,
                self.config.stream_maxlen,
            );
        }
        self.execute(&pipe)
    }

    fn drift(&mut self, events: &[DriftEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for event in events {
            let payload = serde_json::to_vec(event).unwrap_or_default();
            pipe.cmd("PUBLISH")
                .arg(drift_channel(&event.tenant))
                .arg(&payload)
                .ignore();
        }
        self.execute(&pipe)
    }
}
