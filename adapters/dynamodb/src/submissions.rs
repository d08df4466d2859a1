//! Queued submissions (the API's side): a batch, or one transfer sent with `Prefer: respond-async`.
//!
//! Submitting claims every transfer id at once, so one id has one outcome on every route: each id
//! gets its transfer item with status `queued` and the submission as `owner`, by a PutItem that
//! succeeds only if the id is new. An id that already holds the same transfer settled is a replay
//! of it; one that holds other fields is a conflict, answered at once. A batch is accepted all or
//! nothing: on a conflict its claims are released and its record removed; once every id is claimed,
//! its ids item is written, and only an accepted batch is ever applied.
//!
//! Posts of the same batch may run at once, and one may be refused (an id in flight elsewhere)
//! while another is accepted. So each post marks the claims it counts on with a token of its own
//! (taking over, atomically, a claim an earlier post of the batch made), a refused post releases
//! only claims still marked with its token, and the record is removed only while the batch is not
//! accepted, and accepted only while the record stands: no post undoes another's accepted batch.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use futures::stream::{self, StreamExt};
use ledger::engine::{Book, Contention, StoredTransfer};
use ledger::linked::LinkedChain;
use ledger::port::{BatchRecord, BatchStatus, Created, StoreError, Submissions};
use ledger::{
    BatchCounts, BatchId, LedgerError, NewTransfer, Owner, Submission, TenantId, Transfer, TransferBatch,
    TransferId, TransferStatus,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cancel::cancellation;
use crate::error::{is_condition_failed, moot_unless_written, sdk, unbuilt};
use crate::items::{self, Item, n, put, put_if_new, s};
use crate::keys::{self, key};
use crate::store::DynamoStore;
use crate::store::current_correlation;

/// Claims (conditional PutItems) in flight at once while a batch is submitted.
const CLAIM_CONCURRENCY: usize = 16;
/// The attribute of a queued claim holding the token of the batch post that counts on it.
const CLAIM_TOKEN: &str = "claim";

/// What claiming one id found.
enum Claimed {
    /// Claimed now.
    New,
    /// Claimed by an earlier post of the same batch position (same content: the batch's
    /// fingerprint matched).
    Own,
    /// The id already holds a transfer: of another request, or of an earlier `respond-async` post
    /// (those share one owner, so their fields tell whether this is a replay).
    Held(Box<Transfer>),
}

fn fingerprint(batch: &TransferBatch) -> String {
    // NewTransfer serialises deterministically (fields in order, metadata sorted).
    let bytes = serde_json::to_vec(batch.transfers()).unwrap_or_default();
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait]
impl Submissions for DynamoStore {
    async fn submit_batch(
        &self,
        tenant: &TenantId,
        batch: &TransferBatch,
        now: OffsetDateTime,
    ) -> Result<Created<BatchRecord>, StoreError> {
        let print = fingerprint(batch);
        let recorded = self.record_batch(tenant, batch, &print, now).await?;
        if recorded.is_replay() && self.accepted_ids(tenant, batch.id()).await?.is_some() {
            return Ok(recorded);
        }
        let submission = Submission::Batch(batch.id().clone());
        // Read first: a batch that would be refused claims nothing, so it never has to release
        // claims that a concurrent post of the same batch may count on.
        let ids: Vec<TransferId> = batch.transfers().iter().map(|t| t.id.clone()).collect();
        let found = self.read(tenant, &ids, &[]).await?.transfers;
        let held: Vec<Claimed> = batch
            .transfers()
            .iter()
            .enumerate()
            .map(|(position, t)| match found.get(&t.id) {
                Some(stored) => claimed(stored, &submission.owner(position as u32)),
                None => Claimed::New,
            })
            .collect();
        if let Err(refused) = refusal(batch, &held) {
            self.withdraw_batch(tenant, batch, &print, None).await?;
            return Err(refused.into());
        }
        let created_at = recorded.value().created_at;
        let token = claim_token();
        // Owned inputs: the futures must not borrow from a closure argument to stay `Send`.
        let claims: Vec<(Owner, Transfer)> = batch
            .transfers()
            .iter()
            .enumerate()
            .map(|(position, t)| (submission.owner(position as u32), t.clone().queued(created_at)))
            .collect();
        let claims =
            claims.into_iter().map(|(owner, queued)| self.claim(tenant, queued, owner, Some(&token)));
        // Every claim runs to its end, so a failed one leaves nothing in flight behind the release.
        let claimed: Result<Vec<Claimed>, StoreError> =
            stream::iter(claims).buffered(CLAIM_CONCURRENCY).collect::<Vec<_>>().await.into_iter().collect();
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(err) => {
                if let Err(release) = self.withdraw_batch(tenant, batch, &print, Some(&token)).await {
                    tracing::warn!(error = %release, "claims of a failed batch post not all released");
                }
                return Err(err);
            }
        };
        // An id taken between the read and the claim.
        if let Err(refused) = refusal(batch, &claimed) {
            self.withdraw_batch(tenant, batch, &print, Some(&token)).await?;
            return Err(refused.into());
        }
        self.accept_batch(tenant, batch, &print).await?;
        Ok(recorded)
    }

    async fn submit_transfer(
        &self,
        tenant: &TenantId,
        request: NewTransfer,
        now: OffsetDateTime,
    ) -> Result<Created<Transfer>, StoreError> {
        let queued = request.clone().queued(now);
        // Respond-async transfers share one owner, so an existing one is never `Own`: its fields
        // tell a replay from another request.
        match self.claim(tenant, queued.clone(), Owner::Async, None).await? {
            Claimed::New | Claimed::Own => Ok(Created::New(queued)),
            Claimed::Held(existing) => {
                let fields = existing.differences(&request);
                if fields.is_empty() {
                    Ok(Created::Replayed(existing.observed(now)))
                } else {
                    let fields = fields.into_iter().map(str::to_owned).collect();
                    Err(LedgerError::IdempotencyConflict { fields }.into())
                }
            }
        }
    }

    /// Every member claimed in ONE transaction, or none.
    async fn submit_linked(
        &self,
        tenant: &TenantId,
        chain: LinkedChain,
        now: OffsetDateTime,
    ) -> Result<Created<Vec<Transfer>>, StoreError> {
        let chain = chain.into_transfers();
        let queued: Vec<Transfer> = chain.iter().map(|t| t.clone().queued(now)).collect();
        let ids: Vec<TransferId> = chain.iter().map(|t| t.id.clone()).collect();
        let owner = Submission::Linked(ids.clone()).owner(0);
        let correlation = current_correlation();
        let mut contention = Contention::start();
        loop {
            let claims = queued
                .iter()
                .map(|q| {
                    let item = items::claimed_transfer_item(tenant, q, &owner, correlation.as_deref());
                    put_if_new(&self.table, item)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let Err(err) = self.client.transact_write_items().set_transact_items(Some(claims)).send().await
            else {
                return Ok(Created::New(queued));
            };
            cancellation(err)?;
            let found = self.read(tenant, &ids, &[]).await?.transfers;
            if found.is_empty() {
                // Only another transaction was in the way: claim again.
                let pause = contention.next_pause().ok_or_else(|| {
                    StoreError::Unavailable(
                        "the chain's ids stayed contended; post the same request again".into(),
                    )
                })?;
                tokio::time::sleep(pause).await;
                continue;
            }
            let (mut fields, mut replays) = (Vec::new(), Vec::new());
            for (i, t) in chain.iter().enumerate() {
                if let Some(stored) = found.get(&t.id) {
                    let existing = stored.transfer.clone();
                    let differing = existing.differences(t);
                    fields.extend(differing.iter().map(|f| format!("transfers[{i}].{f}")));
                    replays.push(existing.observed(now));
                }
            }
            if fields.is_empty() && replays.len() == chain.len() {
                return Ok(Created::Replayed(replays));
            }
            if fields.is_empty() {
                // Some ids hold these very transfers, claimed apart from this chain.
                fields = chain
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| found.contains_key(&t.id))
                    .map(|(i, _)| format!("transfers[{i}].id"))
                    .collect();
            }
            return Err(LedgerError::IdempotencyConflict { fields }.into());
        }
    }

    async fn batch_status(&self, tenant: &TenantId, batch: &BatchId) -> Result<BatchStatus, StoreError> {
        self.read_batch(tenant, batch).await
    }
}

impl DynamoStore {
    /// One consistent BatchGetItem of the batch's record and progress.
    pub(crate) async fn read_batch(
        &self,
        tenant: &TenantId,
        batch: &BatchId,
    ) -> Result<BatchStatus, StoreError> {
        let pk = keys::batch_pk(tenant, batch);
        let found =
            self.batch_get(vec![key(pk.clone(), keys::BATCH_SK), key(pk, keys::BATCH_PROGRESS_SK)]).await?;
        let by_sk: BTreeMap<String, &Item> =
            found.iter().filter_map(|item| Some((item.get(keys::SK)?.as_s().ok()?.clone(), item))).collect();
        let record = match by_sk.get(keys::BATCH_SK) {
            Some(item) => batch_record(item)?,
            None => return Err(StoreError::not_found("batch", batch)),
        };
        let mut counts = BatchCounts { total: record.total, ..Default::default() };
        let mut settled = 0;
        if let Some(item) = by_sk.get(keys::BATCH_PROGRESS_SK) {
            settled = number(item, "cursor");
            counts.committed = number(item, "committed");
            counts.rejected = number(item, "rejected");
            for name in item.keys().filter(|k| k.starts_with(keys::REJECTED_PREFIX)) {
                let reason = name.trim_start_matches(keys::REJECTED_PREFIX).to_owned();
                counts.rejected_by_reason.insert(reason, number(item, name));
            }
        }
        counts.queued = counts.total.saturating_sub(settled);
        Ok(BatchStatus { record, counts })
    }

    /// The batch's transfer ids in order, once it is accepted (`None` before).
    pub(crate) async fn accepted_ids(
        &self,
        tenant: &TenantId,
        batch: &BatchId,
    ) -> Result<Option<Vec<TransferId>>, StoreError> {
        let found = self.get(key(keys::batch_pk(tenant, batch), keys::BATCH_IDS_SK)).await?;
        let Some(item) = found else { return Ok(None) };
        let corrupt = || StoreError::Corrupt(format!("the ids of batch {batch} do not parse"));
        let Some(AttributeValue::L(ids)) = item.get("ids") else { return Err(corrupt()) };
        ids.iter()
            .map(|id| id.as_s().ok().and_then(|id| TransferId::parse(id.as_str()).ok()).ok_or_else(corrupt))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// The batch's record, once (one conditional PutItem); the same id with other transfers is a
    /// conflict.
    async fn record_batch(
        &self,
        tenant: &TenantId,
        batch: &TransferBatch,
        print: &str,
        now: OffsetDateTime,
    ) -> Result<Created<BatchRecord>, StoreError> {
        let record =
            BatchRecord { id: batch.id().clone(), total: batch.transfers().len() as u64, created_at: now };
        let mut item = key(keys::batch_pk(tenant, batch.id()), keys::BATCH_SK);
        item.insert("id".into(), s(batch.id().as_str()));
        item.insert("fingerprint".into(), s(print));
        item.insert("total".into(), n(record.total));
        item.insert("created_at".into(), s(now.format(&Rfc3339).unwrap_or_default()));
        let record_key = key(keys::batch_pk(tenant, batch.id()), keys::BATCH_SK);
        match self.put_if_absent(item, record_key).await? {
            None => Ok(Created::New(record)),
            Some(existing) if existing.get("fingerprint") == Some(&s(print)) => {
                Ok(Created::Replayed(batch_record(&existing)?))
            }
            Some(_) => Err(LedgerError::IdempotencyConflict { fields: vec!["transfers".to_owned()] }.into()),
        }
    }

    /// Puts `item` only if nothing is at its key. Returns what is there instead, if something is.
    async fn put_if_absent(&self, item: Item, item_key: Item) -> Result<Option<Item>, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match put {
            Ok(_) => Ok(None),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => match failed.item() {
                    Some(existing) => Ok(Some(existing.clone())),
                    // Not every emulator returns the item: read it.
                    None => self.item(item_key).await.map(Some),
                },
                _ => Err(sdk(err)),
            },
        }
    }

    /// Puts `queued` only if its id is new, marked with `token` (a batch post's). If the id exists,
    /// says whether `owner` holds it; a queued claim of `owner` from an earlier post is taken over
    /// (its token replaced, atomically), so that post can no longer release it.
    async fn claim(
        &self,
        tenant: &TenantId,
        queued: Transfer,
        owner: Owner,
        token: Option<&str>,
    ) -> Result<Claimed, StoreError> {
        let correlation = current_correlation();
        let mut item = items::claimed_transfer_item(tenant, &queued, &owner, correlation.as_deref());
        if let Some(token) = token {
            item.insert(CLAIM_TOKEN.into(), s(token));
        }
        let item_key = key(keys::transfer_pk(tenant, &queued.request.id), keys::TRANSFER_SK);
        let mut contention = Contention::start();
        loop {
            let Some(existing) = self.put_if_absent(item.clone(), item_key.clone()).await? else {
                return Ok(Claimed::New);
            };
            let existing = items::stored_transfer(&existing)?;
            let still_queued = existing.transfer.status == TransferStatus::Queued;
            let claimed = claimed(&existing, &owner);
            let (Claimed::Own, Some(token), true) = (&claimed, token, still_queued) else {
                return Ok(claimed);
            };
            let taken = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(item_key.clone()))
                .update_expression("SET #claim = :token")
                .condition_expression("#owner = :owner AND #status = :queued")
                .expression_attribute_names("#claim", CLAIM_TOKEN)
                .expression_attribute_names("#owner", keys::OWNER)
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":token", s(token))
                .expression_attribute_values(":owner", s(owner.key()))
                .expression_attribute_values(":queued", s("queued"))
                .send()
                .await;
            match taken {
                Ok(_) => return Ok(Claimed::Own),
                // Released or settled meanwhile: look again.
                Err(err) if is_condition_failed(&err) => {}
                Err(err) => return Err(sdk(err)),
            }
            let pause = contention.next_pause().ok_or_else(|| {
                StoreError::Unavailable(format!(
                    "the claim of transfer {} stayed contended",
                    queued.request.id
                ))
            })?;
            tokio::time::sleep(pause).await;
        }
    }

    /// One consistent GetItem of an item that must exist.
    async fn item(&self, item_key: Item) -> Result<Item, StoreError> {
        let found = self.get(item_key).await?;
        found.ok_or_else(|| StoreError::Unexpected("an item vanished between a write and a read".into()))
    }

    /// Marks the batch accepted: its ids in order, written once every id is claimed, and only while
    /// its record stands (a concurrent refused post may have removed it: then post again).
    async fn accept_batch(
        &self,
        tenant: &TenantId,
        batch: &TransferBatch,
        print: &str,
    ) -> Result<(), StoreError> {
        let pk = keys::batch_pk(tenant, batch.id());
        let mut item = key(pk.clone(), keys::BATCH_IDS_SK);
        let ids = batch.transfers().iter().map(|t| s(t.id.as_str())).collect();
        item.insert("ids".into(), AttributeValue::L(ids));
        let record_stands = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, keys::BATCH_SK)))
            .condition_expression("fingerprint = :print")
            .expression_attribute_values(":print", s(print))
            .build()
            .map_err(unbuilt)?;
        let written = self
            .client
            .transact_write_items()
            .transact_items(put(&self.table, item)?)
            .transact_items(TransactWriteItem::builder().condition_check(record_stands).build())
            .send()
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(err) => {
                cancellation(err)?;
                Err(StoreError::Unavailable(format!(
                    "batch {} was withdrawn by a concurrent post; post it again",
                    batch.id()
                )))
            }
        }
    }

    /// Undoes a refused post: releases the claims still marked with its `token` (none if it made
    /// none), then removes the batch's record unless the batch is accepted, so the id is not spent.
    async fn withdraw_batch(
        &self,
        tenant: &TenantId,
        batch: &TransferBatch,
        print: &str,
        token: Option<&str>,
    ) -> Result<(), StoreError> {
        if let Some(token) = token {
            let item_keys: Vec<Item> = batch
                .transfers()
                .iter()
                .map(|t| key(keys::transfer_pk(tenant, &t.id), keys::TRANSFER_SK))
                .collect();
            let releases = item_keys.into_iter().map(|item_key| {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(item_key))
                    .condition_expression("#claim = :token AND #status = :queued")
                    .expression_attribute_names("#claim", CLAIM_TOKEN)
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":token", s(token))
                    .expression_attribute_values(":queued", s("queued"))
                    .send()
            });
            let released: Vec<_> = stream::iter(releases).buffer_unordered(CLAIM_CONCURRENCY).collect().await;
            for result in released {
                moot_unless_written(result)?;
            }
        }
        let pk = keys::batch_pk(tenant, batch.id());
        let remove = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), keys::BATCH_SK)))
            .condition_expression("fingerprint = :print")
            .expression_attribute_values(":print", s(print))
            .build()
            .map_err(unbuilt)?;
        let not_accepted = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, keys::BATCH_IDS_SK)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(unbuilt)?;
        let removed = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(remove).build())
            .transact_items(TransactWriteItem::builder().condition_check(not_accepted).build())
            .send()
            .await;
        match removed {
            Ok(_) => Ok(()),
            // Accepted by a concurrent post, or removed already: it stands as it is.
            Err(err) => cancellation(err).map(|_| ()),
        }
    }
}

