//! Asynchronous submission: record the batch, enqueue what is not enqueued yet, answer 202.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use ledger::{BatchId, LedgerError, NewTransfer, TenantId, TransferBatch};
use ledger_dynamodb::BatchStatus;
use ledger_sqs::QueuedTransfer;
use ledger_telemetry::{TraceContext, metrics};
use serde::Serialize;
use time::OffsetDateTime;

use crate::body::{CreateBatch, CreateTransfer};
use crate::extract::{JsonBody, MAX_BATCH_BODY_BYTES, Tenant};
use crate::observe::record;
use crate::problem::ApiError;
use crate::respond::accepted;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct BatchBody {
    pub id: BatchId,
    pub status_url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(flatten)]
    pub counts: ledger::BatchCounts,
}

fn batch_body(status: BatchStatus) -> BatchBody {
    BatchBody {
        status_url: format!("/v1/transfer-batches/{}", status.record.id),
        id: status.record.id,
        created_at: status.record.created_at,
        counts: status.counts,
    }
}

/// Records `batch`, then sends every transfer SQS has not acknowledged yet. Returns the batch's
/// status after sending, whether this was a replay, and whether everything is now enqueued.
pub async fn submit(
    app: &AppState,
    tenant: &TenantId,
    trace: &TraceContext,
    batch: TransferBatch,
) -> Result<(BatchStatus, bool), ApiError> {
    record("batchId", batch.id().as_str());
    let recorded = app.store.record_batch(tenant, &batch, OffsetDateTime::now_utc()).await?;
    let already = if recorded.is_replay() {
        app.store.batch_status(tenant, batch.id()).await?.enqueued
    } else {
        vec![]
    };
    let messages: Vec<QueuedTransfer> = batch
        .transfers()
        .iter()
        .enumerate()
        .filter(|(index, _)| already.binary_search(&(*index as u32)).is_err())
        .map(|(index, transfer)| QueuedTransfer {
            tenant: tenant.clone(),
            batch_id: batch.id().clone(),
            index: index as u32,
            transfer: transfer.clone(),
        })
        .collect();
    let sent = app.queue.send(&messages, trace).await;
    tracing::info!(
        transfers = batch.transfers().len(),
        sent = sent.len(),
        replayed = recorded.is_replay(),
        "batch enqueued"
    );
    app.store.mark_enqueued(tenant, batch.id(), &sent).await?;
    let status = app.store.batch_status(tenant, batch.id()).await?;
    if status.counts.not_enqueued > 0 {
        tracing::warn!(batch = %batch.id(), missing = status.counts.not_enqueued, "batch partly enqueued");
        return Err(ApiError::Store(ledger_dynamodb::StoreError::Unavailable(format!(
            "{} of {} transfers could not be enqueued; post the same batch again",
            status.counts.not_enqueued, status.counts.total
        ))));
    }
    if !recorded.is_replay() {
        metrics::submitted_batch(batch.transfers().len());
    }
    Ok((status, recorded.is_replay()))
}

/// `POST /v1/transfer-batches`: 202 once every transfer is enqueued; 503 (retry the same batch) if
/// SQS took only part of it.
pub async fn create_batch(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Extension(trace): Extension<TraceContext>,
    JsonBody(body): JsonBody<CreateBatch, MAX_BATCH_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let transfers: Vec<NewTransfer> = body.transfers.into_iter().map(NewTransfer::from).collect();
    let batch = TransferBatch::new(body.id, transfers)?;
    let (status, replayed) = submit(&app, &tenant, &trace, batch).await?;
    let body = batch_body(status);
    Ok(accepted(body.status_url.clone(), replayed, body))
}

pub async fn get_batch(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<Json<BatchBody>, ApiError> {
    let id = BatchId::parse(id).map_err(|e| LedgerError::invalid("id", e))?;
    record("batchId", id.as_str());
    Ok(Json(batch_body(app.store.batch_status(&tenant, &id).await?)))
}

/// `POST /v1/transfers` with `Prefer: respond-async`: a batch of one whose id is the transfer's.
pub async fn create_transfer_async(
    app: &AppState,
    tenant: &TenantId,
    trace: TraceContext,
    body: CreateTransfer,
) -> Result<Response, ApiError> {
    let transfer = NewTransfer::from(body);
    let batch_id = BatchId::parse(transfer.id.as_str()).map_err(|e| LedgerError::invalid("id", e))?;
    let location = format!("/v1/transfers/{}", transfer.id);
    let (status, replayed) =
        submit(app, tenant, &trace, TransferBatch::new(batch_id, vec![transfer.clone()])?).await?;
    let body = app.store.get_transfer(tenant, &transfer.id).await.ok();
    Ok(accepted(
        location.clone(),
        replayed,
        serde_json::json!({
            "id": transfer.id,
            "status": body.as_ref().map(|t| match &t.status {
                ledger::TransferStatus::Queued => "queued",
                ledger::TransferStatus::Committed => "committed",
                ledger::TransferStatus::Rejected { .. } => "rejected",
            }).unwrap_or("queued"),
            "status_url": location,
            "batch": batch_body(status),
        }),
    ))
}
