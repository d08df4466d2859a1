//! Applying queued transfers (the worker's side). Transfers are applied in the order given, with the
//! same rules and idempotency as the synchronous path, and netted: each transaction writes each
//! account's balance item once, whatever the number of its transfers in it, so a hot account costs
//! one balance write per transaction instead of one per transfer.
//!
//! Every transfer settles exactly once: its queued marker gets an `outcome` only if it has none, in
//! the same transaction as the transfer's own writes and its batch's counters. So a redelivered
//! message changes nothing and counts nothing, and a transfer whose id was already used elsewhere
//! (the synchronous API, another batch) is still counted once in its batch.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use ledger::{AccountBalance, AccountId, BatchId, NewTransfer, TenantId, Transfer, TransferStatus};
use time::OffsetDateTime;

use crate::batches::REJECTED_PREFIX;
use crate::cancel::cancellation;
use crate::items::{self, Item, n, s};
use crate::reads::MAX_READ_KEYS;
use crate::retry::{MAX_ATTEMPTS, backoff};
use crate::transfers::{key, put, put_if_new};
use crate::{DynamoStore, StoreError, keys};

/// DynamoDB's limit of items in one TransactWriteItems.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// One queued transfer to apply.
#[derive(Clone, Debug)]
pub struct QueuedItem {
    pub batch_id: BatchId,
    pub transfer: NewTransfer,
}

/// How a queued transfer settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    Committed,
    /// Refused by a rule (the code), or `idempotency_conflict` when its id held another transfer.
    Rejected(String),
    /// Settled by an earlier delivery: nothing was written.
    AlreadySettled,
}

/// What one transfer contributes to a transaction.
struct Op {
    index: usize,
    outcome: Settled,
    /// Whether the transfer has a queued marker to settle (every transfer the API queued has one).
    marked: bool,
    /// Puts: the transfer record and its entries (empty when the transfer already existed).
    puts: Vec<(Item, bool)>,
    /// The states of the accounts it moved, right after it.
    after: Vec<AccountBalance>,
}

/// Counters a transaction adds to one batch.
#[derive(Default)]
struct Counts {
    committed: u64,
    rejected: BTreeMap<String, u64>,
}

