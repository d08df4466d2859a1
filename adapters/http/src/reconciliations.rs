//! Reconciliation of an account with its bank's statement (`ledger::reconciler`).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use ledger::chain::Hash256;
use ledger::reconcile::{DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS, Reconciliation};
use ledger::reconciler::{Request, reconcile_account};
use ledger::{AccountId, FieldError, LedgerError};
use ledger_statements::Format;

use crate::body::CreateReconciliation;
use crate::extract::{JsonBody, invalid, path_id};
use crate::observe::record;
use crate::problem::ApiError;
use crate::rate_limit::Admitted;
use crate::respond::created;
use crate::state::AppState;

/// `POST /v1/accounts/{id}/reconciliations`: the statement read (in the account's currency),
/// matched against the account's entries, its unmatched lines booked against `adjust_with` if
/// given, and the result kept. The same statement again (in either format) answers the kept one.
pub async fn create_reconciliation(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CreateReconciliation>,
) -> Result<Response, ApiError> {
    let account = path_id(id, AccountId::parse)?;
    record("accountId", account.as_str());
    let format = Format::parse(&body.format).map_err(|e| LedgerError::invalid("format", e))?;
    let window_days = body.window_days.unwrap_or(DEFAULT_WINDOW_DAYS);
    if window_days > MAX_WINDOW_DAYS {
        return Err(invalid("window_days", &format!("must be at most {MAX_WINDOW_DAYS}")));
    }
    let mirror = app.store.get_account(&tenant, &account).await?;
    if let Some(counter) = &body.adjust_with {
        if *counter == account {
            return Err(invalid("adjust_with", "must be another account than the one reconciled"));
        }
        let counter =
            app.store.get_account(&tenant, counter).await.map_err(|err| match err.is_not_found() {
                true => LedgerError::invalid("adjust_with", FieldError::new("names no account")).into(),
                false => ApiError::from(err),
            })?;
        if counter.currency != mirror.currency {
            return Err(invalid(
                "adjust_with",
                &format!("is in {}, the account in {}", counter.currency, mirror.currency),
            ));
        }
    }
    let statement = ledger_statements::parse(format, &body.statement, mirror.currency)
        .map_err(|e| LedgerError::invalid("statement", e))?;
    let request = Request { account, statement, window_days, adjust_with: body.adjust_with };
    let outcome = reconcile_account(app.store.as_ref(), &tenant, request, app.now()).await?;
    tracing::info!(
        replayed = outcome.is_replay(),
        matched = outcome.value().matched.len(),
        unmatched_lines = outcome.value().unmatched_lines.len(),
        unmatched_entries = outcome.value().unmatched_entries.len(),
        "account reconciled"
    );
    let body = Json(outcome.value().clone());
    Ok(created(outcome, body))
}

/// `GET /v1/accounts/{id}/reconciliations/{reconciliation_id}`: one consistent read.
pub async fn get_reconciliation(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path((id, reconciliation)): Path<(String, String)>,
) -> Result<Json<Reconciliation>, ApiError> {
    let account = path_id(id, AccountId::parse)?;
    record("accountId", account.as_str());
    let reconciliation = Hash256::parse(&reconciliation)
        .map_err(|_| invalid("reconciliation_id", "must be 64 lower-case hex digits"))?;
    Ok(Json(app.store.get_reconciliation(&tenant, &account, &reconciliation).await?))
}
