//! Connections to Redis for the sink, the checkpoint store and the readiness probe: one node
//! (`redis::Client`) or a Redis Cluster (`redis::cluster::ClusterClient`, seed nodes comma
//! separated in the URL), behind one type so that callers run the same commands on either.

use std::time::Duration;

use aiops_schemas::redis_nodes;

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};

/// The first node a URL names: itself on one node, the first seed of a cluster's list. Classic
/// `PUBLISH`/`SUBSCRIBE` (the control channel of configuration changes) work on any node of a
/// cluster, which forwards them to every node.
pub fn first_node(url: &str) -> &str {
    redis_nodes(url).next().unwrap_or(url)
}

/// A client of one node or of a cluster.
#[derive(Clone)]
pub enum RedisClient {
    /// One node (or a primary with replicas behind one address).
    Single(redis::Client),
    /// A Redis Cluster, found from its seed nodes.
    Cluster(Box<ClusterClient>),
}

/// A connection made by a [`RedisClient`].
pub enum RedisConnection {
    /// To one node.
    Single(redis::Connection),
    /// To a cluster: commands go to the shard of their key, and follow it after a failover.
    Cluster(Box<ClusterConnection>),
}

impl RedisClient {
    /// A client for `url`; with `cluster`, `url` lists seed nodes separated by commas.
    pub fn open(url: &str, cluster: bool) -> redis::RedisResult<RedisClient> {
        if !cluster {
            return redis::Client::open(url).map(RedisClient::Single);
        }
        ClusterClient::builder(redis_nodes(url))
            .connection_timeout(Duration::from_secs(2))
            // Longer than the longest WAIT the sink sends.
            .response_timeout(Duration::from_secs(5))
            .build()
            .map(|client| RedisClient::Cluster(Box::new(client)))
    }

    /// A connection, with reads and writes bounded by `timeout` on a single node.
    pub fn connect(&self, timeout: Duration) -> redis::RedisResult<RedisConnection> {
        match self {
            RedisClient::Single(client) => {
                let connection = client.get_connection_with_timeout(timeout)?;
                connection.set_read_timeout(Some(timeout))?;
                connection.set_write_timeout(Some(timeout))?;
                Ok(RedisConnection::Single(connection))
            }
            RedisClient::Cluster(client) => client
                .get_connection()
                .map(|connection| RedisConnection::Cluster(Box::new(connection))),
        }
    }

    /// Whether this is a cluster client.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisClient::Cluster(_))
    }
}

impl RedisConnection {
    /// The connection for single commands, routed by key on a cluster.
    pub fn commands(&mut self) -> &mut dyn redis::ConnectionLike {
        match self {
            RedisConnection::Single(connection) => connection,
            RedisConnection::Cluster(connection) => connection.as_mut(),
        }
    }

    /// Sends `commands` in one pipeline (one per node on a cluster; no transaction), their
    /// replies ignored.
    pub fn pipeline(
        &mut self,
        commands: impl IntoIterator<Item = redis::Cmd>,
    ) -> redis::RedisResult<()> {
        match self {
            RedisConnection::Single(connection) => {
                let mut pipe = redis::pipe();
                for command in commands {
                    pipe.add_command(command).ignore();
                }
                pipe.query(connection)
            }
            RedisConnection::Cluster(connection) => {
                let mut pipe = redis::cluster::cluster_pipe();
                for command in commands {
                    pipe.add_command(command).ignore();
                }
                pipe.query(connection.as_mut())
            }
        }
    }

    /// Publishing `payload` on `channel`: `PUBLISH` on one node; on a cluster sharded
    /// `SPUBLISH`, so the message stays on the channel's slot's shard (a tenant's channels share
    /// its hash tag, hence the shard of its stream) instead of a cluster-wide broadcast.
    pub fn publish(&self, channel: &str, payload: &[u8]) -> redis::Cmd {
        let mut command = redis::cmd(match self {
            RedisConnection::Single(_) => "PUBLISH",
            RedisConnection::Cluster(_) => "SPUBLISH",
        });
        command.arg(channel).arg(payload);
        command
    }

    /// Waits until `replicas` replicas have every write made so far to the node that holds
    /// `key` (the primary of its shard on a cluster), for at most `timeout`; how many did.
    pub fn wait_for_replicas(
        &mut self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> redis::RedisResult<u32> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(timeout.as_millis() as u64);
        match self {
            RedisConnection::Single(connection) => wait.query(connection),
            RedisConnection::Cluster(connection) => {
                // A plain WAIT would go to every primary; it must go to the key's.
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::with_key(key, SlotAddr::Master),
                ));
                let value = connection.route_command(&wait, route)?;
                Ok(redis::from_redis_value(value)?)
            }
        }
    }
}
