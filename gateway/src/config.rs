//! Gateway configuration, from a TOML file (see `gateway.example.toml` at the repository root).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The whole gateway configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address the WebSocket endpoint, the dashboard and the health probes listen on.
    pub listen: SocketAddr,
    /// Address of the admin endpoint (`/metrics`, `/healthz`, `/readyz`), apart from the
    /// clients' port; loopback by default, so only the host (or its scraper) reaches it. Unset:
    /// no admin endpoint.
    pub admin_listen: Option<SocketAddr>,
    /// Where events come from.
    pub broker: BrokerConfig,
    /// Who may connect.
    pub auth: AuthConfig,
    /// Protection against runaway clients.
    pub limits: LimitsConfig,
    /// Serve the live dashboard at `/` (it only ever shows what the user's token grants).
    pub dashboard: bool,
    /// The configuration API (`/api/v1/`), mounted by the `aiops gateway` command.
    pub api: ApiConfig,
}

/// Where the configuration API keeps detector configurations. The gateway itself only carries
/// this; the command that starts it mounts the API (crate `aiops-control`) when it is set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// The model store directory (the one `aiops run` reads with `--models`); unset: no API.
    pub store: Option<PathBuf>,
    /// Previews read this file or directory of points (JSON lines or CSV; the embedded mode).
    pub preview_input: Option<PathBuf>,
    /// Previews read a time range of this topic (with `preview_brokers`).
    pub preview_topic: Option<String>,
    /// The Kafka bootstrap servers of `preview_topic`.
    pub preview_brokers: Option<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9095))),
            broker: BrokerConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            dashboard: true,
            api: ApiConfig::default(),
        }
    }
}

/// Where events come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Redis URL; when unset the in-memory broker is used (fed in-process, e.g. by `aiops demo`).
    pub redis_url: Option<String>,
    /// `redis_url` names seed nodes of a Redis Cluster, comma separated; channels are sharded
    /// (`SSUBSCRIBE`), as the pipeline's `[redis] cluster = true` publishes them.
    pub redis_cluster: bool,
    /// Events per channel the in-memory broker keeps for resume.
    pub memory_history: usize,
    /// Recent event ids remembered per channel to drop duplicates.
    pub dedupe_window: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            redis_url: None,
            redis_cluster: false,
            memory_history: 10_000,
            dedupe_window: 4_096,
        }
    }
}

/// Who may connect: the keys tokens are verified with, and the claims checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Verification keys; several at once for rotation, chosen by the token's `kid`.
    pub keys: Vec<KeyConfig>,
    /// A JWKS file with more verification keys (each needs `kid` and `alg`).
    pub jwks_file: Option<PathBuf>,
    /// When set, tokens must carry this audience.
    pub audience: Option<String>,
    /// When set, tokens must carry this issuer.
    pub issuer: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_s: u64,
}

/// One key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key id tokens name in their header.
    pub kid: Option<String>,
    /// `HS256`, `HS384`, `HS512`, `RS256`, `RS384`, `RS512`, `PS256`, `ES256`, `ES384` or `EdDSA`.
    /// A token is verified with a key only if its header names this algorithm.
    pub algorithm: String,
    /// The shared secret of an HS key.
    pub secret: Option<String>,
    /// A file holding the shared secret of an HS key.
    pub secret_file: Option<PathBuf>,
    /// A PEM file with the public key of an RS, PS, ES or EdDSA key.
    pub public_key_file: Option<PathBuf>,
}

