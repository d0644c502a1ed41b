//! The listening side: an axum [`Router`] for the client port (the WebSocket endpoint, the
//! dashboard's files, `/healthz`, `/readyz`) behind an accept loop that enforces what must hold
//! before any request is read: the per-IP connection rate and the time a client has to send its
//! request. A client without a valid token never gets a WebSocket at all.
//!
//! Refusals before the upgrade, each with a JSON body `{"code": ..., "message": ...}`:
//! 401 for a missing or invalid token (the code says which), 429 over the per-IP connection rate,
//! 503 over the connection limit or while shutting down, 400 for a request that is not a valid
//! upgrade, 408 when the request does not arrive in time, 404 for other paths and 405 for other
//! methods. Malformed HTTP (400) and request heads over 8 KiB (431) are refused by hyper itself,
//! without a body. `/metrics` is not served here: it is on the admin endpoint.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt as _;

use aiops_telemetry::admin::json_status;

use crate::auth::{AuthError, Authenticator};
use crate::broker::Broker;
use crate::config::GatewayConfig;
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::metrics::Metrics;

/// Largest HTTP request head accepted (hyper's smallest read-buffer limit).
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// Everything connections share.
pub struct Context<B: Broker> {
    /// The configuration.
    pub config: GatewayConfig,
    /// Token verification.
    pub auth: Authenticator,
    /// Channel subscriptions and fan-out.
    pub hub: Arc<Hub>,
    /// Where events come from.
    pub broker: Arc<B>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Orders hub bookkeeping with broker requests (see `Broker`).
    pub subscription_order: Mutex<()>,
    /// Becomes true on shutdown.
    pub shutdown: watch::Receiver<bool>,
    rates: Mutex<HashMap<IpAddr, Bucket>>,
}

/// A token bucket per IP address.
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<B: Broker> Context<B> {
    /// A context for `config`, serving `hub`'s events from `broker`.
    pub fn new(
        config: GatewayConfig,
        auth: Authenticator,
        hub: Arc<Hub>,
        broker: Arc<B>,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Context<B> {
        Context {
            config,
            auth,
            hub,
            broker,
            metrics,
            subscription_order: Mutex::new(()),
            shutdown,
            rates: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one connection from `ip`'s bucket (rate per second, burst of twice the rate).
    fn admit(&self, ip: IpAddr) -> bool {
        let rate = f64::from(self.config.limits.connections_per_ip_per_s);
        let now = Instant::now();
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        if rates.len() > 100_000 {
            // Forget idle addresses rather than grow without end under a spoofing flood.
            rates.retain(|_, b| now.duration_since(b.updated) < Duration::from_secs(10));
        }
        let bucket = rates.entry(ip).or_insert(Bucket {
            tokens: 2.0 * rate,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(2.0 * rate);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the gateway can serve clients now.
    pub fn is_ready(&self) -> bool {
        self.broker.is_ready() && !*self.shutdown.borrow()
    }
}

/// Binds the listening socket with a deep accept backlog (connection storms are normal when a
/// fleet of dashboards reconnects).
pub fn bind(address: SocketAddr) -> Result<TcpListener> {
    let listen_error = |source| Error::Listen {
        address: address.to_string(),
        source,
    };
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(listen_error)?;
    socket.set_reuseaddr(true).map_err(listen_error)?;
    socket.bind(address).map_err(listen_error)?;
    socket.listen(4096).map_err(listen_error)
}

/// The client port's routes.
pub fn router<B: Broker>(context: Arc<Context<B>>) -> Router {
    Router::new()
        .route("/", get(root::<B>))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<B>))
        .route("/{asset}", get(dashboard_asset::<B>))
        .fallback(not_found)
        .with_state(context)
}

/// Accepts connections until shutdown; each is served by [`router`] with `routes` merged in,
/// one request per connection (an upgrade keeps it).
pub async fn serve<B: Broker>(listener: TcpListener, context: Arc<Context<B>>, routes: Router) {
    let mut shutdown = context.shutdown.clone();
    let router = router(context.clone()).merge(routes);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let send_buffer = context.config.limits.send_buffer_bytes;
                if send_buffer > 0 {
                    // Best effort: a kernel that refuses keeps its own size.
                    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(send_buffer);
                }
                let admitted = context.admit(peer.ip());
                if !admitted {
                    context.metrics.rejected_rate.inc();
                }
                let timeout = Duration::from_millis(context.config.limits.handshake_timeout_ms);
                tokio::spawn(serve_connection(stream, admitted, timeout, router.clone()));
            }
        }
    }
}

/// Serves one connection's request with hyper; a client that has not sent its request head
/// within `timeout` gets 408.
async fn serve_connection(stream: TcpStream, admitted: bool, timeout: Duration, router: Router) {
    // A second handle on the socket, kept only until a request arrives, to answer 408 while
    // hyper owns the first (hyper closes a timed-out connection without an answer).
    let Some((stream, spare)) = with_spare_handle(stream) else {
        return;
    };
    let started = Arc::new(AtomicBool::new(false));
    let seen = started.clone();
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            seen.store(true, Ordering::Release);
            let router = router.clone();
            async move {
                let mut response = if admitted {
                    router.oneshot(request.map(Body::new)).await?
                } else {
                    json_status(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too_many_connections",
                        "slow down: too many new connections from this address",
                    )
                };
                // One request per connection, as the limits above assume; only an upgrade keeps it.
                // (Disabling keep-alive in hyper would also rewrite the 101's `Connection: upgrade`.)
                if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(response)
            }
        });
    let connection = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = &mut connection => {}
        _ = tokio::time::sleep(timeout) => {
            if started.load(Ordering::Acquire) {
                drop(spare);
                let _ = connection.await;
            } else {
                answer_timeout(spare);
            }
        }
    }
}

