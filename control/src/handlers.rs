//! The API's handlers: each checks the caller's scope, reads its body into a checked document,
//! and makes one store call off the async threads (the store is synchronous SQLite).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use aiops_models::detectors::{
    ConfigChange, ConfigStore, DetectorDocument, Expected, FieldError, MAX_TEXT_BYTES,
    StoredConfig, parse_document, presets as builtin_presets, valid_name,
};

use crate::{ApiError, ApiState, Caller, READ_SCOPE, WRITE_SCOPE};

/// A configuration as the API shows it.
fn resource(stored: &StoredConfig) -> Value {
    json!({
        "name": stored.name,
        "tenant": stored.tenant,
        "version": stored.version,
        "updated_by": stored.updated_by,
        "updated_at": stored.updated_at,
        "reason": stored.reason,
        "config": stored.document.as_ref().map(DetectorDocument::to_value),
    })
}

/// The `ETag` of a version: its number, quoted (a strong validator: numbers are never reused).
fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A configuration with its `ETag` and `status`.
fn answer(status: StatusCode, stored: &StoredConfig) -> Response {
    let mut response = (status, Json(resource(stored))).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(stored.version));
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&format!("/api/v1/detectors/{}", stored.name))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Runs a store call on the blocking pool; store errors become API errors.
async fn with_store<T: Send + 'static>(
    state: &Arc<ApiState>,
    call: impl FnOnce(&dyn ConfigStore) -> aiops_models::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    let outcome = tokio::task::spawn_blocking(move || call(state.store.as_ref()))
        .await
        .map_err(|_| {
            ApiError::store(aiops_models::Error::Config(
                "a store call panicked".to_owned(),
            ))
        })?;
    outcome.map_err(|error| match error {
        aiops_models::Error::ConfigConflict { current, .. } => {
            let message = match &current {
                Some(current) => format!(
                    "the configuration is at version {} now; merge your change into it and send \
                     If-Match: \"{}\"",
                    current.version, current.version
                ),
                None => "the configuration was deleted (or already exists, for a create); read \
                         it again"
                    .to_owned(),
            };
            ApiError::conflict(
                message,
                current.map_or(Value::Null, |current| resource(&current)),
            )
        }
        aiops_models::Error::ConfigNotFound { name, .. } => ApiError::not_found(&name),
        limit @ aiops_models::Error::ConfigLimit { .. } => ApiError::invalid(vec![FieldError {
            pointer: "/name".to_owned(),
            message: limit.to_string(),
        }]),
        other => ApiError::store(other),
    })
}

/// A path's configuration name; one no configuration can have is simply not found.
fn checked_name(name: &str) -> Result<&str, ApiError> {
    if valid_name(name) {
        Ok(name)
    } else {
        Err(ApiError::not_found(name))
    }
}

/// The JSON object of a body, with only `allowed` fields.
fn body_object(body: &Bytes, allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(ApiError::bad_request(format!(
            "the body must be a JSON object with {}",
            allowed.join(", ")
        )));
    };
    let unknown: Vec<FieldError> = object
        .keys()
        .filter(|key| !allowed.contains(&key.as_str()))
        .map(|key| FieldError {
            pointer: format!("/{}", aiops_models::detectors::pointer_segment(key)),
            message: format!("unknown field; the fields are {}", allowed.join(", ")),
        })
        .collect();
    if unknown.is_empty() {
        Ok(object)
    } else {
        Err(ApiError::invalid(unknown))
    }
}

/// The body's `config`, checked, and its `reason`. Every field error is reported at once.
fn document_and_reason(
    state: &ApiState,
    object: &Map<String, Value>,
) -> Result<(DetectorDocument, String), ApiError> {
    let mut errors = Vec::new();
    let reason = reason(object, &mut errors);
    let document = match object.get("config") {
        None => {
            errors.push(FieldError {
                pointer: "/config".to_owned(),
                message: "the configuration is missing (start from GET /api/v1/presets)".to_owned(),
            });
            None
        }
        Some(config) => match parse_document(config, &state.registry) {
            Ok(document) => Some(document),
            Err(found) => {
                errors.extend(found.into_iter().map(|error| FieldError {
                    pointer: format!("/config{}", error.pointer),
                    message: error.message,
                }));
                None
            }
        },
    };
    match document {
        Some(document) if errors.is_empty() => Ok((document, reason)),
        _ => Err(ApiError::invalid(errors)),
    }
}

