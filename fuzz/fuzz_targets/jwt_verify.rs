//! Token verification on arbitrary tokens, and on arbitrary claims signed with the configured
//! secret (so the claim checks are reached, not only the signature check). Whatever is accepted
//! must carry a valid tenant and an unexpired `exp`.
#![no_main]

use std::sync::OnceLock;

use aiops_gateway::Authenticator;
use aiops_gateway::config::{AuthConfig, KeyConfig};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzzing-secret-fuzzing-secret-0123456789";

fn authenticator() -> &'static Authenticator {
    static AUTH: OnceLock<Authenticator> = OnceLock::new();
    AUTH.get_or_init(|| {
        let config = AuthConfig {
            keys: vec![
                KeyConfig {
                    kid: Some("hs".into()),
                    algorithm: "HS256".into(),
                    secret: Some(SECRET.into()),
                    secret_file: None,
                    public_key_file: None,
                },
                KeyConfig {
                    kid: Some("es".into()),
                    algorithm: "ES256".into(),
                    secret: None,
                    secret_file: None,
                    public_key_file: Some(
                        concat!(env!("CARGO_MANIFEST_DIR"), "/keys/es256.pub.pem").into(),
                    ),
                },
            ],
            ..AuthConfig::default()
        };
        Authenticator::from_config(&config).expect("the fuzzing keys load")
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn check(token: &str) {
    if let Ok(claims) = authenticator().verify(token) {
        assert!(
            (1..=64).contains(&claims.tenant.len())
                && claims
                    .tenant
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
            "an invalid tenant was accepted: {:?}",
            claims.tenant
        );
        // Verification may have happened in the previous second.
        assert!(claims.exp + 1 >= now(), "an expired token was accepted");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.split_once('\u{0}') {
        // "claims JSON \0 kid": signed with the real secret, so only the claims decide.
        Some((claims, kid)) => {
            let Ok(claims) = serde_json::from_str::<serde_json::Value>(claims) else {
                return;
            };
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            header.kid = (!kid.is_empty()).then(|| kid.to_owned());
            let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
            if let Ok(token) = jsonwebtoken::encode(&header, &claims, &key) {
                check(&token);
            }
        }
        None => check(text),
    }
});
