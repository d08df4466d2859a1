//! Route handlers: extract, call the store, shape the response. No rules live here.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use ledger::linked::LinkedChain;
use ledger::{AccountId, LedgerError, NewTransfer, RuleViolation, TransferId, TransferStatus};
use ledger_telemetry::TraceContext;
use ledger_telemetry::metrics;
use time::OffsetDateTime;

use crate::body::{
    BalanceAtBody, CreateAccount, CreateLinked, EntryBody, LinkedBody, ListBody, StatementBody,
};
use crate::cursor;
use crate::extract::{Instants, JsonBody, ListParams, MAX_BATCH_BODY_BYTES, SubmittingTenant, Tenant};
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
    let body = Json(outcome.value().clone());
    Ok(created(outcome, body))
}

/// An account's tag: its entry count, which every change of its balances moves (its profile never
/// changes), so a revalidation reads only its small balance item.
fn account_tag(entry_count: u64) -> http::HeaderValue {
    http::HeaderValue::from_str(&format!("\"a{entry_count}\""))
        .unwrap_or(http::HeaderValue::from_static("\"\""))
}

/// The account; with `If-None-Match`, first one GetItem of its balance item, and `304` if the
/// client's copy is current.
pub async fn get_account(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    headers: http::HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id(id, AccountId::parse)?;
    record("accountId", id.as_str());
    if headers.contains_key(http::header::IF_NONE_MATCH) {
        let tag = account_tag(app.store.account_version(&tenant, &id).await?);
        if crate::etag::matches(&headers, &tag) {
            return Ok(crate::etag::not_modified(tag));
        }
    }
    let account = app.store.get_account(&tenant, &id).await?;
    let tag = account_tag(account.entry_count);
    Ok(([(http::header::ETAG, tag)], Json(account)).into_response())
}

pub async fn list_accounts(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    page: ListParams,
) -> Result<Json<ListBody<ledger::Account>>, ApiError> {
    let after = page.cursor.as_deref().map(cursor::parse_account_cursor).transpose()?;
    let found = app.store.list_accounts(&tenant, page.limit, after.as_ref()).await?;
    Ok(Json(ListBody { data: found.items, next_cursor: found.next.as_ref().map(cursor::account_cursor) }))
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

/// `GET /v1/accounts/{id}/balance?at=…`: the account's totals as of an instant (one Query).
pub async fn get_balance_at(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    instants: Instants,
) -> Result<Json<BalanceAtBody>, ApiError> {
    let id = path_id(id, AccountId::parse)?;
    record("accountId", id.as_str());
    let at = instants.required("at")?;
    let found = app.store.balance_at(&tenant, &id, at, OffsetDateTime::now_utc()).await?;
    Ok(Json(BalanceAtBody::new(id, found)))
}

/// `GET /v1/accounts/{id}/statement?from=…&to=…`: the opening balance, the entries between, oldest
/// first and paginated, and on the last page the closing balance (two Queries a page). Without
/// `from`: since the account was opened; without `to`: up to now.
pub async fn get_statement(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    instants: Instants,
    page: ListParams,
) -> Result<Json<StatementBody>, ApiError> {
    let id = path_id(id, AccountId::parse)?;
    record("accountId", id.as_str());
    let now = OffsetDateTime::now_utc();
    let (from, asked_to) = (instants.get("from")?, instants.get("to")?);
    // A later page ends where its statement's first page did.
    let (to, after) = match page.cursor.as_deref().map(cursor::parse_statement_cursor).transpose()? {
        Some((to, _)) if asked_to.is_some_and(|asked| asked != to) => {
            return Err(crate::extract::invalid("cursor", "belongs to a statement up to another instant"));
        }
        Some((to, after)) => (to, Some(after)),
        None => (asked_to.unwrap_or(now), None),
    };
    let found = app.store.statement(&tenant, &id, from, to, page.limit, after, now).await?;
    Ok(Json(StatementBody::new(id, from, to, found)))
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
    if let Err((_, error)) = ledger::linked::check(std::slice::from_ref(&body)) {
        return Err(LedgerError::invalid("linked", error).into());
    }
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

/// `POST /v1/linked-transfers`: 201 with every member committed (holds `pending`), or 422 naming
/// the member refused by its own rule, every other member refused `linked_failed`, and nothing
/// moved; a retry of the same chain replays it (200, or the same 422) with the replay header. With
/// `Prefer: respond-async`, the chain is claimed whole, queued as one message, and answered 202.
pub async fn create_linked(
    State(app): State<AppState>,
    SubmittingTenant(tenant): SubmittingTenant,
    headers: http::HeaderMap,
    Extension(trace): Extension<TraceContext>,
    JsonBody(body): JsonBody<CreateLinked, MAX_BATCH_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let chain = LinkedChain::new(body.transfers)?;
    if let Some(first) = chain.transfers().first() {
        record("transferId", first.id.as_str());
    }
    crate::limit::spend(&app, &tenant, crate::limit::operations(chain.transfers().len())).await?;
    let prefer = Prefer::from_headers(&headers);
    if prefer.respond_async {
        return crate::batches::create_linked_async(&app, &tenant, trace, chain).await;
    }
    let outcome = app.store.create_linked(&tenant, chain, OffsetDateTime::now_utc()).await?;
    let replayed = outcome.is_replay();
    let transfers = outcome.value();
    // The member refused by its own rule; failing that (a chain whose failing member was decided
    // apart from it), any refused one.
    let rejected: Vec<_> = transfers
        .iter()
        .filter_map(|t| match &t.status {
            TransferStatus::Rejected { reason } => Some((t, reason)),
            _ => None,
        })
        .collect();
    let refused =
        rejected.iter().find(|(_, rule)| **rule != RuleViolation::LinkedFailed).or(rejected.first()).copied();
    let Some((failed, rule)) = refused else {
        if !replayed {
            transfers.iter().for_each(|_| metrics::transfer_committed());
            tracing::info!(transfers = transfers.len(), "linked transfers committed");
        }
        let body = Json(LinkedBody { transfers: transfers.clone() });
        return Ok(created(outcome, body));
    };
    if !replayed {
        for (_, reason) in &rejected {
            metrics::transfer_rejected(reason.code());
        }
        tracing::info!(
            reason = rule.code(),
            failed = failed.request.id.as_str(),
            "linked transfers rejected"
        );
    }
    let rejected = LedgerError::ChainRejected {
        transfer_id: failed.request.id.clone(),
        rule: rule.clone(),
        transfers: transfers.clone(),
    };
    Ok(with_replay_flag(ApiError::from(rejected).into_response(), replayed))
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
