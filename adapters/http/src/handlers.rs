//! Route handlers: extract, call the store, shape the response. No rules live here.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use ledger::{AccountId, LedgerError, NewTransfer, TransferId, TransferStatus};
use ledger_telemetry::TraceContext;
use ledger_telemetry::metrics;
use time::OffsetDateTime;

use crate::body::{AccountBody, CreateAccount, EntryBody, ListBody};
use crate::cursor;
use crate::extract::{JsonBody, ListParams, Tenant};
use crate::observe::record;
use crate::prefer::Prefer;
use crate::problem::ApiError;
use crate::respond::{accepted, created, with_replay_flag};
use crate::state::AppState;

fn path_id<T>(
    raw: String,
    parse: impl FnOnce(String) -> Result<T, ledger::FieldError>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|e| LedgerError::invalid("id", e).into())
}

pub async fn create_account(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(body): JsonBody<CreateAccount>,
) -> Result<Response, ApiError> {
    let outcome =
        app.store.create_account(&tenant, body.into_new_account(), OffsetDateTime::now_utc()).await?;
    record("accountId", outcome.value().id.as_str());
    tracing::info!(replayed = outcome.is_replay(), "account created");
    let body = Json(AccountBody::from(outcome.value().clone()));
    Ok(created(outcome, body))
}

pub async fn get_account(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<Json<AccountBody>, ApiError> {
    let id = path_id(id, AccountId::parse)?;
    record("accountId", id.as_str());
    Ok(Json(app.store.get_account(&tenant, &id).await?.into()))
}

pub async fn list_accounts(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    page: ListParams,
) -> Result<Json<ListBody<AccountBody>>, ApiError> {
    let after = page.cursor.as_deref().map(cursor::parse_account_cursor).transpose()?;
    let found = app.store.list_accounts(&tenant, page.limit, after.as_ref()).await?;
    Ok(Json(ListBody {
        data: found.items.into_iter().map(AccountBody::from).collect(),
        next_cursor: found.next.as_ref().map(cursor::account_cursor),
    }))
}

pub async fn list_entries(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    page: ListParams,
) -> Result<Json<ListBody<EntryBody>>, ApiError> {
    let id = path_id(id, AccountId::parse)?;
    record("accountId", id.as_str());
    let before = page.cursor.as_deref().map(cursor::parse_entry_cursor).transpose()?;
    let found = app.store.list_entries(&tenant, &id, page.limit, before).await?;
    Ok(Json(ListBody {
        data: found.items.into_iter().map(EntryBody::from).collect(),
        next_cursor: found.next.map(cursor::entry_cursor),
    }))
}

/// 201 committed (a hold: 201 `pending`), 422 rejected by a rule; a retry of the same request gets
/// the same answer with 200 instead of 201 and the replay header on both (a hold as it stands now:
/// `posted`, `voided` or `expired` once resolved). An id that a queued submission holds with the
/// same fields, not applied yet, is answered 202 with the transfer as it stands.
pub async fn create_transfer(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    headers: http::HeaderMap,
    Extension(trace): Extension<TraceContext>,
    JsonBody(body): JsonBody<NewTransfer>,
) -> Result<Response, ApiError> {
    record("transferId", body.id.as_str());
    if let Some(pending) = body.kind.pending_id() {
        record("pendingId", pending.as_str());
    }
    if let ledger::TransferKind::Reversal { reversed_id, .. } = &body.kind {
        record("reversedId", reversed_id.as_str());
    }
    let prefer = Prefer::from_headers(&headers);
    if prefer.respond_async {
        return crate::batches::create_transfer_async(&app, &tenant, trace, body, prefer).await;
    }
    let outcome = app.store.create_transfer(&tenant, body, OffsetDateTime::now_utc()).await?;
    let replayed = outcome.is_replay();
    match &outcome.value().status {
        TransferStatus::Committed
        | TransferStatus::Pending
        | TransferStatus::Posted { .. }
        | TransferStatus::Voided { .. }
        | TransferStatus::Expired => {
            if !replayed {
                metrics::transfer_committed();
                tracing::info!("transfer committed");
            }
            let body = Json(outcome.value().clone());
            Ok(created(outcome, body))
        }
        TransferStatus::Queued => {
            let location = format!("/v1/transfers/{}", outcome.value().request.id);
            Ok(accepted(location, replayed, outcome.value().clone()))
        }
        TransferStatus::Rejected { reason } => {
            if !replayed {
                metrics::transfer_rejected(reason.code());
                tracing::info!(reason = reason.code(), "transfer rejected");
            }
            let problem = ApiError::from(LedgerError::Rejected(reason.clone())).into_response();
            Ok(with_replay_flag(problem, replayed))
        }
    }
}

pub async fn get_transfer(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<Json<ledger::Transfer>, ApiError> {
    let id = path_id(id, TransferId::parse)?;
    record("transferId", id.as_str());
    Ok(Json(app.store.get_transfer(&tenant, &id, OffsetDateTime::now_utc()).await?))
}

pub async fn route_not_found() -> ApiError {
    ApiError::RouteNotFound
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
