//! The ledger's HTTP API. One axum router, served by the Lambda function (API Gateway HTTP API,
//! payload v2) and by the local stack, so both run the same code.

mod account_changes;
mod accounts;
mod authorize;
pub mod body;
pub mod cursor;
mod dry_run;
pub mod etag;
mod events;
pub mod extract;
pub mod observe;
pub mod prefer;
pub mod problem;
pub mod rate_limit;
mod reconciliations;
pub mod respond;
pub mod scope;
mod search;
mod state;
mod submissions;
pub mod tenant_limits;
mod transfers;
mod webhooks;

use axum::Router;
use axum::routing::{MethodRouter, delete, get, patch, post};

pub use problem::{ApiError, problem_codes};
pub use respond::REPLAY_HEADER;
pub use scope::Scope;
pub use state::{AppState, Clock};

/// Every route with the scope it requires and its handler. The router is built from this table,
/// and the OpenAPI and template tests check their documents (paths, `AuthorizationScopes`,
/// `security`) against `routes()`, so the three cannot drift apart.
fn route_table() -> [(&'static str, &'static str, Scope, MethodRouter<AppState>); 30] {
    use Scope::{Admin, Read, Write};
    [
        ("POST", "/v1/accounts", Write, post(accounts::create_account)),
        ("GET", "/v1/accounts", Read, get(accounts::list_accounts)),
        ("GET", "/v1/accounts/{id}", Read, get(accounts::get_account)),
        ("PATCH", "/v1/accounts/{id}", Write, patch(account_changes::patch_account)),
        ("POST", "/v1/accounts/{id}/freeze", Admin, post(account_changes::freeze_account)),
        ("POST", "/v1/accounts/{id}/unfreeze", Admin, post(account_changes::unfreeze_account)),
        ("POST", "/v1/accounts/{id}/close", Admin, post(account_changes::close_account)),
        ("GET", "/v1/accounts/{id}/entries", Read, get(accounts::list_entries)),
        ("GET", "/v1/accounts/{id}/balance", Read, get(accounts::get_balance_at)),
        ("GET", "/v1/accounts/{id}/statement", Read, get(accounts::get_statement)),
        ("POST", "/v1/accounts/{id}/reconciliations", Write, post(reconciliations::create_reconciliation)),
        (
            "GET",
            "/v1/accounts/{id}/reconciliations/{reconciliation_id}",
            Read,
            get(reconciliations::get_reconciliation),
        ),
        ("POST", "/v1/transfers", Write, post(transfers::create_transfer)),
        ("GET", "/v1/transfers", Read, get(search::search_transfers)),
        ("GET", "/v1/transfers/{id}", Read, get(transfers::get_transfer)),
        ("PATCH", "/v1/transfers/{id}", Write, patch(transfers::patch_transfer)),
        ("POST", "/v1/linked-transfers", Write, post(transfers::create_linked)),
        ("POST", "/v1/transfer-batches", Write, post(submissions::create_batch)),
        ("GET", "/v1/transfer-batches/{id}", Read, get(submissions::get_batch)),
        ("GET", "/v1/events", Read, get(events::list_events)),
        ("GET", "/v1/events/{id}", Read, get(events::get_event)),
        ("POST", "/v1/webhook-endpoints", Admin, post(webhooks::create_endpoint)),
        ("GET", "/v1/webhook-endpoints", Read, get(webhooks::list_endpoints)),
        ("GET", "/v1/webhook-endpoints/{id}", Read, get(webhooks::get_endpoint)),
        ("PATCH", "/v1/webhook-endpoints/{id}", Admin, patch(webhooks::update_endpoint)),
        ("DELETE", "/v1/webhook-endpoints/{id}", Admin, delete(webhooks::delete_endpoint)),
        ("POST", "/v1/webhook-endpoints/{id}/rotate-secret", Admin, post(webhooks::rotate_secret)),
        ("GET", "/v1/webhook-endpoints/{id}/deliveries", Read, get(webhooks::list_deliveries)),
        ("POST", "/v1/webhook-endpoints/{id}/deliveries", Admin, post(webhooks::redeliver)),
        ("POST", "/v1/webhook-endpoints/{id}/replay", Admin, post(webhooks::replay)),
    ]
}

/// Every route as (method, path).
pub fn routes() -> Vec<(&'static str, &'static str)> {
    route_table().into_iter().map(|(method, path, _, _)| (method, path)).collect()
}

/// Every route as (method, path, the scope it requires).
pub fn scoped_routes() -> Vec<(&'static str, &'static str, Scope)> {
    route_table().into_iter().map(|(method, path, scope, _)| (method, path, scope)).collect()
}

/// The API's router. Build it once at init.
pub fn router(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for (_, path, scope, handler) in route_table() {
        let checked = handler.route_layer(axum::middleware::from_fn_with_state(scope, authorize::require));
        router = router.route(path, checked);
    }
    router
        .fallback(problem::route_not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), etag::revalidate))
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state)
}