/// The body's optional `reason`, a string of bounded length.
fn reason(object: &Map<String, Value>, errors: &mut Vec<FieldError>) -> String {
    match object.get("reason") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) if text.len() <= MAX_TEXT_BYTES => text.clone(),
        Some(_) => {
            errors.push(FieldError {
                pointer: "/reason".to_owned(),
                message: format!("a string of at most {MAX_TEXT_BYTES} bytes"),
            });
            String::new()
        }
    }
}

/// What `If-Match` (or `If-None-Match: *`) says the writer expects, given the current version.
fn expected(headers: &HeaderMap, current: Option<&StoredConfig>) -> Result<Expected, ApiError> {
    let text = |name| {
        headers
            .get(name)
            .map(|value| value.to_str().unwrap_or("").trim().to_owned())
    };
    if let Some(none_match) = text(header::IF_NONE_MATCH)
        && none_match == "*"
    {
        return Ok(Expected::Absent);
    }
    let Some(if_match) = text(header::IF_MATCH) else {
        return Err(ApiError::precondition_required());
    };
    let live = current.filter(|c| c.document.is_some()).map(|c| c.version);
    if if_match == "*" {
        // Any version, as long as there is one (checked with the write).
        return Ok(Expected::Any);
    }
    // Strong comparison (RFC 9110): weak tags never match; a list matches if any member does.
    let listed: Vec<u64> = if_match
        .split(',')
        .filter_map(|tag| {
            tag.trim()
                .strip_prefix('"')?
                .strip_suffix('"')?
                .parse()
                .ok()
        })
        .collect();
    match (live, listed.first()) {
        (Some(version), _) if listed.contains(&version) => Ok(Expected::Version(version)),
        (_, Some(first)) => Ok(Expected::Version(*first)),
        // Nothing parseable: it cannot match any version.
        (_, None) => Ok(Expected::Version(0)),
    }
}

/// `GET /api/v1/detectors`
pub async fn list(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require(READ_SCOPE)?;
    let tenant = caller.tenant().to_owned();
    let configs = with_store(&state, move |store| store.configs(Some(&tenant))).await?;
    let items: Vec<Value> = configs.iter().map(resource).collect();
    Ok(Json(json!({ "items": items })).into_response())
}

/// `POST /api/v1/detectors`
pub async fn create(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(WRITE_SCOPE)?;
    let object = body_object(&body, &["name", "config", "reason"])?;
    let name = match object.get("name") {
        Some(Value::String(name)) if valid_name(name) => Ok(name.clone()),
        _ => Err(FieldError {
            pointer: "/name".to_owned(),
            message: "1 to 64 lower-case letters, digits, `-` or `_`, starting with a letter or \
                      digit"
                .to_owned(),
        }),
    };
    let (document, reason) = match (name.clone(), document_and_reason(&state, &object)) {
        (Ok(_), Ok(checked)) => checked,
        (name, checked) => {
            let mut errors: Vec<FieldError> = name.err().into_iter().collect();
            if let Err(error) = checked {
                errors.extend(field_errors(error)?);
            }
            return Err(ApiError::invalid(errors));
        }
    };
    let change = ConfigChange {
        tenant: caller.tenant().to_owned(),
        name: name.unwrap_or_default(),
        expected: Expected::Absent,
        document: Some(document),
        reverted_to: None,
    };
    let actor = caller.actor(&reason);
    let stored = with_store(&state, move |store| store.change_config(&change, &actor)).await?;
    state.changed(&stored);
    Ok(answer(StatusCode::CREATED, &stored))
}

