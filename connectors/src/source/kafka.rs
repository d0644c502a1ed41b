//! The Kafka source: one consumer per timely worker, all in one consumer group, with
//! checkpoints that survive crashes and move with partitions on a rebalance.
//!
//! Each worker's consumer runs on a thread of its own, which polls Kafka (so heartbeats and
//! rebalances are served even while the dataflow is busy) and hands batches of messages to the
//! worker through a bounded channel; when the worker falls behind, the thread pauses its
//! partitions instead of buffering without end.
//!
//! Epochs are slices of wall-clock time (`epoch_ms`), shared by all workers of the process, so an
//! idle worker never holds the others back. A checkpoint boundary falls every
//! `checkpoint_interval / epoch_ms` epochs.
//!
//! Rebalances (the eager protocol):
//! - on **assignment**, the partition's checkpoint is loaded from the store: its series state is
//!   sent to the worker ahead of any message, and consumption starts at its offset;
//! - on **revocation**, the consumer thread waits until a checkpoint covering every message it
//!   handed over has been written, so the next owner starts from exactly this process's state
//!   and no partition is ever processed by two consumers at once;
//! - a partition assigned to a worker while **another worker of the same process** still holds
//!   it (a coordinator that does not wait for everyone to revoke, such as tansu's) is taken only
//!   once that worker has revoked it, so the state loaded is the state it left.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use aiops_schemas::ParseOptions;

use aiops_pipeline::checkpoint::StateStore;
use aiops_pipeline::config::KafkaConfig;
use aiops_pipeline::dataflow::{Control, Output, RecordFormats};
use aiops_pipeline::metrics::Counters;
use aiops_pipeline::record::{PartitionId, RawRecord, SeriesState};
use aiops_pipeline::source::{
    Batch, Checkpointing, Poll, Source, SourceContext, SourceControl, WorkerSource,
};
use aiops_pipeline::{Error, Result};
use aiops_schemas::system_now;

/// The consumer configuration of worker `index`: tunable defaults, then the configuration's
/// `options`, then the settings the checkpoint protocol relies on, which options cannot change.
fn consumer_config(config: &KafkaConfig, index: usize) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "1000")
        // A broker may hold a fetch this long when no data is waiting; it bounds the latency a
        // quiet partition adds (librdkafka's default is 500 ms). tansu 0.6 holds every fetch
        // this long, data or not, so it is also the latency floor there.
        .set("fetch.wait.max.ms", "5")
        // Eager rebalancing: revocation waits for a checkpoint before anyone gets a partition.
        .set("partition.assignment.strategy", "range")
        .set("client.id", format!("aiops-{}-{index}", std::process::id()));
    for (key, value) in &config.options {
        client.set(key, value);
    }
    client
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    if let Some(instance) = &config.instance_id {
        client.set("group.instance.id", format!("{instance}-{index}"));
    }
    client
}

/// A librdkafka client configuration with the brokers and the extra options.
pub fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.brokers);
    for (key, value) in &config.options {
        client.set(key, value);
    }
    client
}

/// Messages a consumer thread hands to its worker.
enum Feed {
    Records(Vec<RawRecord>),
    Restore(Vec<SeriesState>),
    /// Reply with the last epoch the worker fed anything at.
    Revoke(SyncSender<u64>),
}

/// State shared by the source, its consumer threads and the runner's checkpointer.
struct Shared {
    topics: Vec<String>,
    topic_index: HashMap<String, usize>,
    store: Arc<dyn StateStore>,
    every: u64,
    epoch: Duration,
    started: Instant,
    consumers: Mutex<HashMap<usize, Arc<BaseConsumer<KafkaContext>>>>,
    /// Which worker of this process holds each partition.
    owners: Mutex<HashMap<PartitionId, usize>>,
    /// Signalled when a worker releases partitions ([`Shared::wait_for_release`]).
    released: Condvar,
    /// The latest completed checkpoint boundary.
    completed: Mutex<Option<u64>>,
    completed_changed: Condvar,
    /// Set when the process is shutting down: revocations then do not wait.
    closing: AtomicBool,
    revoke_timeout: Duration,
    /// Bumped when every consumer of the process should leave and rejoin the group (see
    /// [`watch_stalled_partitions`]).
    rejoins: AtomicU64,
    /// Whether the stalled-partition watch runs.
    watching: AtomicBool,
    /// The client that reads the group's offsets ([`group_positions`]).
    group_client: Mutex<Option<BaseConsumer>>,
}

