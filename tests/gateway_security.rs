//! The gateway's security: every way a token is refused before the upgrade, authorization and
//! tenant isolation (with a property test), malformed and oversized frames, floods, expiry.

mod support;

use support::Service;

use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::sync::Arc;
use std::time::Duration;

use aiops_gateway::RunningGateway;
use aiops_gateway::auth::Claims;
use aiops_gateway::config::KeyConfig;
use base64::Engine as _;
use futures_util::SinkExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::json;
use support::ws::{SECRET, config, connect, event, now, token};
use tokio_tungstenite::tungstenite::Message;

const SHORT: Duration = Duration::from_millis(300);

fn claims(tenant: &str, exp_in: i64) -> Claims {
    Claims {
        tenant: tenant.into(),
        channels: vec!["anomalies".into()],
        exp: (now() as i64 + exp_in) as u64,
        nbf: None,
        sub: None,
        aud: None,
        iss: None,
        scope: None,
    }
}

fn sign(header: Header, claims: &Claims, secret: &[u8]) -> String {
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn hs(kid: Option<&str>) -> Header {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    header
}

/// An RSA key pair made with openssl: (private PEM, public PEM file).
fn rsa_pair(dir: &tempfile::TempDir) -> (Vec<u8>, std::path::PathBuf) {
    key_pair(
        dir,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    )
}

/// A P-256 key pair made with openssl: (private PEM, public PEM file).
fn ec_pair(dir: &tempfile::TempDir) -> (Vec<u8>, std::path::PathBuf) {
    key_pair(
        dir,
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    )
}

fn key_pair(
    dir: &tempfile::TempDir,
    name: &str,
    options: &[&str],
) -> (Vec<u8>, std::path::PathBuf) {
    let private = dir.path().join(format!("{name}.pem"));
    let public = dir.path().join(format!("{name}.pub.pem"));
    let run = |args: &mut std::process::Command| args.output().unwrap().status.success();
    let ok = run(support::openssl()
        .arg("genpkey")
        .args(options)
        .arg("-out")
        .arg(&private))
        && run(support::openssl()
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public));
    assert!(ok, "openssl made a {name} key pair");
    (std::fs::read(&private).unwrap(), public)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_refused_before_the_upgrade_with_its_code() {
    if !support::available(&[Service::Openssl]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (private_pem, public_file) = rsa_pair(&dir);
    let (ec_private_pem, ec_public_file) = ec_pair(&dir);
    let mut settings = config(None);
    settings.auth.audience = Some("aiops".into());
    settings.auth.issuer = Some("https://sso.example".into());
    settings.auth.keys.push(KeyConfig {
        kid: Some("rsa".into()),
        algorithm: "RS256".into(),
        secret: None,
        secret_file: None,
        public_key_file: Some(public_file.clone()),
    });
    settings.auth.keys.push(KeyConfig {
        kid: Some("ec".into()),
        algorithm: "ES256".into(),
        secret: None,
        secret_file: None,
        public_key_file: Some(ec_public_file),
    });
    let gateway = RunningGateway::start(settings).unwrap();
    let good = || {
        let mut c = claims("acme", 60);
        c.aud = Some("aiops".into());
        c.iss = Some("https://sso.example".into());
        c
    };
    let expired = {
        let mut c = good();
        c.exp = now() - 30;
        c
    };
    let early = {
        let mut c = good();
        c.nbf = Some(now() + 600);
        c.exp = now() + 1200;
        c
    };
    let wrong_audience = Claims {
        aud: Some("billing".into()),
        ..good()
    };
    let no_audience = Claims {
        aud: None,
        ..good()
    };
    let wrong_issuer = Claims {
        iss: Some("https://evil.example".into()),
        scope: None,
        ..good()
    };
    let bad_tenant = Claims {
        tenant: "acme}:anomalies:{globex".into(),
        ..good()
    };
    let none_header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let none_body = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&good()).unwrap());
    let alg_none = format!("{none_header}.{none_body}.");
    // Key confusion: the RSA public key used as an HMAC secret, under the RSA key's id.
    let confused = sign(
        hs(Some("rsa")),
        &good(),
        &std::fs::read(&public_file).unwrap(),
    );
    let confused_without_kid = sign(hs(None), &good(), &std::fs::read(&public_file).unwrap());
    let rs_valid = {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa".into());
        jsonwebtoken::encode(
            &header,
            &good(),
            &EncodingKey::from_rsa_pem(&private_pem).unwrap(),
        )
        .unwrap()
    };

    let es_valid = {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("ec".into());
        jsonwebtoken::encode(
            &header,
            &good(),
            &EncodingKey::from_ec_pem(&ec_private_pem).unwrap(),
        )
        .unwrap()
    };
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        ("no token", String::new(), Some("token_missing")),
        ("not a JWT", "abc".into(), Some("token_malformed")),
        ("garbage segments", "a.b.c".into(), Some("token_malformed")),
        (
            "expired",
            sign(hs(Some("test")), &expired, SECRET.as_bytes()),
            Some("token_expired"),
        ),
        (
            "not yet valid",
            sign(hs(Some("test")), &early, SECRET.as_bytes()),
            Some("token_not_yet_valid"),
        ),
        (
            "wrong audience",
            sign(hs(Some("test")), &wrong_audience, SECRET.as_bytes()),
            Some("wrong_audience"),
        ),
        (
            "no audience",
            sign(hs(Some("test")), &no_audience, SECRET.as_bytes()),
            Some("wrong_audience"),
        ),
        (
            "wrong issuer",
            sign(hs(Some("test")), &wrong_issuer, SECRET.as_bytes()),
            Some("wrong_issuer"),
        ),
        (
            "bad signature",
            sign(
                hs(Some("test")),
                &good(),
                b"another-secret-another-secret-0123",
            ),
            Some("bad_signature"),
        ),
        (
            "unknown kid",
            sign(hs(Some("nope")), &good(), SECRET.as_bytes()),
            Some("unknown_key"),
        ),
        ("alg none", alg_none, Some("token_malformed")),
        ("HS/RS confusion", confused, Some("algorithm_not_allowed")),
        (
            "HS/RS confusion, no kid",
            confused_without_kid,
            Some("bad_signature"),
        ),
        (
            "tenant that could break out of its channel",
            sign(hs(Some("test")), &bad_tenant, SECRET.as_bytes()),
            Some("invalid_claims"),
        ),
        (
            "valid HS256",
            sign(hs(Some("test")), &good(), SECRET.as_bytes()),
            None,
        ),
        ("valid RS256", rs_valid, None),
        ("valid ES256", es_valid, None),
    ];
    for (name, credential, refusal) in cases {
        match (connect(gateway.address, &credential).await, refusal) {
            (Ok(_), None) => {}
            (Err((status, body)), Some(code)) => {
                assert_eq!(status, 401, "{name}: {body}");
                assert_eq!(body["code"], code, "{name}: {body}");
            }
            (Ok(_), Some(code)) => panic!("{name}: accepted, expected {code}"),
            (Err((status, body)), None) => panic!("{name}: refused with {status} {body}"),
        }
    }
    assert!(gateway.metrics.rejected_auth.get() >= 14);
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_pass_the_token_as_a_query_parameter() {
    let gateway = RunningGateway::start(config(None)).unwrap();
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!(
        "ws://{}/?token={}",
        gateway.address,
        token("acme", &["anomalies"], 60)
    );
    let stream = tokio::net::TcpStream::connect(gateway.address)
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(url.into_client_request().unwrap(), stream)
        .await
        .unwrap();
    ws.send(Message::text(r#"{"type":"ping","id":9}"#))
        .await
        .unwrap();
    let mut client = support::ws::Client { ws };
    assert_eq!(
        client.next(SHORT).await.unwrap(),
        json!({"type": "pong", "id": 9})
    );
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_authorized_by_the_token_and_scoped_to_its_tenant() {
    let gateway = RunningGateway::start(config(None)).unwrap();
    let memory = gateway.memory.clone().unwrap();
    let mut client = connect(gateway.address, &token("acme", &["anomalies"], 60))
        .await
        .unwrap();
    let reply = client
        .subscribe(json!({"type": "subscribe", "id": 1, "channel": "drift"}))
        .await;
    assert_eq!(
        (reply["type"].clone(), reply["code"].clone()),
        (json!("error"), json!("forbidden"))
    );
    let reply = client
        .subscribe(json!({"type": "subscribe", "id": 2, "channel": "aiops:{globex}:anomalies"}))
        .await;
    assert_eq!(reply["code"], "unknown_channel");
    let reply = client
        .subscribe(
            json!({"type": "subscribe", "id": 3, "channel": "anomalies", "tenant": "globex"}),
        )
        .await;
    assert_eq!(
        reply["code"], "bad_request",
        "a tenant in the message is refused, not obeyed"
    );
    let reply = client
        .subscribe(json!({"type": "subscribe", "id": 4, "channel": "anomalies"}))
        .await;
    assert_eq!(reply["type"], "subscribed");
    let reply = client
        .subscribe(json!({"type": "subscribe", "id": 5, "channel": "anomalies"}))
        .await;
    assert_eq!(reply["code"], "already_subscribed");
    memory.publish(
        &aiops_schemas::anomalies_channel("globex"),
        &event("globex", "g1", "cpu", "critical"),
    );
    memory.publish(
        &aiops_schemas::anomalies_channel("acme"),
        &event("acme", "a1", "cpu", "critical"),
    );
    assert_eq!(client.event_ids(SHORT).await, ["a1"]);
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[test]
fn random_subscriptions_with_random_tokens_never_see_another_tenants_events() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let gateway = runtime.block_on(async { RunningGateway::start(config(None)).unwrap() });
    let memory = gateway.memory.clone().unwrap();
    let tenants = ["acme", "globex", "initech"];
    let channel_names = prop_oneof![
        Just("anomalies".to_owned()),
        Just("drift".to_owned()),
        Just("*".to_owned()),
        Just("aiops:{globex}:anomalies".to_owned()),
        Just("{acme}".to_owned()),
        "[a-z:{}*]{0,12}",
    ];
    let strategy = (
        0usize..3,
        proptest::collection::vec(
            prop_oneof![
                Just("anomalies".to_owned()),
                Just("*".to_owned()),
                Just("drift".to_owned()),
                "[a-z*]{1,6}"
            ],
            0..3,
        ),
        proptest::collection::vec((channel_names, any::<bool>(), 0usize..3), 1..4),
    );
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 24,
        ..Default::default()
    });
    let serial = std::sync::atomic::AtomicU64::new(0);
    runner
        .run(&strategy, |(tenant_index, granted, attempts)| {
            let tenant = tenants[tenant_index];
            let granted: Vec<&str> = granted.iter().map(String::as_str).collect();
            let case = serial.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let leaked = runtime.block_on(async {
                let mut client = connect(gateway.address, &token(tenant, &granted, 60))
                    .await
                    .unwrap();
                for (channel, with_tenant, claimed) in &attempts {
                    let mut message = json!({"type": "subscribe", "channel": channel});
                    if *with_tenant {
                        message["tenant"] = tenants[*claimed].into();
                    }
                    client.subscribe(message).await;
                }
                for other in tenants {
                    let id = format!("{other}-{case}");
                    memory.publish(
                        &aiops_schemas::anomalies_channel(other),
                        &event(other, &id, "cpu", "critical"),
                    );
                }
                let mut leaked = Vec::new();
                while let Some(message) = client.next(Duration::from_millis(150)).await {
                    if message["type"] == "event" && message["event"]["tenant"] != tenant {
                        leaked.push(message);
                    }
                }
                leaked
            });
            prop_assert!(leaked.is_empty(), "tenant {} saw {:?}", tenant, leaked);
            Ok(())
        })
        .unwrap();
    runtime.block_on(gateway.shutdown(Duration::from_secs(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames() {
    let mut settings = config(None);
    settings.limits.max_frame_bytes = 1024;
    let gateway = RunningGateway::start(settings).unwrap();
    let mut client = connect(gateway.address, &token("acme", &["anomalies"], 60))
        .await
        .unwrap();
    client
        .ws
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(
        client.next(SHORT).await.unwrap()["code"],
        "binary_not_supported"
    );
    client.ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(client.next(SHORT).await.unwrap()["code"], "bad_request");
    client
        .ws
        .send(Message::text(r#"{"type":"teleport"}"#))
        .await
        .unwrap();
    assert_eq!(client.next(SHORT).await.unwrap()["code"], "bad_request");
    client.send(json!({"type": "ping", "id": 1})).await;
    assert_eq!(
        client.next(SHORT).await.unwrap()["type"],
        "pong",
        "bad frames do not end the connection"
    );
    client
        .ws
        .send(Message::text("x".repeat(4096)))
        .await
        .unwrap();
    assert_eq!(client.close_code(Duration::from_secs(2)).await, Some(1009));
    gateway.shutdown(Duration::from_secs(2)).await;
}

fn raw_request(address: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = StdTcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_and_broken_requests_are_refused_cheaply() {
    let mut settings = config(None);
    settings.limits.connections_per_ip_per_s = 5;
    settings.limits.max_connections = 3;
    settings.limits.handshake_timeout_ms = 300;
    let gateway = RunningGateway::start(settings).unwrap();
    let address = gateway.address;
    let credential = token("acme", &["anomalies"], 60);
    // Capacity: three connections fit, the fourth is refused.
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(connect(address, &credential).await.unwrap());
    }
    let (status, body) = connect(address, &credential).await.err().unwrap();
    assert_eq!(
        (status, body["code"].clone()),
        (503, json!("too_many_connections"))
    );
    drop(open);
    // Rate: a burst of 10 per address, then 429.
    let statuses: Vec<u16> = tokio::task::spawn_blocking(move || {
        (0..30)
            .map(|_| {
                let response = raw_request(address, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
                response
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    })
    .await
    .unwrap();
    assert!(
        statuses.iter().filter(|&&s| s == 429).count() >= 15,
        "{statuses:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (headers, silent, not_ws) = tokio::task::spawn_blocking(move || {
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
        let headers = raw_request(address, huge.as_bytes());
        let silent = raw_request(address, b"GET / HTTP/1.1\r\n");
        let not_ws = raw_request(
            address,
            b"GET /?token=x HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        );
        (headers, silent, not_ws)
    })
    .await
    .unwrap();
    assert!(headers.starts_with("HTTP/1.1 431"), "{headers}");
    assert!(silent.starts_with("HTTP/1.1 408"), "{silent}");
    assert!(not_ws.starts_with("HTTP/1.1 400"), "{not_ws}");
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_closes_the_connection_unless_refreshed() {
    let gateway = RunningGateway::start(config(None)).unwrap();
    let mut lapsing = connect(gateway.address, &token("acme", &["anomalies"], 1))
        .await
        .unwrap();
    // Long enough to be refreshed however slow the connect is (a 1 s token can lapse within
    // milliseconds of being minted: expiry is in whole seconds).
    let mut refreshed = connect(gateway.address, &token("acme", &["anomalies"], 3))
        .await
        .unwrap();
    refreshed
        .send(json!({"type": "refresh", "id": 1, "token": token("globex", &["anomalies"], 60)}))
        .await;
    assert_eq!(
        refreshed.next(SHORT).await.unwrap()["code"],
        "invalid_token",
        "another tenant's token is refused"
    );
    refreshed
        .send(json!({"type": "refresh", "id": 2, "token": token("acme", &["anomalies"], 60)}))
        .await;
    assert_eq!(refreshed.next(SHORT).await.unwrap()["type"], "refreshed");
    assert_eq!(lapsing.close_code(Duration::from_secs(4)).await, Some(4001));
    // Past the first token's expiry: only the refresh keeps this one open.
    tokio::time::sleep(Duration::from_secs(3)).await;
    refreshed.send(json!({"type": "ping", "id": 3})).await;
    assert_eq!(
        refreshed.next(SHORT).await.unwrap()["type"],
        "pong",
        "the refreshed connection lives on"
    );
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_http_surface_answers_what_it_should_and_metrics_stay_off_the_client_port() {
    let mut settings = config(None);
    settings.limits.connections_per_ip_per_s = 1_000;
    let gateway = RunningGateway::start(settings).unwrap();
    let (client, admin) = (gateway.address, gateway.admin_address.unwrap());
    let answers = tokio::task::spawn_blocking(move || {
        let get = |address, path: &str| {
            // A keep-alive client of the admin endpoint would wait for its read timeout.
            let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            raw_request(address, head.as_bytes())
        };
        let head_of = |bytes: usize| {
            let filler = "a".repeat(bytes - "GET / HTTP/1.1\r\nX: \r\n\r\n".len());
            raw_request(
                client,
                format!("GET / HTTP/1.1\r\nX: {filler}\r\n\r\n").as_bytes(),
            )
        };
        vec![
            ("client /healthz", get(client, "/healthz")),
            ("client /readyz", get(client, "/readyz")),
            ("client /", get(client, "/")),
            ("client /app.js", get(client, "/app.js")),
            ("client /metrics", get(client, "/metrics")),
            ("client /nothing", get(client, "/nothing")),
            (
                "client POST /healthz",
                raw_request(
                    client,
                    b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                ),
            ),
            ("head of 8,000 bytes", head_of(8_000)),
            ("head of 20,000 bytes", head_of(20_000)),
            ("admin /metrics", get(admin, "/metrics")),
            ("admin /healthz", get(admin, "/healthz")),
            ("admin /readyz", get(admin, "/readyz")),
            ("admin /", get(admin, "/")),
        ]
    })
    .await
    .unwrap();
    let status = |name: &str| {
        let (_, answer) = answers.iter().find(|(n, _)| *n == name).unwrap();
        (
            answer
                .split_whitespace()
                .nth(1)
                .unwrap_or("none")
                .to_owned(),
            answer.clone(),
        )
    };
    for (name, expected) in [
        ("client /healthz", "200"),
        ("client /readyz", "200"),
        ("client /", "200"),
        ("client /app.js", "200"),
        ("client /metrics", "404"),
        ("client /nothing", "404"),
        ("client POST /healthz", "405"),
        ("head of 8,000 bytes", "200"),
        ("head of 20,000 bytes", "431"),
        ("admin /metrics", "200"),
        ("admin /healthz", "200"),
        ("admin /readyz", "200"),
        ("admin /", "404"),
    ] {
        let (got, answer) = status(name);
        assert_eq!(got, expected, "{name}: {answer}");
    }
    let (_, page) = status("client /");
    assert!(
        page.contains("content-security-policy: default-src 'none'"),
        "{page}"
    );
    let (_, missing) = status("client /nothing");
    assert!(missing.contains(r#""code":"not_found""#), "{missing}");
    let (_, metrics) = status("admin /metrics");
    assert!(
        metrics.contains("# TYPE aiops_gateway_open_connections gauge"),
        "{metrics}"
    );
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_over_the_rate_closes_the_connection_at_once() {
    // Regression: the 429 answer left the connection open (keep-alive), so a client reading to
    // the end waited for its own timeout.
    let mut settings = config(None);
    settings.limits.connections_per_ip_per_s = 1;
    let gateway = RunningGateway::start(settings).unwrap();
    let address = gateway.address;
    let (statuses, elapsed) = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let statuses: Vec<String> = (0..4)
            .map(|_| {
                let answer = raw_request(address, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
                answer
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("none")
                    .to_owned()
            })
            .collect();
        (statuses, started.elapsed())
    })
    .await
    .unwrap();
    assert_eq!(statuses, ["200", "200", "429", "429"]);
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    gateway.shutdown(Duration::from_secs(2)).await;
}

/// A WebSocket connection made by hand: the upgrade request with `authorization` as the
/// header's value, then the stream positioned after the 101 response's head (returned too).
fn raw_websocket(address: std::net::SocketAddr, authorization: &str) -> (StdTcpStream, String) {
    let mut stream = StdTcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: {authorization}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).is_ok() {
        head.push(byte[0]);
    }
    (stream, String::from_utf8_lossy(&head).into_owned())
}

/// A client frame (masked, as RFC 6455 requires of clients), payload under 126 bytes.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads server frames until a close frame and returns its code; `None` if the connection
/// ended without one.
fn read_close_code(stream: &mut StdTcpStream) -> Option<u16> {
    loop {
        let mut header = [0u8; 2];
        stream.read_exact(&mut header).ok()?;
        let length = match header[1] & 0x7f {
            126 => {
                let mut extended = [0u8; 2];
                stream.read_exact(&mut extended).ok()?;
                u64::from(u16::from_be_bytes(extended))
            }
            127 => {
                let mut extended = [0u8; 8];
                stream.read_exact(&mut extended).ok()?;
                u64::from_be_bytes(extended)
            }
            short => u64::from(short),
        };
        let mut payload = vec![0u8; usize::try_from(length).ok()?];
        stream.read_exact(&mut payload).ok()?;
        if header[0] & 0x0f == 0x8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_close_code_gets_1002_and_text_that_is_not_utf8_gets_1007() {
    let gateway = RunningGateway::start(config(None)).unwrap();
    let bearer = format!("Bearer {}", token("acme", &["anomalies"], 60));
    let address = gateway.address;
    let codes = tokio::task::spawn_blocking(move || {
        let (mut bad_close, head) = raw_websocket(address, &bearer);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        bad_close
            .write_all(&client_frame(0x8, &999u16.to_be_bytes()))
            .unwrap();
        let (mut bad_text, head) = raw_websocket(address, &bearer);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        bad_text
            .write_all(&client_frame(0x1, &[b'{', 0xff, 0xfe, b'}']))
            .unwrap();
        (
            read_close_code(&mut bad_close),
            read_close_code(&mut bad_text),
        )
    })
    .await
    .unwrap();
    assert_eq!(codes, (Some(1002), Some(1007)));
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive_an_audience_list_is_read_and_refusals_say_nosniff() {
    let mut settings = config(None);
    settings.auth.audience = Some("aiops".into());
    let gateway = RunningGateway::start(settings).unwrap();
    let address = gateway.address;
    let audience = |aud: Option<aiops_gateway::auth::Audience>| {
        let mut c = claims("acme", 60);
        c.aud = aud;
        sign(hs(None), &c, SECRET.as_bytes())
    };
    let listed = audience(Some(aiops_gateway::auth::Audience::Many(vec![
        "billing".into(),
        "aiops".into(),
    ])));
    let other = audience(Some(aiops_gateway::auth::Audience::Many(vec![
        "billing".into(),
    ])));
    let single = audience(Some("aiops".into()));
    let heads = tokio::task::spawn_blocking(move || {
        [
            raw_websocket(address, &format!("BEARER {single}")).1,
            raw_websocket(address, &format!("bEaReR {listed}")).1,
            raw_websocket(address, &format!("Bearer {other}")).1,
            raw_websocket(address, "Basic YWxhZGRpbjpvcGVuc2VzYW1l").1,
        ]
    })
    .await
    .unwrap();
    assert!(heads[0].starts_with("HTTP/1.1 101"), "{}", heads[0]);
    assert!(heads[1].starts_with("HTTP/1.1 101"), "{}", heads[1]);
    for refused in &heads[2..] {
        assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
        assert!(
            refused
                .to_ascii_lowercase()
                .contains("x-content-type-options: nosniff"),
            "{refused}"
        );
    }
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_just_over_8_kib_get_431() {
    let gateway = RunningGateway::start(config(None)).unwrap();
    let address = gateway.address;
    let answers = tokio::task::spawn_blocking(move || {
        [8_193usize, 8_700, 9_216].map(|size| {
            let start = "GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Pad: ";
            let end = "\r\nConnection: close\r\n\r\n";
            let pad = "a".repeat(size - start.len() - end.len());
            let request = format!("{start}{pad}{end}");
            assert_eq!(request.len(), size);
            raw_request(address, request.as_bytes())
        })
    })
    .await
    .unwrap();
    for answer in answers {
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    }
    gateway.shutdown(Duration::from_secs(2)).await;
}

/// Waits until the gateway counts `open` connections; false after 5 s.
async fn open_connections_become(gateway: &RunningGateway, open: u64) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if gateway.metrics.connections.get() == open {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_whose_exp_is_past_any_horizon_neither_panics_nor_leaks_its_slot() {
    let mut settings = config(None);
    settings.limits.max_connections = 2;
    let gateway = RunningGateway::start(settings).unwrap();
    let forever = || {
        let mut c = claims("acme", 60);
        c.exp = u64::MAX;
        sign(hs(None), &c, SECRET.as_bytes())
    };
    // Twice the limit: a connection whose task died would keep its slot and refuse the rest.
    for round in 0..4 {
        let mut client = connect(gateway.address, &forever()).await.unwrap();
        client.send(json!({"type": "ping", "id": round})).await;
        assert_eq!(client.next(SHORT * 5).await.unwrap()["type"], "pong");
        client
            .send(json!({"type": "refresh", "id": 100 + round, "token": forever()}))
            .await;
        assert_eq!(client.next(SHORT * 5).await.unwrap()["type"], "refreshed");
        client
            .send(json!({"type": "ping", "id": 200 + round}))
            .await;
        assert_eq!(
            client.next(SHORT * 5).await.unwrap()["type"],
            "pong",
            "the connection lives on after the refresh"
        );
        drop(client);
        assert!(
            open_connections_become(&gateway, 0).await,
            "round {round}: the slot came back"
        );
    }
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_to_fewer_channels_ends_the_subscriptions_it_no_longer_grants() {
    let gateway = RunningGateway::start(config(None)).unwrap();
    let memory = gateway.memory.clone().unwrap();
    let mut client = connect(gateway.address, &token("acme", &["anomalies", "drift"], 60))
        .await
        .unwrap();
    for channel in ["anomalies", "drift"] {
        let reply = client
            .subscribe(json!({"type": "subscribe", "channel": channel}))
            .await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
    }
    client
        .send(json!({"type": "refresh", "id": 1, "token": token("acme", &["anomalies"], 60)}))
        .await;
    let revoked = client.next(SHORT * 5).await.unwrap();
    assert_eq!(revoked["type"], "unsubscribed", "{revoked}");
    assert_eq!(revoked["channel"], "drift");
    assert_eq!(client.next(SHORT * 5).await.unwrap()["type"], "refreshed");
    memory.publish(
        &aiops_schemas::drift_channel("acme"),
        &event("acme", "d1", "cpu", "warning"),
    );
    memory.publish(
        &aiops_schemas::anomalies_channel("acme"),
        &event("acme", "a1", "cpu", "warning"),
    );
    assert_eq!(
        client.event_ids(SHORT).await,
        ["a1"],
        "no drift event after the refresh"
    );
    gateway.shutdown(Duration::from_secs(2)).await;
}

/// A client of tenant `acme` subscribed to anomalies with a 4 KiB receive buffer, which the
/// caller never reads; and the in-memory broker to publish into.
async fn a_client_that_never_reads(
    gateway: &RunningGateway,
) -> (
    support::ws::Client,
    Arc<aiops_gateway::broker::memory::MemoryBroker>,
) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(gateway.address).await.unwrap();
    let mut request = format!("ws://{}/", gateway.address)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token("acme", &["anomalies"], 60))
            .parse()
            .unwrap(),
    );
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    let mut reader = support::ws::Client { ws };
    let reply = reader
        .subscribe(json!({"type": "subscribe", "channel": "anomalies"}))
        .await;
    assert_eq!(reply["type"], "subscribed");
    (reader, gateway.memory.clone().unwrap())
}

/// Publishes `count` events of 8 KiB to tenant `acme`'s anomalies.
fn publish_large_events(memory: &aiops_gateway::broker::memory::MemoryBroker, count: usize) {
    let padding = "x".repeat(8 * 1024);
    for n in 0..count {
        let event = json!({"id": format!("e{n}"), "tenant": "acme", "padding": padding});
        memory.publish(
            &aiops_schemas::anomalies_channel("acme"),
            &event.to_string(),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_with_4008_within_the_write_timeout() {
    let mut settings = config(None);
    settings.limits.write_timeout_ms = 500;
    // A queue deep enough that the write, not the queue, is what notices the stuck client.
    settings.limits.client_queue = 100_000;
    let gateway = RunningGateway::start(settings).unwrap();
    let (reader, memory) = a_client_that_never_reads(&gateway).await;
    // From here on the client reads nothing.
    let published = tokio::time::Instant::now();
    publish_large_events(&memory, 2_000);
    assert!(
        open_connections_become(&gateway, 0).await,
        "the stuck client was not closed within 5 s"
    );
    assert!(published.elapsed() < Duration::from_secs(5));
    assert_eq!(gateway.metrics.slow_disconnects.get(), 1);
    drop(reader);
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_overflow_while_a_write_is_stuck_closes_at_once_not_after_the_write_timeout() {
    let mut settings = config(None);
    // A write timeout far beyond the test's patience: only the overflowed queue can close it.
    settings.limits.write_timeout_ms = 120_000;
    settings.limits.client_queue = 64;
    let gateway = RunningGateway::start(settings).unwrap();
    let (reader, memory) = a_client_that_never_reads(&gateway).await;
    // From here on the client reads nothing; 2,000 events of 8 KiB overflow any socket buffer
    // and then the 64-frame queue while the gateway's write waits on the full socket.
    let published = tokio::time::Instant::now();
    publish_large_events(&memory, 2_000);
    // Closed as slow at once (its close frame may then wait up to the write timeout behind
    // the bytes it has not read, which is why the slot is not what this test watches).
    while gateway.metrics.slow_disconnects.get() == 0
        && published.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        gateway.metrics.slow_disconnects.get(),
        1,
        "the client whose queue overflowed was not closed as slow within 5 s"
    );
    drop(reader);
    gateway.shutdown(Duration::from_secs(2)).await;
}