/// The field errors of a 422, or the error itself when it is something else.
fn field_errors(error: ApiError) -> Result<Vec<FieldError>, ApiError> {
    let errors = error
        .details
        .as_ref()
        .and_then(|details| details.get("errors"))
        .and_then(|errors| serde_json::from_value(errors.clone()).ok());
    match errors {
        Some(errors) if error.status == StatusCode::UNPROCESSABLE_ENTITY => Ok(errors),
        _ => Err(error),
    }
}

/// The live version of the caller's configuration `name`.
async fn live(
    state: &Arc<ApiState>,
    caller: &Caller,
    name: &str,
) -> Result<StoredConfig, ApiError> {
    let (tenant, key) = (caller.tenant().to_owned(), name.to_owned());
    with_store(state, move |store| store.config(&tenant, &key))
        .await?
        .filter(|stored| stored.document.is_some())
        .ok_or_else(|| ApiError::not_found(name))
}

/// `GET /api/v1/detectors/{name}`
pub async fn read(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(READ_SCOPE)?;
    let stored = live(&state, &caller, checked_name(&name)?).await?;
    Ok(answer(StatusCode::OK, &stored))
}

/// `PUT /api/v1/detectors/{name}`
pub async fn replace(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(WRITE_SCOPE)?;
    let name = checked_name(&name)?.to_owned();
    let (tenant, key) = (caller.tenant().to_owned(), name.clone());
    let current = with_store(&state, move |store| store.config(&tenant, &key)).await?;
    let expected = expected(&headers, current.as_ref())?;
    let object = body_object(&body, &["config", "reason"])?;
    let (document, reason) = document_and_reason(&state, &object)?;
    let change = ConfigChange {
        tenant: caller.tenant().to_owned(),
        name,
        expected,
        document: Some(document),
        reverted_to: None,
    };
    let actor = caller.actor(&reason);
    let stored = with_store(&state, move |store| store.change_config(&change, &actor)).await?;
    state.changed(&stored);
    let status = if stored.version == 1 || expected == Expected::Absent {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(answer(status, &stored))
}

/// `DELETE /api/v1/detectors/{name}`
pub async fn delete(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(WRITE_SCOPE)?;
    let current = live(&state, &caller, checked_name(&name)?).await?;
    let expected = match expected(&headers, Some(&current))? {
        Expected::Absent => return Err(ApiError::precondition_required()),
        expected => expected,
    };
    let change = ConfigChange {
        tenant: caller.tenant().to_owned(),
        name,
        expected,
        document: None,
        reverted_to: None,
    };
    let reason = headers
        .get("x-change-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if reason.len() > MAX_TEXT_BYTES {
        return Err(ApiError::invalid(vec![FieldError {
            pointer: String::new(),
            message: format!("X-Change-Reason: at most {MAX_TEXT_BYTES} bytes"),
        }]));
    }
    let actor = caller.actor(reason);
    let stored = with_store(&state, move |store| store.change_config(&change, &actor)).await?;
    state.changed(&stored);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(stored.version));
    Ok(response)
}

/// `GET /api/v1/detectors/{name}/history`
pub async fn history(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(READ_SCOPE)?;
    let (tenant, key) = (caller.tenant().to_owned(), checked_name(&name)?.to_owned());
    let (versions, audit) = with_store(&state, move |store| {
        Ok((
            store.config_versions(&tenant, &key)?,
            store.config_audit(&tenant, &key)?,
        ))
    })
    .await?;
    if versions.is_empty() {
        return Err(ApiError::not_found(&name));
    }
    let versions: Vec<Value> = versions.iter().map(resource).collect();
    Ok(Json(json!({ "versions": versions, "audit": audit })).into_response())
}