impl Shared {
    fn epoch_now(&self) -> u64 {
        (self.started.elapsed().as_nanos() / self.epoch.as_nanos().max(1)) as u64
    }

    fn wait_for_checkpoint(&self, epoch: u64) -> bool {
        let deadline = Instant::now() + self.revoke_timeout;
        let mut completed = self.completed.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if completed.is_some_and(|done| done >= epoch) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || self.closing.load(Ordering::Relaxed) {
                return false;
            }
            completed = self
                .completed_changed
                .wait_timeout(completed, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Waits until no worker of this process other than `worker` holds any of `partitions`;
    /// answers the partitions a sibling still holds when the wait gave up (the revocation
    /// timeout, logged, or the process closing). Logs when it has to wait.
    ///
    /// Why: a coordinator may hand a partition to a new member before the old member has
    /// revoked it (tansu 0.6 answers a JoinGroup without waiting for the others to rejoin).
    /// Between processes that costs duplicates of identical events; between two workers of one
    /// process it corrupts state, because they share the score stages: the new worker restores
    /// the partition's last checkpoint over the series state its sibling keeps advancing, and
    /// both feed the partition's records. Waiting for the sibling's revocation, which waits for
    /// a checkpoint covering everything it fed, makes the checkpoint loaded next the exact
    /// state the sibling left.
    fn wait_for_release(&self, worker: usize, partitions: &[PartitionId]) -> Vec<PartitionId> {
        let deadline = Instant::now() + self.revoke_timeout;
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let mut waited = false;
        loop {
            let held: Vec<PartitionId> = partitions
                .iter()
                .copied()
                .filter(|p| owners.get(p).is_some_and(|&owner| owner != worker))
                .collect();
            let (now, closing) = (Instant::now(), self.closing.load(Ordering::Relaxed));
            if held.is_empty() || now >= deadline || closing {
                if !held.is_empty() && !closing {
                    tracing::warn!(
                        worker,
                        "aiops: kafka: {} partitions assigned to worker {worker} are still read by another worker of this process after {} s; taking them from their last checkpoint",
                        held.len(),
                        self.revoke_timeout.as_secs()
                    );
                }
                return held;
            }
            if !waited {
                waited = true;
                tracing::info!(
                    worker,
                    "aiops: kafka: worker {worker} was assigned partitions another worker of this process still reads: waiting for their release and checkpoint"
                );
            }
            owners = self
                .released
                .wait_timeout(owners, (deadline - now).min(Duration::from_millis(100)))
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

/// The source. Build it once per process; it opens one consumer per worker.
pub struct KafkaSource {
    config: KafkaConfig,
    shared: Arc<Shared>,
}

impl KafkaSource {
    /// A source reading `config`'s topics, with wall-clock epochs of `epoch` and checkpoints
    /// every `checkpoint_interval` into `store`.
    pub fn new(
        config: KafkaConfig,
        store: Arc<dyn StateStore>,
        epoch: Duration,
        checkpoint_interval: Duration,
    ) -> Result<KafkaSource> {
        config.validate()?;
        let epoch = epoch.max(Duration::from_millis(1));
        let every = (checkpoint_interval.as_nanos() / epoch.as_nanos()).max(1) as u64;
        let topics: Vec<String> = config.topics.iter().map(|t| t.name.clone()).collect();
        let topic_index = topics
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i))
            .collect();
        Ok(KafkaSource {
            shared: Arc::new(Shared {
                topics,
                topic_index,
                store,
                every,
                epoch,
                started: Instant::now(),
                consumers: Mutex::new(HashMap::new()),
                owners: Mutex::new(HashMap::new()),
                released: Condvar::new(),
                completed: Mutex::new(None),
                completed_changed: Condvar::new(),
                closing: AtomicBool::new(false),
                revoke_timeout: (checkpoint_interval * 10).max(Duration::from_secs(30)),
                rejoins: AtomicU64::new(0),
                watching: AtomicBool::new(false),
                group_client: Mutex::new(None),
            }),
            config,
        })
    }

    /// Marks the process as shutting down (revocations no longer wait for checkpoints) and
    /// lets go of the consumers, which leave the group once their threads have stopped.
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        self.shared.completed_changed.notify_all();
        // The consumers' contexts point back at `shared`; dropping them here breaks the cycle.
        self.shared
            .consumers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The consumer group's lag over every partition of the source's topics: records past the
    /// group's committed offsets (a partition without one counts from its low watermark).
    /// Members' own statistics only see the partitions they hold; this also counts partitions
    /// that a member which died still holds until its session expires, so a process that is
    /// idle itself can tell whether the group is done.
    pub fn group_lag(&self, timeout: Duration) -> Result<u64> {
        Ok(group_positions(&self.config, &self.shared, timeout)?
            .iter()
            .map(|p| p.lag())
            .fold(0u64, u64::saturating_add))
    }
}

/// Where the consumer group stands on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupPosition {
    topic: String,
    partition: i32,
    /// The committed offset, or the low watermark where the group has none (or is behind it).
    committed: i64,
    /// The high watermark: the offset the next record will get.
    high: i64,
}

impl GroupPosition {
    fn lag(&self) -> u64 {
        u64::try_from(self.high.saturating_sub(self.committed)).unwrap_or(0)
    }
}

/// The group's committed offset and the end of every partition of the source's topics, read
/// with a client of its own that does not join the group (made on first use and kept: the
/// stalled-partition watch and the idle exit read the group every few seconds).
fn group_positions(
    config: &KafkaConfig,
    shared: &Shared,
    timeout: Duration,
) -> Result<Vec<GroupPosition>> {
    let mut kept = shared
        .group_client
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if kept.is_none() {
        let client: BaseConsumer = client_config(config)
            .set("group.id", &config.group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| Error::kafka("cannot create a client to read the group's lag", e))?;
        *kept = Some(client);
    }
    let consumer = kept.as_ref().expect("the client was just made");
    let mut partitions = TopicPartitionList::new();
    for topic in &shared.topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| Error::kafka(format!("cannot read the partitions of {topic}"), e))?;
        for found in metadata.topics() {
            for partition in found.partitions() {
                partitions.add_partition(found.name(), partition.id());
            }
        }
    }
    let committed = consumer
        .committed_offsets(partitions, timeout)
        .map_err(|e| Error::kafka("cannot read the group's committed offsets", e))?;
    let mut positions = Vec::new();
    for element in committed.elements() {
        let (low, high) = consumer
            .fetch_watermarks(element.topic(), element.partition(), timeout)
            .map_err(|e| {
                Error::kafka(
                    format!(
                        "cannot read the end of {}/{}",
                        element.topic(),
                        element.partition()
                    ),
                    e,
                )
            })?;
        positions.push(GroupPosition {
            topic: element.topic().to_owned(),
            partition: element.partition(),
            committed: match element.offset() {
                Offset::Offset(offset) => offset.max(low),
                _ => low,
            },
            high,
        });
    }
    Ok(positions)
}

