//! Request extractors: they turn raw HTTP into domain values or an `ApiError`, never a panic.

use std::collections::HashMap;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Query, Request};
use http::request::Parts;
use lambda_http::request::RequestContext;
use ledger::{LedgerError, TenantId};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::problem::ApiError;
use crate::state::AppState;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The largest body of a batch of up to 1,000 transfers.
pub const MAX_BATCH_BODY_BYTES: usize = 1024 * 1024;

/// The tenant named by a claim of the bearer token that API Gateway's JWT authorizer verified (the
/// local stack plays that part), or, for a token without that claim, the tenant of its machine
/// client (`client_id`, mapped by `CLIENT_TENANTS`). No verified claim, no tenant: 401. Not charged to its rate limit:
/// a route takes [`Admitted`](crate::rate_limit::Admitted) for that, or charges per transfer
/// (`rate_limit::spend`) once its body parses.
pub struct Tenant(pub TenantId);

impl<S> FromRequestParts<S> for Tenant
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let claims = verified_claims(&parts.extensions);
        let named = claims.and_then(|c| c.get(app.tenant_claim.as_str()));
        let tenant = match named {
            Some(raw) => TenantId::parse(raw.as_str()).ok(),
            // A client-credentials token names its client, not a tenant.
            None => {
                claims.and_then(|c| c.get("client_id")).and_then(|id| app.client_tenants.get(id)).cloned()
            }
        };
        let tenant = tenant.ok_or(ApiError::Unauthorized)?;
        crate::observe::record("tenant", tenant.as_str());
        Ok(Tenant(tenant))
    }
}

/// The claims of the bearer token API Gateway's JWT authorizer verified (the local stack plays
/// that part), as the request context carries them: none without a verified token.
pub(crate) fn verified_claims(extensions: &http::Extensions) -> Option<&HashMap<String, String>> {
    match extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.authorizer.as_ref()?.jwt.as_ref().map(|jwt| &jwt.claims)
        }
        _ => None,
    }
}

/// A JSON body of at most `MAX` bytes, deserialised into domain newtypes. A syntax error is
/// `malformed_json`; a value that does not parse is `invalid_field` naming the field.
pub struct JsonBody<T, const MAX: usize = MAX_BODY_BYTES>(pub T);

impl<S, T, const MAX: usize> FromRequest<S> for JsonBody<T, MAX>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let declared =
            req.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
        if declared.is_some_and(|len: usize| len > MAX) {
            return Err(ApiError::PayloadTooLarge(MAX));
        }
        let bytes =
            axum::body::to_bytes(req.into_body(), MAX).await.map_err(|_| ApiError::PayloadTooLarge(MAX))?;
        parse_json(&bytes).map(JsonBody)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde reads a struct from an array of its fields in order too; every body here is an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(invalid("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        classify(err.into_inner(), path)
    })?;
    // Trailing characters after the value make the body malformed too.
    de.end().map_err(|err| classify(err, ".".into()))?;
    Ok(value)
}

/// Sorts a serde_json error into malformed JSON (syntax, with its position) or an invalid field.
fn classify(err: serde_json::Error, path: String) -> ApiError {
    if !matches!(err.classify(), serde_json::error::Category::Data) {
        return ApiError::MalformedJson(err.to_string());
    }
    // serde reads a struct from an array too; a body must be an object.
    if path.starts_with('[') {
        return invalid("body", "must be a JSON object");
    }
    let message = without_position(&err.to_string());
    let field = named_field(&message).unwrap_or(if path == "." { "body".into() } else { path });
    invalid(&field, &message)
}

/// serde_json appends " at line L column C": useful for syntax errors, noise for a field's error.
fn without_position(message: &str) -> String {
    match message.rsplit_once(" at line ") {
        Some((head, _)) => head.to_owned(),
        None => message.to_owned(),
    }
}

/// serde reports a missing or unknown field at its parent's path, naming it in the message (as
/// `ledger::TransferFields` does for a field another kind's field excludes).
fn named_field(message: &str) -> Option<String> {
    let rest =
        ["missing field `", "unknown field `", "field `"].iter().find_map(|p| message.strip_prefix(p))?;
    rest.split_once('`').map(|(name, _)| name.to_owned())
}

/// A list's page: its size (the query's `limit`, 1-100, default 25) and the opaque `cursor` a
/// previous page returned.
pub struct PageParams {
    pub size: u16,
    pub cursor: Option<String>,
}

pub const DEFAULT_PAGE_SIZE: u16 = 25;
pub const MAX_PAGE_SIZE: u16 = 100;

impl<S: Send + Sync> FromRequestParts<S> for PageParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(raw) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid("query", "is not a valid query string"))?;
        let size = match raw.get("limit") {
            None => DEFAULT_PAGE_SIZE,
            Some(v) => {
                v.parse::<u16>().ok().filter(|l| (1..=MAX_PAGE_SIZE).contains(l)).ok_or_else(|| {
                    invalid("limit", &format!("must be an integer from 1 to {MAX_PAGE_SIZE}"))
                })?
            }
        };
        Ok(PageParams { size, cursor: raw.get("cursor").cloned() })
    }
}

/// The RFC 3339 instants of a query string (`at`, `from`, `to`).
pub struct Instants(pub HashMap<String, String>);

impl Instants {
    pub fn get(&self, name: &str) -> Result<Option<OffsetDateTime>, ApiError> {
        self.0
            .get(name)
            .map(|raw| {
                OffsetDateTime::parse(raw, &Rfc3339)
                    .map_err(|_| invalid(name, "must be an RFC 3339 instant, e.g. 2026-11-28T10:15:35Z"))
            })
            .transpose()
    }

    pub fn required(&self, name: &str) -> Result<OffsetDateTime, ApiError> {
        self.get(name)?.ok_or_else(|| invalid(name, "is required"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Instants {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(raw) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid("query", "is not a valid query string"))?;
        Ok(Instants(raw))
    }
}

/// The `metadata[key]=value` parameters of a query string, every other parameter one of `known`:
/// an unknown one is refused, so a misspelt filter never widens a list to everything.
pub fn metadata_filter(
    raw: &HashMap<String, String>,
    known: &[&str],
) -> Result<ledger::MetadataMatch, ApiError> {
    let mut pairs = std::collections::BTreeMap::new();
    for (name, value) in raw {
        match name.strip_prefix("metadata[").and_then(|k| k.strip_suffix(']')) {
            Some(key) => {
                pairs.insert(key.to_owned(), value.clone());
            }
            None if known.contains(&name.as_str()) => {}
            None => return Err(invalid(name, "is not a parameter of this list")),
        }
    }
    ledger::MetadataMatch::parse(pairs).map_err(|e| LedgerError::invalid("metadata", e).into())
}

/// An id from the path, or a `400` naming `id`.
pub fn path_id<T>(
    raw: String,
    parse: impl FnOnce(String) -> Result<T, ledger::FieldError>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|e| LedgerError::invalid("id", e).into())
}

pub fn invalid(field: &str, reason: &str) -> ApiError {
    LedgerError::invalid(field, ledger::FieldError::new(reason)).into()
}

/// `?dry_run=true` on a route that creates transfers: decide them and write nothing.
pub struct DryRunParam(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for DryRunParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(raw) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid("query", "does not parse"))?;
        match raw.get("dry_run").map(String::as_str) {
            None | Some("false") => Ok(Self(false)),
            Some("true") => Ok(Self(true)),
            Some(_) => Err(invalid("dry_run", "must be true or false")),
        }
    }
}
