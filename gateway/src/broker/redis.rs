//! The Redis broker: one pub/sub connection for every channel this gateway has local
//! subscribers on, and one connection for history reads.
//!
//! A task owns the pub/sub connection. When it drops (Redis restarts, the network breaks) the
//! task reconnects with backoff (50 ms doubling to 2 s), subscribes to every wanted channel
//! again, and replays from each channel's stream what was published after the last event it had
//! delivered, so subscribers miss nothing the stream kept; the hub drops what they already had.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Broker, BrokerError, History, history_key};
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::metrics::Metrics;

/// Stream entries read per round trip when searching history.
const PAGE: usize = 1_000;
/// History entries a resume may replay at most; further back counts as not found.
const MAX_REPLAY: usize = 100_000;
/// One page of the search for an event id in a stream, run by Redis: `{"found", entry id}`,
/// `{"next", oldest entry id of the page}` to go on from, or `{"end"}`.
/// KEYS[1]: the stream; ARGV: the event id, the entry to start before (`+`: the newest), the
/// page size.
const SEARCH_PAGE: &str = r#"
local entries = redis.call('XREVRANGE', KEYS[1], ARGV[2], '-', 'COUNT', tonumber(ARGV[3]))
if #entries == 0 then return {'end'} end
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'id' and fields[i + 1] == ARGV[1] then return {'found', entry[1]} end
  end