/// Which partitions have stalled: records left, a committed offset that has not moved for
/// `limit`, and no worker of this process holding them. Pure bookkeeping, fed one reading of
/// the group at a time.
#[derive(Debug, Default)]
struct StallTracker {
    /// (topic, partition) → the committed offset and since when it has not moved.
    since: HashMap<(String, i32), (i64, Instant)>,
}

impl StallTracker {
    /// Takes a reading at `now`; the partitions stalled for `limit` or longer.
    fn update(
        &mut self,
        positions: &[GroupPosition],
        held: impl Fn(&str, i32) -> bool,
        now: Instant,
        limit: Duration,
    ) -> Vec<(String, i32)> {
        let mut stalled = Vec::new();
        for position in positions {
            let key = (position.topic.clone(), position.partition);
            if position.lag() == 0 || held(&position.topic, position.partition) {
                self.since.remove(&key);
                continue;
            }
            let entry = self
                .since
                .entry(key.clone())
                .or_insert((position.committed, now));
            if entry.0 != position.committed {
                *entry = (position.committed, now);
            } else if now.saturating_duration_since(entry.1) >= limit {
                stalled.push(key);
            }
        }
        stalled
    }
}

/// Watches the group for partitions nobody reads (see [`KafkaConfig::rejoin_stalled_after_ms`])
/// and asks every consumer of this process to rejoin when it finds one, which makes the
/// coordinator run a rebalance among the members alive. Stops when the source closes.
fn watch_stalled_partitions(config: KafkaConfig, shared: Arc<Shared>) {
    let limit = Duration::from_millis(config.rejoin_stalled_after_ms);
    let every = (limit / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
    let mut tracker = StallTracker::default();
    while !shared.closing.load(Ordering::Relaxed) {
        let woke = Instant::now();
        while woke.elapsed() < every {
            if shared.closing.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let positions = match group_positions(&config, &shared, Duration::from_secs(5)) {
            Ok(positions) => positions,
            Err(error) => {
                tracing::debug!(%error, "aiops: kafka: cannot read the group's positions: {error}");
                continue;
            }
        };
        let held: Vec<(String, i32)> = {
            let owners = shared.owners.lock().unwrap_or_else(|e| e.into_inner());
            owners
                .keys()
                .filter_map(|id| {
                    Some((shared.topics.get(id.topic_index())?.clone(), id.partition()))
                })
                .collect()
        };
        let stalled = tracker.update(
            &positions,
            |topic, partition| held.iter().any(|(t, p)| t == topic && *p == partition),
            Instant::now(),
            limit,
        );
        if !stalled.is_empty() {
            let names: Vec<String> = stalled.iter().map(|(t, p)| format!("{t}/{p}")).collect();
            tracing::warn!(
                partitions = names.join(","),
                "aiops: kafka: partitions {} have records left and no progress for {} s, and no worker of this process holds them: rejoining the group so that a rebalance hands them out",
                names.join(", "),
                limit.as_secs_f64()
            );
            shared.rejoins.fetch_add(1, Ordering::AcqRel);
            tracker = StallTracker::default();
        }
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.close();
    }
}

impl Source for KafkaSource {
    fn describe(&self) -> String {
        format!(
            "kafka {} topics {} group {}",
            self.config.brokers,
            self.shared.topics.join(","),
            self.config.group
        )
    }

    fn formats(&self, base: &ParseOptions) -> RecordFormats {
        RecordFormats::per_topic(
            self.config
                .topics
                .iter()
                .map(|topic| {
                    let mut options = base.clone();
                    if topic.tenant.is_some() {
                        options.fixed_tenant = topic.tenant.clone();
                    }
                    if topic.precision.is_some() {
                        options.precision = topic.precision;
                    }
                    (topic.format, options)
                })
                .collect(),
        )
    }

    fn open(
        &self,
        index: usize,
        _peers: usize,
        context: &SourceContext,
    ) -> Result<Box<dyn WorkerSource>> {
        let (feed, receiver) = sync_channel(64);
        let kafka_context = KafkaContext {
            worker: index,
            shared: self.shared.clone(),
            feed: feed.clone(),
            output: context.output.clone(),
            counters: context.counters.clone(),
            starts: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        };
        let consumer: BaseConsumer<KafkaContext> = consumer_config(&self.config, index)
            .create_with_context(kafka_context)
            .map_err(|e| {
                Error::kafka(
                    format!("cannot create a consumer for {}", self.config.brokers),
                    e,
                )
            })?;
        let topics: Vec<&str> = self.shared.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| Error::kafka(format!("cannot subscribe to {}", topics.join(",")), e))?;
        let consumer = Arc::new(consumer);
        self.shared
            .consumers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(index, consumer.clone());
        if self.config.rejoin_stalled_after_ms > 0
            && !self.shared.watching.swap(true, Ordering::AcqRel)
        {
            let (config, shared) = (self.config.clone(), self.shared.clone());
            std::thread::Builder::new()
                .name("aiops-kafka-watch".into())
                .spawn(move || watch_stalled_partitions(config, shared))
                .map_err(|e| Error::Dataflow(format!("cannot start the group watch: {e}")))?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name(format!("aiops-kafka-{index}"))
            .spawn(move || consume(consumer, shared, feed, thread_stop))
            .map_err(|e| Error::Dataflow(format!("cannot start a consumer thread: {e}")))?;
        Ok(Box::new(KafkaWorker {
            receiver,
            shared: self.shared.clone(),
            stop,
            last_fed: 0,
        }))
    }

    fn checkpointing(&self) -> Option<Arc<dyn Checkpointing>> {
        Some(Arc::new(KafkaCheckpointing {
            shared: self.shared.clone(),
        }))
    }
}

/// The consumer thread: polls, batches, and waits when the worker is behind.
///
/// It does not pause partitions to keep polling while it waits: librdkafka drops the messages
/// it has fetched for a partition when it is paused, and a resume does not fetch them again,
/// which lost records here (the regression test
/// `kafka_redis::a_worker_slower_than_its_consumer_still_gets_every_record` covers
/// it). Waiting without polling is bounded by librdkafka's own fetch queue, and a stall longer
/// than `max.poll.interval.ms` makes the consumer leave the group, which a rebalance then
/// handles like any other.
///
/// Records polled before a rebalance and not yet handed to the worker are dropped when it
/// happens (the rebalance callbacks run inside `poll`, so the batch being filled can straddle
/// one). The checkpoint the revocation waited for covers only what the worker was fed, so
/// the partition's next owner reads these records again from that checkpoint; handing them to
/// the worker as well scored them twice, and when the eager protocol gave a partition straight
/// back to the same consumer, the second time on top of the state restored from the checkpoint,
/// which already led up to them: different state. Found by reading this loop; the churn tests
/// in tests/consumer_group.rs pass with and without the drop (checked with 5 seeds, and with 3
/// seeds of a stream produced faster than the consumers read), so no test pins it.
fn consume(
    consumer: Arc<BaseConsumer<KafkaContext>>,
    shared: Arc<Shared>,
    feed: SyncSender<Feed>,
    stop: Arc<AtomicBool>,
) {
    const BATCH: usize = 2048;
    let mut batch: Vec<RawRecord> = Vec::with_capacity(BATCH);
    let mut rejoins = shared.rejoins.load(Ordering::Acquire);
    while !stop.load(Ordering::Relaxed) {
        let asked = shared.rejoins.load(Ordering::Acquire);
        if asked != rejoins && batch.is_empty() {
            rejoins = asked;
            // Leaving (its revocation runs in the next poll, after a checkpoint as always) and
            // subscribing again: the coordinator rebalances the whole group.
            let topics: Vec<&str> = shared.topics.iter().map(String::as_str).collect();
            consumer.unsubscribe();
            if let Err(error) = consumer.subscribe(&topics) {
                tracing::warn!(%error, "aiops: kafka: cannot rejoin the group: {error}");
            }
        }
        if !batch.is_empty() {
            match feed.try_send(Feed::Records(std::mem::take(&mut batch))) {
                Ok(()) => {}
                Err(TrySendError::Full(Feed::Records(records))) => {
                    batch = records;
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                Err(_) => return,
            }
        }
        // Rebalance callbacks and statistics run inside `poll`.
        let mut polled_at = consumer.context().generation.load(Ordering::Acquire);
        let mut next = consumer.poll(Duration::from_millis(20));
        loop {
            let now = consumer.context().generation.load(Ordering::Acquire);
            if now != polled_at {
                // What this batch holds was read under the assignment before: see above.
                if !batch.is_empty() {
                    tracing::debug!(
                        dropped = batch.len(),
                        "aiops: kafka: records read before a rebalance dropped; their partitions' owners read them again from the checkpoint"
                    );
                    batch.clear();
                }
                polled_at = now;
            }
            let Some(result) = next else {
                break;
            };
            match result {
                Ok(message) => {
                    let Some(&topic_index) = shared.topic_index.get(message.topic()) else {
                        break;
                    };
                    batch.push(RawRecord {
                        seq: message.offset().max(0) as u64,
                        partition: PartitionId::new(topic_index, message.partition()),
                        received: message.timestamp().to_millis().unwrap_or_else(system_now),
                        key: message.key().map(<[u8]>::to_vec),
                        bytes: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    });
                }
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(error) => tracing::warn!(%error, "aiops: kafka consumer: {error}"),
            }
            if batch.len() >= BATCH {
                break;
            }
            next = consumer.poll(Duration::ZERO);
        }
    }
    if !batch.is_empty() {
        let _ = feed.send(Feed::Records(batch));
    }
}

/// A worker's side: batches from its consumer thread, at the current wall-clock epoch.
struct KafkaWorker {
    receiver: Receiver<Feed>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    last_fed: u64,
}

impl WorkerSource for KafkaWorker {
    fn poll(&mut self) -> Result<Poll> {
        let wait = self.shared.epoch.min(Duration::from_millis(5));
        let epoch = |worker: &mut KafkaWorker| {
            worker.last_fed = worker.shared.epoch_now();
            worker.last_fed
        };
        Ok(match self.receiver.recv_timeout(wait) {
            Ok(Feed::Records(records)) => Poll::Ready {
                epoch: epoch(self),
                batch: Batch::Raw(records),
            },
            Ok(Feed::Restore(states)) => Poll::Ready {
                epoch: epoch(self),
                batch: Batch::Restore(states),
            },
            Ok(Feed::Revoke(reply)) => {
                let _ = reply.send(self.last_fed);
                Poll::Idle
            }
            Err(RecvTimeoutError::Timeout) => Poll::Idle,
            Err(RecvTimeoutError::Disconnected) => Poll::Done,
        })
    }

    fn next_epoch(&self) -> u64 {
        self.shared.epoch_now()
    }
}

impl Drop for KafkaWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The consumer's callbacks: rebalances and statistics.
struct KafkaContext {
    worker: usize,
    shared: Arc<Shared>,
    feed: SyncSender<Feed>,
    output: SyncSender<Output>,
    counters: Arc<Counters>,
    /// Where each assigned partition started (by [`PartitionId`]), from its checkpoint: the
    /// read position before any message of it has been polled.
    starts: Mutex<HashMap<PartitionId, i64>>,
    /// Bumped by every assignment and revocation, so the consumer thread can tell records read
    /// under an earlier assignment from those read under the current one.
    generation: AtomicU64,
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            tracing::warn!(
                facility,
                librdkafka = message,
                "aiops: kafka: {facility}: {message}"
            );
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::error!(%error, reason, "aiops: kafka: {error}: {reason}");
    }

    fn stats(&self, statistics: Statistics) {
        // librdkafka keeps reporting partitions this consumer read before a rebalance took them
        // away, with their last lag frozen: count only the partitions it owns now. (Regression:
        // after a rebalance the stale lag kept aiops_consumer_lag up, and --exit-when-idle
        // waiting forever.)
        let owners = self.shared.owners.lock().unwrap_or_else(|e| e.into_inner());
        let starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = 0;
        for (name, topic) in &statistics.topics {
            let Some(&index) = self.shared.topic_index.get(name.as_str()) else {
                continue;
            };
            for (number, partition) in &topic.partitions {
                let id = PartitionId::new(index, *number);
                let owned = *number >= 0 && owners.get(&id) == Some(&self.worker);
                // librdkafka's own consumer_lag counts from the committed offset, which trails
                // the checkpoint a partition resumes from when its last owner's final commit
                // did not land (a revoked consumer may not commit): the read position is the
                // furthest of what was polled, what was committed and where the partition
                // started. (Regression: a partition taken over at its end showed the stale
                // difference as lag forever.)
                let start = starts.get(&id).copied().unwrap_or(-1);
                let position = partition
                    .app_offset
                    .max(partition.committed_offset)
                    .max(start);
                if owned && position >= 0 && partition.hi_offset >= 0 {
                    total += (partition.hi_offset - position).max(0);
                }
            }
        }
        drop((owners, starts));
        // Each consumer reports only its own partitions; the counters sum the workers' shares.
        self.counters
            .set_consumer_lag_of(self.worker, total.max(0) as u64);
    }
}

impl ConsumerContext for KafkaContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(consumer, tpl),
            other => {
                tracing::error!(error = ?other, "aiops: kafka rebalance error: {other:?}");
                let _ = consumer.unassign();
            }
        }
    }
}

