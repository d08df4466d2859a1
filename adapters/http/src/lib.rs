//! The ledger's HTTP API. One axum router, served by the Lambda function (API Gateway HTTP API,
//! payload v2) and by the local stack, so both run the same code.

pub mod body;
pub mod cursor;
pub mod extract;
mod handlers;
pub mod problem;
mod state;

use axum::Router;
use axum::routing::{MethodRouter, get, post};

pub use handlers::REPLAY_HEADER;
pub use problem::{ApiError, PROBLEM_CODES};
pub use state::{AppState, DEFAULT_TENANT_CLAIM};

/// Every route: (method, path). The router is built from this table, and the OpenAPI test checks
/// the document against it, so the two cannot drift apart.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/accounts"),
    ("GET", "/v1/accounts"),
    ("GET", "/v1/accounts/{id}"),
    ("GET", "/v1/accounts/{id}/entries"),
    ("POST", "/v1/transfers"),
    ("GET", "/v1/transfers/{id}"),
];

fn handler_for(method: &str, path: &str) -> MethodRouter<AppState> {
    match (method, path) {
        ("POST", "/v1/accounts") => post(handlers::create_account),
        ("GET", "/v1/accounts") => get(handlers::list_accounts),
        ("GET", "/v1/accounts/{id}") => get(handlers::get_account),
        ("GET", "/v1/accounts/{id}/entries") => get(handlers::list_entries),
        ("POST", "/v1/transfers") => post(handlers::create_transfer),
        ("GET", "/v1/transfers/{id}") => get(handlers::get_transfer),
        _ => unreachable!("ROUTES names a route without a handler: {method} {path}"),
    }
}

/// The API's router. Build it once at init.
pub fn router(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for (method, path) in ROUTES {
        router = router.route(path, handler_for(method, path));
    }
    router
        .fallback(handlers::route_not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(state)
}
