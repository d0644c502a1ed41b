//! Authentication: verifying a client's JWT and reading what it may do.
//!
//! A token is verified with the key its header's `kid` names (or, without a `kid`, with every
//! key of the header's algorithm), and only if the key is configured for exactly that algorithm:
//! a token signed with an RSA public key used as an HMAC secret (the classic "key confusion")
//! names HS256, and no HS256 key holds that material. `alg: none` is not an algorithm the
//! verifier knows. `exp` is required; `nbf`, `aud` and `iss` are checked when configured or
//! present.
//!
//! Claims: `tenant` (whose events the connection sees; the only source of tenancy), `channels`
//! (the channel names or globs it may subscribe to, e.g. `["anomalies", "drift"]` or `["*"]`),
//! `exp`, and optionally `sub`, `nbf`, `aud`, `iss`.

use std::collections::BTreeSet;
use std::path::Path;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use aiops_schemas::glob::glob_match;
use aiops_schemas::{Channel, Limits};

use crate::config::{AuthConfig, KeyConfig};
use crate::error::{Error, Result};

/// What a verified token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The tenant whose events the connection may see.
    pub tenant: String,
    /// Channel names or globs the connection may subscribe to.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not valid before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The subject (a user or service name), for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The audience: one, or several (RFC 7519 allows both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// The issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// What the holder may do through the HTTP API, space-separated as OAuth 2.0 writes scopes
    /// (`"detectors:read detectors:write"`; a list, as some identity providers write it, is
    /// read too); none: nothing.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "scope_words"
    )]
    pub scope: Option<String>,
}

/// A `scope` claim as a space-separated string or as a list of scopes.
fn scope_words<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scope {
        Words(String),
        List(Vec<String>),
    }
    Ok(match Option::<Scope>::deserialize(deserializer)? {
        None => None,
        Some(Scope::Words(words)) => Some(words),
        Some(Scope::List(list)) => Some(list.join(" ")),
    })
}

/// A token's `aud`: one audience or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "aiops"`.
    One(String),
    /// `"aud": ["aiops", "billing"]`.
    Many(Vec<String>),
}

impl From<&str> for Audience {
    fn from(audience: &str) -> Audience {
        Audience::One(audience.to_owned())
    }
}

impl From<String> for Audience {
    fn from(audience: String) -> Audience {
        Audience::One(audience)
    }
}

impl Claims {
    /// Whether the token grants `scope` (one of the space-separated words of its `scope`).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|granted| granted.split_ascii_whitespace().any(|s| s == scope))
    }

    /// Whether the token lets its holder subscribe to `channel`.
    pub fn allows(&self, channel: &str) -> bool {
        self.channels
            .iter()
            .any(|pattern| glob_match(pattern, channel))
    }
}

/// Why a token was refused. Each maps to an HTTP status before the upgrade and to a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token in the `Authorization` header or the `token` query parameter.
    #[error("no token: send Authorization: Bearer <jwt> or ?token=<jwt>")]
    Missing,
    /// The token is not a well-formed JWT.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The token names an algorithm no configured key uses.
    #[error("algorithm {0} is not accepted")]
    AlgorithmNotAllowed(String),
    /// The token names a key id the gateway does not have.
    #[error("unknown key id {0:?}")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` has not come yet.
    #[error("token not valid yet")]
    NotYetValid,
    /// Wrong or missing audience.
    #[error("wrong audience")]
    WrongAudience,
    /// Wrong or missing issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// The claims are missing or invalid.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
}

impl AuthError {
    /// The stable code sent to the client.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "token_missing",
            AuthError::Malformed(_) => "token_malformed",
            AuthError::AlgorithmNotAllowed(_) => "algorithm_not_allowed",
            AuthError::UnknownKey(_) => "unknown_key",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::InvalidClaims(_) => "invalid_claims",
        }
    }
}

struct VerifyKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Verifies tokens; see the module docs.
pub struct Authenticator {
    keys: Vec<VerifyKey>,
    audience: Option<String>,
    issuer: Option<String>,
    leeway: u64,
}

