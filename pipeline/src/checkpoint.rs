//! Checkpoints: series state stored together with the source positions it reflects, so a
//! restarted (or newly assigned) pipeline resumes exactly where the state left off.
//!
//! State is kept per source partition, because a series' points all come from one partition
//! (producers key messages by series) and a partition is what moves between consumers. Each
//! partition's checkpoint is one self-consistent unit: its series' state after processing every
//! message before `next_offset`, and nothing after.
//!
//! The [`Checkpointer`] runs on the driving thread. It completes the checkpoint at boundary `b`
//! once every worker has (1) reported its series state as of `b`, (2) reported the offsets it
//! had fed by `b`, and (3) delivered every event and dead letter of epochs up to `b`, which the
//! sink has acknowledged. Only then are the partitions written and the offsets committed: an
//! event is never covered by a committed offset before the sink has it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::dataflow::{Control, FINAL_BOUNDARY};
use crate::error::{Error, Result};
use crate::metrics::Counters;
use crate::record::{PartitionId, SeriesState};
use crate::sink::Sink;
use crate::source::{Checkpointing, SourceControl};

/// One partition's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionCheckpoint {
    /// The topic.
    pub topic: String,
    /// The partition within the topic.
    pub partition: i32,
    /// The offset of the first message the state does not reflect.
    pub next_offset: i64,
    /// The checkpoint boundary it was written at (for diagnostics).
    pub boundary: u64,
    /// Encoded chain snapshot per series key.
    pub series: BTreeMap<u64, Vec<u8>>,
}

/// Where checkpoints live. Implementations must make `save` atomic per partition: a reader sees
/// the previous checkpoint or the new one, never a mix.
///
/// A store shared by processes on several hosts also fences: `load` is called when a partition
/// is assigned and claims it, and a `save` by a process whose claim a later `load` elsewhere
/// superseded fails with [`Error::CheckpointFenced`] instead of overwriting the new owner's
/// checkpoint (the caller then drops the partition; its new owner carries on).
pub trait StateStore: Send + Sync {
    /// The latest checkpoint of a partition, if any; claims the partition for this process.
    fn load(&self, topic: &str, partition: i32) -> Result<Option<PartitionCheckpoint>>;

    /// Replaces a partition's checkpoint.
    fn save(&self, checkpoint: &PartitionCheckpoint) -> Result<()>;
}

const MAGIC: &[u8; 8] = b"AIOPSCK\0";
const FORMAT_VERSION: u16 = 1;

/// The embedded store: one file per partition under a directory,
/// `<dir>/<topic>/<partition>.ckpt`, written to a temporary file, synced and renamed into
/// place. Processes on one machine can share the directory; processes on several machines need
/// a shared store.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// A store under `root` (created on first save).
    pub fn new(root: impl Into<PathBuf>) -> FileStore {
        FileStore { root: root.into() }
    }

    fn path(&self, topic: &str, partition: i32) -> PathBuf {
        // Topic names are [a-zA-Z0-9._-], which are safe file names.
        self.root.join(topic).join(format!("{partition}.ckpt"))
    }
}

impl StateStore for FileStore {
    fn load(&self, topic: &str, partition: i32) -> Result<Option<PartitionCheckpoint>> {
        let path = self.path(topic, partition);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read checkpoint", &path, e)),
        };
        decode(&bytes)
            .map(Some)
            .map_err(|message| Error::Checkpoint {
                path: path.clone(),
                message,
            })
    }

    fn save(&self, checkpoint: &PartitionCheckpoint) -> Result<()> {
        let path = self.path(&checkpoint.topic, checkpoint.partition);
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("cannot create checkpoint directory", dir, e))?;
        let temporary = path.with_extension("ckpt.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temporary)?;
            file.write_all(&encode(checkpoint))?;
            file.sync_all()?;
            std::fs::rename(&temporary, &path)?;
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| Error::io("cannot write checkpoint", &path, e))
    }
}

/// `MAGIC`, format version (u16 LE), XXH3-64 of the payload (u64 LE), postcard payload: the
/// bytes every store keeps.
pub fn encode(checkpoint: &PartitionCheckpoint) -> Vec<u8> {
    let payload = postcard::to_stdvec(checkpoint).unwrap_or_default();
    let mut bytes = Vec::with_capacity(payload.len() + 18);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    bytes
}