/// A partition changing hands, in the words the rebalance tests read (and as fields).
fn log_ownership(change: &str, topic: &str, partition: i32, worker: usize) {
    let at_ms = system_now();
    tracing::info!(
        topic,
        partition,
        worker,
        at_ms,
        "aiops: partition {topic}/{partition} {change} worker {worker} at {at_ms} ms"
    );
}

impl KafkaContext {
    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<(PartitionId, String, i32)> {
        tpl.elements()
            .iter()
            .filter_map(|e| {
                let index = *self.shared.topic_index.get(e.topic())?;
                Some((
                    PartitionId::new(index, e.partition()),
                    e.topic().to_owned(),
                    e.partition(),
                ))
            })
            .collect()
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let named = self.partitions(tpl);
        let ids: Vec<PartitionId> = named.iter().map(|(id, _, _)| *id).collect();
        self.shared.wait_for_release(self.worker, &ids);
        let mut assigned = Vec::new();
        let mut restores = Vec::new();
        for (id, topic, partition) in named {
            let checkpoint = match self.shared.store.load(&topic, partition) {
                Ok(checkpoint) => checkpoint,
                Err(error) => {
                    // A damaged checkpoint must not be silently ignored: that would rescore the
                    // partition from the committed offset with empty state.
                    tracing::error!(%error, topic, partition, "aiops: {error}");
                    None
                }
            };
            if let Some(checkpoint) = &checkpoint {
                if checkpoint.next_offset >= 0 {
                    let _ = tpl.set_partition_offset(
                        &topic,
                        partition,
                        Offset::Offset(checkpoint.next_offset),
                    );
                    self.starts
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id, checkpoint.next_offset);
                }
                restores.extend(checkpoint.series.iter().map(|(key, state)| SeriesState {
                    partition: id,
                    key: aiops_schemas::SeriesKey(*key),
                    state: state.clone(),
                }));
            }
            self.shared
                .owners
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, self.worker);
            assigned.push((id, checkpoint));
            log_ownership("assigned to", &topic, partition, self.worker);
        }
        // The driver learns of the partitions before the worker can report anything about them.
        let _ = self
            .output
            .send(Output::Control(Control::Source(SourceControl::Assigned {
                worker: self.worker,
                partitions: assigned,
            })));
        if !restores.is_empty() {
            let _ = self.feed.send(Feed::Restore(restores));
        }
        if let Err(error) = consumer.assign(tpl) {
            tracing::error!(%error, "aiops: kafka: cannot take the assigned partitions: {error}");
        }
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let named = self.partitions(tpl);
        let partitions: Vec<PartitionId> = named.iter().map(|(id, _, _)| *id).collect();
        if !self.shared.closing.load(Ordering::Relaxed) {
            let (reply, answer) = sync_channel(1);
            let covered = self
                .feed
                .send(Feed::Revoke(reply))
                .ok()
                .and_then(|()| answer.recv_timeout(self.shared.revoke_timeout).ok())
                .is_some_and(|last_fed| self.shared.wait_for_checkpoint(last_fed));
            if !covered {
                tracing::warn!(
                    "aiops: kafka: partitions revoked before a checkpoint covered them; their next owner resumes from the previous checkpoint"
                );
            }
        }
        // Only what this worker still holds: after a timed-out wait a sibling may have taken a
        // partition already, and the checkpointer must keep following the sibling's copy.
        let mine: Vec<PartitionId> = {
            let owners = self.shared.owners.lock().unwrap_or_else(|e| e.into_inner());
            partitions
                .iter()
                .copied()
                .filter(|p| owners.get(p).is_none_or(|&owner| owner == self.worker))
                .collect()
        };
        // The checkpointer hears of the revocation before a sibling worker waiting for these
        // partitions can take them (see `Shared::wait_for_release`), so the sibling's
        // assignment is the last word on them. (Not sent under the owners lock: the driver
        // takes it to commit, and this channel is bounded.)
        let _ = self
            .output
            .send(Output::Control(Control::Source(SourceControl::Revoked {
                worker: self.worker,
                partitions: mine,
            })));
        {
            let mut owners = self.shared.owners.lock().unwrap_or_else(|e| e.into_inner());
            let mut starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
            for partition in &partitions {
                if owners.get(partition) == Some(&self.worker) {
                    owners.remove(partition);
                }
                starts.remove(partition);
            }
        }
        self.shared.released.notify_all();
        let _ = consumer.unassign();
        for (_, topic, partition) in named {
            log_ownership("released by", &topic, partition, self.worker);
        }
    }
}

