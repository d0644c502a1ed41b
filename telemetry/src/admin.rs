//! The admin endpoint of a service, on an address of its own (loopback by default) and never on
//! a port that clients use: `GET /metrics` for Prometheus, `GET /healthz` (the process answers)
//! and `GET /readyz` (it can do its work now; the service says what that means).
//!
//! Every answer but the metrics page is JSON `{"code": ..., "message": ...}`, as the gateway's
//! refusals are; other paths get 404, other methods 405.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::oneshot;

use crate::Error;
use crate::metrics::CONTENT_TYPE;

/// Whether a service can do its work now: `Err` says why not. It may block briefly (a ping of a
/// dependency): it runs on tokio's blocking pool.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The metrics page, rendered at each scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
struct Admin {
    render: Render,
    ready: Readiness,
}

/// The admin routes, for a service that mounts them on a listener of its own.
pub fn router(render: Render, ready: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(Admin { render, ready })
}

/// A JSON answer `{"code": ..., "message": ...}` with `status`.
pub fn json_status(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    // nosniff: a body can quote what the caller sent (a token's `kid`); no browser may read it
    // as anything but JSON.
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn metrics(State(admin): State<Admin>) -> Response {
    let page = (admin.render)();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], page).into_response()
}

async fn healthz() -> Response {
    json_status(StatusCode::OK, "ok", "alive")
}

async fn readyz(State(admin): State<Admin>) -> Response {
    let ready = admin.ready.clone();
    match tokio::task::spawn_blocking(move || ready()).await {
        Ok(Ok(())) => json_status(StatusCode::OK, "ok", "ready"),
        Ok(Err(why)) => json_status(StatusCode::SERVICE_UNAVAILABLE, "not_ready", &why),
        Err(_) => json_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the readiness check failed",
        ),
    }
}

async fn not_found() -> Response {
    json_status(
        StatusCode::NOT_FOUND,
        "not_found",
        "the admin endpoint serves GET /metrics, /healthz and /readyz",
    )
}

/// A running admin endpoint; dropping it stops it.
pub struct AdminServer {
    /// The address it listens on (useful with port 0).
    pub address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl AdminServer {
    /// Serves [`router`] on `address` from the current tokio runtime.
    pub fn start(
        address: SocketAddr,
        render: Render,
        ready: Readiness,
    ) -> Result<AdminServer, Error> {
        let (listener, address) = bind(address)?;
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|source| Error::Listen {
                address: address.to_string(),
                source,
            })?;
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(serve(listener, router(render, ready), stopped));
        Ok(AdminServer {
            address,
            stop: Some(stop),
        })
    }

    /// Serves [`router`] on `address` from a thread of its own, for services that are not
    /// async (the pipeline's workers are timely threads): a scrape never waits for them.
    pub fn start_on_thread(
        address: SocketAddr,
        render: Render,
        ready: Readiness,
    ) -> Result<AdminServer, Error> {
        let (listener, address) = bind(address)?;
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .max_blocking_threads(2)
            .build()
            .map_err(Error::Thread)?;
        std::thread::Builder::new()
            .name("aiops-admin".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, router(render, ready), stopped).await,
                        Err(error) => tracing::error!(%error, "aiops: admin endpoint: {error}"),
                    }
                })
            })
            .map_err(Error::Thread)?;
        Ok(AdminServer {
            address,
            stop: Some(stop),
        })
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A non-blocking listener on `address`, and the address it got (useful with port 0).
fn bind(address: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), Error> {
    let listen_error = |source| Error::Listen {
        address: address.to_string(),
        source,
    };
    let listener = std::net::TcpListener::bind(address).map_err(listen_error)?;
    listener.set_nonblocking(true).map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    Ok((listener, bound))
}

async fn serve(listener: tokio::net::TcpListener, router: Router, stopped: oneshot::Receiver<()>) {
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .await;
    if let Err(error) = served {
        tracing::error!(%error, "aiops: admin endpoint stopped: {error}");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn request(address: SocketAddr, head: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_metrics_health_and_readiness_and_refuses_the_rest() {
        let ready = Arc::new(AtomicBool::new(false));
        let flag = ready.clone();
        let server = AdminServer::start_on_thread(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(|| "x_total 1\n".to_owned()),
            Arc::new(move || {
                if flag.load(Ordering::Relaxed) {
                    Ok(())
                } else {
                    Err("no partitions \"yet\"".to_owned())
                }
            }),
        )
        .unwrap();
        let address = server.address;
        let metrics = request(address, &get("/metrics")).await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
        assert!(metrics.ends_with("\r\n\r\nx_total 1\n"), "{metrics}");
        let health = request(address, &get("/healthz")).await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        let not_ready = request(address, &get("/readyz")).await;
        assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
        assert!(
            not_ready.ends_with(r#"{"code":"not_ready","message":"no partitions \"yet\""}"#),
            "{not_ready}"
        );
        ready.store(true, Ordering::Relaxed);
        let now_ready = request(address, &get("/readyz")).await;
        assert!(now_ready.starts_with("HTTP/1.1 200"), "{now_ready}");
        let missing = request(address, &get("/nothing")).await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        let posted = request(
            address,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(posted.starts_with("HTTP/1.1 405"), "{posted}");
        drop(server);
    }
}