/// A checkpoint from [`encode`]'s bytes; what is wrong with them otherwise.
pub fn decode(bytes: &[u8]) -> std::result::Result<PartitionCheckpoint, String> {
    if bytes.len() < 18 || &bytes[..8] != MAGIC {
        return Err("not an aiops checkpoint file".into());
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}; this build reads {FORMAT_VERSION}"
        ));
    }
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&bytes[10..18]);
    let payload = &bytes[18..];
    if xxhash_rust::xxh3::xxh3_64(payload) != u64::from_le_bytes(sum) {
        return Err("checksum mismatch: the file is damaged".into());
    }
    postcard::from_bytes(payload).map_err(|e| e.to_string())
}

#[derive(Default)]
struct PendingCheckpoint {
    snapshots: HashMap<usize, Vec<SeriesState>>,
    offsets: HashMap<usize, Vec<(PartitionId, i64)>>,
}

/// Completes checkpoints on the driving thread; see the module docs.
pub struct Checkpointer {
    source: Arc<dyn Checkpointing>,
    counters: Arc<Counters>,
    workers: usize,
    /// Partitions this process reads, with their state as of the last completed checkpoint.
    owned: HashMap<PartitionId, PartitionCheckpoint>,
    pending: BTreeMap<u64, PendingCheckpoint>,
    delivered: Vec<u64>,
    last_completed: Option<u64>,
}

impl Checkpointer {
    /// A checkpointer for `workers` workers.
    pub fn new(
        source: Arc<dyn Checkpointing>,
        counters: Arc<Counters>,
        workers: usize,
    ) -> Checkpointer {
        Checkpointer {
            source,
            counters,
            workers,
            owned: HashMap::new(),
            pending: BTreeMap::new(),
            delivered: vec![0; workers],
            last_completed: None,
        }
    }

    /// Takes one control message from the workers or the source.
    pub fn on_control(&mut self, control: Control) {
        match control {
            Control::Progress { worker, frontier } => self.on_progress(worker, frontier),
            Control::Snapshot {
                worker,
                boundary,
                series,
            } => self.on_snapshot(worker, boundary, series),
            Control::Offsets {
                worker,
                boundary,
                offsets,
            } => self.on_offsets(worker, boundary, offsets),
            Control::Source(SourceControl::Assigned { partitions, .. }) => {
                self.on_assigned(partitions)
            }
            Control::Source(SourceControl::Revoked { partitions, .. }) => {
                self.on_revoked(&partitions)
            }
            // The driver counts finished workers and confirms applied configurations itself.
            Control::WorkerDone { .. } | Control::Applied { .. } => {}
        }
    }

    /// A worker's delivered frontier moved.
    pub fn on_progress(&mut self, worker: usize, frontier: u64) {
        if let Some(slot) = self.delivered.get_mut(worker) {
            *slot = (*slot).max(frontier);
        }
    }

    /// A worker's score stage reported its changed series as of `boundary`.
    pub fn on_snapshot(&mut self, worker: usize, boundary: u64, series: Vec<SeriesState>) {
        if self.last_completed.is_some_and(|done| boundary <= done) {
            return;
        }
        self.pending
            .entry(boundary)
            .or_default()
            .snapshots
            .insert(worker, series);
    }

    /// A worker reported what it had fed by `boundary`.
    pub fn on_offsets(&mut self, worker: usize, boundary: u64, offsets: Vec<(PartitionId, i64)>) {
        if self.last_completed.is_some_and(|done| boundary <= done) {
            return;
        }
        self.pending
            .entry(boundary)
            .or_default()
            .offsets
            .insert(worker, offsets);
    }

    /// Partitions were assigned to this process, with their stored checkpoints.
    pub fn on_assigned(&mut self, partitions: Vec<(PartitionId, Option<PartitionCheckpoint>)>) {
        self.counters.add_assignments(1);
        for (partition, checkpoint) in partitions {
            let checkpoint = checkpoint.or_else(|| {
                let (topic, number) = self.source.partition_name(partition)?;
                Some(PartitionCheckpoint {
                    topic,
                    partition: number,
                    next_offset: -1,
                    boundary: 0,
                    series: BTreeMap::new(),
                })
            });
            if let Some(checkpoint) = checkpoint {
                self.owned.insert(partition, checkpoint);
            }
        }
        self.counters.set_partitions(self.owned.len() as u64);
    }

