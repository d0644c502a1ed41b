//! The control plane: a tenant's detector configurations as a JSON HTTP API under `/api/v1/`,
//! an axum [`Router`] the gateway mounts on its client port.
//!
//! Why on the gateway's port: the UI that calls it is served there and talks to the
//! gateway's WebSocket, so one origin, one TLS endpoint and one ingress route serve both, with
//! the same JWT verification (the gateway's [`Authenticator`]) and no cross-origin requests.
//! The store behind it is the model store's [`ConfigStore`]; the API never takes a tenant from
//! a path, a query or a body — only from the verified token — so no request can name another
//! tenant's configuration.
//!
//! | method and path | scope | what |
//! |---|---|---|
//! | `GET /api/v1/detectors` | `detectors:read` | the tenant's configurations |
//! | `POST /api/v1/detectors` | `detectors:write` | create (`{"name", "config", "reason"}`) |
//! | `GET /api/v1/detectors/{name}` | `detectors:read` | one, with its `ETag` |
//! | `PUT /api/v1/detectors/{name}` | `detectors:write` | replace; `If-Match` required (or `If-None-Match: *` to create) |
//! | `DELETE /api/v1/detectors/{name}` | `detectors:write` | delete; `If-Match` required |
//! | `GET /api/v1/detectors/{name}/history` | `detectors:read` | every version and audit entry |
//! | `POST /api/v1/detectors/{name}/revert` | `detectors:write` | an earlier version's content as a new version; `If-Match` required |
//! | `POST /api/v1/detectors/{name}/preview` | `detectors:read` | what a draft would have raised over a range, beside the live version |
//! | `GET /api/v1/series` | `detectors:read` | the tenant's series in the recent preview data that metric and label globs select |
//! | `GET /api/v1/presets` | `detectors:read` | the built-in presets |
//! | `GET /api/v1/openapi.json` | none | the OpenAPI 3 document of all this |
//!
//! Errors are JSON `{"code", "message"}`: 401 (token), 403 (scope), 404, 409 (a stale
//! `If-Match`, with the current version under `current`), 412 is never used (a conflict is a
//! 409, as the UI's rollback expects), 422 (with `errors`: a JSON pointer and a message per bad
//! field), 428 (no `If-Match`).

// The OpenAPI document is one `json!` literal, deeper than the macro's default limit.
#![recursion_limit = "512"]

mod caller;
mod error;
mod handlers;
pub mod openapi;
pub mod preview;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use aiops_gateway::Authenticator;
use aiops_models::detectors::{ConfigStore, StoredConfig};
use aiops_operators::Registry;

pub use caller::Caller;
pub use error::ApiError;
pub use preview::PreviewData;

/// The scope that lets a token read configurations.
pub const READ_SCOPE: &str = "detectors:read";
/// The scope that lets a token change them.
pub const WRITE_SCOPE: &str = "detectors:write";
/// Largest request body accepted (a configuration is a few KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Previews running at once (each takes a core while it runs).
pub const MAX_PREVIEWS: usize = 2;

/// What the handlers share.
pub struct ApiState {
    /// Where configurations live.
    pub store: Arc<dyn ConfigStore>,
    /// Token verification, the gateway's.
    pub auth: Authenticator,
    /// The detectors a configuration may name.
    pub registry: Registry,
    /// Where previews read points; `None`: previews answer 501.
    pub preview: Option<Arc<dyn PreviewData>>,
    /// Permits for previews running at once (each held by the blocking task that runs it,
    /// so a client that hangs up does not free its place early).
    previews: Arc<tokio::sync::Semaphore>,
    /// Called (on a blocking thread) after each change is stored: how pipelines learn of it
    /// before their next poll.
    on_change: Option<ChangeHook>,
}

/// What [`ApiState::with_change_hook`] takes.
pub type ChangeHook = Arc<dyn Fn(&StoredConfig) + Send + Sync>;

impl ApiState {
    /// The API over `store`, verifying tokens with `auth`, without previews.
    pub fn new(store: Arc<dyn ConfigStore>, auth: Authenticator, registry: Registry) -> ApiState {
        ApiState {
            store,
            auth,
            registry,
            preview: None,
            previews: Arc::new(tokio::sync::Semaphore::new(MAX_PREVIEWS)),
            on_change: None,
        }
    }

    /// Also calls `hook` after each stored change (e.g. to notify the pipelines over Redis);
    /// hooks added earlier still run, first.
    pub fn with_change_hook(self, hook: ChangeHook) -> ApiState {
        let on_change: ChangeHook = match self.on_change.clone() {
            None => hook,
            Some(earlier) => Arc::new(move |stored| {
                earlier(stored);
                hook(stored);
            }),
        };
        ApiState {
            on_change: Some(on_change),
            ..self
        }
    }

    /// Tells the hook, if any, about `stored`, without making the caller wait.
    fn changed(&self, stored: &StoredConfig) {
        if let Some(hook) = self.on_change.clone() {
            let stored = stored.clone();
            tokio::task::spawn_blocking(move || hook(&stored));
        }
    }

    /// Previews read their points from `data`.
    pub fn with_preview(self, data: Arc<dyn PreviewData>) -> ApiState {
        ApiState {
            preview: Some(data),
            ..self
        }
    }
}

/// The API's routes, ready to merge into the gateway's router.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route(
            "/api/v1/detectors",
            get(handlers::list).post(handlers::create),
        )
        .route(
            "/api/v1/detectors/{name}",
            get(handlers::read)
                .put(handlers::replace)
                .delete(handlers::delete),
        )
        .route("/api/v1/detectors/{name}/history", get(handlers::history))
        .route("/api/v1/detectors/{name}/revert", post(handlers::revert))
        .route("/api/v1/detectors/{name}/preview", post(handlers::preview))
        .route("/api/v1/series", get(handlers::series))
        .route("/api/v1/presets", get(handlers::presets))
        .route("/api/v1/openapi.json", get(handlers::openapi))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