/// `POST /api/v1/detectors/{name}/revert`
pub async fn revert(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(WRITE_SCOPE)?;
    let name = checked_name(&name)?.to_owned();
    let object = body_object(&body, &["version", "reason"])?;
    let mut errors = Vec::new();
    let reason = reason(&object, &mut errors);
    let version = object.get("version").and_then(Value::as_u64);
    if version.is_none() {
        errors.push(FieldError {
            pointer: "/version".to_owned(),
            message: "the version to go back to, a number from the history".to_owned(),
        });
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let version = version.unwrap_or_default();
    let (tenant, key) = (caller.tenant().to_owned(), name.clone());
    let versions = with_store(&state, move |store| store.config_versions(&tenant, &key)).await?;
    let current = versions.last().cloned();
    let expected = match expected(&headers, current.as_ref())? {
        Expected::Absent => return Err(ApiError::precondition_required()),
        expected => expected,
    };
    let Some(document) = versions
        .iter()
        .find(|stored| stored.version == version)
        .and_then(|stored| stored.document.clone())
    else {
        return Err(ApiError::invalid(vec![FieldError {
            pointer: "/version".to_owned(),
            message: format!(
                "{name:?} has no version {version} with content (a delete has none); see its \
                 history"
            ),
        }]));
    };
    let change = ConfigChange {
        tenant: caller.tenant().to_owned(),
        name,
        expected,
        document: Some(document),
        reverted_to: Some(version),
    };
    let actor = caller.actor(&reason);
    let stored = with_store(&state, move |store| store.change_config(&change, &actor)).await?;
    state.changed(&stored);
    Ok(answer(StatusCode::OK, &stored))
}

/// A time in a body: milliseconds since the Unix epoch, or RFC 3339 text.
fn time_field(
    object: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<aiops_schemas::TimestampMs> {
    let parsed = match object.get(field) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(text)) => {
            aiops_schemas::parse_timestamp(text, aiops_schemas::Precision::Milliseconds).ok()
        }
        _ => None,
    };
    if parsed.is_none() {
        errors.push(FieldError {
            pointer: format!("/{field}"),
            message: "a time: milliseconds since the Unix epoch, or RFC 3339                       (2026-12-01T00:00:00Z)"
                .to_owned(),
        });
    }
    parsed
}

/// `POST /api/v1/detectors/{name}/preview`
pub async fn preview(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    use crate::preview::{DEFAULT_WARMUP_MS, MAX_RANGE_MS, Range};

    caller.require(READ_SCOPE)?;
    let name = checked_name(&name)?.to_owned();
    let Some(data) = state.preview.clone() else {
        return Err(ApiError::unavailable(
            "previews are not configured on this gateway ([api] preview_input or preview_topic)",
        ));
    };
    let object = body_object(&body, &["config", "from", "to", "warmup_ms"])?;
    let mut errors = Vec::new();
    let from = time_field(&object, "from", &mut errors);
    let to = time_field(&object, "to", &mut errors);
    let warmup_ms = match object.get("warmup_ms") {
        None => Some(DEFAULT_WARMUP_MS),
        Some(value) => value.as_i64().filter(|w| (0..=MAX_RANGE_MS).contains(w)),
    };
    if warmup_ms.is_none() {
        errors.push(FieldError {
            pointer: "/warmup_ms".to_owned(),
            message: format!("milliseconds of history before `from`, 0 to {MAX_RANGE_MS}"),
        });
    }
    if let (Some(from), Some(to)) = (from, to)
        && (to < from || to.saturating_sub(from) > MAX_RANGE_MS)
    {
        errors.push(FieldError {
            pointer: "/to".to_owned(),
            message: format!("after `from`, and at most {MAX_RANGE_MS} ms (7 days) later"),
        });
    }
    let document = match document_and_reason(&state, &object) {
        Ok((document, _)) => Some(document),
        Err(error) => {
            errors.extend(field_errors(error)?);
            None
        }
    };
    let (Some(from), Some(to), Some(warmup_ms), Some(document), true) =
        (from, to, warmup_ms, document, errors.is_empty())
    else {
        return Err(ApiError::invalid(errors));
    };
    let tenant = caller.tenant().to_owned();
    let mut draft = document.template(&tenant, &name, 0);
    draft.version = format!("{tenant}.{name}@draft");
    let current = live(&state, &caller, &name).await.ok();
    let live_template = current.and_then(|stored| {
        let document = stored.document.as_ref()?;
        Some((
            stored.version,
            document.template(&tenant, &name, stored.version),
        ))
    });
    let Ok(permit) = state.previews.clone().try_acquire_owned() else {
        return Err(ApiError::busy(
            "previews are running already; try again in a few seconds",
        ));
    };
    let registry = state.registry.clone();
    let range = Range {
        from,
        to,
        warmup_ms,
    };
    let answer = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        crate::preview::preview(
            data.as_ref(),
            &registry,
            &tenant,
            draft,
            live_template,
            range,
        )
    })
    .await
    .map_err(|_| ApiError::preview_failed("the preview panicked".to_owned()))?
    .map_err(ApiError::preview_failed)?;
    Ok(Json(answer).into_response())
}