    /// Partitions were taken away (after a checkpoint covering what was read of them).
    pub fn on_revoked(&mut self, partitions: &[PartitionId]) {
        for partition in partitions {
            self.owned.remove(partition);
        }
        self.counters.set_partitions(self.owned.len() as u64);
    }

    /// The latest boundary every worker has fully reported and delivered, if any.
    fn ready(&self) -> Option<u64> {
        let delivered = self.delivered.iter().copied().min().unwrap_or(0);
        self.pending
            .iter()
            .rev()
            .find(|(boundary, pending)| {
                let delivered_past = if **boundary == FINAL_BOUNDARY {
                    delivered == u64::MAX
                } else {
                    delivered > **boundary
                };
                delivered_past
                    && pending.snapshots.len() == self.workers
                    && pending.offsets.len() == self.workers
            })
            .map(|(boundary, _)| *boundary)
    }

    /// Completes the latest ready checkpoint, if any: flushes the sink, writes the changed
    /// partitions, commits their offsets. Returns the boundary completed.
    pub fn try_complete(&mut self, sink: &mut dyn Sink) -> Result<Option<u64>> {
        if std::env::var_os("AIOPS_DEBUG_CHECKPOINTS").is_some() {
            let summary: Vec<String> = self
                .pending
                .iter()
                .rev()
                .take(3)
                .map(|(b, p)| format!("{b}:s{}o{}", p.snapshots.len(), p.offsets.len()))
                .collect();
            eprintln!(
                "checkpoints: delivered {:?} pending {} {:?}",
                self.delivered,
                self.pending.len(),
                summary
            );
        }
        let Some(boundary) = self.ready() else {
            return Ok(None);
        };
        // Everything up to the boundary has been handed to the sink; make it durable first.
        sink.flush()?;
        let completed = match boundary.checked_add(1) {
            Some(after) => {
                let later = self.pending.split_off(&after);
                std::mem::replace(&mut self.pending, later)
            }
            None => std::mem::take(&mut self.pending),
        };
        let mut changed = BTreeSet::new();
        for pending in completed.values() {
            for series in pending.snapshots.values() {
                for state in series {
                    if let Some(checkpoint) = self.owned.get_mut(&state.partition) {
                        checkpoint.series.insert(state.key.0, state.state.clone());
                        changed.insert(state.partition);
                    }
                }
            }
        }
        let mut commits = Vec::new();
        if let Some(pending) = completed.get(&boundary) {
            let mut newest: HashMap<PartitionId, i64> = HashMap::new();
            for (partition, offset) in pending.offsets.values().flatten() {
                let slot = newest.entry(*partition).or_insert(*offset);
                *slot = (*slot).max(*offset);
            }
            for (partition, offset) in newest {
                if let Some(checkpoint) = self.owned.get_mut(&partition)
                    && offset > checkpoint.next_offset
                {
                    checkpoint.next_offset = offset;
                    changed.insert(partition);
                    commits.push((partition, offset));
                }
            }
        }
        let mut fenced = Vec::new();
        for partition in &changed {
            if let Some(checkpoint) = self.owned.get_mut(partition) {
                checkpoint.boundary = boundary;
                match self.source.store().save(checkpoint) {
                    Ok(()) => {}
                    // Another process owns the partition now (its assignment reached the store
                    // before this revocation reached us): its checkpoint stands, ours is
                    // dropped, and so are our offsets for it.
                    Err(error @ Error::CheckpointFenced { .. }) => {
                        tracing::warn!(%error, "aiops: {error}");
                        fenced.push(*partition);
                    }
                    Err(other) => return Err(other),
                }
            }
        }
        for partition in &fenced {
            self.owned.remove(partition);
            commits.retain(|(p, _)| p != partition);
        }
        if !fenced.is_empty() {
            self.counters.set_partitions(self.owned.len() as u64);
        }
        if !commits.is_empty() {
            self.source.commit(&commits)?;
        }
        self.last_completed = Some(boundary);
        self.source.completed(boundary);
        self.counters.add_checkpoints(1);
        Ok(Some(boundary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> PartitionCheckpoint {
        PartitionCheckpoint {
            topic: "metrics".into(),
            partition: 3,
            next_offset: 42,
            boundary: 9,
            series: [(7u64, vec![1, 2, 3])].into(),
        }
    }

    #[test]
    fn file_store_round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        assert_eq!(store.load("metrics", 3).unwrap(), None);
        store.save(&checkpoint()).unwrap();
        assert_eq!(store.load("metrics", 3).unwrap(), Some(checkpoint()));
        let newer = PartitionCheckpoint {
            next_offset: 50,
            ..checkpoint()
        };
        store.save(&newer).unwrap();
        assert_eq!(store.load("metrics", 3).unwrap(), Some(newer));
        assert!(!dir.path().join("metrics/3.ckpt.tmp").exists());
    }

    #[test]
    fn damaged_files_are_reported_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        store.save(&checkpoint()).unwrap();
        let path = dir.path().join("metrics/3.ckpt");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        let err = store.load("metrics", 3).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        std::fs::write(&path, b"hello").unwrap();
        let err = store.load("metrics", 3).unwrap_err().to_string();
        assert!(err.contains("not an aiops checkpoint"), "{err}");
    }

    /// A source over two partitions whose store refuses saves of the partitions it lists (as
    /// a shared store does once another process claimed them), and records commits.
    struct Fencing {
        store: FencedStore,
        commits: std::sync::Mutex<Vec<(PartitionId, i64)>>,
    }

    struct FencedStore {
        fenced: Vec<i32>,
        saved: std::sync::Mutex<Vec<(i32, i64)>>,
    }

    impl StateStore for FencedStore {
        fn load(&self, _: &str, _: i32) -> Result<Option<PartitionCheckpoint>> {
            Ok(None)
        }

        fn save(&self, checkpoint: &PartitionCheckpoint) -> Result<()> {
            if self.fenced.contains(&checkpoint.partition) {
                return Err(Error::CheckpointFenced {
                    topic: checkpoint.topic.clone(),
                    partition: checkpoint.partition,
                });
            }
            self.saved
                .lock()
                .unwrap()
                .push((checkpoint.partition, checkpoint.next_offset));
            Ok(())
        }
    }

    impl Checkpointing for Fencing {
        fn every(&self) -> u64 {
            1
        }

        fn store(&self) -> &dyn StateStore {
            &self.store
        }

        fn partition_name(&self, partition: PartitionId) -> Option<(String, i32)> {
            Some(("metrics".into(), partition.partition()))
        }

        fn commit(&self, offsets: &[(PartitionId, i64)]) -> Result<()> {
            self.commits.lock().unwrap().extend_from_slice(offsets);
            Ok(())
        }

        fn completed(&self, _: u64) {}
    }

    #[test]
    fn a_fenced_partition_is_dropped_and_not_committed_while_the_others_carry_on() {
        let source = Arc::new(Fencing {
            store: FencedStore {
                fenced: vec![1],
                saved: Default::default(),
            },
            commits: Default::default(),
        });
        let mut checkpointer = Checkpointer::new(source.clone(), Arc::new(Counters::default()), 1);
        let (zero, one) = (PartitionId::new(0, 0), PartitionId::new(0, 1));
        checkpointer.on_assigned(vec![(zero, None), (one, None)]);
        checkpointer.on_snapshot(0, 4, Vec::new());
        checkpointer.on_offsets(0, 4, vec![(zero, 100), (one, 200)]);
        checkpointer.on_progress(0, 5);
        let mut sink = crate::sink::Collect::default();
        assert_eq!(checkpointer.try_complete(&mut sink).unwrap(), Some(4));
        assert_eq!(*source.store.saved.lock().unwrap(), vec![(0, 100)]);
        assert_eq!(*source.commits.lock().unwrap(), vec![(zero, 100)]);
        assert!(checkpointer.owned.contains_key(&zero));
        assert!(
            !checkpointer.owned.contains_key(&one),
            "the fenced partition is dropped"
        );
    }
}