/// The checkpointer's view of the source.
struct KafkaCheckpointing {
    shared: Arc<Shared>,
}

impl Checkpointing for KafkaCheckpointing {
    fn every(&self) -> u64 {
        self.shared.every
    }

    fn store(&self) -> &dyn StateStore {
        self.shared.store.as_ref()
    }

    fn partition_name(&self, id: PartitionId) -> Option<(String, i32)> {
        let topic = self.shared.topics.get(id.topic_index())?;
        Some((topic.clone(), id.partition()))
    }

    fn commit(&self, offsets: &[(PartitionId, i64)]) -> Result<()> {
        let owners = self
            .shared
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let consumers = self
            .shared
            .consumers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut by_worker: HashMap<usize, TopicPartitionList> = HashMap::new();
        for (partition, offset) in offsets {
            let (Some(worker), Some((topic, number))) =
                (owners.get(partition), self.partition_name(*partition))
            else {
                continue;
            };
            let list = by_worker.entry(*worker).or_default();
            let _ = list.add_partition_offset(&topic, number, Offset::Offset(*offset));
        }
        for (worker, list) in by_worker {
            if let Some(consumer) = consumers.get(&worker) {
                consumer
                    .commit(&list, CommitMode::Sync)
                    .map_err(|e| Error::kafka("cannot commit offsets", e))?;
            }
        }
        Ok(())
    }

