//! The local stack's stand-in for API Gateway's JWT authorizer: it verifies bearer tokens signed
//! with a local development key and hands the verified claims to the router in the same request
//! context shape API Gateway uses, so the router's tenant extraction is the code that runs in AWS.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequestContext,
};
use lambda_http::request::RequestContext;
use ledger_http::{ApiError, Scope};
use serde_json::Value;

pub const ISSUER: &str = "ledger-local";
pub const AUDIENCE: &str = "ledger-api";

/// Signs and verifies local development tokens (HS256).
#[derive(Clone)]
pub struct DevAuth {
    key: Vec<u8>,
    tenant_claim: String,
}

impl DevAuth {
    pub fn new(key: impl Into<Vec<u8>>, tenant_claim: impl Into<String>) -> Self {
        Self { key: key.into(), tenant_claim: tenant_claim.into() }
    }

    /// A token for `tenant` with every scope, valid for `ttl`.
    pub fn token(&self, tenant: &str, ttl: Duration) -> String {
        self.scoped_token(tenant, &Scope::ALL, ttl)
    }

    /// A client-credentials token of machine client `client_id`: no tenant claim, as Cognito issues
    /// them (the API maps the client to its tenant).
    pub fn client_token(&self, client_id: &str, scopes: &[Scope], ttl: Duration) -> String {
        self.sign(serde_json::json!({"sub": client_id, "client_id": client_id}), scopes, ttl)
    }

    /// A token for `tenant` granting `scopes` (the `scope` claim, space-delimited), valid for `ttl`.
    pub fn scoped_token(&self, tenant: &str, scopes: &[Scope], ttl: Duration) -> String {
        let own =
            serde_json::json!({"sub": format!("dev-user@{tenant}"), self.tenant_claim.as_str(): tenant});
        self.sign(own, scopes, ttl)
    }

    fn sign(&self, mut claims: Value, scopes: &[Scope], ttl: Duration) -> String {
        let scope = scopes.iter().map(|s| s.name()).collect::<Vec<_>>().join(" ");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        for (name, value) in [
            ("iss", Value::from(ISSUER)),
            ("aud", Value::from(AUDIENCE)),
            ("iat", Value::from(now)),
            ("exp", Value::from(now + ttl.as_secs())),
            ("scope", Value::from(scope)),
        ] {
            claims[name] = value;
        }
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&self.key))
            .unwrap_or_default()
    }

    /// The claims of a valid token, as API Gateway passes them: every value a string.
    pub fn verify(&self, token: &str) -> Option<HashMap<String, String>> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        let data = jsonwebtoken::decode::<HashMap<String, Value>>(
            token,
            &DecodingKey::from_secret(&self.key),
            &validation,
        )
        .ok()?;
        let as_string = |v: Value| match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        Some(data.claims.into_iter().map(|(k, v)| (k, as_string(v))).collect())
    }
}

/// Middleware: no valid bearer token, 401 (as API Gateway answers); otherwise the request goes on
/// with the verified claims in its `RequestContext`.
pub async fn authorize(State(auth): State<DevAuth>, mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(claims) = token.and_then(|t| auth.verify(t.trim())) else {
        return ApiError::Unauthorized.into_response();
    };
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = claims;
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.authorizer = Some(authorizer);
    context.stage = Some("$default".into());
    request.extensions_mut().insert(RequestContext::ApiGatewayV2(context));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_with_its_key() {
        let auth = DevAuth::new(b"k1".to_vec(), "tenant_id");
        let token = auth.token("acme", Duration::from_secs(60));
        let claims = auth.verify(&token).unwrap();
        assert_eq!(claims["tenant_id"], "acme");
        assert_eq!(claims["scope"], "ledger:read ledger:write ledger:admin");
        assert!(DevAuth::new(b"k2".to_vec(), "tenant_id").verify(&token).is_none());
        assert!(auth.verify("not.a.token").is_none());
    }
}
