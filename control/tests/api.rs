//! The configuration API through its router, with real tokens and a real SQLite store: every
//! status a client can meet, tenants kept apart by every path, and the OpenAPI document held
//! against the routes.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use aiops_control::{ApiState, router};
use aiops_gateway::Authenticator;
use aiops_gateway::auth::{Claims, mint};
use aiops_gateway::config::{AuthConfig, KeyConfig};
use aiops_models::detectors::presets;
use aiops_models::sqlite::SqliteStore;
use aiops_operators::Registry;

const SECRET: &str = "control-api-test-secret-0123456789";

fn key() -> KeyConfig {
    KeyConfig {
        kid: Some("api".into()),
        algorithm: "HS256".into(),
        secret: Some(SECRET.into()),
        secret_file: None,
        public_key_file: None,
    }
}

struct Api {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let auth = Authenticator::from_config(&AuthConfig {
        keys: vec![key()],
        ..AuthConfig::default()
    })
    .unwrap();
    let state = ApiState::new(Arc::new(store), auth, Registry::builtin());
    Api {
        router: router(Arc::new(state)),
        _dir: dir,
    }
}

fn token(tenant: &str, scope: Option<&str>, sub: Option<&str>) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    mint(
        &key(),
        &Claims {
            tenant: tenant.into(),
            channels: vec!["anomalies".into()],
            exp,
            nbf: None,
            sub: sub.map(Into::into),
            aud: None,
            iss: None,
            scope: scope.map(Into::into),
        },
    )
    .unwrap()
}

fn writer(tenant: &str) -> String {
    token(
        tenant,
        Some("detectors:read detectors:write"),
        Some(&format!("{tenant}-admin")),
    )
}

struct Answer {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let etag = response
            .headers()
            .get(header::ETAG)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Answer { status, etag, body }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), &[], None).await
    }

    async fn create(&self, token: &str, name: &str, preset: usize) -> Answer {
        self.call(
            Method::POST,
            "/api/v1/detectors",
            Some(token),
            &[],
            Some(json!({"name": name, "config": presets()[preset].config, "reason": "first"})),
        )
        .await
    }
}

fn document(preset: usize) -> Value {
    serde_json::to_value(&presets()[preset].config).unwrap()
}

