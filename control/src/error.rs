//! The one error of `aiops-control`: an HTTP answer with a stable code, a message a person can
//! act on, and — for conflicts and invalid documents — what the client needs to recover.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use aiops_models::detectors::FieldError;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code (`version_conflict`, `invalid_document`, ...).
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// Extra fields of the body (`errors`, `current`).
    pub details: Option<Value>,
    /// The store's error behind a 500, kept for the log.
    #[source]
    pub source: Option<Box<aiops_models::Error>>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            source: None,
        }
    }

    /// 401: no token, or one that does not verify.
    pub fn unauthorized(code: &'static str, message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403: the token lacks `scope`.
    pub fn forbidden(scope: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "missing_scope",
            format!(
                "the token does not grant {scope}; mint one with `aiops token --scopes {scope}`"
            ),
        )
    }

    /// 400: the body is not JSON, or not an object.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// 404: the tenant has no such configuration.
    pub fn not_found(name: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no detector configuration {name:?}"),
        )
    }

    /// 409: the writer's version is not the current one; `current` is what is there now.
    pub fn conflict(message: impl Into<String>, current: Value) -> ApiError {
        ApiError {
            details: Some(json!({ "current": current })),
            ..ApiError::new(StatusCode::CONFLICT, "version_conflict", message)
        }
    }

    /// 422: the document is invalid; one entry per bad field.
    pub fn invalid(errors: Vec<FieldError>) -> ApiError {
        let count = errors.len();
        ApiError {
            details: Some(json!({ "errors": errors })),
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_document",
                format!(
                    "{count} field{} to fix; each error points at one",
                    if count == 1 { "" } else { "s" }
                ),
            )
        }
    }

    /// 428: a change without `If-Match`.
    pub fn precondition_required() -> ApiError {
        ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "if_match_required",
            "send If-Match with the ETag you read (or If-None-Match: * to create), so that \
             a change made meanwhile is not overwritten",
        )
    }

    /// 501: the gateway was not given what the request needs.
    pub fn unavailable(message: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, "not_configured", message)
    }

    /// 429: too many expensive requests at once.
    pub fn busy(message: &str) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "busy", message)
    }

    /// 502: the preview could not read its data or run.
    pub fn preview_failed(message: String) -> ApiError {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "preview_failed",
            format!("the preview could not run: {message}"),
        )
    }

    /// 500: the store failed.
    pub fn store(source: aiops_models::Error) -> ApiError {
        ApiError {
            source: Some(Box::new(source)),
            ..ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_failed",
                "the configuration store failed; the change was not made (see the server's log)",
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(source) = &self.source {
            tracing::error!(error = %source, "aiops control: the configuration store failed");
        }
        let mut body = json!({ "code": self.code, "message": self.message });
        if let (Some(Value::Object(details)), Some(object)) = (self.details, body.as_object_mut()) {
            object.extend(details);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"aiops\""),
            );
        }
        response
    }
}
