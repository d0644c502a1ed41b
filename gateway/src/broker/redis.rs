//! The Redis broker: one pub/sub connection for every channel this gateway has local
//! subscribers on, and one connection for history reads; to one node, or to a Redis Cluster
//! (`[broker] redis_cluster = true`), where channels are sharded (`SSUBSCRIBE` on the shard of
//! the tenant's hash tag, which also holds its stream).
//!
//! A task owns the pub/sub connection. When it drops (Redis restarts, the network breaks) the
//! task reconnects with backoff (50 ms doubling to 2 s), subscribes to every wanted channel
//! again, and replays from each channel's stream what was published after the last event it had
//! delivered, so subscribers miss nothing the stream kept; the hub drops what they already had.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aiops_schemas::redis_nodes;
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

/// A client of one node or of a cluster.
#[derive(Clone)]
enum Client {
    Single(redis::Client),
    Cluster(Box<redis::cluster::ClusterClient>),
}

/// A connection for history reads.
#[derive(Clone)]
enum HistoryConnection {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl HistoryConnection {
    async fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        match self {
            HistoryConnection::Single(connection) => cmd.query_async(connection).await,
            HistoryConnection::Cluster(connection) => cmd.query_async(connection).await,
        }
    }
}

/// See the module docs.
pub struct RedisBroker {
    client: Client,
    commands: mpsc::UnboundedSender<Command>,
    history: Mutex<Option<HistoryConnection>>,
    /// Permits for history reads.
    history_reads: tokio::sync::Semaphore,
    ready: Arc<AtomicBool>,
}