#[tokio::test]
async fn a_configuration_is_created_read_updated_reverted_and_deleted_with_its_history() {
    let api = api();
    let alice = writer("acme");
    let created = api.create(&alice, "checkout", 0).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.etag.as_deref(), Some("\"1\""));
    assert_eq!(created.body["version"], 1);
    assert_eq!(created.body["updated_by"], "acme-admin");
    assert_eq!(created.body["config"], document(0));

    let read = api.get("/api/v1/detectors/checkout", &alice).await;
    assert_eq!(
        (read.status, read.etag.as_deref()),
        (StatusCode::OK, Some("\"1\""))
    );
    assert_eq!(read.body, created.body);

    let mut changed = document(0);
    changed["alert"]["warning"] = json!(3.0);
    let updated = api
        .call(
            Method::PUT,
            "/api/v1/detectors/checkout",
            Some(&alice),
            &[("if-match", "\"1\"")],
            Some(json!({"config": changed, "reason": "fewer pages"})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.etag.as_deref(), Some("\"2\""));
    assert_eq!(updated.body["config"]["alert"]["warning"], 3.0);

    let reverted = api
        .call(
            Method::POST,
            "/api/v1/detectors/checkout/revert",
            Some(&alice),
            &[("if-match", "\"2\"")],
            Some(json!({"version": 1, "reason": "too quiet"})),
        )
        .await;
    assert_eq!(reverted.status, StatusCode::OK, "{}", reverted.body);
    assert_eq!(reverted.body["version"], 3);
    assert_eq!(reverted.body["config"], document(0));

    let list = api.get("/api/v1/detectors", &alice).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);

    let deleted = api
        .call(
            Method::DELETE,
            "/api/v1/detectors/checkout",
            Some(&alice),
            &[("if-match", "\"3\""), ("x-change-reason", "retired")],
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = api.get("/api/v1/detectors/checkout", &alice).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let history = api.get("/api/v1/detectors/checkout/history", &alice).await;
    assert_eq!(history.status, StatusCode::OK);
    let actions: Vec<&str> = history.body["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "update", "revert", "delete"]);
    let update = &history.body["audit"][1];
    assert_eq!(update["who"], "acme-admin");
    assert_eq!(update["why"], "fewer pages");
    assert_eq!(update["diff"][0]["path"], "/alert/warning");
    assert_eq!(history.body["audit"][3]["why"], "retired");
    assert_eq!(history.body["versions"].as_array().unwrap().len(), 4);
    assert_eq!(history.body["versions"][3]["config"], Value::Null);
}

#[tokio::test]
async fn two_writers_with_the_same_etag_one_gets_409_with_the_current_version() {
    let api = api();
    let alice = writer("acme");
    api.create(&alice, "web", 0).await;
    let mut first = document(0);
    first["alert"]["warning"] = json!(2.5);
    let mut second = document(0);
    second["alert"]["warning"] = json!(3.5);
    let (a, b) = tokio::join!(
        api.call(
            Method::PUT,
            "/api/v1/detectors/web",
            Some(&alice),
            &[("if-match", "\"1\"")],
            Some(json!({"config": first})),
        ),
        api.call(
            Method::PUT,
            "/api/v1/detectors/web",
            Some(&alice),
            &[("if-match", "\"1\"")],
            Some(json!({"config": second})),
        )
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    let (winner, loser) = if a.status == StatusCode::OK {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(loser.body["code"], "version_conflict");
    assert_eq!(
        loser.body["current"], winner.body,
        "409 carries the winner's version"
    );

    // A create over an existing name, a stale revert and a stale delete conflict too.
    let again = api.create(&alice, "web", 1).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/detectors/web/revert",
            Some(json!({"version": 1})),
        ),
        (Method::DELETE, "/api/v1/detectors/web", None),
    ] {
        let stale = api
            .call(method, path, Some(&alice), &[("if-match", "\"1\"")], body)
            .await;
        assert_eq!(stale.status, StatusCode::CONFLICT, "{path}: {}", stale.body);
    }
    // A change without If-Match is refused before anything is written.
    let blind = api
        .call(
            Method::PUT,
            "/api/v1/detectors/web",
            Some(&alice),
            &[],
            Some(json!({"config": document(2)})),
        )
        .await;
    assert_eq!(blind.status, StatusCode::PRECONDITION_REQUIRED);
    // If-None-Match: * creates with PUT (what `apply` of a new file does) and conflicts after.
    for expected in [StatusCode::CREATED, StatusCode::CONFLICT] {
        let put = api
            .call(
                Method::PUT,
                "/api/v1/detectors/fresh",
                Some(&alice),
                &[("if-none-match", "*")],
                Some(json!({"config": document(3)})),
            )
            .await;
        assert_eq!(put.status, expected, "{}", put.body);
    }
}

#[tokio::test]
async fn invalid_documents_get_422_with_a_pointer_to_each_bad_field() {
    let api = api();
    let alice = writer("acme");
    let bad = api
        .call(
            Method::POST,
            "/api/v1/detectors",
            Some(&alice),
            &[],
            Some(json!({
                "name": "Bad Name",
                "config": {"detectors": [{"kind": "zscore"}, {"kind": "mad", "window": 0}],
                           "alert": {"warning": 9.0, "critical": 1.0}},
                "colour": "red"
            })),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(bad.body["errors"][0]["pointer"], "/colour");
    let fixed_fields = api
        .call(
            Method::POST,
            "/api/v1/detectors",
            Some(&alice),
            &[],
            Some(json!({
                "name": "Bad Name",
                "config": {"detectors": [{"kind": "zscore"}, {"kind": "mad", "window": 0}],
                           "alert": {"warning": 9.0, "critical": 1.0}},
                "reason": 7
            })),
        )
        .await;
    assert_eq!(fixed_fields.status, StatusCode::UNPROCESSABLE_ENTITY);
    let pointers: Vec<&str> = fixed_fields.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    for expected in ["/name", "/reason", "/config/detectors/1/window"] {
        assert!(pointers.contains(&expected), "{expected} in {pointers:?}");
    }
    assert!(
        pointers.iter().any(|p| p.starts_with("/config/alert")),
        "{pointers:?}"
    );
    for error in fixed_fields.body["errors"].as_array().unwrap() {
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
    // A wrong type deep inside points at it.
    let typed = api
        .call(
            Method::POST,
            "/api/v1/detectors",
            Some(&alice),
            &[],
            Some(json!({"name": "web", "config": {"detectors": [{"kind": "zscore"}], "match": {"labels": {"env": 3}}}})),
        )
        .await;
    assert_eq!(
        typed.body["errors"][0]["pointer"],
        "/config/match/labels/env"
    );
    // Not JSON at all is a 400; nothing was stored by any of these.
    let garbage = api.get("/api/v1/detectors", &alice).await;
    assert!(garbage.body["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_and_an_oversized_one_413() {
    let api = api();
    let alice = writer("acme");
    let request = |body: Vec<u8>| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/detectors")
            .header(header::AUTHORIZATION, format!("Bearer {alice}"))
            .body(Body::from(body))
            .unwrap()
    };
    let not_json = api
        .router
        .clone()
        .oneshot(request(b"{nope".to_vec()))
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let huge = api
        .router
        .clone()
        .oneshot(request(vec![b' '; 300 * 1024]))
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn tokens_need_the_scope_for_what_they_do() {
    let api = api();
    let reader = token("acme", Some("detectors:read"), None);
    let nothing = token("acme", None, None);
    let written = api.create(&writer("acme"), "web", 0).await;
    assert_eq!(written.status, StatusCode::CREATED);

    let no_token = api
        .call(Method::GET, "/api/v1/detectors", None, &[], None)
        .await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    let forged = api
        .call(Method::GET, "/api/v1/detectors", Some("a.b.c"), &[], None)
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let unscoped = api.get("/api/v1/detectors", &nothing).await;
    assert_eq!(unscoped.status, StatusCode::FORBIDDEN);
    let read = api.get("/api/v1/detectors/web", &reader).await;
    assert_eq!(read.status, StatusCode::OK);
    let write = api
        .call(
            Method::PUT,
            "/api/v1/detectors/web",
            Some(&reader),
            &[("if-match", "\"1\"")],
            Some(json!({"config": document(1)})),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    assert_eq!(write.body["code"], "missing_scope");
    let presets = api.get("/api/v1/presets", &reader).await;
    assert_eq!(presets.status, StatusCode::OK);
    assert!(presets.body["items"].as_array().unwrap().len() >= 5);
}

#[tokio::test]
async fn a_tenant_cannot_list_read_change_or_delete_another_tenants_configurations() {
    let api = api();
    let acme = writer("acme");
    let globex = writer("globex");
    assert_eq!(
        api.create(&acme, "secret", 0).await.status,
        StatusCode::CREATED
    );

    let list = api.get("/api/v1/detectors", &globex).await;
    assert_eq!(list.body["items"], json!([]));
    let change = json!({"config": document(1)});
    for path in [
        "/api/v1/detectors/secret",
        "/api/v1/detectors/%73ecret",
        "/api/v1/detectors/acme%2Fsecret",
        "/api/v1/detectors/..%2Facme%2Fsecret",
        "/api/v1/detectors/acme.secret",
        "/api/v1/detectors/SECRET",
    ] {
        let read = api.get(path, &globex).await;
        assert_eq!(read.status, StatusCode::NOT_FOUND, "GET {path}");
        let history = api.get(&format!("{path}/history"), &globex).await;
        assert_eq!(history.status, StatusCode::NOT_FOUND, "history {path}");
        for (method, headers) in [
            (Method::PUT, [("if-match", "\"1\"")]),
            (Method::DELETE, [("if-match", "\"1\"")]),
        ] {
            let body = (method == Method::PUT).then(|| change.clone());
            let attempt = api
                .call(method.clone(), path, Some(&globex), &headers, body)
                .await;
            assert_eq!(
                attempt.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                attempt.body
            );
        }
        let revert = api
            .call(
                Method::POST,
                &format!("{path}/revert"),
                Some(&globex),
                &[("if-match", "\"1\"")],
                Some(json!({"version": 1})),
            )
            .await;
        assert!(
            revert.status == StatusCode::UNPROCESSABLE_ENTITY
                || revert.status == StatusCode::NOT_FOUND,
            "revert {path}: {}",
            revert.status
        );
    }
    // A body cannot name a tenant either.
    let smuggled = api
        .call(
            Method::POST,
            "/api/v1/detectors",
            Some(&globex),
            &[],
            Some(json!({"name": "secret", "tenant": "acme", "config": document(1)})),
        )
        .await;
    assert_eq!(smuggled.status, StatusCode::UNPROCESSABLE_ENTITY);
    let matcher = api
        .call(
            Method::POST,
            "/api/v1/detectors",
            Some(&globex),
            &[],
            Some(json!({"name": "secret", "config": {"detectors": [{"kind": "zscore"}], "match": {"tenant": "acme"}}})),
        )
        .await;
    assert_eq!(matcher.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(matcher.body["errors"][0]["pointer"], "/config/match/tenant");
    // globex's own "secret" is its own; acme's is untouched.
    assert_eq!(api.create(&globex, "secret", 2).await.body["version"], 1);
    let acme_view = api.get("/api/v1/detectors/secret", &acme).await;
    assert_eq!(acme_view.body["config"], document(0));
    assert_eq!(acme_view.body["tenant"], "acme");
}

#[tokio::test]
async fn the_openapi_document_and_the_router_describe_the_same_operations() {
    let api = api();
    let document = api
        .call(Method::GET, "/api/v1/openapi.json", None, &[], None)
        .await;
    assert_eq!(document.status, StatusCode::OK);
    assert_eq!(document.body["openapi"], "3.1.0");
    let operations = aiops_control::openapi::operations();
    assert_eq!(operations.len(), 11, "{operations:?}");
    let token = token("acme", None, None);
    for (method, path) in &operations {
        let path = path.replace("{name}", "web");
        let method: Method = method.parse().unwrap();
        // Every documented operation is routed: it answers 401/403 (or 200 for the document),
        // never 404 or 405 from the router.
        let answer = api
            .call(method.clone(), &path, Some(&token), &[], None)
            .await;
        assert!(
            matches!(
                answer.status,
                StatusCode::OK | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            ),
            "{method} {path}: {}",
            answer.status
        );
        // And every documented status of it is one the handlers can give (spot check of the
        // shape: each response has a description).
    }
    // Every routed method is documented: the ones not listed are 405.
    let documented: std::collections::BTreeSet<(String, String)> = operations.into_iter().collect();
    for path in [
        "/api/v1/detectors",
        "/api/v1/detectors/{name}",
        "/api/v1/detectors/{name}/history",
        "/api/v1/detectors/{name}/revert",
        "/api/v1/detectors/{name}/preview",
        "/api/v1/series",
        "/api/v1/presets",
        "/api/v1/openapi.json",
    ] {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let answer = api
                .call(
                    method.parse().unwrap(),
                    &path.replace("{name}", "web"),
                    Some(&token),
                    &[],
                    None,
                )
                .await;
            let routed = answer.status != StatusCode::METHOD_NOT_ALLOWED;
            assert_eq!(
                routed,
                documented.contains(&(method.to_owned(), path.to_owned())),
                "{method} {path}: {}",
                answer.status
            );
        }
    }
    for (_, item) in document.body["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            for (code, response) in operation["responses"].as_object().unwrap() {
                assert!(response["description"].is_string(), "{method} {code}");
            }
        }
    }
}
