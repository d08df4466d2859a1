//! Dry runs (`?dry_run=true` on the routes that create transfers): the transfers decided as the
//! ledger would decide them now, by the one engine, and nothing written.

use axum::Json;
use axum::response::{IntoResponse, Response};
use ledger::{NewTransfer, TenantId};

use crate::body::DryRunBody;
use crate::problem::ApiError;
use crate::state::AppState;

/// 200 with what `transfers` would do: each as it would be recorded, and the accounts they move as
/// they would stand.
pub(crate) async fn answer(
    app: &AppState,
    tenant: &TenantId,
    transfers: Vec<NewTransfer>,
) -> Result<Response, ApiError> {
    let run = app.store.dry_run(tenant, transfers, app.now()).await?;
    tracing::info!(transfers = run.transfers.len(), "dry run");
    Ok(Json(DryRunBody::from(run)).into_response())
}
