//! The scope check in front of every route's handler.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lambda_http::request::RequestContext;

use crate::problem::ApiError;
use crate::scope::Scope;

/// Middleware of each route: no verified claims, 401; claims without the route's scope, 403
/// `insufficient_scope` (RFC 6750 section 3.1), before the handler reads or writes anything.
pub async fn require(State(scope): State<Scope>, request: Request, next: Next) -> Response {
    let claims = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()),
        _ => None,
    };
    match claims {
        None => ApiError::Unauthorized.into_response(),
        Some(jwt) if !scope.granted_by(&jwt.claims) => ApiError::InsufficientScope(scope).into_response(),
        Some(_) => next.run(request).await,
    }
}
