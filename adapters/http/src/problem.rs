//! The HTTP layer's one error type and the one place errors become HTTP responses:
//! `application/problem+json` (RFC 9457) with a stable machine-readable `code`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use std::time::Duration;

use ledger::port::StoreError;
use ledger::{LedgerError, RateLimit, RuleViolation};
use serde::Serialize;

use crate::scope::Scope;

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("the token lacks the scope {} this route requires", .0.name())]
    InsufficientScope(Scope),
    #[error("no route for this path")]
    RouteNotFound,
    #[error("the path does not accept this method")]
    MethodNotAllowed,
    #[error(
        "the tenant is over its limit of {} operations a second (bursts of {}); retry after {} s",
        limit.per_second(),
        limit.burst(),
        retry_after_seconds(*retry_after)
    )]
    RateLimited { retry_after: Duration, limit: RateLimit },
}

/// Whole seconds to wait, rounded up (`Retry-After` takes no fraction), at least 1.
fn retry_after_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl From<LedgerError> for ApiError {
    fn from(err: LedgerError) -> Self {
        ApiError::Store(StoreError::Ledger(err))
    }
}

/// An RFC 9457 problem document, with this API's extension members.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Stable, machine-readable; the OpenAPI document lists every value.
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reversed_transfer_id: Option<String>,
    /// A refused linked chain: the member refused by its own rule, and every member as recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfers: Option<Vec<ledger::Transfer>>,
    /// Seconds to wait before retrying (429, 503); also the `Retry-After` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The scope a 403 `insufficient_scope` lacked; also in `WWW-Authenticate` (RFC 6750).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            type_uri: format!("urn:ledger:problem:{code}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            code,
            field: None,
            fields: None,
            account_id: None,
            pending_id: None,
            reversed_transfer_id: None,
            transfer_id: None,
            transfers: None,
            retry_after: None,
            scope: None,
        }
    }
}

/// The codes of the HTTP layer's own problems (the rules' are `RuleViolation::CODES`).
const HTTP_CODES: &[&str] = &[
    "malformed_json",
    "invalid_field",
    "unauthorized",
    "insufficient_scope",
    "not_found",
    "route_not_found",
    "method_not_allowed",
    "idempotency_conflict",
    "transfer_in_flight",
    "limit_reached",
    "precondition_failed",
    "precondition_required",
    "payload_too_large",
    "rate_limited",
    "service_unavailable",
    "internal_error",
];

/// Every `code` a problem can carry; the OpenAPI test checks the document lists exactly these.
pub fn problem_codes() -> impl Iterator<Item = &'static str> {
    HTTP_CODES.iter().copied().chain(RuleViolation::CODES)
}

fn rule_problem(rule: &RuleViolation) -> Problem {
    let mut p =
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, rule.code(), "Refused by a rule", rule.to_string());
    p.account_id = rule.account_id().map(ToString::to_string);
    p.pending_id = rule.pending_id().map(ToString::to_string);
    p.reversed_transfer_id = rule.reversed_id().map(ToString::to_string);
    p
}

impl ApiError {
    pub fn problem(&self) -> Problem {
        use StatusCode as S;
        match self {
            ApiError::Store(StoreError::Ledger(err)) => match err {
                LedgerError::InvalidField { field, error } => {
                    let mut p =
                        Problem::new(S::BAD_REQUEST, "invalid_field", "Invalid field", error.reason());
                    p.detail = format!("{field}: {}", error.reason());
                    p.field = Some(field.clone());
                    p
                }
                LedgerError::Rejected(rule) => rule_problem(rule),
                LedgerError::ChainRejected { transfer_id, rule, transfers } => {
                    let mut p = rule_problem(rule);
                    p.title = "Linked transfers rejected";
                    p.detail = err.to_string();
                    p.transfer_id = Some(transfer_id.to_string());
                    p.transfers = Some(transfers.clone());
                    p
                }
                LedgerError::IdempotencyConflict { fields } => {
                    let mut p = Problem::new(
                        S::CONFLICT,
                        "idempotency_conflict",
                        "Idempotency conflict",
                        err.to_string(),
                    );
                    p.fields = Some(fields.clone());
                    p
                }
                LedgerError::InFlight { .. } => {
                    Problem::new(S::CONFLICT, "transfer_in_flight", "Transfer in flight", err.to_string())
                }
                LedgerError::LimitReached { .. } => {
                    Problem::new(S::CONFLICT, "limit_reached", "Limit reached", err.to_string())
                }
                LedgerError::NotFound { .. } => {
                    Problem::new(S::NOT_FOUND, "not_found", "Not found", err.to_string())
                }
                LedgerError::PreconditionFailed { .. } => Problem::new(
                    S::PRECONDITION_FAILED,
                    "precondition_failed",
                    "Precondition failed",
                    err.to_string(),
                ),
                LedgerError::PreconditionRequired => Problem::new(
                    S::PRECONDITION_REQUIRED,
                    "precondition_required",
                    "Precondition required",
                    err.to_string(),
                ),
            },
            ApiError::Store(StoreError::Unavailable(_)) => {
                let mut p = Problem::new(
                    S::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "Service unavailable",
                    "the ledger's store is overloaded or unreachable; retry the same request later",
                );
                p.retry_after = Some(RETRY_AFTER_SECONDS);
                p
            }
            ApiError::RateLimited { retry_after, .. } => {
                let mut p =
                    Problem::new(S::TOO_MANY_REQUESTS, "rate_limited", "Too many requests", self.to_string());
                p.retry_after = Some(retry_after_seconds(*retry_after));
                p
            }
            ApiError::Store(StoreError::Corrupt(_) | StoreError::Unexpected(_)) => Problem::new(
                S::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Internal error",
                "an internal error occurred",
            ),
            ApiError::MalformedJson(why) => {
                Problem::new(S::BAD_REQUEST, "malformed_json", "Malformed JSON", why.clone())
            }
            ApiError::PayloadTooLarge(_) => {
                Problem::new(S::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large", self.to_string())
            }
            ApiError::Unauthorized => {
                Problem::new(S::UNAUTHORIZED, "unauthorized", "Unauthorized", self.to_string())
            }
            ApiError::InsufficientScope(scope) => {
                let mut p =
                    Problem::new(S::FORBIDDEN, "insufficient_scope", "Insufficient scope", self.to_string());
                p.scope = Some(scope.name());
                p
            }
            ApiError::RouteNotFound => {
                Problem::new(S::NOT_FOUND, "route_not_found", "Not found", self.to_string())
            }
            ApiError::MethodNotAllowed => Problem::new(
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
                self.to_string(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        if problem.status >= 500 {
            tracing::error!(error = %self, code = problem.code, "request failed");
        } else {
            tracing::info!(code = problem.code, status = problem.status, "request refused");
        }
        problem.into_response()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let scope = self.scope;
        let mut response = (status, Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(scope) = scope {
            let challenge = format!(r#"Bearer error="insufficient_scope", scope="{scope}""#);
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// The answer to a path no route matches.
pub async fn route_not_found() -> ApiError {
    ApiError::RouteNotFound
}

/// The answer to a method a route does not take.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
