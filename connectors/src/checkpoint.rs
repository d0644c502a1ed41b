//! Checkpoints in Redis: the state store any `aiops run` on any host can read, fenced per
//! partition so that a process that lost a partition can never overwrite its new owner's
//! checkpoint.
//!
//! Why Redis: the pipeline writes to it already (no new dependency to run), a checkpoint is one
//! value written whole (`SET` is atomic, so a reader sees the old checkpoint or the new one,
//! and the offsets inside it always match the series state beside them), and a short Lua
//! script makes the fence and the write one step. The file store stays the embedded default.
//!
//! Fencing: each partition has an epoch (`INCR` when a process is assigned the partition and
//! loads its checkpoint) and the process remembers the epoch it got. A save runs a script that
//! writes only if the epoch is still the one the process holds; otherwise it answers
//! [`Error::CheckpointFenced`] and the pipeline drops the partition. Keys, under one hash tag per
//! partition so that a Redis Cluster keeps both on one shard:
//! `aiops:checkpoint:{<group>/<topic>/<partition>}:epoch` and `…:state`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aiops_pipeline::checkpoint::{PartitionCheckpoint, StateStore, decode, encode};
use aiops_pipeline::{Error, Result};

use crate::redis_client::{RedisClient, RedisConnection};

/// Writes the state only while the caller's epoch is the partition's current one.
const SAVE_IF_OWNER: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0
";

/// The Redis state store of one consumer group.
pub struct RedisStateStore {
    client: RedisClient,
    group: String,
    connection: Mutex<Option<RedisConnection>>,
    /// The epoch this process claimed for each partition it loaded.
    claims: Mutex<HashMap<(String, i32), i64>>,
}

impl RedisStateStore {
    /// The store of consumer group `group` on the Redis at `url` (a cluster's seed nodes with
    /// `cluster`; connects on first use).
    pub fn new(url: &str, cluster: bool, group: &str) -> Result<RedisStateStore> {
        let client = RedisClient::open(url, cluster)
            .map_err(|e| Error::redis(format!("invalid URL {url:?}"), e))?;
        Ok(RedisStateStore {
            client,
            group: group.to_owned(),
            connection: Mutex::new(None),
            claims: Mutex::new(HashMap::new()),
        })
    }

    /// The keys of a partition's epoch and state.
    fn keys(&self, topic: &str, partition: i32) -> (String, String) {
        let tag = format!("aiops:checkpoint:{{{}/{topic}/{partition}}}", self.group);
        (format!("{tag}:epoch"), format!("{tag}:state"))
    }

    /// Runs `call` on the kept connection, once more on a fresh one if it fails (Redis may
    /// have closed the kept one).
    fn with_connection<T>(
        &self,
        what: &str,
        mut call: impl FnMut(&mut RedisConnection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let mut kept = self
            .connection
            .lock()
            .map_err(|_| Error::config("a thread writing checkpoints panicked"))?;
        let mut last = None;
        for _ in 0..2 {
            if kept.is_none() {
                match self.client.connect(Duration::from_secs(5)) {
                    Ok(connection) => *kept = Some(connection),
                    Err(error) => {
                        last = Some(error);
                        continue;
                    }
                }
            }
            let Some(connection) = kept.as_mut() else {
                continue;
            };
            match call(connection) {
                Ok(value) => return Ok(value),
                Err(error) => {
                    *kept = None;
                    last = Some(error);
                }
            }
        }
        Err(match last {
            Some(error) => Error::redis(what.to_owned(), error),
            None => Error::redis(
                what.to_owned(),
                std::io::Error::other("no connection to Redis"),
            ),
        })
    }
}

impl StateStore for RedisStateStore {
    fn load(&self, topic: &str, partition: i32) -> Result<Option<PartitionCheckpoint>> {
        let (epoch_key, state_key) = self.keys(topic, partition);
        // Claim first, then read: a save of the previous owner that lands between the two is
        // already refused, and one that landed before is what we read.
        let epoch: i64 = self.with_connection("cannot claim a partition's checkpoint", |c| {
            let epoch = redis::cmd("INCR").arg(&epoch_key).query(c.commands())?;
            // On a cluster, a claim a failover lost would let two processes hold one epoch:
            // give the shard's replica a moment to have it (best effort; a shard without a
            // replica goes on).
            if self.client.is_cluster() {
                c.wait_for_replicas(&epoch_key, 1, Duration::from_millis(500))?;
            }
            Ok(epoch)
        })?;
        self.claims
            .lock()
            .map_err(|_| Error::config("a thread writing checkpoints panicked"))?
            .insert((topic.to_owned(), partition), epoch);
        let bytes: Option<Vec<u8>> = self.with_connection("cannot read a checkpoint", |c| {
            redis::cmd("GET").arg(&state_key).query(c.commands())
        })?;
        match bytes {
            None => Ok(None),
            Some(bytes) => decode(&bytes)
                .map(Some)
                .map_err(|message| Error::Checkpoint {
                    path: state_key.into(),
                    message,
                }),
        }
    }

    fn save(&self, checkpoint: &PartitionCheckpoint) -> Result<()> {
        let (topic, partition) = (&checkpoint.topic, checkpoint.partition);
        let claimed = self
            .claims
            .lock()
            .map_err(|_| Error::config("a thread writing checkpoints panicked"))?
            .get(&(topic.clone(), partition))
            .copied();
        let fenced = || Error::CheckpointFenced {
            topic: topic.clone(),
            partition,
        };
        // A partition this process never loaded is not its to write.
        let Some(epoch) = claimed else {
            return Err(fenced());
        };
        let (epoch_key, state_key) = self.keys(topic, partition);
        let bytes = encode(checkpoint);
        // EVAL with the script's text (a few hundred bytes against a checkpoint's kilobytes):
        // nothing to cache on the server, so a failover or a flush cannot lose it.
        let written: i64 = self.with_connection("cannot write a checkpoint", |c| {
            redis::cmd("EVAL")
                .arg(SAVE_IF_OWNER)
                .arg(2)
                .arg(&epoch_key)
                .arg(&state_key)
                .arg(epoch)
                .arg(bytes.as_slice())
                .query(c.commands())
        })?;
        if written == 1 { Ok(()) } else { Err(fenced()) }
    }
}
