//! The ledger's HTTP API. One axum router, served by the Lambda function (API Gateway HTTP API,
//! payload v2) and by the local stack, so both run the same code.

mod accounts;
pub mod body;
pub mod cursor;
pub mod etag;
mod events;
pub mod extract;
pub mod observe;
pub mod prefer;
pub mod problem;
pub mod rate_limit;
pub mod respond;
mod state;
mod submissions;
pub mod tenant_limits;
mod transfers;
mod webhooks;

use axum::Router;
use axum::routing::{MethodRouter, delete, get, patch, post};

pub use problem::{ApiError, problem_codes};
pub use respond::REPLAY_HEADER;
pub use state::{AppState, Clock};

/// Every route with its handler. The router is built from this table, and the OpenAPI and template
/// tests check their documents against `routes()`, so the three cannot drift apart.
fn route_table() -> [(&'static str, &'static str, MethodRouter<AppState>); 22] {
    [
        ("POST", "/v1/accounts", post(accounts::create_account)),
        ("GET", "/v1/accounts", get(accounts::list_accounts)),
        ("GET", "/v1/accounts/{id}", get(accounts::get_account)),
        ("GET", "/v1/accounts/{id}/entries", get(accounts::list_entries)),
        ("GET", "/v1/accounts/{id}/balance", get(accounts::get_balance_at)),
        ("GET", "/v1/accounts/{id}/statement", get(accounts::get_statement)),
        ("POST", "/v1/transfers", post(transfers::create_transfer)),
        ("GET", "/v1/transfers/{id}", get(transfers::get_transfer)),
        ("POST", "/v1/linked-transfers", post(transfers::create_linked)),
        ("POST", "/v1/transfer-batches", post(submissions::create_batch)),
        ("GET", "/v1/transfer-batches/{id}", get(submissions::get_batch)),
        ("GET", "/v1/events", get(events::list_events)),
        ("GET", "/v1/events/{id}", get(events::get_event)),
        ("POST", "/v1/webhook-endpoints", post(webhooks::create_endpoint)),
        ("GET", "/v1/webhook-endpoints", get(webhooks::list_endpoints)),
        ("GET", "/v1/webhook-endpoints/{id}", get(webhooks::get_endpoint)),
        ("PATCH", "/v1/webhook-endpoints/{id}", patch(webhooks::update_endpoint)),
        ("DELETE", "/v1/webhook-endpoints/{id}", delete(webhooks::delete_endpoint)),
        ("POST", "/v1/webhook-endpoints/{id}/rotate-secret", post(webhooks::rotate_secret)),
        ("GET", "/v1/webhook-endpoints/{id}/deliveries", get(webhooks::list_deliveries)),
        ("POST", "/v1/webhook-endpoints/{id}/deliveries", post(webhooks::redeliver)),
        ("POST", "/v1/webhook-endpoints/{id}/replay", post(webhooks::replay)),
    ]
}

/// Every route as (method, path).
pub fn routes() -> Vec<(&'static str, &'static str)> {
    route_table().into_iter().map(|(method, path, _)| (method, path)).collect()
}

/// The API's router. Build it once at init.
pub fn router(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for (_, path, handler) in route_table() {
        router = router.route(path, handler);
    }
    router
        .fallback(problem::route_not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(axum::middleware::from_fn(etag::revalidate))
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state)
}
