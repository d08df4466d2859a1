//! The worker's handler: one SQS batch in, the ids of the messages to deliver again out.
//!
//! A message names a submission (a batch, or one transfer or linked chain queued with
//! `Prefer: respond-async`); what
//! to apply, and in which order, comes from the store. A message that does not parse is reported
//! (so SQS redelivers it and, after maxReceiveCount, moves it to the dead-letter queue) and never
//! fails the others. A transfer refused by a rule settles once as rejected and is not retried. Only
//! what could not be settled now (contention, throttling, an unavailable store, a batch waiting for
//! a transfer another submission holds) is reported back for redelivery.
//!
//! Every line about a message is logged in that message's span, which carries the correlation id
//! and X-Ray trace header the API sent with it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use ledger::port::{Settled, Store, TransferQueue, Work};
use ledger::{BatchId, Submission, TenantId};
use ledger_telemetry::correlation::CORRELATION_ATTRIBUTE;
use ledger_telemetry::{Function, metrics};
use time::OffsetDateTime;
use tracing::field::Empty;
use tracing::{Instrument, Span};

/// One parsed message with what the logs and metrics need about it.
struct Message {
    id: String,
    work: Work,
    span: Span,
    /// When SQS accepted it (its `SentTimestamp`).
    sent_at: Option<SystemTime>,
}

/// Time kept, before the invocation's deadline, to answer which messages failed.
pub const REPORT_MARGIN: Duration = Duration::from_secs(2);

/// How long past its own deadline a run may finish the write it is making before it is cut.
const CUT_AFTER: Duration = Duration::from_secs(1);

/// The instant a run must end by, on the monotonic clock: the invocation's deadline (Lambda's,
/// milliseconds since the epoch) less `REPORT_MARGIN`.
pub fn run_deadline(invocation_deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let left = Duration::from_millis(invocation_deadline_ms.saturating_sub(now_ms));
    Instant::now() + left.saturating_sub(REPORT_MARGIN)
}

/// Applies one SQS batch until `deadline`. Tenants are applied in parallel; within a tenant,
/// single transfers and linked chains together (each chain whole), then each batch in its own
/// order. A run ends by `deadline` (checked between writes, cut `CUT_AFTER` past it), within its
/// invocation and within the queue's visibility timeout, so no other invocation receives its
/// messages meanwhile.
///
/// A batch that progressed but did not finish continues in a new message on `queue` (its own is
/// deleted): every receive counts towards the dead-letter queue, which is for work that makes no
/// progress, not for a long batch beside contention. One that made no progress is reported for
/// redelivery.
pub async fn handle(
    store: &dyn Store,
    queue: &dyn TransferQueue,
    event: SqsEvent,
    deadline: Instant,
) -> SqsBatchResponse {
    let span =
        tracing::info_span!("batch", function = Function::Worker.as_str(), records = event.records.len());
    apply_batch(store, queue, event, deadline).instrument(span).await
}

async fn apply_batch(
    store: &dyn Store,
    queue: &dyn TransferQueue,
    event: SqsEvent,
    deadline: Instant,
) -> SqsBatchResponse {
    let records = event.records.len();
    let mut failed: Vec<String> = Vec::new();
    let mut by_tenant: BTreeMap<TenantId, Vec<Message>> = BTreeMap::new();
    for record in event.records {
        let span = record_span(&record);
        let id = record.message_id.clone().unwrap_or_default();
        let sent_at = sent_at(&record);
        match record.body.as_deref().map(Work::parse) {
            Some(Ok(work)) => {
                span.record("tenant", work.tenant.as_str());
                match &work.submission {
                    Submission::Batch(batch) => span.record("batchId", batch.as_str()),
                    Submission::Transfer(transfer) => span.record("transferId", transfer.as_str()),
                    Submission::Linked(ids) => match ids.first() {
                        Some(first) => span.record("transferId", first.as_str()),
                        None => span.record("transferId", ""),
                    },
                };
                span.in_scope(|| tracing::info!("submission received"));
                by_tenant.entry(work.tenant.clone()).or_default().push(Message { id, work, span, sent_at });
            }
            Some(Err(err)) => {
                span.in_scope(|| tracing::error!(error = %err, "unparseable message: reported as failed, it will end in the dead-letter queue"));
                failed.push(id);
            }
            None => {
                span.in_scope(|| tracing::error!("message without a body: reported as failed"));
                failed.push(id);
            }
        }
    }
    let now = OffsetDateTime::now_utc();
    let groups = by_tenant
        .into_iter()
        .map(|(tenant, messages)| apply_tenant(store, queue, tenant, messages, now, deadline));
    for group_failed in futures::future::join_all(groups).await {
        failed.extend(group_failed);
    }
    metrics::worker_batch(records, failed.len());
    tracing::info!(failed = failed.len(), "batch done");
    ledger_sqs::batch_response(failed)
}

fn record_span(record: &SqsMessage) -> Span {
    let attribute = |name: &str| record.message_attributes.get(name).and_then(|a| a.string_value.as_deref());
    tracing::info_span!(
        "message",
        messageId = record.message_id.as_deref().unwrap_or_default(),
        correlationId = attribute(CORRELATION_ATTRIBUTE),
        xrayTraceHeader = record.attributes.get("AWSTraceHeader").map(String::as_str),
        receiveCount = record.attributes.get("ApproximateReceiveCount").map(String::as_str),
        tenant = Empty,
        batchId = Empty,
        transferId = Empty,
    )
}

