//! A real Redis Cluster for the tests: six redis-server processes in cluster mode on free
//! loopback ports, joined by `redis-cli --cluster create` as three primaries with a replica
//! each; a primary can be killed to make its replica take over.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Service, free_port, wait_for_port};

/// See the module docs.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    children: Vec<Option<Child>>,
    _dir: tempfile::TempDir,
}

fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl RedisCluster {
    /// Starts six nodes and creates the cluster; waits until every node says it is ok.
    pub fn start() -> RedisCluster {
        Service::Redis.used();
        let dir = tempfile::tempdir().unwrap();
        // Each node also listens on its port + 10000 (the cluster bus): keep both in range,
        // and the six distinct.
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 6 {
            let port = free_port();
            if port < 55_000
                && !ports.contains(&port)
                && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
            {
                ports.push(port);
            }
        }
        let children = ports
            .iter()
            .map(|port| {
                let node_dir = dir.path().join(port.to_string());
                std::fs::create_dir_all(&node_dir).unwrap();
                let child = Command::new("redis-server")
                    .args([
                        "--port",
                        &port.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                    ])
                    .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                    // The other shards keep serving while one has no primary.
                    .args(["--cluster-require-full-coverage", "no"])
                    // A replica takes over however long ago it last heard from its primary.
                    .args(["--cluster-replica-validity-factor", "0"])
                    .args(["--appendonly", "yes", "--appendfsync", "always"])
                    .arg("--dir")
                    .arg(&node_dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server starts");
                wait_for_port(*port, "redis-server (cluster)");
                Some(child)
            })
            .collect();
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "redis-cli --cluster create");
        let cluster = RedisCluster {
            ports,
            children,
            _dir: dir,
        };
        cluster.wait_until_ok(Duration::from_secs(30));
        // And until every primary's replica has finished its first sync: before, a write is on
        // the primary only (WAIT answers 0).
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.ports.iter().all(|port| {
            let info = cli(*port, &["INFO", "replication"]);
            info.contains("role:slave") && info.contains("master_link_status:up")
                || info.contains("role:master") && info.contains("connected_slaves:1")
        }) {
            assert!(Instant::now() < deadline, "replicas in sync within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// The seed nodes, as `[redis] url` takes them with `cluster = true`.
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The URLs of the nodes still running.
    pub fn live_urls(&self) -> Vec<String> {
        self.alive()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    fn alive(&self) -> impl Iterator<Item = u16> + '_ {
        self.ports
            .iter()
            .zip(&self.children)
            .filter(|(_, child)| child.is_some())
            .map(|(port, _)| *port)
    }

    /// Waits until every live node reports `cluster_state:ok` and agrees on three primaries
    /// that each have the slots.
    pub fn wait_until_ok(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .alive()
                .all(|port| cli(port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the cluster is not ok within {timeout:?}");
    }

    /// The port of the primary serving `key`'s slot now.
    pub fn primary_of(&self, key: &str) -> u16 {
        self.serving(key)
            .unwrap_or_else(|| panic!("no primary serves {key}"))
    }

    fn serving(&self, key: &str) -> Option<u16> {
        let port = self.alive().next().expect("a live node");
        let slot: u16 = cli(port, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .unwrap();
        // CLUSTER SHARDS would do on Redis 7+; CLUSTER SLOTS is older and enough.
        let nodes = cli(port, &["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| {
                let mut bounds = range.split('-').map(|b| b.parse::<u16>());
                match (bounds.next(), bounds.next()) {
                    (Some(Ok(low)), Some(Ok(high))) => (low..=high).contains(&slot),
                    (Some(Ok(only)), None) => only == slot,
                    _ => false,
                }
            });
            if serves {
                let address = fields[1].split('@').next()?;
                return address.rsplit(':').next()?.parse().ok();
            }
        }
        None
    }

    /// `kill -9` of the primary serving `key`; returns once another node is its primary and
    /// the cluster is ok again, with the time that took.
    pub fn fail_over(&mut self, key: &str) -> (u16, Duration) {
        let old = self.primary_of(key);
        let index = self.ports.iter().position(|p| *p == old).unwrap();
        if let Some(mut child) = self.children[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if self.serving(key).is_some_and(|p| p != old) {
                self.wait_until_ok(Duration::from_secs(30));
                return (old, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no replica took over from {old} within 30 s");
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