impl DynamoStore {
    /// Applies the queued transfers of one tenant, in order. Returns, for each, how it settled, or
    /// `None` if it could not be settled now (contention or a transient error: deliver it again).
    pub async fn apply_queued(
        &self,
        tenant: &TenantId,
        queued: &[QueuedItem],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Settled>>, StoreError> {
        let mut settled: Vec<Option<Settled>> = vec![None; queued.len()];
        for attempt in 0..MAX_ATTEMPTS {
            let pending: Vec<usize> = (0..queued.len()).filter(|i| settled[*i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                backoff(attempt).await;
            }
            let ops = self.plan(tenant, queued, &pending, now).await?;
            let mut versions: HashMap<AccountId, u64> = HashMap::new();
            for op in &ops {
                for state in &op.after {
                    // The first state after an op tells the version before it: one entry less.
                    versions.entry(state.id.clone()).or_insert(state.entry_count - 1);
                }
            }
            let mut contended = false;
            for chunk in chunk_ops(&ops, queued) {
                match self.write_chunk(tenant, queued, chunk, &mut versions).await? {
                    true => {
                        for op in chunk {
                            settled[op.index] = Some(op.outcome.clone());
                        }
                    }
                    false => {
                        contended = true;
                        break;
                    }
                }
            }
            if !contended {
                break;
            }
        }
        Ok(settled)
    }

    /// Reads what the pending transfers need and applies them in memory, in order.
    async fn plan(
        &self,
        tenant: &TenantId,
        queued: &[QueuedItem],
        pending: &[usize],
        now: OffsetDateTime,
    ) -> Result<Vec<Op>, StoreError> {
        let mut keys_to_read = Vec::new();
        let mut accounts = HashSet::new();
        for &i in pending {
            let q = &queued[i];
            let pk = s(keys::transfer_pk(tenant, &q.transfer.id));
            keys_to_read.push(key(pk.clone(), keys::TRANSFER_SK));
            keys_to_read.push(key(pk, &keys::marker_sk(&q.batch_id)));
            accounts.insert(q.transfer.debit_account_id.clone());
            accounts.insert(q.transfer.credit_account_id.clone());
        }
        for account in &accounts {
            keys_to_read.push(key(s(keys::account_pk(tenant, account)), keys::BALANCE_SK));
        }
        keys_to_read.sort_by_key(|k| format!("{:?}", (k.get(keys::PK), k.get(keys::SK))));
        keys_to_read.dedup();
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        for chunk in keys_to_read.chunks(MAX_READ_KEYS) {
            for item in self.batch_get(chunk.to_vec()).await? {
                let pk = item.get(keys::PK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                let sk = item.get(keys::SK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                found.insert((pk, sk), item);
            }
        }
        let mut balances: HashMap<AccountId, AccountBalance> = HashMap::new();
        for account in accounts {
            if let Some(item) = found.get(&(keys::account_pk(tenant, &account), keys::BALANCE_SK.to_string()))
            {
                balances.insert(account, items::balance_from(item)?);
            }
        }

        let mut ops = Vec::new();
        for &i in pending {
            let q = &queued[i];
            let pk = keys::transfer_pk(tenant, &q.transfer.id);
            let marker = found.get(&(pk.clone(), keys::marker_sk(&q.batch_id)));
            let marked = marker.is_some();
            if marker.is_some_and(|m| m.contains_key("outcome")) {
                ops.push(Op {
                    index: i,
                    outcome: Settled::AlreadySettled,
                    marked,
                    puts: Vec::new(),
                    after: Vec::new(),
                });
                continue;
            }
            if let Some(existing) = found.get(&(pk, keys::TRANSFER_SK.to_string())) {
                let existing: Transfer = items::transfer_from(existing)?;
                let outcome = if !q.transfer.differing_fields(&existing.request).is_empty() {
                    Settled::Rejected("idempotency_conflict".into())
                } else {
                    match existing.status {
                        TransferStatus::Rejected { reason } => Settled::Rejected(reason.code().into()),
                        _ => Settled::Committed,
                    }
                };
                ops.push(Op { index: i, outcome, marked, puts: Vec::new(), after: Vec::new() });
                continue;
            }
            let (debit_id, credit_id) = (&q.transfer.debit_account_id, &q.transfer.credit_account_id);
            let mut debit = balances.remove(debit_id);
            let mut credit = if debit_id == credit_id { None } else { balances.remove(credit_id) };
            let applied = ledger::apply(&q.transfer, debit.as_mut(), credit.as_mut(), now);
            let after: Vec<AccountBalance> = debit.iter().chain(credit.iter()).cloned().collect();
            let op = match applied {
                Ok((debit_entry, credit_entry)) => Op {
                    index: i,
                    outcome: Settled::Committed,
                    marked,
                    puts: vec![
                        (items::transfer_item(tenant, &q.transfer.clone().committed(now)), true),
                        (items::entry_item(tenant, &debit_entry), false),
                        (items::entry_item(tenant, &credit_entry), false),
                    ],
                    after,
                },
                Err(rule) => Op {
                    index: i,
                    outcome: Settled::Rejected(rule.code().into()),
                    marked,
                    puts: vec![(items::transfer_item(tenant, &q.transfer.clone().rejected(rule, now)), true)],
                    after: Vec::new(),
                },
            };
            for state in [debit, credit].into_iter().flatten() {
                balances.insert(state.id.clone(), state);
            }
            ops.push(op);
        }
        Ok(ops)
    }

    /// Writes one chunk as one transaction. `Ok(false)` when another writer got there first.
    async fn write_chunk(
        &self,
        tenant: &TenantId,
        queued: &[QueuedItem],
        chunk: &[Op],
        versions: &mut HashMap<AccountId, u64>,
    ) -> Result<bool, StoreError> {
        let mut latest: BTreeMap<AccountId, &AccountBalance> = BTreeMap::new();
        let mut counts: BTreeMap<BatchId, Counts> = BTreeMap::new();
        let mut writes: Vec<TransactWriteItem> = Vec::new();
        for op in chunk {
            if op.outcome == Settled::AlreadySettled {
                continue;
            }
            let q = &queued[op.index];
            for (item, only_if_new) in &op.puts {
                writes.push(if *only_if_new {
                    put_if_new(&self.table, item.clone())?
                } else {
                    put(&self.table, item.clone())?
                });
            }
            for state in &op.after {
                latest.insert(state.id.clone(), state);
            }
            if !op.marked {
                continue;
            }
            writes.push(self.settle_marker(tenant, q, &op.outcome)?);
            let c = counts.entry(q.batch_id.clone()).or_default();
            match &op.outcome {
                Settled::Committed => c.committed += 1,
                Settled::Rejected(code) => *c.rejected.entry(code.clone()).or_default() += 1,
                Settled::AlreadySettled => {}
            }
        }
        for state in latest.values() {
            let was = versions.get(&state.id).copied().unwrap_or_default();
            writes.push(self.balance_update(tenant, state, was)?);
        }
        for (batch, c) in &counts {
            writes.push(self.count_update(tenant, batch, c)?);
        }
        if writes.is_empty() {
            return Ok(true);
        }
        let written = self.client.transact_write_items().set_transact_items(Some(writes)).send().await;
        match written {
            Ok(_) => {
                for state in latest.values() {
                    versions.insert(state.id.clone(), state.entry_count);
                }
                Ok(true)
            }
            // Every cancellation DynamoDB can cure by a redo (a condition that failed because the
            // state moved, another transaction) sends the transfers back to be planned again.
            Err(err) => cancellation(err).map(|_| false),
        }
    }

    /// Sets the marker's outcome, only if it has none (exactly-once settlement and counting).
    fn settle_marker(
        &self,
        tenant: &TenantId,
        q: &QueuedItem,
        outcome: &Settled,
    ) -> Result<TransactWriteItem, StoreError> {
        let code = match outcome {
            Settled::Committed => "committed",
            Settled::Rejected(code) => code.as_str(),
            Settled::AlreadySettled => "settled",
        };
        let update = Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::transfer_pk(tenant, &q.transfer.id)))
            .key(keys::SK, s(keys::marker_sk(&q.batch_id)))
            .update_expression("SET outcome = :outcome")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(outcome)")
            .expression_attribute_values(":outcome", s(code))
            .build()
            .map_err(|e| StoreError::Unexpected(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn count_update(
        &self,
        tenant: &TenantId,
        batch: &BatchId,
        c: &Counts,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut expression = vec!["committed :committed".to_string(), "rejected :rejected".to_string()];
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::batch_pk(tenant, batch)))
            .key(keys::SK, s(keys::BATCH_COUNTS_SK))
            .expression_attribute_values(":committed", n(c.committed))
            .expression_attribute_values(":rejected", n(c.rejected.values().sum::<u64>()));
        for (i, (code, count)) in c.rejected.iter().enumerate() {
            expression.push(format!("{REJECTED_PREFIX}{code} :r{i}"));
            update = update.expression_attribute_values(format!(":r{i}"), n(count));
        }
        let update = update
            .update_expression(format!("ADD {}", expression.join(", ")))
            .build()
            .map_err(|e| StoreError::Unexpected(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// Cuts the ops, in order, into transactions of at most 100 items: each op's own items, plus one
/// balance update per distinct account and one counter update per distinct batch in the chunk.
fn chunk_ops<'a>(ops: &'a [Op], queued: &[QueuedItem]) -> Vec<&'a [Op]> {
    let mut chunks = Vec::new();
    let (mut start, mut size) = (0, 0);
    let mut accounts: HashSet<&AccountId> = HashSet::new();
    let mut batches: HashSet<&BatchId> = HashSet::new();
    for (i, op) in ops.iter().enumerate() {
        let batch = &queued[op.index].batch_id;
        let cost = |accounts: &HashSet<&AccountId>, batches: &HashSet<&BatchId>| {
            let marker = usize::from(op.marked);
            let new_accounts = op.after.iter().filter(|a| !accounts.contains(&a.id)).count();
            let new_batch = usize::from(op.marked && !batches.contains(batch));
            op.puts.len() + marker + new_accounts + new_batch
        };
        if size + cost(&accounts, &batches) > MAX_TRANSACTION_ITEMS && i > start {
            chunks.push(&ops[start..i]);
            (start, size) = (i, 0);
            accounts.clear();
            batches.clear();
        }
        size += cost(&accounts, &batches);
        accounts.extend(op.after.iter().map(|a| &a.id));
        if op.marked {
            batches.insert(batch);
        }
    }
    if start < ops.len() {
        chunks.push(&ops[start..]);
    }
    chunks
}
