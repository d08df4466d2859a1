//! The scope check in front of every route's handler.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::extract::verified_claims;
use crate::problem::ApiError;
use crate::scope::Scope;

/// Middleware of each route: no verified claims, 401; claims without the route's scope, 403
/// `insufficient_scope` (RFC 6750 section 3.1), before the handler reads or writes anything.
pub async fn require(State(scope): State<Scope>, request: Request, next: Next) -> Response {
    match verified_claims(request.extensions()) {
        None => ApiError::Unauthorized.into_response(),
        Some(claims) if !scope.granted_by(claims) => ApiError::InsufficientScope(scope).into_response(),
        Some(_) => next.run(request).await,
    }
}
