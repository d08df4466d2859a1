//! Account changes: freeze, unfreeze and close (ordered with the transfers racing them; `If-Match`
//! optional), and a merge patch of bounds and metadata (`If-Match` required: RFC 6585's 428
//! without it, 412 when stale). Each answers the account as it stands after, with its tag.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ledger::{AccountChange, AccountId, TenantId};

use crate::body::{FreezeAccount, FreezeMode, PatchAccount};
use crate::etag::{IfMatch, account_tag};
use crate::extract::{JsonBody, path_id};
use crate::observe::record;
use crate::problem::ApiError;
use crate::rate_limit::Admitted;
use crate::state::AppState;

/// `PATCH /v1/accounts/{id}`: new bounds or metadata, only on the version the client read.
pub async fn patch_account(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    headers: http::HeaderMap,
    JsonBody(body): JsonBody<PatchAccount>,
) -> Result<Response, ApiError> {
    let id = path_id(id, AccountId::parse)?;
    let expected = IfMatch::from_headers(&headers, &tenant)?.for_account(&id)?;
    change_and_answer(&app, &tenant, id, AccountChange::Update(body.into()), expected).await
}

/// `POST /v1/accounts/{id}/freeze` with `{"mode": "debits" | "all"}`.
pub async fn freeze_account(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    headers: http::HeaderMap,
    JsonBody(body): JsonBody<FreezeAccount>,
) -> Result<Response, ApiError> {
    let debits_only = matches!(body.mode, FreezeMode::Debits);
    optional(&app, &tenant, id, AccountChange::Freeze { debits_only }, &headers).await
}

/// `POST /v1/accounts/{id}/unfreeze`.
pub async fn unfreeze_account(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    headers: http::HeaderMap,
) -> Result<Response, ApiError> {
    optional(&app, &tenant, id, AccountChange::Unfreeze, &headers).await
}

/// `POST /v1/accounts/{id}/close`: final; only at a zero balance with nothing pending.
pub async fn close_account(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    headers: http::HeaderMap,
) -> Result<Response, ApiError> {
    optional(&app, &tenant, id, AccountChange::Close, &headers).await
}

/// A lifecycle change, on the version `If-Match` names if it names one.
async fn optional(
    app: &AppState,
    tenant: &TenantId,
    id: String,
    change: AccountChange,
    headers: &http::HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id(id, AccountId::parse)?;
    let expected = match IfMatch::from_headers(headers, tenant)? {
        IfMatch::Absent => None,
        asked => asked.for_account(&id)?,
    };
    change_and_answer(app, tenant, id, change, expected).await
}

async fn change_and_answer(
    app: &AppState,
    tenant: &TenantId,
    id: AccountId,
    change: AccountChange,
    expected: Option<ledger::AccountVersion>,
) -> Result<Response, ApiError> {
    record("accountId", id.as_str());
    let now = app.now();
    // A hold past its time counts for no rule of the change (closing needs nothing pending; a
    // new bound is checked against what is pending): it is released first.
    app.store.release_overdue_holds(tenant, std::slice::from_ref(&id), now).await?;
    let account = app.store.change_account(tenant, &id, &change, expected, now).await?;
    tracing::info!(change = change.event_type().as_str(), revision = account.revision, "account changed");
    let tag = account_tag(tenant, &id, account.version());
    Ok(([(http::header::ETAG, tag)], Json(account)).into_response())
}
