//! Batches of queued transfers: the batch record (what was submitted, what was enqueued, how many
//! were applied), and the queued markers that show a transfer before the worker applies it.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::stream::{self, StreamExt, TryStreamExt};
use ledger::{BatchCounts, BatchId, LedgerError, TenantId, TransferBatch};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::items::{self, Item, n, s};
use crate::{Created, DynamoStore, StoreError, keys};

/// Items per BatchWriteItem call (the DynamoDB maximum), and calls in flight at once.
const WRITE_BATCH: usize = 25;
const WRITE_CONCURRENCY: usize = 8;

/// The prefix of the per-reason rejection counters on the batch counts item.
pub(crate) const REJECTED_PREFIX: &str = "r_";

/// What the store keeps of a submitted batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRecord {
    pub id: BatchId,
    pub total: u64,
    pub created_at: OffsetDateTime,
}

/// A batch's record with where its transfers stand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchStatus {
    pub record: BatchRecord,
    pub counts: BatchCounts,
    /// Positions (in the batch) of the transfers SQS acknowledged.
    pub enqueued: Vec<u32>,
}

fn fingerprint(batch: &TransferBatch) -> String {
    // NewTransfer serialises deterministically (fields in order, metadata sorted).
    let bytes = serde_json::to_vec(batch.transfers()).unwrap_or_default();
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl DynamoStore {
    /// Records a batch once (one conditional PutItem), then its queued markers (BatchWriteItem, 25
    /// a call, several in parallel). Re-recording the same batch is a replay that writes the markers
    /// again (harmless: same content); the same id with other transfers is a conflict.
    pub async fn record_batch(
        &self,
        tenant: &TenantId,
        batch: &TransferBatch,
        now: OffsetDateTime,
    ) -> Result<Created<BatchRecord>, StoreError> {
        let record =
            BatchRecord { id: batch.id().clone(), total: batch.transfers().len() as u64, created_at: now };
        let pk = keys::batch_pk(tenant, batch.id());
        let item: Item = [
            (keys::PK.to_string(), s(&pk)),
            (keys::SK.to_string(), s(keys::BATCH_SK)),
            ("id".to_string(), s(batch.id().as_str())),
            ("fingerprint".to_string(), s(fingerprint(batch))),
            ("total".to_string(), n(record.total)),
            (
                "created_at".to_string(),
                s(now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()),
            ),
        ]
        .into_iter()
        .collect();
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        let outcome = match put {
            Ok(_) => Created::New(record),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let existing = failed.item().cloned().unwrap_or_default();
                    if existing.get("fingerprint") != Some(&s(fingerprint(batch))) {
                        return Err(LedgerError::IdempotencyConflict { fields: vec!["transfers"] }.into());
                    }
                    Created::Replayed(batch_record(&existing)?)
                }
                _ => return Err(err.into()),
            },
        };
        let markers = batch.transfers().iter().enumerate().map(|(index, t)| {
            items::marker_item(
                tenant,
                batch.id(),
                index as u32,
                &t.clone().queued(outcome.value().created_at),
            )
        });
        self.write_all(markers.collect()).await?;
        Ok(outcome)
    }

    /// Notes that SQS acknowledged the transfers at these positions (one UpdateItem adding to a set).
    pub async fn mark_enqueued(
        &self,
        tenant: &TenantId,
        batch: &BatchId,
        indexes: &[u32],
    ) -> Result<(), StoreError> {
        if indexes.is_empty() {
            return Ok(());
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::batch_pk(tenant, batch)))
            .key(keys::SK, s(keys::BATCH_ENQUEUED_SK))
            .update_expression("ADD enqueued :indexes")
            .expression_attribute_values(
                ":indexes",
                AttributeValue::Ns(indexes.iter().map(u32::to_string).collect()),
            )
            .send()
            .await?;
        Ok(())
    }

    /// One consistent Query of the batch's three items.
    pub async fn batch_status(&self, tenant: &TenantId, batch: &BatchId) -> Result<BatchStatus, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(keys::batch_pk(tenant, batch)))
            .consistent_read(true)
            .send()
            .await?;
        let by_sk: BTreeMap<String, &Item> = out
            .items()
            .iter()
            .filter_map(|item| Some((item.get(keys::SK)?.as_s().ok()?.clone(), item)))
            .collect();
        let record = match by_sk.get(keys::BATCH_SK) {
            Some(item) => batch_record(item)?,
            None => return Err(LedgerError::NotFound { what: "batch", id: batch.to_string() }.into()),
        };
        let mut enqueued: Vec<u32> = match by_sk.get(keys::BATCH_ENQUEUED_SK).and_then(|i| i.get("enqueued"))
        {
            Some(AttributeValue::Ns(set)) => set.iter().filter_map(|v| v.parse().ok()).collect(),
            _ => Vec::new(),
        };
        enqueued.sort_unstable();
        let number = |item: &Item, name: &str| -> u64 {
            item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        let mut counts =
            BatchCounts { total: record.total, enqueued: enqueued.len() as u64, ..Default::default() };
        if let Some(item) = by_sk.get(keys::BATCH_COUNTS_SK) {
            counts.committed = number(item, "committed");
            counts.rejected = number(item, "rejected");
            for name in item.keys().filter(|k| k.starts_with(REJECTED_PREFIX)) {
                let reason = name.trim_start_matches(REJECTED_PREFIX).to_owned();
                counts.rejected_by_reason.insert(reason, number(item, name));
            }
        }
        counts.not_enqueued = counts.total.saturating_sub(counts.enqueued);
        counts.queued = counts.enqueued.saturating_sub(counts.committed + counts.rejected);
        Ok(BatchStatus { record, counts, enqueued })
    }

    /// Unconditional puts of distinct new items, 25 per BatchWriteItem, retrying what DynamoDB
    /// leaves unprocessed.
    async fn write_all(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let batches: Vec<Vec<WriteRequest>> = items
            .chunks(WRITE_BATCH)
            .map(|chunk| {
                chunk
                    .iter()
                    .filter_map(|item| PutRequest::builder().set_item(Some(item.clone())).build().ok())
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .collect()
            })
            .collect();
        stream::iter(batches.into_iter().map(|requests| self.write_batch(requests)))
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn write_batch(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for attempt in 0..crate::retry::MAX_ATTEMPTS {
            if attempt > 0 {
                crate::retry::backoff(attempt).await;
            }
            let out = self.client.batch_write_item().request_items(&self.table, requests).send().await?;
            match out.unprocessed_items.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.is_empty() => requests = rest,
                _ => return Ok(()),
            }
        }
        Err(StoreError::Unavailable("batch writes stayed unprocessed".into()))
    }
}

fn batch_record(item: &Item) -> Result<BatchRecord, StoreError> {
    let corrupt = || StoreError::Corrupt("a batch item does not parse".into());
    let id = item.get("id").and_then(|v| v.as_s().ok()).and_then(|v| BatchId::parse(v.as_str()).ok());
    let total = item.get("total").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
    let created_at = item
        .get("created_at")
        .and_then(|v| v.as_s().ok())
        .and_then(|v| OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).ok());
    match (id, total, created_at) {
        (Some(id), Some(total), Some(created_at)) => Ok(BatchRecord { id, total, created_at }),
        _ => Err(corrupt()),
    }
}