fn parse_algorithm(name: &str, kid: &str) -> Result<Algorithm> {
    name.parse::<Algorithm>().map_err(|_| Error::Key {
        kid: kid.to_owned(),
        message: format!("unknown algorithm {name:?}"),
    })
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

fn is_hmac(algorithm: Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}

/// The shared secret of an HS key, from the configuration or its file.
pub fn hmac_secret(config: &KeyConfig) -> Result<Vec<u8>> {
    let kid = config.kid.clone().unwrap_or_default();
    match (&config.secret, &config.secret_file) {
        (Some(secret), None) => Ok(secret.as_bytes().to_vec()),
        (None, Some(path)) => Ok(read(path)?.trim_ascii().to_vec()),
        _ => Err(Error::Key {
            kid,
            message: "an HS key needs exactly one of secret and secret_file".into(),
        }),
    }
    .and_then(|secret| {
        if secret.len() < 32 {
            Err(Error::Key {
                kid: config.kid.clone().unwrap_or_default(),
                message: format!(
                    "an HS secret of {} bytes is too short to be safe; use at least 32",
                    secret.len()
                ),
            })
        } else {
            Ok(secret)
        }
    })
}

impl Authenticator {
    /// Loads every configured key; fails on the first unusable one.
    pub fn from_config(config: &AuthConfig) -> Result<Authenticator> {
        let mut keys = Vec::new();
        for (index, key) in config.keys.iter().enumerate() {
            let kid = key.kid.clone().unwrap_or_else(|| format!("#{index}"));
            let algorithm = parse_algorithm(&key.algorithm, &kid)?;
            let decoding = if is_hmac(algorithm) {
                DecodingKey::from_secret(&hmac_secret(key)?)
            } else {
                let path = key.public_key_file.as_ref().ok_or_else(|| Error::Key {
                    kid: kid.clone(),
                    message: format!("a {} key needs public_key_file", key.algorithm),
                })?;
                let pem = read(path)?;
                let loaded = match algorithm {
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
                    _ => DecodingKey::from_rsa_pem(&pem),
                };
                loaded.map_err(|e| Error::Key {
                    kid: kid.clone(),
                    message: format!("{}: {e}", path.display()),
                })?
            };
            keys.push(VerifyKey {
                kid: key.kid.clone(),
                algorithm,
                key: decoding,
            });
        }
        if let Some(path) = &config.jwks_file {
            let set: JwkSet = serde_json::from_slice(&read(path)?).map_err(|e| Error::Key {
                kid: path.display().to_string(),
                message: format!("not a JWKS document: {e}"),
            })?;
            for jwk in &set.keys {
                let kid = jwk.common.key_id.clone().ok_or_else(|| Error::Key {
                    kid: path.display().to_string(),
                    message: "every JWKS key needs a kid".into(),
                })?;
                let algorithm = jwk
                    .common
                    .key_algorithm
                    .and_then(|a| a.to_string().parse::<Algorithm>().ok())
                    .ok_or_else(|| Error::Key {
                        kid: kid.clone(),
                        message: "every JWKS key needs a signing alg".into(),
                    })?;
                let key = DecodingKey::from_jwk(jwk).map_err(|e| Error::Key {
                    kid: kid.clone(),
                    message: e.to_string(),
                })?;
                keys.push(VerifyKey {
                    kid: Some(kid),
                    algorithm,
                    key,
                });
            }
        }
        if keys.is_empty() {
            return Err(Error::config("no verification key configured"));
        }
        Ok(Authenticator {
            keys,
            audience: config.audience.clone(),
            issuer: config.issuer.clone(),
            leeway: config.leeway_s,
        })
    }

    /// Verifies a token and returns its claims.
    pub fn verify(&self, token: &str) -> std::result::Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName => AuthError::AlgorithmNotAllowed("in header".into()),
            _ => AuthError::Malformed(e.to_string()),
        })?;
        let candidates: Vec<&VerifyKey> = match &header.kid {
            Some(kid) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| k.kid.as_deref() == Some(kid.as_str()))
                    .ok_or_else(|| AuthError::UnknownKey(kid.clone()))?;
                vec![key]
            }
            None => self
                .keys
                .iter()
                .filter(|k| k.algorithm == header.alg)
                .collect(),
        };
        let mut last = AuthError::AlgorithmNotAllowed(format!("{:?}", header.alg));
        for key in candidates {
            if key.algorithm != header.alg {
                return Err(AuthError::AlgorithmNotAllowed(format!("{:?}", header.alg)));
            }
            match self.verify_with(token, key) {
                Ok(claims) => return Ok(claims),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    fn verify_with(&self, token: &str, key: &VerifyKey) -> std::result::Result<Claims, AuthError> {
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(audience) = &self.audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        } else {
            validation.validate_aud = false;
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        let data =
            jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                    ErrorKind::InvalidAudience => AuthError::WrongAudience,
                    ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                    ErrorKind::InvalidSignature => AuthError::BadSignature,
                    ErrorKind::InvalidAlgorithm => {
                        AuthError::AlgorithmNotAllowed(format!("{:?}", key.algorithm))
                    }
                    ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                        "aud" => AuthError::WrongAudience,
                        "iss" => AuthError::WrongIssuer,
                        _ => AuthError::InvalidClaims(format!("missing {claim}")),
                    },
                    ErrorKind::Json(_) => AuthError::InvalidClaims(e.to_string()),
                    _ => AuthError::Malformed(e.to_string()),
                }
            })?;
        let claims = data.claims;
        Limits::default()
            .check_tenant(&claims.tenant)
            .map_err(|e| AuthError::InvalidClaims(format!("tenant: {e}")))?;
        Ok(claims)
    }
}

