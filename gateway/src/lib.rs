//! The aiops WebSocket gateway: dashboards, bots and scripts subscribe to their tenant's anomaly
//! and drift streams, authenticated by JWT.
//!
//! Layers, after centrifuge: the [`server`] is an axum router that accepts and upgrades
//! connections (refusing bad tokens before any WebSocket exists); each [`connection`] serves one client; the [`hub`] knows
//! who subscribes to what and fans each event out, encoded once; a [`broker`] (Redis, or
//! in-memory) feeds the hub and answers history queries for resume. The wire protocol is in
//! [`protocol`] and `docs/protocol.md`; tokens are verified in [`auth`]. The [`ui`] is the
//! operator UI's built bundle served at `/`: just another WebSocket client, and a client of the
//! configuration API the application mounts. Metrics are served on a
//! separate admin endpoint (`admin_listen`), never on the clients' port.
//!
//! The gateway meets the pipeline only through Redis and the types of `aiops-schemas`.

pub mod auth;
pub mod broker;
pub mod config;
pub mod connection;
pub mod error;
pub mod hub;
pub mod metrics;
pub mod protocol;
pub mod server;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aiops_telemetry::AdminServer;
use tokio::sync::watch;

pub use auth::{Authenticator, Claims};
pub use config::GatewayConfig;
pub use error::{Error, Result};

use broker::memory::MemoryBroker;
use broker::redis::RedisBroker;
use hub::Hub;
use metrics::Metrics;
use server::Context;

/// A gateway serving in the background of a tokio runtime.
pub struct RunningGateway {
    /// The address it listens on (useful with port 0).
    pub address: SocketAddr,
    /// The admin endpoint's address (`/metrics`, `/healthz`, `/readyz`), when configured.
    pub admin_address: Option<SocketAddr>,
    /// The in-memory broker to publish into, when no Redis is configured.
    pub memory: Option<Arc<MemoryBroker>>,
    /// Its counters.
    pub metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    admin: Option<AdminServer>,
}

impl RunningGateway {
    /// Starts a gateway on the current tokio runtime: Redis when `config.broker.redis_url` is
    /// set, else the in-memory broker.
    pub fn start(config: GatewayConfig) -> Result<RunningGateway> {
        RunningGateway::start_with_routes(config, axum::Router::new())
    }

    /// Starts a gateway that also serves `routes` on its client port, beside the WebSocket and
    /// the dashboard (how `aiops gateway` mounts the configuration API). Requests to them go
    /// through the same connection limits, rate limit and handshake timeout.
    pub fn start_with_routes(
        config: GatewayConfig,
        routes: axum::Router,
    ) -> Result<RunningGateway> {
        config.validate()?;
        let auth = Authenticator::from_config(&config.auth)?;
        let metrics = Arc::new(Metrics::default());
        let hub = Arc::new(Hub::new(
            config.broker.dedupe_window,
            config.limits.client_queue,
            metrics.clone(),
        ));
        let listener = server::bind(config.listen)?;
        let address = listener.local_addr().map_err(|source| Error::Listen {
            address: config.listen.to_string(),
            source,
        })?;
        let (stop, stopped) = watch::channel(false);
        let admin_listen = config.admin_listen;
        let (task, memory, admin) = match config.broker.redis_url.clone() {
            Some(url) => {
                let broker = RedisBroker::start(
                    &url,
                    config.broker.redis_cluster,
                    hub.clone(),
                    metrics.clone(),
                )?;
                let context = Arc::new(Context::new(
                    config,
                    auth,
                    hub,
                    broker,
                    metrics.clone(),
                    stopped,
                ));
                let admin = start_admin(admin_listen, &context)?;
                (
                    tokio::spawn(server::serve(listener, context, routes)),
                    None,
                    admin,
                )
            }
            None => {
                let broker = Arc::new(MemoryBroker::new(hub.clone(), config.broker.memory_history));
                let context = Arc::new(Context::new(
                    config,
                    auth,
                    hub,
                    broker.clone(),
                    metrics.clone(),
                    stopped,
                ));
                let admin = start_admin(admin_listen, &context)?;
                (
                    tokio::spawn(server::serve(listener, context, routes)),
                    Some(broker),
                    admin,
                )
            }
        };
        Ok(RunningGateway {
            address,
            admin_address: admin.as_ref().map(|a| a.address),
            memory,
            metrics,
            stop,
            task,
            admin,
        })
    }

    /// Graceful shutdown: stops accepting, closes every connection with code 1001, and waits
    /// (up to `grace`) for them to finish.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        drop(self.admin);
        let deadline = tokio::time::Instant::now() + grace;
        while self.metrics.connections.get() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The admin endpoint on `address`: the metrics page and readiness of `context`.
fn start_admin<B: broker::Broker>(
    address: Option<SocketAddr>,
    context: &Arc<Context<B>>,
) -> Result<Option<AdminServer>> {
    let Some(address) = address else {
        return Ok(None);
    };
    let (page, probe) = (context.clone(), context.clone());
    let admin = AdminServer::start(
        address,
        Arc::new(move || page.metrics.render(page.hub.subscriptions())),
        Arc::new(move || {
            if probe.is_ready() {
                Ok(())
            } else {
                Err("broker not connected".to_owned())
            }
        }),
    )
    .map_err(Error::Admin)?;
    Ok(Some(admin))
}