/// Limits that keep one client, or many, from hurting the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Connections open at once; more are refused with 503.
    pub max_connections: usize,
    /// New connections per second from one IP address (with a burst of twice as many); more are
    /// refused with 429.
    pub connections_per_ip_per_s: u32,
    /// Largest frame (and message) a client may send, in bytes; larger closes with 1009.
    pub max_frame_bytes: usize,
    /// Subscriptions per connection.
    pub max_subscriptions: usize,
    /// Frames queued for one client; a client that falls this far behind is disconnected with
    /// close code 4008.
    pub client_queue: usize,
    /// Seconds between the server's pings.
    pub ping_interval_s: u64,
    /// A client silent (no frame, not even a pong) this long is disconnected with 4010.
    pub idle_timeout_s: u64,
    /// Milliseconds a client has to send its HTTP upgrade request.
    pub handshake_timeout_ms: u64,
    /// Bytes of the socket read buffer per connection (small keeps idle connections cheap).
    pub read_buffer_bytes: usize,
    /// Bytes of frames gathered before a write to the socket; a burst of queued frames goes out
    /// in one write instead of one each.
    pub write_buffer_bytes: usize,
    /// Milliseconds a write to a client may take; a client whose socket accepts nothing for
    /// this long (it stopped reading) is closed with 4008 like one whose queue overflowed.
    pub write_timeout_ms: u64,
    /// Bytes of kernel send buffer per connection (Linux doubles it for its bookkeeping); 0
    /// leaves it to the kernel, which grows it up to `net.ipv4.tcp_wmem` (often 4 MiB). A
    /// bounded buffer bounds how much a client that stopped reading holds, and how long the
    /// gateway takes to notice it: the write timeout starts once this buffer is full.
    pub send_buffer_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 20_000,
            connections_per_ip_per_s: 1_000,
            max_frame_bytes: 64 * 1024,
            max_subscriptions: 16,
            client_queue: 1_024,
            ping_interval_s: 20,
            idle_timeout_s: 60,
            handshake_timeout_ms: 5_000,
            read_buffer_bytes: 1024,
            write_buffer_bytes: 16 * 1024,
            write_timeout_ms: 10_000,
            send_buffer_bytes: 128 * 1024,
        }
    }
}

impl GatewayConfig {
    /// Reads and checks a TOML file.
    pub fn from_file(path: &Path) -> Result<GatewayConfig> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let with_path = |message: String| Error::Config {
            path: Some(path.to_owned()),
            message,
        };
        let config: GatewayConfig = toml::from_str(&text).map_err(|e| with_path(e.to_string()))?;
        config.validate().map_err(|e| with_path(e.to_string()))?;
        Ok(config)
    }

    /// Checks what can be checked without opening sockets (keys are checked when loaded).
    pub fn validate(&self) -> Result<()> {
        let limits = &self.limits;
        for (name, value) in [
            ("max_connections", limits.max_connections),
            ("max_frame_bytes", limits.max_frame_bytes),
            ("max_subscriptions", limits.max_subscriptions),
            ("client_queue", limits.client_queue),
            ("read_buffer_bytes", limits.read_buffer_bytes),
        ] {
            if value == 0 {
                return Err(Error::config(format!("limits.{name} must be at least 1")));
            }
        }
        if limits.connections_per_ip_per_s == 0 || limits.ping_interval_s == 0 {
            return Err(Error::config(
                "limits.connections_per_ip_per_s and limits.ping_interval_s must be at least 1",
            ));
        }
        if limits.write_timeout_ms == 0 {
            return Err(Error::config(
                "limits.write_timeout_ms must be at least 1: it is how long a stuck client may hold its connection",
            ));
        }
        if limits.idle_timeout_s <= limits.ping_interval_s {
            return Err(Error::config(
                "limits.idle_timeout_s must be longer than limits.ping_interval_s, or every client times out between pings",
            ));
        }
        if self.auth.keys.is_empty() && self.auth.jwks_file.is_none() {
            return Err(Error::config(
                "no verification key: add [[auth.keys]] or auth.jwks_file; every connection needs a token",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_is_valid_and_documents_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway.example.toml");
        let config = GatewayConfig::from_file(&path).unwrap();
        assert_eq!(config.limits, LimitsConfig::default());
        assert_eq!(config.broker, BrokerConfig::default());
        assert_eq!(config.listen, GatewayConfig::default().listen);
        assert_eq!(config.admin_listen, GatewayConfig::default().admin_listen);
        assert_eq!(config.auth.keys.len(), 1);
        crate::auth::Authenticator::from_config(&config.auth).unwrap();
    }

    #[test]
    fn invalid_configurations_say_what_to_fix() {
        let mut config = GatewayConfig::default();
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("no verification key")
        );
        config.auth.jwks_file = Some("x".into());
        config.limits.idle_timeout_s = 5;
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("idle_timeout_s")
        );
    }
}
