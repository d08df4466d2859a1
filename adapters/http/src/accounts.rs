//! Account routes: open an account, read it (with a conditional GET), list accounts, and read an
//! account's past (entries, balance as of an instant, statements).

use axum::Json;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use ledger::AccountId;
use ledger::port::StatementRange;

use crate::body::{BalanceAtBody, CreateAccount, EntryBody, ListBody, StatementBody};
use crate::cursor;
use crate::etag::account_tag;
use crate::extract::{Instants, JsonBody, PageParams, path_id};
use crate::observe::record;
use crate::problem::ApiError;
use crate::rate_limit::Admitted;
use crate::respond::created;
use crate::state::AppState;

pub async fn create_account(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    JsonBody(body): JsonBody<CreateAccount>,
) -> Result<Response, ApiError> {
    let outcome = app.store.create_account(&tenant, body.into_new_account(app.now())?, app.now()).await?;
    record("accountId", outcome.value().id.as_str());
    tracing::info!(replayed = outcome.is_replay(), "account created");
    let body = Json(outcome.value().clone());
    Ok(created(outcome, body))
}

/// The account; with `If-None-Match`, first one GetItem of its balance item, and `304` if the
/// client's copy is current. A hold past its time that holds money in it is released first.
pub async fn get_account(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    headers: http::HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id(id, AccountId::parse)?;
    record("accountId", id.as_str());
    let now = app.now();
    if headers.contains_key(http::header::IF_NONE_MATCH) {
        let balance = app.store.account_balance(&tenant, &id).await?;
        if !released_any(&app, &tenant, &id, &balance.balances, now).await? {
            let tag = account_tag(&tenant, &id, balance.version());
            if crate::etag::matches(&headers, &tag) {
                return Ok(crate::etag::not_modified(tag));
            }
        }
    }
    let mut account = app.store.get_account(&tenant, &id).await?;
    if released_any(&app, &tenant, &id, &account.balances, now).await? {
        account = app.store.get_account(&tenant, &id).await?;
    }
    let tag = account_tag(&tenant, &id, account.version());
    Ok(([(http::header::ETAG, tag)], Json(account)).into_response())
}

/// Whether a hold past its time held money in the account as read, and was released (so the
/// account must be read again).
async fn released_any(
    app: &AppState,
    tenant: &ledger::TenantId,
    id: &AccountId,
    balances: &ledger::Balances,
    now: time::OffsetDateTime,
) -> Result<bool, ApiError> {
    if !balances.holds_pending() {
        return Ok(false);
    }
    Ok(app.store.release_overdue_holds(tenant, std::slice::from_ref(id), now).await? > 0)
}

/// `GET /v1/accounts?metadata[key]=value`: the tenant's accounts by id, those with every pair given.
pub async fn list_accounts(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Query(raw): Query<HashMap<String, String>>,
    page: PageParams,
) -> Result<Json<ListBody<ledger::Account>>, ApiError> {
    let metadata = crate::extract::metadata_filter(&raw, &["limit", "cursor"])?;
    let after = page.cursor.as_deref().map(cursor::parse_account_cursor).transpose()?;
    let mut found = app.store.list_accounts(&tenant, &metadata, page.size, after.as_ref()).await?;
    // Holds past their time that hold money in the page's accounts are released first; the page
    // is read again if any was, so its balances stay one snapshot.
    let pending: Vec<AccountId> =
        found.items.iter().filter(|a| a.balances.holds_pending()).map(|a| a.id.clone()).collect();
    if !pending.is_empty() && app.store.release_overdue_holds(&tenant, &pending, app.now()).await? > 0 {
        found = app.store.list_accounts(&tenant, &metadata, page.size, after.as_ref()).await?;
    }
    Ok(Json(ListBody { data: found.items, next_cursor: found.next.as_ref().map(cursor::account_cursor) }))
}

pub async fn list_entries(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    page: PageParams,
) -> Result<Json<ListBody<EntryBody>>, ApiError> {
    let id = path_id(id, AccountId::parse)?;
    record("accountId", id.as_str());
    let before = page.cursor.as_deref().map(cursor::parse_entry_cursor).transpose()?;
    let found = app.store.list_entries(&tenant, &id, page.size, before).await?;
    Ok(Json(ListBody {
        data: found.items.into_iter().map(EntryBody::from).collect(),
        next_cursor: found.next.map(cursor::entry_cursor),
    }))
}

/// `GET /v1/accounts/{id}/balance?at=…`: the account's totals as of an instant (one Query).
pub async fn get_balance_at(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    instants: Instants,
) -> Result<Json<BalanceAtBody>, ApiError> {
    let id = path_id(id, AccountId::parse)?;
    record("accountId", id.as_str());
    let at = instants.required("at")?;
    let found = app.store.balance_at(&tenant, &id, at, app.now()).await?;
    Ok(Json(BalanceAtBody::new(id, found)))
}

/// `GET /v1/accounts/{id}/statement?from=…&to=…`: the opening balance, the entries between, oldest
/// first and paginated, and on the last page the closing balance (two Queries a page). Without
/// `from`: since the account was opened; without `to`: up to now.
pub async fn get_statement(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    instants: Instants,
    page: PageParams,
) -> Result<Json<StatementBody>, ApiError> {
    let id = path_id(id, AccountId::parse)?;
    record("accountId", id.as_str());
    let now = app.now();
    let (from, asked_to) = (instants.get("from")?, instants.get("to")?);
    // A later page ends where its statement's first page did.
    let (to, after) = match page.cursor.as_deref().map(cursor::parse_statement_cursor).transpose()? {
        Some((to, _)) if asked_to.is_some_and(|asked| asked != to) => {
            return Err(crate::extract::invalid("cursor", "belongs to a statement up to another instant"));
        }
        Some((to, after)) => (to, Some(after)),
        None => (asked_to.unwrap_or(now), None),
    };
    let range = StatementRange { from, to, page_size: page.size, after };
    let found = app.store.statement(&tenant, &id, range, now).await?;
    Ok(Json(StatementBody::new(id, from, to, found)))
}