/// A batch post's own mark on the claims it counts on.
fn claim_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// What an existing transfer means to the submission position that would claim it as `owner`.
/// Only a batch position's owner is unique to it; respond-async transfers share one.
fn claimed(existing: &StoredTransfer, owner: &Owner) -> Claimed {
    if owner.is_unique() && existing.owner.as_ref() == Some(owner) {
        return Claimed::Own;
    }
    Claimed::Held(Box::new(existing.transfer.clone()))
}

/// Why the batch cannot be accepted with what its ids hold, if it cannot: every differing field,
/// else the first id another submission has queued.
fn refusal(batch: &TransferBatch, held: &[Claimed]) -> Result<(), LedgerError> {
    let mut fields = Vec::new();
    let mut in_flight = None;
    for (position, (claimed, transfer)) in held.iter().zip(batch.transfers()).enumerate() {
        if let Claimed::Held(existing) = claimed {
            let differing = existing.differences(transfer);
            fields.extend(differing.iter().map(|f| format!("transfers[{position}].{f}")));
            if differing.is_empty() && existing.status == TransferStatus::Queued {
                in_flight.get_or_insert_with(|| transfer.id.to_string());
            }
        }
    }
    match in_flight {
        _ if !fields.is_empty() => Err(LedgerError::IdempotencyConflict { fields }),
        Some(id) => Err(LedgerError::InFlight { id }),
        None => Ok(()),
    }
}

fn number(item: &Item, name: &str) -> u64 {
    items::number(item.get(name)).unwrap_or(0)
}

fn batch_record(item: &Item) -> Result<BatchRecord, StoreError> {
    let corrupt = || StoreError::Corrupt("a batch item does not parse".into());
    let id = item.get("id").and_then(|v| v.as_s().ok()).and_then(|v| BatchId::parse(v.as_str()).ok());
    let total = item.get("total").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
    let created_at = item
        .get("created_at")
        .and_then(|v| v.as_s().ok())
        .and_then(|v| OffsetDateTime::parse(v, &Rfc3339).ok());
    match (id, total, created_at) {
        (Some(id), Some(total), Some(created_at)) => Ok(BatchRecord { id, total, created_at }),
        _ => Err(corrupt()),
    }
}
