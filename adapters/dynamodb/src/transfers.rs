//! Transfers: the double-entry write and its idempotency.
//!
//! A transfer is applied by ONE TransactWriteItems: put the transfer (only if its id is new),
//! update both accounts (only if each is still at the version read), put one entry on each. The
//! consistent read before it supplies the versions and the balances after; it decides nothing on
//! its own, since a stale read makes the transaction's conditions fail and the whole attempt is
//! redone. So no read-then-write race can move money twice or overdraw an account.
//!
//! When both accounts' latest states are in the balance cache (this store wrote or read them a
//! moment ago), the transfer goes straight to the write with those versions: one request. A stale
//! entry fails the conditions like a stale read does; a refusal is never decided on cached state.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use ledger::{AccountBalance, LedgerError, NewTransfer, TenantId, Transfer, TransferId};
use time::OffsetDateTime;

use crate::cancel::cancellation;
use crate::items::{self, Item, n, s};
use crate::retry::{MAX_ATTEMPTS, backoff};
use crate::{Created, DynamoStore, StoreError, keys};

/// What one attempt of the write found.
enum Attempt {
    Done(Created<Transfer>),
    /// An account moved between the read and the write, or another transaction held it: redo.
    Contended,
    /// The cached state was stale, or would refuse the transfer: redo at once from a fresh read.
    Stale,
}

impl DynamoStore {
    /// Applies `request` once. Returns the recorded transfer: committed, or rejected by a business
    /// rule (a rejection is recorded too, and the id is spent). A retry of an identical request
    /// returns the first outcome as `Created::Replayed`; a request that reuses the id with other
    /// fields is an `IdempotencyConflict`.
    pub async fn create_transfer(
        &self,
        tenant: &TenantId,
        request: NewTransfer,
        now: OffsetDateTime,
    ) -> Result<Created<Transfer>, StoreError> {
        if let Err(rule) = request.check_static() {
            return self.record_rejection(tenant, request.rejected(rule, now)).await;
        }
        let mut use_cache = true;
        for attempt in 0..MAX_ATTEMPTS {
            match self.try_transfer(tenant, &request, now, use_cache).await? {
                Attempt::Done(outcome) => return Ok(outcome),
                Attempt::Stale => use_cache = false,
                Attempt::Contended => backoff(attempt + 1).await,
            }
        }
        Err(StoreError::Unavailable(format!("accounts of transfer {} stayed contended", request.id)))
    }

