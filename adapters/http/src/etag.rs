//! Conditional GETs (RFC 9110 §13): every `200` answer to a GET carries an `ETag` and
//! `Cache-Control: private, no-cache` (a client or a private cache keeps it and asks again with
//! `If-None-Match`); a request whose `If-None-Match` names the current tag is answered
//! `304 Not Modified` without a body.
//!
//! The tag is a hash of the body, unless the handler set a cheaper one it can check without
//! reading the whole resource (an account's: its id and version, see [`account_tag`]). Either way
//! it is the tenant's own: a tag of one tenant's resource never names another's, even one with the
//! same id and content, and every tagged answer says `Vary: Authorization`, so a cache shared by
//! several tenants keeps their copies apart.
//!
//! Conditional changes (RFC 9110 §13.1.1): `If-Match` naming account tags makes a change (an
//! account's, or a transfer moving the accounts) happen only if each is still at its version.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, ETAG, IF_MATCH, IF_NONE_MATCH, VARY};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use ledger::{AccountId, AccountVersion, LedgerError, TenantId};
use sha2::{Digest, Sha256};

use crate::extract::Tenant;
use crate::state::AppState;

/// The largest body a GET answers (a page of 100 entries or accounts with their metadata).
const MAX_GET_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A strong tag of `bytes` as `tenant`'s: the first 16 bytes of the SHA-256 of the tenant and
/// them, in hex.
pub fn body_tag(tenant: &TenantId, bytes: &[u8]) -> HeaderValue {
    let digest = Sha256::new().chain_update(tenant.as_str()).chain_update([0]).chain_update(bytes).finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// Whether the request's `If-None-Match` names `tag` (`*`, or one of a list; weak tags compared
/// weakly, as RFC 9110 asks for `If-None-Match`).
pub fn matches(headers: &HeaderMap, tag: &HeaderValue) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let Ok(tag) = tag.to_str() else { return false };
    headers.get_all(IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|list| {
        list.split(',').any(|candidate| candidate.trim() == "*" || opaque(candidate) == opaque(tag))
    })
}

/// An account's tag: its id, its version and its tenant's mark
/// (`"{id}.{entries}.{revision}.{mark}"`). Every change of the account moves the version, so a
/// revalidation reads only its small balance item, and an `If-Match` names the account it is about.
pub fn account_tag(tenant: &TenantId, id: &AccountId, version: AccountVersion) -> HeaderValue {
    let mark = tenant_mark(tenant);
    HeaderValue::from_str(&format!("\"{id}.{}.{}.{mark}\"", version.entries, version.revision))
        .unwrap_or(HeaderValue::from_static("\"\""))
}

/// What makes a tenant's account tags its own: 12 hex digits of the SHA-256 of its id (a collision
/// between two tenants is one chance in 2^48, and only makes a tag theirs as well).
fn tenant_mark(tenant: &TenantId) -> String {
    let digest = Sha256::new().chain_update("tenant-mark:").chain_update(tenant.as_str()).finalize();
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// What `If-Match` asks of accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfMatch {
    /// No `If-Match`.
    Absent,
    /// `*`: the resource exists, at any version.
    Any,
    /// Each account at its version.
    Accounts(Vec<(AccountId, AccountVersion)>),
}

impl IfMatch {
    /// Reads `If-Match` as `tenant`'s. A tag that is no account's tag of this tenant can match no
    /// current one: the precondition fails (412) as for a stale tag. Weak tags never match (RFC
    /// 9110 §13.1.1).
    pub fn from_headers(headers: &HeaderMap, tenant: &TenantId) -> Result<Self, LedgerError> {
        let values = headers.get_all(IF_MATCH).into_iter().filter_map(|v| v.to_str().ok());
        let tags: Vec<&str> =
            values.flat_map(|v| v.split(',')).map(str::trim).filter(|t| !t.is_empty()).collect();
        match tags.as_slice() {
            [] => return Ok(Self::Absent),
            ["*"] => return Ok(Self::Any),
            _ => {}
        }
        let mark = tenant_mark(tenant);
        let parse = |tag: &str| -> Option<(AccountId, AccountVersion)> {
            let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
            let mut parts = inner.split('.');
            let (id, entries, revision) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next()? != mark || parts.next().is_some() {
                return None;
            }
            let version = AccountVersion { entries: entries.parse().ok()?, revision: revision.parse().ok()? };
            Some((AccountId::parse(id).ok()?, version))
        };
        let stale = |tag: &str| LedgerError::PreconditionFailed { what: "resource", id: tag.to_owned() };
        tags.into_iter()
            .map(|tag| parse(tag).ok_or_else(|| stale(tag)))
            .collect::<Result<_, _>>()
            .map(Self::Accounts)
    }