/// Mints a token with an HS key, for development (`aiops token`) and tests.
pub fn mint(key: &KeyConfig, claims: &Claims) -> Result<String> {
    let kid = key.kid.clone().unwrap_or_default();
    let algorithm = parse_algorithm(&key.algorithm, &kid)?;
    if !is_hmac(algorithm) {
        return Err(Error::Key {
            kid,
            message: "only HS keys can mint development tokens (the gateway holds no private keys)"
                .into(),
        });
    }
    let mut header = Header::new(algorithm);
    header.kid = key.kid.clone();
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(&hmac_secret(key)?),
    )
    .map_err(|e| Error::Key {
        kid,
        message: e.to_string(),
    })
}

/// The channel names a gateway serves: a token's `channels` globs are matched against these.
pub const CHANNELS: [&str; Channel::ALL.len()] = [
    Channel::Anomalies.name(),
    Channel::Drift.name(),
    Channel::Config.name(),
];

/// The distinct channels a token grants, for messages.
pub fn granted(claims: &Claims) -> BTreeSet<&'static str> {
    CHANNELS
        .iter()
        .copied()
        .filter(|c| claims.allows(c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn hs_key(kid: &str, secret: &str) -> KeyConfig {
        KeyConfig {
            kid: Some(kid.into()),
            algorithm: "HS256".into(),
            secret: Some(secret.into()),
            secret_file: None,
            public_key_file: None,
        }
    }

    fn claims(exp_in: i64) -> Claims {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        Claims {
            tenant: "acme".into(),
            channels: vec!["anomalies".into()],
            exp: (now + exp_in) as u64,
            nbf: None,
            sub: Some("dashboard".into()),
            aud: None,
            iss: None,
            scope: None,
        }
    }

    fn authenticator(keys: Vec<KeyConfig>) -> Authenticator {
        Authenticator::from_config(&AuthConfig {
            keys,
            ..AuthConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn verifies_and_selects_keys_by_kid_for_rotation() {
        let old = hs_key("old", SECRET);
        let new = hs_key("new", "fedcba9876543210fedcba9876543210");
        let auth = authenticator(vec![old.clone(), new.clone()]);
        assert_eq!(
            auth.verify(&mint(&old, &claims(60)).unwrap())
                .unwrap()
                .tenant,
            "acme"
        );
        assert_eq!(
            auth.verify(&mint(&new, &claims(60)).unwrap())
                .unwrap()
                .tenant,
            "acme"
        );
        let stranger = hs_key("other", "ffffffffffffffffffffffffffffffff");
        assert_eq!(
            auth.verify(&mint(&stranger, &claims(60)).unwrap()),
            Err(AuthError::UnknownKey("other".into()))
        );
        let forged = hs_key("old", "ffffffffffffffffffffffffffffffff");
        assert_eq!(
            auth.verify(&mint(&forged, &claims(60)).unwrap()),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn expiry_and_claims_are_enforced() {
        let key = hs_key("k", SECRET);
        let auth = authenticator(vec![key.clone()]);
        assert_eq!(
            auth.verify(&mint(&key, &claims(-120)).unwrap()),
            Err(AuthError::Expired)
        );
        let mut early = claims(600);
        early.nbf = Some(early.exp - 60);
        assert_eq!(
            auth.verify(&mint(&key, &early).unwrap()),
            Err(AuthError::NotYetValid)
        );
        let mut sneaky = claims(60);
        sneaky.tenant = "acme}:x:{other".into();
        assert!(matches!(
            auth.verify(&mint(&key, &sneaky).unwrap()),
            Err(AuthError::InvalidClaims(_))
        ));
        assert!(matches!(
            auth.verify("not.a.token"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn secrets_must_be_long_enough() {
        let short = hs_key("k", "short");
        assert!(
            Authenticator::from_config(&AuthConfig {
                keys: vec![short],
                ..AuthConfig::default()
            })
            .is_err()
        );
    }

    #[test]
    fn jwks_keys_verify_by_kid() {
        use base64::Engine as _;
        let secret = "jwks-secret-0123456789abcdef012345";
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let jwks =
            format!(r#"{{"keys":[{{"kty":"oct","kid":"from-jwks","alg":"HS256","k":"{k}"}}]}}"#);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.jwks");
        std::fs::write(&path, jwks).unwrap();
        let auth = Authenticator::from_config(&AuthConfig {
            jwks_file: Some(path.clone()),
            ..AuthConfig::default()
        })
        .unwrap();
        let token = mint(&hs_key("from-jwks", secret), &claims(60)).unwrap();
        assert_eq!(auth.verify(&token).unwrap().tenant, "acme");
        std::fs::write(&path, r#"{"keys":[{"kty":"oct","k":"AAAA"}]}"#).unwrap();
        let err = Authenticator::from_config(&AuthConfig {
            jwks_file: Some(path),
            ..AuthConfig::default()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("kid"), "{err}");
    }

    #[test]
    fn a_scope_claim_is_read_as_words_or_as_a_list() {
        let mut claims = serde_json::json!({"tenant": "acme", "exp": 1});
        claims["scope"] = serde_json::json!("detectors:read detectors:write");
        let words: Claims = serde_json::from_value(claims.clone()).unwrap();
        claims["scope"] = serde_json::json!(["detectors:read", "detectors:write"]);
        let list: Claims = serde_json::from_value(claims.clone()).unwrap();
        for parsed in [words, list] {
            assert!(parsed.has_scope("detectors:write") && parsed.has_scope("detectors:read"));
            assert!(!parsed.has_scope("detectors"));
        }
        claims.as_object_mut().unwrap().remove("scope");
        let none: Claims = serde_json::from_value(claims).unwrap();
        assert!(!none.has_scope("detectors:read"));
    }

    #[test]
    fn channel_grants_are_globs() {
        let mut c = claims(60);
        assert!(c.allows("anomalies") && !c.allows("drift"));
        c.channels = vec!["*".into()];
        assert_eq!(granted(&c).len(), 3, "anomalies, drift and config");
    }
}