/// The stream for hyper and a duplicate of its socket.
fn with_spare_handle(stream: TcpStream) -> Option<(TcpStream, std::net::TcpStream)> {
    let stream = stream.into_std().ok()?;
    let spare = stream.try_clone().ok()?;
    Some((TcpStream::from_std(stream).ok()?, spare))
}

/// Writes 408 on a socket whose client sent no request in time, then closes it. The socket is
/// non-blocking and its send buffer empty, so the small answer goes out in one write.
fn answer_timeout(mut spare: std::net::TcpStream) {
    let body = r#"{"code":"handshake_timeout","message":"the request did not arrive in time"}"#;
    let _ = write!(
        spare,
        "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = spare.shutdown(std::net::Shutdown::Both);
}

async fn healthz() -> Response {
    json_status(StatusCode::OK, "ok", "alive")
}

async fn readyz<B: Broker>(State(context): State<Arc<Context<B>>>) -> Response {
    if context.is_ready() {
        json_status(StatusCode::OK, "ok", "ready")
    } else {
        json_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "broker not connected",
        )
    }
}

async fn not_found() -> Response {
    json_status(
        StatusCode::NOT_FOUND,
        "not_found",
        "GET / (the dashboard), /healthz, /readyz, or upgrade to a WebSocket at /",
    )
}

/// The dashboard's files (when it is on).
async fn dashboard_asset<B: Broker>(
    State(context): State<Arc<Context<B>>>,
    Path(name): Path<String>,
) -> Response {
    if !context.config.dashboard {
        return not_found().await;
    }
    match crate::ui::asset(&format!("/{name}")) {
        Some(asset) => asset_response(asset),
        None => not_found().await,
    }
}

fn asset_response(asset: crate::ui::Asset) -> Response {
    let mut response = ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response();
    let headers = response.headers_mut();
    for (name, value) in crate::ui::SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The token of a WebSocket request: `Authorization: Bearer` or `?token=`.
#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The token of an `Authorization: Bearer <token>` header; the scheme's case does not matter
/// (RFC 7235).
pub fn bearer_token(value: &str) -> Option<String> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// `GET /`: a WebSocket upgrade (token checked first), else the dashboard's page.
async fn root<B: Broker>(
    State(context): State<Arc<Context<B>>>,
    headers: HeaderMap,
    query: std::result::Result<Query<TokenQuery>, QueryRejection>,
    upgrade: std::result::Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let wants_websocket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !wants_websocket {
        return match (context.config.dashboard, crate::ui::asset("/")) {
            (true, Some(asset)) => asset_response(asset),
            _ => not_found().await,
        };
    }
    let Ok(upgrade) = upgrade else {
        return json_status(
            StatusCode::BAD_REQUEST,
            "bad_upgrade",
            "a WebSocket upgrade needs GET, Connection: Upgrade, Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key",
        );
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .or_else(|| query.ok().and_then(|Query(q)| q.token));
    let claims = match token
        .ok_or(AuthError::Missing)
        .and_then(|t| context.auth.verify(&t))
    {
        Ok(claims) => claims,
        Err(error) => {
            context.metrics.rejected_auth.inc();
            tracing::debug!(code = error.code(), "aiops gateway: token refused: {error}");
            return json_status(StatusCode::UNAUTHORIZED, error.code(), &error.to_string());
        }
    };
    if *context.shutdown.borrow() {
        return json_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the gateway is shutting down; reconnect to another",
        );
    }
    let limit = context.config.limits.max_connections as u64;
    let Some(slot) = crate::connection::Slot::take(&context.metrics, limit) else {
        context.metrics.rejected_capacity.inc();
        return json_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "the gateway is at its connection limit",
        );
    };
    context.metrics.connections_total.inc();
    let limits = &context.config.limits;
    upgrade
        .read_buffer_size(limits.read_buffer_bytes)
        // Frames are fed in bursts and flushed once; the buffer only holds a burst.
        .write_buffer_size(limits.write_buffer_bytes)
        .max_message_size(limits.max_frame_bytes)
        .max_frame_size(limits.max_frame_bytes)
        // A failed upgrade drops the callback, and with it the slot.
        .on_upgrade(move |socket| crate::connection::serve(socket, claims, context, slot))
}
