//! The synchronous transfer routes: a transfer or a linked chain decided while the client waits
//! (or queued, with `Prefer: respond-async`: `submissions`), and a transfer read back.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ledger::linked::LinkedChain;
use ledger::{LedgerError, NewTransfer, RuleViolation, TransferId, TransferStatus};
use ledger_telemetry::metrics;

use crate::body::{CreateLinked, LinkedBody, PatchTransfer};
use crate::etag::IfMatch;
use crate::extract::{DryRunParam, JsonBody, MAX_BATCH_BODY_BYTES, Tenant, path_id};
use crate::observe::record;
use crate::prefer::Prefer;
use crate::problem::ApiError;
use crate::rate_limit::{self, Admitted};
use crate::respond::{accepted, created, with_replay_flag};
use crate::state::AppState;

/// 201 committed (a hold: 201 `pending`), 422 rejected by a rule; a retry of the same request gets
/// the same answer with 200 instead of 201 and the replay header on both (a hold as it stands now:
/// `posted`, `voided` or `expired` once resolved). An id that a queued submission holds with the
/// same fields, not applied yet, is answered 202 with the transfer as it stands. With `If-Match`
/// naming account tags: only if each account is still at its version (412 otherwise, the id not
/// spent). With `?dry_run=true`: 200 with what would happen, nothing written.
pub async fn create_transfer(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    DryRunParam(dry_run): DryRunParam,
    headers: http::HeaderMap,
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
    if dry_run {
        return crate::dry_run::answer(&app, &tenant, vec![body]).await;
    }
    let if_match = IfMatch::from_headers(&headers, &tenant)?;
    let prefer = Prefer::from_headers(&headers);
    if prefer.respond_async {
        if let IfMatch::Accounts(_) = if_match {
            let why = "cannot be used with Prefer: respond-async (a queued transfer is decided later)";
            return Err(crate::extract::invalid("If-Match", why));
        }
        return crate::submissions::create_transfer_async(&app, &tenant, body, prefer).await;
    }
    let outcome = match if_match {
        IfMatch::Accounts(expected) => {
            app.store.create_transfer_if(&tenant, body, expected, app.now()).await?
        }
        IfMatch::Absent | IfMatch::Any => app.store.create_transfer(&tenant, body, app.now()).await?,
    };
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
    Tenant(tenant): Tenant,
    DryRunParam(dry_run): DryRunParam,
    headers: http::HeaderMap,
    JsonBody(body): JsonBody<CreateLinked, MAX_BATCH_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let chain = LinkedChain::new(body.transfers)?;
    if let Some(first) = chain.transfers().first() {
        record("transferId", first.id.as_str());
    }
    rate_limit::spend(&app, &tenant, rate_limit::operations(chain.transfers().len())).await?;
    if dry_run {
        return crate::dry_run::answer(&app, &tenant, chain.into_transfers()).await;
    }
    let prefer = Prefer::from_headers(&headers);
    if prefer.respond_async {
        return crate::submissions::create_linked_async(&app, &tenant, chain).await;
    }
    let outcome = app.store.create_linked(&tenant, chain, app.now()).await?;
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

/// `PATCH /v1/transfers/{id}`: its metadata merged with the patch, only on the representation the
/// client read (`If-Match` with the transfer's `ETag`, or `*`; 428 without, 412 when stale).
pub async fn patch_transfer(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    headers: http::HeaderMap,
    JsonBody(body): JsonBody<PatchTransfer>,
) -> Result<Response, ApiError> {
    let id = path_id(id, TransferId::parse)?;
    record("transferId", id.as_str());
    let now = app.now();
    let read = app.store.get_transfer(&tenant, &id, now).await?;
    // Its tag as a GET answers it: the hash of the same JSON.
    let tag = |transfer: &ledger::Transfer| {
        crate::etag::body_tag(&tenant, &serde_json::to_vec(transfer).unwrap_or_default())
    };
    crate::etag::require_match(&headers, &tag(&read), "transfer", id.as_str())?;
    let changed = app.store.change_transfer_metadata(&tenant, &read, &body.metadata, now).await?;
    tracing::info!(revision = changed.revision, "transfer metadata changed");
    Ok(([(http::header::ETAG, tag(&changed))], Json(changed)).into_response())
}

pub async fn get_transfer(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
) -> Result<Json<ledger::Transfer>, ApiError> {
    let id = path_id(id, TransferId::parse)?;
    record("transferId", id.as_str());
    Ok(Json(app.store.get_transfer(&tenant, &id, app.now()).await?))
}
