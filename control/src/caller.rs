//! Who is calling: the verified token of the request, as an extractor.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use aiops_gateway::Claims;
use aiops_models::Actor;

use crate::{ApiError, ApiState};

/// A caller whose `Authorization: Bearer` token verified; its tenant is the only one it can
/// touch.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's claims.
    pub claims: Claims,
}

impl Caller {
    /// The caller's tenant.
    pub fn tenant(&self) -> &str {
        &self.claims.tenant
    }

    /// Refuses with 403 unless the token grants `scope`.
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.claims.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(scope))
        }
    }

    /// Who the audit log names, and why: the token's subject, else the tenant.
    pub fn actor(&self, reason: &str) -> Actor {
        let who = match &self.claims.sub {
            Some(subject) => subject.clone(),
            None => format!("tenant {}", self.claims.tenant),
        };
        Actor::new(who, reason)
    }
}

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Caller, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(aiops_gateway::server::bearer_token)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing_token",
                    "send the token as `Authorization: Bearer <token>` (aiops token mints one)",
                )
            })?;
        let claims = state
            .auth
            .verify(&token)
            .map_err(|error| ApiError::unauthorized(error.code(), &error.to_string()))?;
        Ok(Caller { claims })
    }
}