fn sent_at(record: &SqsMessage) -> Option<SystemTime> {
    let millis: u64 = record.attributes.get("SentTimestamp")?.parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_millis(millis))
}

/// Applies one tenant's messages and returns the ids of those to deliver again.
async fn apply_tenant(
    store: &dyn Store,
    queue: &dyn TransferQueue,
    tenant: TenantId,
    messages: Vec<Message>,
    now: OffsetDateTime,
    until: Instant,
) -> Vec<String> {
    let cut = tokio::time::Instant::from_std(until + CUT_AFTER);
    let mut failed = Vec::new();
    let (singles, batches): (Vec<Message>, Vec<Message>) =
        messages.into_iter().partition(|m| !matches!(m.work.submission, Submission::Batch(_)));
    let submissions: Vec<Submission> = singles.iter().map(|m| m.work.submission.clone()).collect();
    if !singles.is_empty() {
        match tokio::time::timeout_at(cut, store.settle_transfers(&tenant, &submissions, now)).await {
            Err(_) => {
                for message in &singles {
                    message.span.in_scope(|| tracing::warn!("the run's time is up: delivered again"));
                    failed.push(message.id.clone());
                }
            }
            Ok(Ok(settled)) => {
                let mut outcomes = settled.into_iter();
                for message in &singles {
                    let _entered = message.span.enter();
                    let mine: Vec<_> =
                        outcomes.by_ref().take(message.work.submission.transfer_ids().len()).collect();
                    for outcome in mine.iter().flatten() {
                        settled_one(message, outcome);
                    }
                    if mine.iter().any(Option::is_none) {
                        tracing::warn!("not settled now: delivered again");
                        failed.push(message.id.clone());
                    }
                }
            }
            Ok(Err(err)) => {
                for message in &singles {
                    message.span.in_scope(|| tracing::error!(error = %err, "not applied: delivered again"));
                    failed.push(message.id.clone());
                }
            }
        }
    }
    // Each batch once, however many of its messages arrived together.
    let mut by_batch: BTreeMap<BatchId, Vec<Message>> = BTreeMap::new();
    for message in batches {
        if let Submission::Batch(batch) = &message.work.submission {
            by_batch.entry(batch.clone()).or_default().push(message);
        }
    }
    for (batch, messages) in by_batch {
        let first = &messages[0];
        // Where it stood: a run cut mid-write tells nothing of what it settled, its cursor does.
        let queued_before = store.batch_status(&tenant, &batch).await.map(|s| s.counts.queued).ok();
        let run = store.settle_batch(&tenant, &batch, now, until).instrument(first.span.clone());
        let run = tokio::time::timeout_at(cut, run).await;
        let _entered = first.span.enter();
        let settled = match run {
            Err(_) => {
                let queued_after = store.batch_status(&tenant, &batch).await.map(|s| s.counts.queued).ok();
                tracing::warn!(
                    ?queued_before,
                    ?queued_after,
                    "the run's time was up in the middle of a write"
                );
                match (queued_before, queued_after) {
                    (_, Some(0)) => continue,
                    (Some(before), Some(after)) => before.saturating_sub(after) as usize,
                    _ => 0,
                }
            }
            Ok(Ok(run)) => {
                for outcome in &run.settled {
                    settled_one(first, outcome);
                }
                tracing::info!(settled = run.settled.len(), done = run.done, "batch applied");
                if run.done {
                    continue;
                }
                run.settled.len()
            }
            Ok(Err(err)) => {
                tracing::error!(error = %err, "batch not applied: delivered again");
                failed.extend(messages.iter().map(|m| m.id.clone()));
                continue;
            }
        };
        if settled == 0 {
            tracing::warn!("batch not settled any further now: delivered again");
            failed.extend(messages.iter().map(|m| m.id.clone()));
            continue;
        }
        match queue.send(&first.work).await {
            Ok(()) => tracing::info!(settled, "batch progressed: it continues in a new message"),
            Err(err) => {
                tracing::warn!(settled, error = %err, "batch progressed, its continuation not sent: delivered again");
                failed.extend(messages.iter().map(|m| m.id.clone()));
            }
        }
    }
    failed
}

fn settled_one(message: &Message, outcome: &Settled) {
    match outcome {
        Settled::Committed => {
            metrics::transfer_committed();
            let waited = message.sent_at.and_then(|sent| SystemTime::now().duration_since(sent).ok());
            if let Some(waited) = waited {
                metrics::enqueue_to_commit(waited);
            }
            tracing::info!(enqueueToCommitMs = waited.map(|w| w.as_millis() as u64), "transfer committed");
        }
        Settled::Rejected(reason) => {
            metrics::transfer_rejected(reason);
            tracing::info!(reason, "transfer rejected");
        }
        Settled::AlreadySettled => {
            metrics::idempotent_replay();
            tracing::info!("already settled by an earlier delivery: nothing written");
        }
    }
}