    /// One strongly consistent Query of the transfer's partition: the transfer if applied, else its
    /// queued marker (status `queued`).
    pub async fn get_transfer(&self, tenant: &TenantId, id: &TransferId) -> Result<Transfer, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(keys::transfer_pk(tenant, id)))
            .scan_index_forward(false)
            .consistent_read(true)
            .send()
            .await?;
        // Descending: the applied transfer (`X`) comes before any queued marker (`Q#…`).
        match out.items().first() {
            Some(item) => items::transfer_from(item),
            None => Err(LedgerError::NotFound { what: "transfer", id: id.to_string() }.into()),
        }
    }

    async fn find_transfer(
        &self,
        tenant: &TenantId,
        id: &TransferId,
    ) -> Result<Option<Transfer>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::transfer_pk(tenant, id)))
            .key(keys::SK, s(keys::TRANSFER_SK))
            .consistent_read(true)
            .send()
            .await?;
        out.item().map(items::transfer_from).transpose()
    }

    async fn try_transfer(
        &self,
        tenant: &TenantId,
        request: &NewTransfer,
        now: OffsetDateTime,
        use_cache: bool,
    ) -> Result<Attempt, StoreError> {
        let cached = if use_cache { self.cached_accounts(tenant, request) } else { None };
        let from_cache = cached.is_some();
        let snapshot = match cached {
            Some(snapshot) => snapshot,
            None => self.read_for_transfer(tenant, request).await?,
        };
        if let Some(existing) = snapshot.transfer {
            return replay_or_conflict(request, existing).map(Attempt::Done);
        }
        let (mut debit, mut credit) = (snapshot.debit, snapshot.credit);
        let versions = (debit.as_ref().map(|a| a.entry_count), credit.as_ref().map(|a| a.entry_count));
        let (debit_entry, credit_entry) = match ledger::apply(request, debit.as_mut(), credit.as_mut(), now) {
            Ok(entries) => entries,
            Err(_) if from_cache => return Ok(Attempt::Stale),
            Err(rule) => {
                let rejected = request.clone().rejected(rule, now);
                return self.record_rejection(tenant, rejected).await.map(Attempt::Done);
            }
        };
        // `apply` succeeded, so both accounts exist.
        let (Some(debit), Some(credit), (Some(debit_was), Some(credit_was))) = (debit, credit, versions)
        else {
            return Err(StoreError::Unexpected("apply succeeded without both accounts".into()));
        };
        let transfer = request.clone().committed(now);
        let written = self
            .client
            .transact_write_items()
            .transact_items(put_if_new(&self.table, items::transfer_item(tenant, &transfer))?)
            .transact_items(self.balance_update(tenant, &debit, debit_was)?)
            .transact_items(self.balance_update(tenant, &credit, credit_was)?)
            .transact_items(put(&self.table, items::entry_item(tenant, &debit_entry))?)
            .transact_items(put(&self.table, items::entry_item(tenant, &credit_entry))?)
            .send()
            .await;
        let err = match written {
            Ok(_) => {
                self.balances.put(tenant, &debit);
                self.balances.put(tenant, &credit);
                return Ok(Attempt::Done(Created::New(transfer)));
            }
            Err(err) => err,
        };
        let cancelled = cancellation(err)?;
        if cancelled.failed(0) {
            // The id was taken between our read and our write: the first writer's outcome stands.
            let existing = self.find_transfer(tenant, &request.id).await?;
            let existing = existing.ok_or_else(|| StoreError::Unexpected("transfer vanished".into()))?;
            return replay_or_conflict(request, existing).map(Attempt::Done);
        }
        // An account moved since it was read (or cached), or another transaction held an item.
        self.balances.forget(tenant, &debit.id);
        self.balances.forget(tenant, &credit.id);
        Ok(if from_cache { Attempt::Stale } else { Attempt::Contended })
    }

    /// Both accounts' cached states, as a snapshot that has not read the transfer id (its write
    /// puts the transfer only if the id is new).
    fn cached_accounts(&self, tenant: &TenantId, request: &NewTransfer) -> Option<Snapshot> {
        let debit = self.balances.get(tenant, &request.debit_account_id)?;
        let credit = self.balances.get(tenant, &request.credit_account_id)?;
        Some(Snapshot { debit: Some(debit), credit: Some(credit), transfer: None })
    }

    /// One strongly consistent BatchGetItem of both balance items and the transfer id.
    async fn read_for_transfer(
        &self,
        tenant: &TenantId,
        request: &NewTransfer,
    ) -> Result<Snapshot, StoreError> {
        let found = self
            .batch_get(vec![
                key(s(keys::account_pk(tenant, &request.debit_account_id)), keys::BALANCE_SK),
                key(s(keys::account_pk(tenant, &request.credit_account_id)), keys::BALANCE_SK),
                key(s(keys::transfer_pk(tenant, &request.id)), keys::TRANSFER_SK),
            ])
            .await?;
        let snapshot = Snapshot::from_items(&found, request)?;
        for state in snapshot.debit.iter().chain(&snapshot.credit) {
            self.balances.put(tenant, state);
        }
        Ok(snapshot)
    }

    /// Records a business rejection once; if the id was taken meanwhile, the first outcome stands.
    async fn record_rejection(
        &self,
        tenant: &TenantId,
        rejected: Transfer,
    ) -> Result<Created<Transfer>, StoreError> {
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::transfer_item(tenant, &rejected)))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match written {
            Ok(_) => Ok(Created::New(rejected)),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let existing = match failed.item() {
                        Some(item) => items::transfer_from(item)?,
                        None => self.get_transfer(tenant, &rejected.request.id).await?,
                    };
                    replay_or_conflict(&rejected.request, existing)
                }
                _ => Err(err.into()),
            },
        }
    }

    /// Sets the account's new totals, only if no other entry was applied since it was read.
    pub(crate) fn balance_update(
        &self,
        tenant: &TenantId,
        account: &AccountBalance,
        was: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::account_pk(tenant, &account.id)))
            .key(keys::SK, s(keys::BALANCE_SK))
            // `writes` counts the item's writes: how hot it runs, visible in the table.
            .update_expression(
                "SET debits_posted = :d, credits_posted = :c, entry_count = :now ADD writes :one",
            )
            .expression_attribute_values(":one", n(1))
            .condition_expression("entry_count = :was")
            .expression_attribute_values(":d", n(account.balances.debits_posted))
            .expression_attribute_values(":c", n(account.balances.credits_posted))
            .expression_attribute_values(":now", n(account.entry_count))
            .expression_attribute_values(":was", n(was))
            .build()
            .map_err(|e| StoreError::Unexpected(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

pub(crate) fn put(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder().table_name(table).set_item(Some(item));
    let put = put.build().map_err(|e| StoreError::Unexpected(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A transactional put that fails the transaction if the item exists.
pub(crate) fn put_if_new(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)");
    let put = put.build().map_err(|e| StoreError::Unexpected(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The key of the item at (`pk`, `sk`).
pub(crate) fn key(pk: AttributeValue, sk: &str) -> Item {
    [(keys::PK.to_string(), pk), (keys::SK.to_string(), s(sk))].into_iter().collect()
}

fn replay_or_conflict(request: &NewTransfer, existing: Transfer) -> Result<Created<Transfer>, StoreError> {
    let fields = request.differing_fields(&existing.request);
    if fields.is_empty() {
        Ok(Created::Replayed(existing))
    } else {
        Err(LedgerError::IdempotencyConflict { fields }.into())
    }
}

/// What the read before a transfer found.
struct Snapshot {
    debit: Option<AccountBalance>,
    credit: Option<AccountBalance>,
    transfer: Option<Transfer>,
}

impl Snapshot {
    fn from_items(found: &[Item], request: &NewTransfer) -> Result<Self, StoreError> {
        let mut snapshot = Snapshot { debit: None, credit: None, transfer: None };
        for item in found {
            match item.get(keys::SK).and_then(|v| v.as_s().ok()).map(String::as_str) {
                Some(keys::TRANSFER_SK) => snapshot.transfer = Some(items::transfer_from(item)?),
                Some(keys::BALANCE_SK) => {
                    let account = items::balance_from(item)?;
                    if account.id == request.debit_account_id {
                        snapshot.debit = Some(account);
                    } else if account.id == request.credit_account_id {
                        snapshot.credit = Some(account);
                    }
                }
                _ => return Err(StoreError::Unexpected("batch read returned an unasked item".into())),
            }
        }
        Ok(snapshot)
    }
}
