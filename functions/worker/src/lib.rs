//! The worker's handler: one SQS batch in, the ids of the messages to deliver again out.
//!
//! A message that does not parse is reported (so SQS redelivers it and, after maxReceiveCount, moves
//! it to the dead-letter queue) and never fails the others. A transfer refused by a rule settles
//! once as rejected and is not retried. Only what could not be settled now (contention, throttling,
//! an unavailable store) is reported back for redelivery.

use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use ledger::{TenantId, TransferId};
use ledger_dynamodb::{DynamoStore, QueuedItem, Settled};
use ledger_sqs::QueuedTransfer;
use time::OffsetDateTime;

/// Applies one SQS batch. Tenants are applied in parallel; within a tenant, transfers are applied in
/// batch order (so transfers on the same account apply in the order submitted).
pub async fn handle(store: &DynamoStore, event: SqsEvent) -> SqsBatchResponse {
    let mut failed: Vec<String> = Vec::new();
    let mut by_tenant: BTreeMap<TenantId, Vec<(String, QueuedTransfer)>> = BTreeMap::new();
    for record in event.records {
        let message_id = record.message_id.unwrap_or_default();
        match record.body.as_deref().map(QueuedTransfer::parse) {
            Some(Ok(queued)) => {
                by_tenant.entry(queued.tenant.clone()).or_default().push((message_id, queued))
            }
            Some(Err(err)) => {
                tracing::error!(message_id, error = %err, "unparseable queued transfer: reported as failed, it will end in the dead-letter queue");
                failed.push(message_id);
            }
            None => {
                tracing::error!(message_id, "queued transfer without a body: reported as failed");
                failed.push(message_id);
            }
        }
    }
    let now = OffsetDateTime::now_utc();
    let groups = by_tenant.into_iter().map(|(tenant, messages)| apply_tenant(store, tenant, messages, now));
    for group_failed in futures::future::join_all(groups).await {
        failed.extend(group_failed);
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// Applies one tenant's messages and returns the ids of those to deliver again. A transfer id met
/// twice in one batch (a duplicate delivery, or the same id queued in two batches) is applied in a
/// later round than its first occurrence, since one transaction cannot write an item twice.
async fn apply_tenant(
    store: &DynamoStore,
    tenant: TenantId,
    mut messages: Vec<(String, QueuedTransfer)>,
    now: OffsetDateTime,
) -> Vec<String> {
    messages.sort_by(|a, b| (&a.1.batch_id, a.1.index).cmp(&(&b.1.batch_id, b.1.index)));
    let mut failed = Vec::new();
    let mut rest = messages;
    while !rest.is_empty() {
        let mut seen: HashMap<TransferId, ()> = HashMap::new();
        let (round, later): (Vec<_>, Vec<_>) =
            rest.into_iter().partition(|(_, q)| seen.insert(q.transfer.id.clone(), ()).is_none());
        rest = later;
        let items: Vec<QueuedItem> = round
            .iter()
            .map(|(_, q)| QueuedItem { batch_id: q.batch_id.clone(), transfer: q.transfer.clone() })
            .collect();
        match store.apply_queued(&tenant, &items, now).await {
            Ok(settled) => {
                for ((message_id, queued), outcome) in round.into_iter().zip(settled) {
                    match outcome {
                        Some(outcome) => log_settled(&tenant, &queued, &outcome),
                        None => {
                            tracing::warn!(%tenant, transfer_id = %queued.transfer.id, "not settled now: delivered again");
                            failed.push(message_id);
                        }
                    }
                }
            }
            Err(err) => {
                tracing::error!(%tenant, error = %err, count = round.len(), "queued transfers failed: delivered again");
                failed.extend(round.into_iter().map(|(id, _)| id));
            }
        }
    }
    failed
}

fn log_settled(tenant: &TenantId, queued: &QueuedTransfer, outcome: &Settled) {
    let t = &queued.transfer;
    match outcome {
        Settled::Committed => {
            tracing::info!(%tenant, batch_id = %queued.batch_id, transfer_id = %t.id, "committed")
        }
        Settled::Rejected(reason) => {
            tracing::info!(%tenant, batch_id = %queued.batch_id, transfer_id = %t.id, reason, "rejected")
        }
        Settled::AlreadySettled => {
            tracing::info!(%tenant, batch_id = %queued.batch_id, transfer_id = %t.id, "already settled (duplicate delivery)")
        }
    }
}
