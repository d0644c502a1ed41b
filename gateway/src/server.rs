//! The listening side: accepts TCP connections, answers plain HTTP (`/healthz`, `/readyz`,
//! `/metrics`, and the dashboard's files at `/`), and upgrades WebSocket requests after checking their token, so a client without
//! a valid token never gets a WebSocket at all.
//!
//! Refusals before the upgrade, each with a JSON body `{"code": ..., "message": ...}`:
//! 401 for a missing or invalid token (the code says which), 429 over the per-IP connection rate,
//! 503 over the connection limit or while shutting down, 400 for a malformed upgrade request,
//! 408 when the request does not arrive in time, 431 for oversize headers, 404 for other paths.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::auth::{AuthError, Authenticator};
use crate::broker::Broker;
use crate::config::GatewayConfig;
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::metrics::Metrics;

/// Largest HTTP request head accepted.
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

/// Accepts connections until shutdown.
pub async fn serve<B: Broker>(listener: TcpListener, context: Arc<Context<B>>) {
    let mut shutdown = context.shutdown.clone();
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
                tokio::spawn(handle(stream, peer, context.clone()));
            }
        }
    }
}

async fn handle<B: Broker>(mut stream: TcpStream, peer: SocketAddr, context: Arc<Context<B>>) {
    if !context.admit(peer.ip()) {
        context.metrics.add(&context.metrics.rejected_rate, 1);
        return respond(
            &mut stream,
            429,
            "too_many_connections",
            "slow down: too many new connections from this address",
        )
        .await;
    }
    let timeout = Duration::from_millis(context.config.limits.handshake_timeout_ms);
    let (head, rest) = match tokio::time::timeout(timeout, read_head(&mut stream)).await {
        Err(_) => {
            return respond(
                &mut stream,
                408,
                "handshake_timeout",
                "the request did not arrive in time",
            )
            .await;
        }
        Ok(Err(HeadError::TooLarge)) => {
            return respond(
                &mut stream,
                431,
                "headers_too_large",
                "request headers over 8 KiB",
            )
            .await;
        }
        Ok(Err(HeadError::Io)) => return,
        Ok(Ok(head)) => head,
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(&head), Ok(httparse::Status::Complete(_))) {
        return respond(&mut stream, 400, "bad_request", "malformed HTTP request").await;
    }
    let path = request.path.unwrap_or("/");
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let upgrade = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return match (request.method, route) {
            (Some("GET"), "/healthz") => respond(&mut stream, 200, "ok", "alive").await,
            (Some("GET"), "/readyz")
                if context.broker.is_ready() && !*context.shutdown.borrow() =>
            {
                respond(&mut stream, 200, "ok", "ready").await
            }
            (Some("GET"), "/readyz") => {
                respond(&mut stream, 503, "not_ready", "broker not connected").await
            }
            (Some("GET"), "/metrics") => {
                let body = context.metrics.render(context.hub.subscriptions());
                write_response(&mut stream, 200, "text/plain; version=0.0.4", &body).await
            }
            (Some("GET"), route) if context.config.dashboard => {
                match crate::dashboard::asset(route) {
                    Some(asset) => {
                        write_response_with(
                            &mut stream,
                            200,
                            asset.content_type,
                            crate::dashboard::SECURITY_HEADERS,
                            asset.body,
                        )
                        .await
                    }
                    None => not_found(&mut stream).await,
                }
            }
            _ => not_found(&mut stream).await,
        };
    }
    let key = header("sec-websocket-key");
    let version_ok = header("sec-websocket-version") == Some("13");
    let connection_ok = header("connection").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    });
    let (Some(key), true, true, Some("GET")) = (key, version_ok, connection_ok, request.method)
    else {
        return respond(&mut stream, 400, "bad_upgrade", "a WebSocket upgrade needs GET, Connection: Upgrade, Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key").await;
    };
    let token = header("authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
        .or_else(|| query_parameter(query, "token"));
    let claims = match token
        .ok_or(AuthError::Missing)
        .and_then(|t| context.auth.verify(&t))
    {
        Ok(claims) => claims,
        Err(error) => {
            context.metrics.add(&context.metrics.rejected_auth, 1);
            tracing::debug!(peer = %peer, code = error.code(), "aiops gateway: token refused: {error}");
            return respond(&mut stream, 401, error.code(), &error.to_string()).await;
        }
    };
    if *context.shutdown.borrow() {
        return respond(
            &mut stream,
            503,
            "shutting_down",
            "the gateway is shutting down; reconnect to another",
        )
        .await;
    }
    let limit = context.config.limits.max_connections as u64;
    if context.metrics.connections.fetch_add(1, Ordering::Relaxed) >= limit {
        context.metrics.connections.fetch_sub(1, Ordering::Relaxed);
        context.metrics.add(&context.metrics.rejected_capacity, 1);
        return respond(
            &mut stream,
            503,
            "too_many_connections",
            "the gateway is at its connection limit",
        )
        .await;
    }
    let accept = derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        context.metrics.connections.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    context.metrics.add(&context.metrics.connections_total, 1);
    let limits = &context.config.limits;
    let config = WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer_bytes)
        // Frames are fed in bursts and flushed once; the buffer only holds a burst.
        .write_buffer_size(limits.write_buffer_bytes)
        .max_message_size(Some(limits.max_frame_bytes))
        .max_frame_size(Some(limits.max_frame_bytes));
    let socket = Prefixed { rest, stream };
    let ws = WebSocketStream::from_raw_socket(socket, Role::Server, Some(config)).await;
    // A task of its own, so the upgrade's buffers are freed for the connection's lifetime.
    tokio::spawn(crate::connection::serve(ws, claims, context));
}

enum HeadError {
    TooLarge,
    Io,
}

/// Reads up to the end of the HTTP head; returns it and whatever came after it.
async fn read_head(stream: &mut TcpStream) -> std::result::Result<(Vec<u8>, Vec<u8>), HeadError> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Io);
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            return Ok((buffer, rest));
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

/// The value of `name` in a query string, percent-decoded.
fn query_parameter(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn respond(stream: &mut TcpStream, status: u16, code: &str, message: &str) {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    write_response(stream, status, "application/json", &body).await;
}

async fn not_found(stream: &mut TcpStream) {
    respond(
        stream,
        404,
        "not_found",
        "GET / (the dashboard), /healthz, /readyz, /metrics, or upgrade to a WebSocket",
    )
    .await
}

async fn write_response(stream: &mut TcpStream, status: u16, content_type: &str, body: &str) {
    write_response_with(stream, status, content_type, "", body).await
}

/// A response with `headers` (each line ending in CRLF) besides the usual ones.
async fn write_response_with(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    headers: &str,
    body: &str,
) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A stream that first yields bytes already read past the HTTP head.
pub struct Prefixed {
    rest: Vec<u8>,
    stream: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.rest.is_empty() {
            let n = self.rest.len().min(buf.remaining());
            buf.put_slice(&self.rest[..n]);
            self.rest.drain(..n);
            if self.rest.is_empty() {
                self.rest = Vec::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_tokens_are_found_and_decoded() {
        assert_eq!(
            query_parameter("a=1&token=abc.def", "token").as_deref(),
            Some("abc.def")
        );
        assert_eq!(
            query_parameter("token=a%2Eb", "token").as_deref(),
            Some("a.b")
        );
        assert_eq!(
            query_parameter("token=%zz%", "token").as_deref(),
            Some("%zz%")
        );
        assert_eq!(query_parameter("x=1", "token"), None);
    }
}