impl RedisBroker {
    /// Starts the pub/sub task for `url` (a cluster's seed nodes, comma separated, with
    /// `cluster`), feeding `hub`. Connects lazily: a Redis that comes up later is fine.
    pub fn start(
        url: &str,
        cluster: bool,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<RedisBroker>> {
        let invalid = |source| Error::Redis {
            context: format!("invalid URL {url:?}"),
            source,
        };
        let client = if cluster {
            Client::Cluster(Box::new(
                redis::cluster::ClusterClient::builder(redis_nodes(url))
                    // Sharded pub/sub on the cluster connection needs RESP3's push messages.
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .connection_timeout(Duration::from_secs(2))
                    .response_timeout(Duration::from_secs(5))
                    .build()
                    .map_err(invalid)?,
            ))
        } else {
            Client::Single(redis::Client::open(url).map_err(invalid)?)
        };
        let (commands, receiver) = mpsc::unbounded_channel();
        let broker = Arc::new(RedisBroker {
            client: client.clone(),
            commands,
            history: Mutex::new(None),
            history_reads: tokio::sync::Semaphore::new(CONCURRENT_HISTORY_READS),
            ready: Arc::new(AtomicBool::new(false)),
        });
        let (weak, ready) = (Arc::downgrade(&broker), broker.ready.clone());
        match client {
            Client::Single(client) => {
                tokio::spawn(pubsub_task(client, receiver, hub, weak, ready, metrics));
            }
            Client::Cluster(client) => {
                tokio::spawn(cluster_pubsub_task(
                    *client, receiver, hub, weak, ready, metrics,
                ));
            }
        }
        Ok(broker)
    }

    async fn history_connection(&self) -> std::result::Result<HistoryConnection, BrokerError> {
        let mut slot = self.history.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let unavailable = |e: redis::RedisError| BrokerError::Unavailable(e.to_string());
        let connection = match &self.client {
            Client::Single(client) => HistoryConnection::Single(
                client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(unavailable)?,
            ),
            // Reads go to the primaries: a replica behind would answer "not found" for an
            // event a client has seen.
            Client::Cluster(client) => HistoryConnection::Cluster(
                client.get_async_connection().await.map_err(unavailable)?,
            ),
        };
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
            let step: Vec<String> = connection
                .query(
                    redis::cmd("EVAL")
                        .arg(SEARCH_PAGE)
                        .arg(1)
                        .arg(key)
                        .arg(since)
                        .arg(&end)
                        .arg(PAGE),
                )
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
            let page: Vec<Entry> = connection
                .query(
                    redis::cmd("XRANGE")
                        .arg(key)
                        .arg(&after)
                        .arg("+")
                        .arg("COUNT")
                        .arg(PAGE),
                )
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

/// The wait between attempts to reach Redis: 50 ms, doubling up to 2 s, back to 50 ms once a
/// connection is made.
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MOST: Duration = Duration::from_secs(2);

    fn new() -> Backoff {
        Backoff(Backoff::FIRST)
    }

    /// Whether no attempt has failed since the last success (a failure then is news).
    fn is_fresh(&self) -> bool {
        self.0 == Backoff::FIRST
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Backoff::MOST);
    }

    fn reset(&mut self) {
        self.0 = Backoff::FIRST;
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
    let mut backoff = Backoff::new();
    let mut connected_before = false;
    loop {
        let pubsub = match client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(error) => {
                if connected_before && backoff.is_fresh() {
                    tracing::warn!(%error, "aiops gateway: redis unreachable ({error}); reconnecting");
                }
                // Commands keep their order; answer subscriptions as failed only if they wait
                // too long (the subscriber's own timeout).
                backoff.wait().await;
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
        backoff.reset();
        subscribed(&ready, &metrics, connected_before, &broker, &hub, &wanted).await;
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

/// The pub/sub task on a cluster: one `SSUBSCRIBE` per channel on its shard, messages as
/// RESP3 pushes. When a node drops (a failover), the library reports it and would keep
/// retrying the dead address, so the task builds a new connection (its slot map from the seeds,
/// retried until the shard's replica is promoted), subscribes again and catches up from the
/// streams, as on one node.
async fn cluster_pubsub_task(
    client: redis::cluster::ClusterClient,
    mut commands: mpsc::UnboundedReceiver<Command>,
    hub: Arc<Hub>,
    broker: std::sync::Weak<RedisBroker>,
    ready: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) {
    use redis::PushKind;
    let mut wanted: HashSet<String> = HashSet::new();
    let mut backoff = Backoff::new();
    let mut connected_before = false;
    loop {
        let (sender, mut pushes) = mpsc::unbounded_channel::<redis::PushInfo>();
        let config = redis::cluster::ClusterConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(5))
            .set_push_sender(sender);
        let mut healthy = true;
        let mut connection = match client.get_async_connection_with_config(config).await {
            Ok(connection) => Some(connection),
            Err(error) => {
                if connected_before && backoff.is_fresh() {
                    tracing::warn!(%error, "aiops gateway: redis cluster unreachable ({error}); reconnecting");
                }
                healthy = false;
                None
            }
        };
        // Where each channel's subscription lives: the node serving its slot when it was made.
        let mut homes: HashMap<String, String> = HashMap::new();
        if let Some(connection) = connection.as_mut() {
            for channel in &wanted {
                match subscribe_sharded(connection, channel).await {
                    Ok(home) => {
                        homes.insert(channel.clone(), home);
                    }
                    Err(_) => {
                        healthy = false;
                        break;
                    }
                }
            }
        }
        let (true, Some(mut connection)) = (healthy, connection) else {
            tracing::debug!("aiops gateway: redis cluster: not subscribed yet; retrying");
            backoff.wait().await;
            continue;
        };
        backoff.reset();
        subscribed(&ready, &metrics, connected_before, &broker, &hub, &wanted).await;
        connected_before = true;
        let mut check = tokio::time::interval(HOME_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Subscribe(channel, ack)) => {
                        let result = subscribe_sharded(&mut connection, &channel).await;
                        let failed = result.is_err();
                        let result = result.map(|home| {
                            homes.insert(channel.clone(), home);
                        });
                        wanted.insert(channel);
                        let _ = ack.send(result.map_err(|e| BrokerError::Unavailable(e.to_string())));
                        if failed {
                            break;
                        }
                    }
                    Some(Command::Unsubscribe(channel)) => {
                        wanted.remove(&channel);
                        homes.remove(&channel);
                        if connection.sunsubscribe(&channel).await.is_err() {
                            break;
                        }
                    }
                },
                // The library does not move subscriptions when a primary dies and its replica
                // takes over (it keeps retrying the dead address, and no request of ours gets
                // the redirect that would refresh its slot map): a subscription whose slot is
                // no longer served by the node it was made on is rebuilt.
                // One probe per node subscribed on, not per channel: a failover moves every slot
                // of the dead primary at once. (A single slot moving in a resharding makes the
                // server drop its subscriptions: the `SUnsubscribe` push below.)
                _ = check.tick() => {
                    let mut moved = false;
                    let mut probed: HashSet<&str> = HashSet::new();
                    for (channel, home) in &homes {
                        if !probed.insert(home.as_str()) {
                            continue;
                        }
                        let now = tokio::time::timeout(HOME_CHECK * 2, node_serving(&mut connection, channel)).await;
                        if !matches!(now, Ok(Ok(ref node)) if node == home) {
                            moved = true;
                            break;
                        }
                    }
                    if moved {
                        tracing::warn!("aiops gateway: a redis cluster shard moved or its primary is unreachable; subscribing again");
                        break;
                    }
                },
                push = pushes.recv() => match push {
                    None => break,
                    Some(push) => match push.kind {
                        PushKind::SMessage => {
                            if let Some(message) = redis::Msg::from_push_info(push) {
                                hub.publish(message.get_channel_name(), message.get_payload_bytes());
                            }
                        }
                        PushKind::Disconnection => {
                            tracing::warn!("aiops gateway: a redis cluster node dropped; reconnecting");
                            break;
                        }
                        // The server dropped a subscription we still want (its slot moved).
                        PushKind::SUnsubscribe => {
                            let still_wanted = push.data.first().is_some_and(|channel| {
                                redis::from_redis_value_ref::<String>(channel)
                                    .is_ok_and(|c| wanted.contains(&c))
                            });
                            if still_wanted {
                                break;
                            }
                        }
                        _ => {}
                    },
                },
            }
        }
        ready.store(false, Ordering::Relaxed);
    }
}

/// How often a cluster gateway checks that its subscriptions are on their slots' primaries.
const HOME_CHECK: Duration = Duration::from_secs(1);

/// The id of the node serving `key`'s slot as primary, as the connection's slot map says.
async fn node_serving(
    connection: &mut redis::cluster_async::ClusterConnection,
    key: &str,
) -> redis::RedisResult<String> {
    use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(
        key,
        SlotAddr::Master,
    )));
    let mut myid = redis::cmd("CLUSTER");
    myid.arg("MYID");
    let value = connection.route_command(myid, route).await?;
    Ok(redis::from_redis_value(value)?)
}

/// `SSUBSCRIBE` to `channel`; the node it was made on.
async fn subscribe_sharded(
    connection: &mut redis::cluster_async::ClusterConnection,
    channel: &str,
) -> redis::RedisResult<String> {
    connection.ssubscribe(channel).await?;
    node_serving(connection, channel).await
}

/// Every wanted channel is subscribed: the broker is ready, and after a reconnection (`again`)
/// each channel catches up from its stream.
async fn subscribed(
    ready: &AtomicBool,
    metrics: &Metrics,
    again: bool,
    broker: &std::sync::Weak<RedisBroker>,
    hub: &Hub,
    wanted: &HashSet<String>,
) {
    ready.store(true, Ordering::Relaxed);
    if !again {
        return;
    }
    metrics.broker_reconnects.inc();
    tracing::info!(
        channels = wanted.len(),
        "aiops gateway: redis reachable again; catching up {} channels from their streams",
        wanted.len()
    );
    if let Some(broker) = broker.upgrade() {
        catch_up(&broker, hub, wanted).await;
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