end
return {'next', entries[#entries][1]}
"#;
/// History reads at once; more resumes wait their turn, so memory is a few pages however many
/// clients resume together, and no read waits behind the others on the shared connection
/// long enough to time out.
const CONCURRENT_HISTORY_READS: usize = 4;

enum Command {
    Subscribe(
        String,
        oneshot::Sender<std::result::Result<(), BrokerError>>,
    ),
    Unsubscribe(String),
}

/// See the module docs.
pub struct RedisBroker {
    client: redis::Client,
    commands: mpsc::UnboundedSender<Command>,
    history: Mutex<Option<redis::aio::MultiplexedConnection>>,
    /// Permits for history reads.
    history_reads: tokio::sync::Semaphore,
    ready: Arc<AtomicBool>,
}

impl RedisBroker {
    /// Starts the pub/sub task for `url`, feeding `hub`. Connects lazily: a Redis that comes up
    /// later is fine.
    pub fn start(url: &str, hub: Arc<Hub>, metrics: Arc<Metrics>) -> Result<Arc<RedisBroker>> {
        let client = redis::Client::open(url).map_err(|source| Error::Redis {
            context: format!("invalid URL {url:?}"),
            source,
        })?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let broker = Arc::new(RedisBroker {
            client: client.clone(),
            commands,
            history: Mutex::new(None),
            history_reads: tokio::sync::Semaphore::new(CONCURRENT_HISTORY_READS),
            ready: Arc::new(AtomicBool::new(false)),
        });
        tokio::spawn(pubsub_task(
            client,
            receiver,
            hub,
            Arc::downgrade(&broker),
            broker.ready.clone(),
            metrics,
        ));
        Ok(broker)
    }

    async fn history_connection(
        &self,
    ) -> std::result::Result<redis::aio::MultiplexedConnection, BrokerError> {
        let mut slot = self.history.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let connection = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// The events after `since` in the stream `key`, in two passes so that memory is bounded
    /// by what is replayed, never by the stream: first Redis searches the stream newest first
    /// for `since`, a page per call (a Lua script, so entries are compared where they are and
    /// only a cursor comes back; at most `MAX_REPLAY` entries back, further counts as not
    /// found); then what follows it is read oldest first.
    async fn read_history(
        &self,
        key: &str,
        since: &str,
    ) -> std::result::Result<History, BrokerError> {
        type Entry = (String, Vec<(String, String)>);
        fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
        let unavailable = |e: redis::RedisError| BrokerError::Unavailable(e.to_string());
        let mut connection = self.history_connection().await?;
        let mut end = "+".to_owned();
        let mut searched = 0usize;
        let start = loop {
            let step: Vec<String> = redis::cmd("EVAL")
                .arg(SEARCH_PAGE)
                .arg(1)
                .arg(key)
                .arg(since)
                .arg(&end)
                .arg(PAGE)
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            match step.as_slice() {
                [found, entry] if found == "found" => break entry.clone(),
                [next, oldest] if next == "next" => end = format!("({oldest}"),
                _ => return Ok(History::default()),
            }
            searched += PAGE;
            if searched > MAX_REPLAY {
                return Ok(History::default());
            }
        };
        let mut entries = Vec::new();
        let mut after = format!("({start}");
        loop {
            let page: Vec<Entry> = redis::cmd("XRANGE")
                .arg(key)
                .arg(&after)
                .arg("+")
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let Some((newest, _)) = page.last() else {
                break;
            };
            after = format!("({newest}");
            for (_, fields) in &page {
                if let Some(event) = field(fields, "event") {
                    let id = field(fields, "id").unwrap_or_default();
                    entries.push((id.to_owned(), event.to_owned()));
                }
            }
            if entries.len() > MAX_REPLAY {
                // More arrived after `since` than a resume replays: as if not found.
                return Ok(History::default());
            }
        }
        Ok(History {
            found: true,
            entries,
        })
    }
}

impl Broker for RedisBroker {
    fn subscribe(
        &self,
        channel: &str,
    ) -> impl std::future::Future<Output = std::result::Result<(), BrokerError>> + Send + 'static
    {
        let (ack, done) = oneshot::channel();
        let sent = self
            .commands
            .send(Command::Subscribe(channel.to_owned(), ack));
        async move {
            sent.map_err(|_| BrokerError::Unavailable("the broker task has stopped".into()))?;
            match tokio::time::timeout(Duration::from_secs(10), done).await {
                Ok(Ok(result)) => result,
                _ => Err(BrokerError::Unavailable(
                    "redis did not confirm the subscription within 10 s".into(),
                )),
            }
        }
    }

    fn unsubscribe(&self, channel: &str) {
        let _ = self.commands.send(Command::Unsubscribe(channel.to_owned()));
    }

    async fn history_after(
        &self,
        channel: &str,
        since: &str,
    ) -> std::result::Result<History, BrokerError> {
        let key = history_key(channel).ok_or_else(|| BrokerError::NoHistory(channel.to_owned()))?;
        // The semaphore is never closed; without a permit, read anyway rather than fail.
        let _permit = self.history_reads.acquire().await.ok();
        let result = self.read_history(&key, since).await;
        if result.is_err() {
            // The connection may be dead; the next read opens a new one.
            *self.history.lock().await = None;
        }
        result
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

async fn pubsub_task(
    client: redis::Client,
    mut commands: mpsc::UnboundedReceiver<Command>,
    hub: Arc<Hub>,
    broker: std::sync::Weak<RedisBroker>,
    ready: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) {
    let mut wanted: HashSet<String> = HashSet::new();
    let mut backoff = Duration::from_millis(50);
    let mut connected_before = false;
    loop {
        let pubsub = match client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(error) => {
                if connected_before && backoff == Duration::from_millis(50) {
                    tracing::warn!(%error, "aiops gateway: redis unreachable ({error}); reconnecting");
                }
                // Commands keep their order; answer subscriptions as failed only if they wait
                // too long (the subscriber's own timeout).
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let mut healthy = true;
        for channel in &wanted {
            if sink.subscribe(channel).await.is_err() {
                healthy = false;
                break;
            }
        }
        if !healthy {
            continue;
        }
        backoff = Duration::from_millis(50);
        ready.store(true, Ordering::Relaxed);
        if connected_before {
            metrics.broker_reconnects.inc();
            tracing::info!(
                channels = wanted.len(),
                "aiops gateway: redis reachable again; catching up {} channels from their streams",
                wanted.len()
            );
            if let Some(broker) = broker.upgrade() {
                catch_up(&broker, &hub, &wanted).await;
            }
        }
        connected_before = true;
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Subscribe(channel, ack)) => {
                        let result = sink.subscribe(&channel).await;
                        wanted.insert(channel);
                        let failed = result.is_err();
                        let _ = ack.send(result.map_err(|e| BrokerError::Unavailable(e.to_string())));
                        if failed {
                            break;
                        }
                    }
                    Some(Command::Unsubscribe(channel)) => {
                        wanted.remove(&channel);
                        if sink.unsubscribe(&channel).await.is_err() {
                            break;
                        }
                    }
                },
                message = stream.next() => match message {
                    Some(message) => hub.publish(message.get_channel_name(), message.get_payload_bytes()),
                    None => break,
                },
            }
        }
        ready.store(false, Ordering::Relaxed);
    }
}

/// After a reconnection: what each channel's stream got after the last event delivered.
async fn catch_up(broker: &RedisBroker, hub: &Hub, channels: &HashSet<String>) {
    for channel in channels {
        let Some(last) = hub.last_id(channel) else {
            continue;
        };
        if let Ok(history) = broker.history_after(channel, &last).await {
            for (_, event) in history.entries {
                hub.publish(channel, event.as_bytes());
            }
        }
    }
}