/// Default window of a series search: the last hour of data.
const DEFAULT_SEARCH_WINDOW_MS: i64 = 3_600_000;

/// `GET /api/v1/series?metric=GLOB&label=KEY=GLOB&window_ms=N`: the tenant's series in the
/// recent preview data that the globs select, with their last points (what a wizard shows when
/// a user picks which series a configuration watches).
pub async fn series(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    use crate::preview::MAX_RANGE_MS;

    caller.require(READ_SCOPE)?;
    let Some(data) = state.preview.clone() else {
        return Err(ApiError::unavailable(
            "series search reads the preview data, which this gateway does not have ([api] preview_input or preview_topic)",
        ));
    };
    let mut matcher = aiops_operators::Matcher::default();
    let mut window_ms = DEFAULT_SEARCH_WINDOW_MS;
    let mut errors = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "metric" => {
                if !value.is_empty() {
                    matcher.metric = Some(value.into_owned());
                }
            }
            "label" => match value.split_once('=') {
                Some((label, glob)) if !label.is_empty() => {
                    matcher.labels.insert(label.to_owned(), glob.to_owned());
                }
                _ => errors.push(FieldError {
                    pointer: "/label".to_owned(),
                    message: format!("`{value}`: a label filter is KEY=GLOB (svc=checkout*)"),
                }),
            },
            "window_ms" => match value.parse::<i64>() {
                Ok(window) if (1..=MAX_RANGE_MS).contains(&window) => window_ms = window,
                _ => errors.push(FieldError {
                    pointer: "/window_ms".to_owned(),
                    message: format!("milliseconds of recent data to search, 1 to {MAX_RANGE_MS}"),
                }),
            },
            other => errors.push(FieldError {
                pointer: format!("/{}", aiops_models::detectors::pointer_segment(other)),
                message: "unknown parameter; the parameters are metric, label and window_ms"
                    .to_owned(),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let Ok(permit) = state.previews.clone().try_acquire_owned() else {
        return Err(ApiError::busy(
            "previews are running already; try again in a few seconds",
        ));
    };
    let registry = state.registry.clone();
    let tenant = caller.tenant().to_owned();
    let now = aiops_pipeline::system_now();
    let found = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        crate::preview::find_series(data.as_ref(), &registry, &tenant, matcher, window_ms, now)
    })
    .await
    .map_err(|_| ApiError::preview_failed("the series search panicked".to_owned()))?
    .map_err(ApiError::preview_failed)?;
    Ok(Json(found).into_response())
}

/// `GET /api/v1/presets`
pub async fn presets(caller: Caller) -> Result<Response, ApiError> {
    caller.require(READ_SCOPE)?;
    Ok(Json(json!({ "items": builtin_presets() })).into_response())
}

/// `GET /api/v1/openapi.json`
pub async fn openapi() -> Response {
    Json(crate::openapi::document()).into_response()
}