    fn completed(&self, boundary: u64) {
        let mut completed = self
            .shared
            .completed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *completed = Some(completed.map_or(boundary, |c| c.max(boundary)));
        self.shared.completed_changed.notify_all();
    }
}

/// Creates the topics that do not exist yet, each with `partitions` partitions (replication 1
/// unless the broker decides otherwise). Brokers that auto-create topics make this a no-op;
/// tansu does not auto-create, so `aiops run` calls this for its dead-letter and anomalies
/// topics.
pub fn ensure_topics(config: &KafkaConfig, topics: &[(&str, i32)]) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;

    let admin: AdminClient<DefaultClientContext> = client_config(config).create().map_err(|e| {
        Error::kafka(
            format!("cannot create an admin client for {}", config.brokers),
            e,
        )
    })?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = futures_executor::block_on(admin.create_topics(&new_topics, &options))
        .map_err(|e| Error::kafka(format!("cannot create topics on {}", config.brokers), e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::kafka(format!("cannot create topic {topic}"), code));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(dir: &std::path::Path, revoke_timeout: Duration) -> KafkaSource {
        let config: KafkaConfig = serde_json::from_value(serde_json::json!({
            "brokers": "127.0.0.1:1",
            "topics": [{ "name": "metrics" }],
        }))
        .unwrap();
        // Made without contacting the broker; the revocation timeout is at least 30 s, so a
        // short one is set for the test that gives up.
        let store = Arc::new(aiops_pipeline::checkpoint::FileStore::new(dir));
        let mut source =
            KafkaSource::new(config, store, Duration::from_millis(10), revoke_timeout).unwrap();
        Arc::get_mut(&mut source.shared).unwrap().revoke_timeout = revoke_timeout;
        source
    }

    #[test]
    fn a_worker_takes_a_partition_only_once_its_sibling_has_released_it() {
        let dir = tempfile::tempdir().unwrap();
        let source = source(dir.path(), Duration::from_secs(30));
        let shared = source.shared.clone();
        let (held, free) = (PartitionId::new(0, 1), PartitionId::new(0, 2));
        shared.owners.lock().unwrap().insert(held, 0);
        shared.owners.lock().unwrap().insert(free, 1);
        let waiter = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let still = shared.wait_for_release(1, &[held, free]);
                (still, Instant::now())
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !waiter.is_finished(),
            "worker 1 waits while worker 0 holds the partition"
        );
        let released = Instant::now();
        shared.owners.lock().unwrap().remove(&held);
        shared.released.notify_all();
        let (still, woke) = waiter.join().unwrap();
        assert!(still.is_empty());
        assert!(woke >= released);
        // Its own partitions and free ones never make it wait.
        assert!(
            shared
                .wait_for_release(1, &[free, PartitionId::new(0, 3)])
                .is_empty()
        );
    }

    #[test]
    fn the_wait_for_a_sibling_gives_up_after_the_revocation_timeout_or_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let source = source(dir.path(), Duration::from_millis(200));
        let held = PartitionId::new(0, 1);
        source.shared.owners.lock().unwrap().insert(held, 0);
        let started = Instant::now();
        assert_eq!(source.shared.wait_for_release(1, &[held]), vec![held]);
        assert!(started.elapsed() >= Duration::from_millis(200));
        source.shared.closing.store(true, Ordering::Relaxed);
        let started = Instant::now();
        assert_eq!(source.shared.wait_for_release(1, &[held]), vec![held]);
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    fn at(partition: i32, committed: i64, high: i64) -> GroupPosition {
        GroupPosition {
            topic: "metrics".into(),
            partition,
            committed,
            high,
        }
    }

    #[test]
    fn a_partition_is_stalled_when_its_records_wait_unread_by_us_for_the_limit() {
        let limit = Duration::from_secs(10);
        let start = Instant::now();
        let later = |s: u64| start + Duration::from_secs(s);
        let mut tracker = StallTracker::default();
        let nobody = |_: &str, _: i32| false;
        // 0: records left, not moving; 1: moving; 2: caught up; 3: held by this process.
        let reading = |t: i64| vec![at(0, 5, 9), at(1, t, 100), at(2, 9, 9), at(3, 0, 50)];
        let ours = |_: &str, partition: i32| partition == 3;
        assert!(
            tracker
                .update(&reading(0), ours, later(0), limit)
                .is_empty()
        );
        assert!(
            tracker
                .update(&reading(5), ours, later(9), limit)
                .is_empty()
        );
        assert_eq!(
            tracker.update(&reading(7), ours, later(10), limit),
            vec![("metrics".to_owned(), 0)]
        );
        // Moving again restarts its clock; a partition nobody holds any more counts from now.
        let mut tracker = StallTracker::default();
        tracker.update(&[at(0, 5, 9)], nobody, later(0), limit);
        tracker.update(&[at(0, 6, 9)], nobody, later(8), limit);
        assert!(
            tracker
                .update(&[at(0, 6, 9)], nobody, later(17), limit)
                .is_empty()
        );
        assert_eq!(
            tracker
                .update(&[at(0, 6, 9)], nobody, later(18), limit)
                .len(),
            1
        );
        // Offsets a broker could send that would overflow a subtraction.
        assert_eq!(at(0, i64::MIN, i64::MAX).lag(), i64::MAX as u64);
        assert_eq!(at(0, i64::MAX, i64::MIN).lag(), 0);
    }
}