    /// The version `If-Match` names for the one account `id` (`None`: any). `PreconditionRequired`
    /// without the header; `PreconditionFailed` if it names only other accounts, or more than one
    /// version of this one.
    pub fn for_account(&self, id: &AccountId) -> Result<Option<AccountVersion>, LedgerError> {
        let stale = || LedgerError::PreconditionFailed { what: "account", id: id.to_string() };
        match self {
            Self::Absent => Err(LedgerError::PreconditionRequired),
            Self::Any => Ok(None),
            Self::Accounts(tags) => match tags.as_slice() {
                [(tagged, version)] if tagged == id => Ok(Some(*version)),
                _ => Err(stale()),
            },
        }
    }
}

/// Whether `If-Match` admits a change of the resource whose current tag is `current` (`what`
/// `id`): `*` or a list naming it (compared strongly). `PreconditionRequired` without the header,
/// `PreconditionFailed` if it names only other tags.
pub fn require_match(
    headers: &HeaderMap,
    current: &HeaderValue,
    what: &'static str,
    id: &str,
) -> Result<(), LedgerError> {
    let Ok(current) = current.to_str() else { return Err(LedgerError::PreconditionRequired) };
    let values = headers.get_all(IF_MATCH).into_iter().filter_map(|v| v.to_str().ok());
    let tags: Vec<&str> =
        values.flat_map(|v| v.split(',')).map(str::trim).filter(|t| !t.is_empty()).collect();
    match tags.as_slice() {
        [] => Err(LedgerError::PreconditionRequired),
        tags if tags.iter().any(|t| *t == "*" || *t == current) => Ok(()),
        _ => Err(LedgerError::PreconditionFailed { what, id: id.to_owned() }),
    }
}

/// `304 Not Modified` with `tag`.
pub fn not_modified(tag: HeaderValue) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    response.headers_mut().insert(ETAG, tag);
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    response.headers_mut().insert(VARY, HeaderValue::from_static("Authorization"));
    response
}

/// The middleware: tags every `200` answer to a GET as its tenant's and answers `304` when the
/// client has it. (A request without a tenant is answered `401` untagged.)
pub async fn revalidate(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let tenant = Tenant::from_request_parts(&mut parts, &app).await.ok();
    let request = Request::from_parts(parts, body);
    let Some(Tenant(tenant)) = tenant else { return next.run(request).await };
    let asked = request.headers().clone();
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_GET_BODY_BYTES).await else {
        tracing::error!("a GET body could not be buffered to tag it");
        let mut failed = Response::new(Body::empty());
        *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return failed;
    };
    let tag = parts.headers.get(ETAG).cloned().unwrap_or_else(|| body_tag(&tenant, &bytes));
    if matches(&asked, &tag) {
        return not_modified(tag);
    }
    parts.headers.insert(ETAG, tag);
    parts.headers.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("private, no-cache"));
    parts.headers.insert(VARY, HeaderValue::from_static("Authorization"));
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    #[test]
    fn if_none_match_names_a_tag_strongly_weakly_in_a_list_or_by_star() {
        let tag = body_tag(&tenant("acme"), b"{}");
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            headers
        };
        let tag_text = tag.to_str().unwrap().to_owned();
        assert!(matches(&with(&tag_text), &tag));
        assert!(matches(&with(&format!("W/{tag_text}")), &tag));
        assert!(matches(&with(&format!("\"other\", {tag_text}")), &tag));
        assert!(matches(&with("*"), &tag));
        assert!(!matches(&with("\"other\""), &tag));
        assert!(!matches(&HeaderMap::new(), &tag));
        assert_ne!(body_tag(&tenant("acme"), b"{}"), body_tag(&tenant("acme"), b"{ }"));
    }

    #[test]
    fn a_tag_is_its_tenants_own() {
        let (acme, globex) = (tenant("acme"), tenant("globex"));
        assert_ne!(body_tag(&acme, b"{}"), body_tag(&globex, b"{}"));
        let id = AccountId::parse("alice").unwrap();
        let version = AccountVersion { entries: 3, revision: 1 };
        let acme_tag = account_tag(&acme, &id, version);
        assert_ne!(acme_tag, account_tag(&globex, &id, version));
        let mut headers = HeaderMap::new();
        headers.insert(IF_MATCH, acme_tag);
        assert_eq!(IfMatch::from_headers(&headers, &acme).unwrap(), IfMatch::Accounts(vec![(id, version)]));
        let foreign = IfMatch::from_headers(&headers, &globex);
        assert!(matches!(foreign, Err(LedgerError::PreconditionFailed { .. })), "{foreign:?}");
    }
}
