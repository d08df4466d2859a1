//! Queued submissions, the submitting side: claim the ids in the store, send one message to the
//! transfer queue, answer 202 (the worker settles them: `ledger::port::Settlement`). A batch;
//! a transfer or a linked chain sent with `Prefer: respond-async`; and a batch's status.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use ledger::linked::LinkedChain;
use ledger::port::{StoreError, Work};
use ledger::{
    BatchId, NewTransfer, Submission, TenantId, Transfer, TransferBatch, TransferId, TransferStatus,
};
use ledger_telemetry::metrics;

use crate::body::{CreateBatch, LinkedBody};
use crate::extract::{DryRunParam, JsonBody, MAX_BATCH_BODY_BYTES, Tenant, path_id};
use crate::observe::record;
use crate::prefer::Prefer;
use crate::problem::ApiError;
use crate::rate_limit::{self, Admitted};
use crate::respond::accepted;
use crate::state::AppState;

/// Sends the one message that has the worker settle `submission`. If the queue does not take it,
/// the claims stay and posting the same request again sends it.
async fn enqueue(app: &AppState, tenant: &TenantId, submission: Submission) -> Result<(), ApiError> {
    let work = Work { tenant: tenant.clone(), submission };
    app.queue.send(&work).await.map_err(|err| {
        tracing::warn!(error = %err, "not enqueued");
        ApiError::Store(StoreError::Unavailable(format!("{err}; post the same request again")))
    })
}

/// `POST /v1/transfer-batches`: 202 once the batch's ids are claimed and its message is queued.
pub async fn create_batch(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    DryRunParam(dry_run): DryRunParam,
    JsonBody(body): JsonBody<CreateBatch, MAX_BATCH_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let batch = TransferBatch::new(body.id, body.transfers)?;
    record("batchId", batch.id().as_str());
    rate_limit::spend(&app, &tenant, rate_limit::operations(batch.transfers().len())).await?;
    // Decided as the worker would decide the batch now, in order; nothing queued or written.
    if dry_run {
        return crate::dry_run::answer(&app, &tenant, batch.transfers().to_vec()).await;
    }
    let recorded = app.store.submit_batch(&tenant, &batch, app.now()).await?;
    let status = app.store.batch_status(&tenant, batch.id()).await?;
    // A replay sends again unless every transfer is settled: the first message may have been lost.
    if status.counts.queued > 0 {
        enqueue(&app, &tenant, Submission::Batch(batch.id().clone())).await?;
    }
    tracing::info!(transfers = batch.transfers().len(), replayed = recorded.is_replay(), "batch enqueued");
    if !recorded.is_replay() {
        metrics::submitted_batch(batch.transfers().len());
    }
    let body = status.batch();
    Ok(accepted(body.status_url(), recorded.is_replay(), body))
}

pub async fn get_batch(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
) -> Result<Json<ledger::Batch>, ApiError> {
    let id = path_id(id, BatchId::parse)?;
    record("batchId", id.as_str());
    Ok(Json(app.store.batch_status(&tenant, &id).await?.batch()))
}

/// `POST /v1/transfers` with `Prefer: respond-async`: claims the id, queues it, and answers 202 with
/// the transfer as it stands (after up to `wait` seconds if the client asked to wait). A wait holds
/// an execution of the API and reads the transfer ten times a second: it costs the tenant one
/// operation of its limit per second asked, and when its bucket cannot pay, the answer comes at
/// once (the transfer is queued either way).
pub async fn create_transfer_async(
    app: &AppState,
    tenant: &TenantId,
    request: NewTransfer,
    prefer: Prefer,
) -> Result<Response, ApiError> {
    let location = format!("/v1/transfers/{}", request.id);
    let outcome = app.store.submit_transfer(tenant, request, app.now()).await?;
    let mut transfer = outcome.value().clone();
    if transfer.status == TransferStatus::Queued {
        enqueue(app, tenant, Submission::Transfer(transfer.request.id.clone())).await?;
        if let Some(wait) = prefer.wait {
            // Whole seconds, at most `MAX_WAIT` (`Prefer` parses them so).
            let seconds = u32::try_from(wait.as_secs()).unwrap_or(u32::MAX);
            match rate_limit::spend(app, tenant, seconds).await {
                Ok(()) => transfer = settled_within(app, tenant, transfer, wait).await?,
                Err(_) => tracing::info!(
                    waitS = wait.as_secs(),
                    "the tenant's limit cannot pay the wait: answered at once"
                ),
            }
        }
    }
    tracing::info!(replayed = outcome.is_replay(), "transfer enqueued");
    let mut response = accepted(location, outcome.is_replay(), transfer);
    response.headers_mut().insert("preference-applied", http::HeaderValue::from_static("respond-async"));
    Ok(response)
}

/// `POST /v1/linked-transfers` with `Prefer: respond-async`: claims the chain whole, queues it as
/// one message, and answers 202 with its members as they stand.
pub async fn create_linked_async(
    app: &AppState,
    tenant: &TenantId,
    chain: LinkedChain,
) -> Result<Response, ApiError> {
    let ids: Vec<TransferId> = chain.transfers().iter().map(|t| t.id.clone()).collect();
    let location = format!("/v1/transfers/{}", ids[0]);
    let outcome = app.store.submit_linked(tenant, chain, app.now()).await?;
    let transfers = outcome.value().clone();
    if transfers.iter().any(|t| t.status == TransferStatus::Queued) {
        enqueue(app, tenant, Submission::Linked(ids)).await?;
    }
    tracing::info!(replayed = outcome.is_replay(), "linked transfers enqueued");
    let mut response = accepted(location, outcome.is_replay(), LinkedBody { transfers });
    response.headers_mut().insert("preference-applied", http::HeaderValue::from_static("respond-async"));
    Ok(response)
}

/// The transfer once settled, or as it stands when `wait` runs out.
async fn settled_within(
    app: &AppState,
    tenant: &TenantId,
    mut transfer: Transfer,
    wait: std::time::Duration,
) -> Result<Transfer, ApiError> {
    let deadline = Instant::now() + wait;
    while transfer.status == TransferStatus::Queued && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        transfer = app.store.get_transfer(tenant, &transfer.request.id, app.now()).await?;
    }
    Ok(transfer)
}
