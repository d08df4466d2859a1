//! The writer: a plan's steps (`ledger::engine::Step`) as conditional TransactWriteItems, cut to
//! DynamoDB's limits of items AND bytes, each conditioned on exactly what was read:
//!
//! - a transfer's id is written only if it is still as read (absent, or this submission's queued
//!   claim of it), so no id settles twice;
//! - an account's balance only if its version (`entry_count`) is still the one read, so no transfer
//!   commits on a stale balance; a refusal writes its record and its event, and checks the
//!   versions of the accounts it was decided on (and the transfer it acted on, as read), so it
//!   too stands as one step of the serial order;
//! - a batch's cursor only if it still stands where it was read, so each of its transfers is counted
//!   once, in order;
//! - a hold's status only if it is still `pending`, so a hold resolves once (post, void or expiry);
//! - a reversed transfer's list of reversals only if its reversed sum is still the one read, so
//!   concurrent reversals never sum to more than it posted.
//!
//! A cancelled transaction wrote nothing: the engine reads and plans again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use ledger::engine::{AsRead, DueHold, Progress, Step, Written, chain_end, outcome_counts};
use ledger::port::StoreError;
use ledger::{
    AccountBalance, AccountId, Decision, Entry, Event, Owner, TenantId, Transfer, TransferId, TransferStatus,
};

use crate::cancel::{Cancelled, cancellation, failed_items};
use crate::error::unbuilt;
use crate::items::{self, delete, n, put, s};
use crate::store::DynamoStore;
use crate::store::current_correlation;
use crate::{events, expiry, keys};

/// DynamoDB's limits of one TransactWriteItems: items, and their aggregate size (4 MB, less a
/// margin for what `item_size` does not count).
pub const MAX_TRANSACTION_ITEMS: usize = 100;
pub const MAX_TRANSACTION_BYTES: usize = 4_000_000;
/// The condition that an account's revision is still `:revision`, as read (`revision`): an item
/// written before accounts had revisions has none, which reads as 0.
pub(crate) fn revision_as_read(revision: u64) -> &'static str {
    if revision == 0 {
        "(attribute_not_exists(revision) OR revision = :revision)"
    } else {
        "revision = :revision"
    }
}

/// The condition that a balance item is still as read (`was`): its entries and revision, and for
/// a shard of a hot account the funds moved into it, which a gather moves
/// (`ledger::escrow::gather`). Its values: [`as_read_values`].
pub(crate) fn as_read_condition(was: AsRead) -> String {
    let moved = if was.sharded { " AND moved = :moved" } else { "" };
    format!("entry_count = :was AND {}{moved}", revision_as_read(was.version.revision))
}

pub(crate) fn as_read_values(was: AsRead) -> Vec<(&'static str, AttributeValue)> {
    let mut values = vec![(":was", n(was.version.entries)), (":revision", n(was.version.revision))];
    if was.sharded {
        values.push((":moved", n(was.moved)));
    }
    values
}
/// What an update of a balance or a batch's progress adds to a transaction, at most.
const UPDATE_BYTES: usize = 1_024;
/// An entry's item, at most: two ids of 64 characters, two totals of 38 digits, a few fields.
const ENTRY_SIZE: usize = 1_000;
/// What an event item adds to its object's JSON: keys, ids, type, instants, correlation id.
const EVENT_SLACK: usize = 1_000;

/// The size of the item of `transfer`'s event, at most: its JSON (which escaping can make up to
/// six times its item's size: a control character is `\u0001` in JSON) and the event's own fields.
fn event_size(transfer: &Transfer) -> usize {
    serde_json::to_vec(transfer).map_or(6 * items::transfer_size(transfer), |json| json.len()) + EVENT_SLACK
}

impl DynamoStore {
    /// Writes `steps` in order, as few transactions as the limits allow, each writing each account's
    /// balance once (netting) and advancing `progress` if given. `versions` holds each account's
    /// version as read, and is moved on by each transaction written.
    pub(crate) async fn write_steps(
        &self,
        tenant: &TenantId,
        steps: &[Step],
        versions: &mut HashMap<AccountId, AsRead>,
        mut progress: Option<&mut Progress>,
    ) -> Result<Written, StoreError> {
        // Every transfer the steps record is listed for search before any is recorded (the listings
        // of all the transactions at once: one round trip), so once recorded, it is found. A
        // listing whose transaction is cancelled names a transfer a read then skips.
        self.list_for_search(tenant, steps).await?;
        let mut written = 0;
        for chunk in chunks(steps, progress.is_some()) {
            let mut transaction = Transaction::default();
            for step in chunk {
                transaction.add(self, tenant, step)?;
            }
            // Each account's entries in this transaction follow on from its version, gapless.
            for (account, latest) in &transaction.balances {
                let was = versions.get(account).copied().unwrap_or_default().version.entries;
                let written = transaction.entries_of.get(account).copied().unwrap_or_default();
                assert_eq!(latest.sequence, was + written, "account {account}: entries not gapless");
            }
            let mut writes: Vec<_> = transaction.puts.into_iter().flatten().collect();
            let first_balance = writes.len();
            for (account, entry) in &transaction.balances {
                let was = versions.get(account).copied().unwrap_or_default();
                writes.push(self.balance_update(tenant, entry, was)?);
            }
            let balance_updates = first_balance..writes.len();
            // A refusal stands only at the versions its accounts were read at (an account that
            // does not exist has none: its absence is final), and one for want of funds on a hot
            // account only if its other shards are still as read.
            for account in transaction.checked.iter().filter(|a| !transaction.balances.contains_key(*a)) {
                if let Some(was) = versions.get(account) {
                    writes.push(self.balance_check(tenant, account, *was)?);
                }
            }
            for shard in transaction.shards_checked.values() {
                writes.push(self.balance_check(tenant, &shard.id, AsRead::of(shard))?);
            }
            let mut acted_on_checked = HashSet::new();
            for read in &transaction.acted_on {
                let id = &read.request.id;
                let written_here =
                    transaction.transfer_puts.contains_key(id) || transaction.amended.contains(id);
                if !written_here && acted_on_checked.insert(id.clone()) {
                    writes.push(self.transfer_check(tenant, read)?);
                }
            }
            // The batch as it stands once this chunk is written.
            let mut batch_after = None;
            if let Some(progress) = progress.as_deref() {
                let counts = outcome_counts(chunk);
                writes.push(self.progress_update(tenant, progress, chunk.len() as u64, &counts)?);
                let (batch, settled) = progress.after(tenant, chunk.len(), &counts);
                if let Some(event) = settled {
                    let item = events::event_item(tenant, &event, current_correlation().as_deref())?;
                    writes.push(put(&self.table, item)?);
                }
                batch_after = Some(batch);
            }
            if !writes.is_empty() {
                let sent = self.client.transact_write_items().set_transact_items(Some(writes)).send().await;
                // A cancelled transaction wrote nothing; any other error is the store's.
                if let Err(err) = sent {
                    let items = failed_items(&err);
                    let found = match cancellation(err)? {
                        Cancelled::Conditions(failed)
                            if failed.iter().all(|i| balance_updates.contains(i)) =>
                        {
                            found_balances(&failed, items)
                        }
                        _ => Vec::new(),
                    };
                    return Ok(Written { steps: written, cancelled: true, found });
                }
            }
            for (account, entry) in transaction.balances {
                versions.entry(account).or_default().version.entries = entry.sequence;
            }
            if let (Some(progress), Some(batch)) = (progress.as_deref_mut(), batch_after) {
                progress.cursor += chunk.len() as u64;
                progress.batch_as_read = batch;
            }
            written += chunk.len();
        }
        Ok(Written::landed(written))
    }

    /// Sets the account's totals as of `latest` (its last entry in the transaction), only if no
    /// other entry was applied since it was read at version `was`.
    fn balance_update(
        &self,
        tenant: &TenantId,
        latest: &Entry,
        was: AsRead,
    ) -> Result<TransactWriteItem, StoreError> {
        debug_assert_eq!(latest.shard, was.shard, "an entry on another shard than the balance read");
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::shard_pk(tenant, &latest.account_id, latest.shard)))
            .key(keys::SK, s(keys::BALANCE_SK))
            // `writes` counts the item's writes: how hot it runs, visible in the table.
            .update_expression(
                "SET debits_pending = :dp, debits_posted = :d, credits_pending = :cp, credits_posted = :c, \
                 entry_count = :now, last_entry_at = :at, head = :head ADD writes :one",
            )
            .condition_expression(as_read_condition(was))
            // A cancelled write hands back the balance as it stands: the retry plans on it.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":dp", n(latest.balances_after.debits_pending))
            .expression_attribute_values(":d", n(latest.balances_after.debits_posted))
            .expression_attribute_values(":cp", n(latest.balances_after.credits_pending))
            .expression_attribute_values(":c", n(latest.balances_after.credits_posted))
            .expression_attribute_values(":now", n(latest.sequence))
            .expression_attribute_values(":at", items::timestamp(latest.created_at))
            .expression_attribute_values(":head", s(latest.hash.to_string()));
        for (name, value) in as_read_values(was) {
            update = update.expression_attribute_values(name, value);
        }
        Ok(TransactWriteItem::builder().update(update.build().map_err(unbuilt)?).build())
    }

    /// Checks that a transfer is still as read: its status, and what it has reversed (`status`,
    /// and `reversed_amount`, which every change of a transfer after it is recorded moves).
    fn transfer_check(&self, tenant: &TenantId, read: &Transfer) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::transfer_pk(tenant, &read.request.id)))
            .key(keys::SK, s(keys::TRANSFER_SK))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(items::status_code(&read.status)));
        let check = if read.reversals.is_empty() {
            check.condition_expression("#status = :status AND attribute_not_exists(reversed_amount)")
        } else {
            check
                .condition_expression("#status = :status AND reversed_amount = :reversed")
                .expression_attribute_values(":reversed", n(read.reversed_amount()))
        };
        Ok(TransactWriteItem::builder().condition_check(check.build().map_err(unbuilt)?).build())
    }

    /// Checks that the account is still at version `was`, writing nothing.
    fn balance_check(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        was: AsRead,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut check = ConditionCheck::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::shard_pk(tenant, account, was.shard)))
            .key(keys::SK, s(keys::BALANCE_SK))
            .condition_expression(as_read_condition(was));
        for (name, value) in as_read_values(was) {
            check = check.expression_attribute_values(name, value);
        }
        Ok(TransactWriteItem::builder().condition_check(check.build().map_err(unbuilt)?).build())
    }

    /// Moves the batch's cursor over `settled` more transfers and adds their outcomes to its
    /// counters, only if the cursor still stands where it was read.
    fn progress_update(
        &self,
        tenant: &TenantId,
        progress: &Progress,
        settled: u64,
        counts: &BTreeMap<String, u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let committed = counts.get("committed").copied().unwrap_or_default();
        let mut add = vec!["committed :committed".to_owned(), "rejected :rejected".to_owned()];
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::batch_pk(tenant, &progress.batch)))
            .key(keys::SK, s(keys::BATCH_PROGRESS_SK))
            .expression_attribute_names("#cursor", "cursor")
            .expression_attribute_values(":was", n(progress.cursor))
            .expression_attribute_values(":now", n(progress.cursor + settled))
            .expression_attribute_values(":committed", n(committed))
            .expression_attribute_values(":rejected", n(counts.values().sum::<u64>() - committed));
        for (i, (code, count)) in counts.iter().filter(|(code, _)| *code != "committed").enumerate() {
            add.push(format!("{}{code} :r{i}", keys::REJECTED_PREFIX));
            update = update.expression_attribute_values(format!(":r{i}"), n(count));
        }
        let condition = if progress.cursor == 0 {
            "attribute_not_exists(#cursor) OR #cursor = :was"
        } else {
            "#cursor = :was"
        };
        let update = update
            .update_expression(format!("SET #cursor = :now ADD {}", add.join(", ")))
            .condition_expression(condition)
            .build()
            .map_err(unbuilt)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Puts a transfer's record only if its id is still as read: absent, or the claim `claim`.
    fn put_transfer(
        &self,
        tenant: &TenantId,
        transfer: &Transfer,
        claim: Option<&Owner>,
    ) -> Result<TransactWriteItem, StoreError> {
        let Some(owner) = claim else {
            return items::put_if_new(&self.table, items::transfer_item(tenant, transfer));
        };
        let correlation = current_correlation();
        let put = Put::builder()
            .set_item(Some(items::claimed_transfer_item(tenant, transfer, owner, correlation.as_deref())))
            .condition_expression("#status = :queued AND #owner = :owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#owner", keys::OWNER)
            .expression_attribute_values(":queued", s("queued"))
            .expression_attribute_values(":owner", s(owner.key()));
        let put = put.table_name(&self.table).build().map_err(unbuilt)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Moves a stored hold from `pending` to its resolution (`hold.status`), only if still pending.
    fn resolve_hold(&self, tenant: &TenantId, hold: &Transfer) -> Result<TransactWriteItem, StoreError> {
        let mut set = vec!["#status = :status"];
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::transfer_pk(tenant, &hold.request.id)))
            .key(keys::SK, s(keys::TRANSFER_SK))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":status", s(items::status_code(&hold.status)));
        match &hold.status {
            TransferStatus::Posted { resolved_by, posted_amount } => {
                set.extend(["resolved_by = :by", "posted_amount = :posted"]);
                update = update
                    .expression_attribute_values(":by", s(resolved_by.as_str()))
                    .expression_attribute_values(":posted", n(posted_amount.get()));
            }
            TransferStatus::Voided { resolved_by } => {
                set.push("resolved_by = :by");
                update = update.expression_attribute_values(":by", s(resolved_by.as_str()));
            }
            _ => {}
        }
        let update = update.update_expression(format!("SET {}", set.join(", "))).build().map_err(unbuilt)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

impl DynamoStore {
    /// Appends `reversed`'s reversals after the first `read` (those it had when read) to its stored
    /// list, only if the stored reversed sum is still the one read: of concurrent reversals, each
    /// lands on the sum the other left.
    fn add_reversals(
        &self,
        tenant: &TenantId,
        reversed: &Transfer,
        read: usize,
    ) -> Result<TransactWriteItem, StoreError> {
        let (earlier, added) = reversed.reversals.split_at(read.min(reversed.reversals.len()));
        let was: u64 = earlier.iter().map(|r| r.amount.get()).sum();
        let condition = if earlier.is_empty() {
            "#status = :committed AND attribute_not_exists(reversed_amount)"
        } else {
            "#status = :committed AND reversed_amount = :was"
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::transfer_pk(tenant, &reversed.request.id)))
            .key(keys::SK, s(keys::TRANSFER_SK))
            .update_expression(
                "SET reversed_amount = :sum, reversals = list_append(if_not_exists(reversals, :none), :new)",
            )
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":committed", s("committed"))
            .expression_attribute_values(":sum", n(reversed.reversed_amount()))
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":new", items::reversals(added));
        if !earlier.is_empty() {
            update = update.expression_attribute_values(":was", n(was));
        }
        let update = update.build().map_err(unbuilt)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// What one transaction writes, gathered step by step.
#[derive(Default)]
struct Transaction {
    /// `None`: a write another step of the same transaction cancelled out (DynamoDB allows one
    /// action per item in a transaction).
    puts: Vec<Option<TransactWriteItem>>,
    /// Where each transfer put in this transaction is, with its claim: a hold resolved in the same
    /// transaction is put once, resolved.
    transfer_puts: HashMap<TransferId, (usize, Option<Owner>)>,
    /// Where the hold listings put in this transaction are: a hold resolved in the same
    /// transaction is never listed.
    expiry_puts: HashMap<TransferId, Vec<usize>>,
    /// Transfers stored before this transaction that it amends (a hold resolved, a reversal
    /// listed): each written once.
    amended: HashSet<TransferId>,
    /// Where each reversals update of this transaction is, with the count of reversals the
    /// transfer had when read: several reversals of one transfer make one update.
    reversal_updates: HashMap<TransferId, (usize, usize)>,
    /// Each account's last entry in the transaction: its balance is written once, as of that entry.
    balances: BTreeMap<AccountId, Entry>,
    /// How many entries of each account the transaction writes.
    entries_of: HashMap<AccountId, u64>,
    /// The accounts refusals rest on: each checked at its version, unless its balance is written.
    checked: BTreeSet<AccountId>,
    /// The other shards of hot accounts whose refusals for want of funds rest on the whole
    /// account: each checked as read.
    shards_checked: BTreeMap<(AccountId, u16), AccountBalance>,
    /// The transfers refusals acted on, as read: each checked, unless this transaction writes it.
    acted_on: Vec<Transfer>,
}

impl Transaction {
    fn add(&mut self, store: &DynamoStore, tenant: &TenantId, step: &Step) -> Result<(), StoreError> {
        let claim = step.claim.as_ref();
        match &step.decision {
            Decision::Commit { transfer, debit, credit, amends } => {
                self.put_transfer(store, tenant, transfer, claim)?;
                self.check_shards(step);
                for listing in expiry::listings(tenant, transfer) {
                    self.expiry_puts.entry(transfer.request.id.clone()).or_default().push(self.puts.len());
                    self.puts.push(Some(put(&store.table, listing)?));
                }
                if let Some(amended) = amends {
                    self.amend(store, tenant, amended)?;
                }
                self.entries(store, tenant, [debit, credit])?;
            }
            Decision::Expire { hold, debit, credit } => {
                self.amend(store, tenant, hold)?;
                self.entries(store, tenant, [debit, credit])?;
            }
            Decision::Reject(transfer) => {
                self.put_transfer(store, tenant, transfer, claim)?;
                self.checked.extend(step.decision.accounts().into_iter().cloned());
                self.check_shards(step);
                if let Some(acted_on) = &step.acted_on {
                    self.acted_on.push(acted_on.clone());
                }
            }
            Decision::Replay(_) | Decision::Conflict { .. } => {}
        }
        // The change's event, in the change's own transaction: it exists if and only if the change does.
        if let Some(event) = Event::of_decision(tenant, &step.decision) {
            let item = events::event_item(tenant, &event, step.correlation.as_deref())?;
            self.puts.push(Some(put(&store.table, item)?));
        }
        Ok(())
    }

    /// The other shards of hot accounts the step stands on, each checked as read once.
    fn check_shards(&mut self, step: &Step) {
        for shard in &step.shards_checked {
            self.shards_checked.insert((shard.id.clone(), shard.shard), shard.clone());
        }
    }

    fn put_transfer(
        &mut self,
        store: &DynamoStore,
        tenant: &TenantId,
        transfer: &Transfer,
        claim: Option<&Owner>,
    ) -> Result<(), StoreError> {
        let at = self.puts.len();
        self.transfer_puts.insert(transfer.request.id.clone(), (at, claim.cloned()));
        self.puts.push(Some(store.put_transfer(tenant, transfer, claim)?));
        Ok(())
    }

    /// Writes the transfer a step acted on as the step left it: a hold resolved (an expired one
    /// unlisted; a posted or voided one's listings are left to whoever finds them due), or a
    /// transfer with one more reversal. A transfer put earlier in this transaction is put once, as
    /// amended, and never listed.
    fn amend(
        &mut self,
        store: &DynamoStore,
        tenant: &TenantId,
        amended: &Transfer,
    ) -> Result<(), StoreError> {
        let id = &amended.request.id;
        self.amended.insert(id.clone());
        if let Some((at, claim)) = self.transfer_puts.get(id) {
            self.puts[*at] = Some(store.put_transfer(tenant, amended, claim.as_ref())?);
        } else if amended.status == TransferStatus::Committed {
            let (at, read) = *self
                .reversal_updates
                .entry(id.clone())
                .or_insert((self.puts.len(), amended.reversals.len().saturating_sub(1)));
            let update = Some(store.add_reversals(tenant, amended, read)?);
            match self.puts.get_mut(at) {
                Some(slot) => *slot = update,
                None => self.puts.push(update),
            }
        } else {
            self.puts.push(Some(store.resolve_hold(tenant, amended)?));
        }
        if let Some(listed) = self.expiry_puts.remove(id) {
            for at in listed {
                self.puts[at] = None;
            }
        } else if amended.status == TransferStatus::Expired
            && let Some(due) = DueHold::of(tenant, amended)
        {
            for listing in expiry::listing_keys(&due) {
                self.puts.push(Some(delete(&store.table, listing)?));
            }
        }
        Ok(())
    }

    fn entries<'e>(
        &mut self,
        store: &DynamoStore,
        tenant: &TenantId,
        entries: impl IntoIterator<Item = &'e Box<Entry>>,
    ) -> Result<(), StoreError> {
        for entry in entries {
            self.puts.push(Some(put(&store.table, items::entry_item(tenant, entry))?));
            *self.entries_of.entry(entry.account_id.clone()).or_default() += 1;
            self.balances.insert(entry.account_id.clone(), (**entry).clone());
        }
        Ok(())
    }
}

/// The balances whose versions cancelled a write (every failed condition's item, each parsed), or
/// none if any is missing: the retry then reads them.
fn found_balances(failed: &[usize], items: Vec<(usize, items::Item)>) -> Vec<AccountBalance> {
    if items.len() != failed.len() {
        return Vec::new();
    }
    items.iter().map(|(_, item)| items::balance_from(item)).collect::<Result<_, _>>().unwrap_or_default()
}

/// The items and bytes a step adds to a transaction, and the accounts whose balance it writes.
fn cost(step: &Step) -> (usize, usize, Vec<&AccountId>) {
    // The tenant and owner in keys add at most a few hundred bytes to the item sizes counted here.
    let slack = 400;
    let entries = 2 * (ENTRY_SIZE + slack);
    // A hold with a timeout is listed in its two accounts' partitions.
    let listed = |t: &Transfer| 2 * usize::from(t.expires_at().is_some());
    let event = event_size;
    match &step.decision {
        Decision::Commit { transfer, debit, credit, amends } => {
            // The record, its listings if it expires, two entries, the event, and the transfer it
            // acts on (a post or void leaves the hold's listings; counted apart even where the
            // two merge).
            let amended = usize::from(amends.is_some());
            let items = 4 + listed(transfer) + amended + step.shards_checked.len();
            let bytes = items::transfer_size(transfer)
                + entries
                + (1 + amended + listed(transfer) + step.shards_checked.len()) * UPDATE_BYTES;
            let bytes = bytes + amends.as_deref().map_or(0, items::transfer_size) + event(transfer);
            (items, bytes, vec![&debit.account_id, &credit.account_id])
        }
        Decision::Expire { hold, debit, credit } => (
            4 + listed(hold),
            entries + 2 * UPDATE_BYTES + event(hold),
            vec![&debit.account_id, &credit.account_id],
        ),
        // The record and the event, the transfer it acted on checked; its accounts checked
        // (counted as balances are).
        Decision::Reject(transfer) => {
            let checked = usize::from(step.acted_on.is_some()) + step.shards_checked.len();
            let bytes = items::transfer_size(transfer) + slack + event(transfer) + checked * UPDATE_BYTES;
            (2 + checked, bytes, step.decision.accounts())
        }
        Decision::Replay(_) | Decision::Conflict { .. } => (0, 0, vec![]),
    }
}

/// Cuts `steps`, in order, into transactions within DynamoDB's limits of items and bytes: each
/// step's own items, one balance update (or check) per distinct account, and the batch's progress
/// update. A
/// linked chain is never cut: it goes whole into one transaction (`ledger::linked` shows it fits).
fn chunks(steps: &[Step], with_progress: bool) -> Vec<&[Step]> {
    // The progress update, and room for the batch's `batch.settled` event (its counts by reason
    // are a few dozen codes at most).
    let base =
        (2 * usize::from(with_progress), usize::from(with_progress) * (UPDATE_BYTES + 2 * EVENT_SLACK));
    let mut out = Vec::new();
    let (mut start, mut items, mut bytes) = (0, base.0, base.1);
    let mut accounts: HashSet<&AccountId> = HashSet::new();
    let mut i = 0;
    while i < steps.len() {
        let end = chain_end(steps, i);
        let unit = &steps[i..end];
        let fresh = |accounts: &HashSet<&AccountId>| {
            let (mut add_items, mut add_bytes, mut touched) = (0, 0, HashSet::new());
            for step in unit {
                let (own_items, own_bytes, accounts_of) = cost(step);
                add_items += own_items;
                add_bytes += own_bytes;
                touched.extend(accounts_of.into_iter().filter(|a| !accounts.contains(*a)));
            }
            (add_items + touched.len(), add_bytes + touched.len() * UPDATE_BYTES, touched)
        };
        let (add_items, add_bytes, _) = fresh(&accounts);
        if i > start
            && (items + add_items > MAX_TRANSACTION_ITEMS || bytes + add_bytes > MAX_TRANSACTION_BYTES)
        {
            out.push(&steps[start..i]);
            (start, items, bytes) = (i, base.0, base.1);
            accounts.clear();
        }
        let (add_items, add_bytes, touched) = fresh(&accounts);
        items += add_items;
        bytes += add_bytes;
        accounts.extend(touched);
        i = end;
    }
    if start < steps.len() {
        out.push(&steps[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::fixtures::{self, transfer};
    use ledger::{Metadata, NewTransfer, Planner};
    use std::collections::BTreeMap as Map;
    use time::OffsetDateTime;

    const NOW: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    fn steps(transfers: &[NewTransfer]) -> Vec<Step> {
        let accounts =
            ["bank", "a", "b", "c"].map(|id| fixtures::account(id, true).open(NOW).balance_state());
        let mut planner = Planner::new(accounts, NOW);
        transfers.iter().map(|t| Step::alone(planner.decide(t, None))).collect()
    }

    #[test]
    fn transactions_stay_within_100_items_netting_balances() {
        let transfers: Vec<_> = (0..100).map(|i| transfer(&format!("t{i}"), "bank", "a", 1)).collect();
        let steps = steps(&transfers);
        let cut = chunks(&steps, true);
        // 4 items a transfer (record, two entries, event), plus 2 balances and the progress: 24
        // transfers fit in 99 items.
        assert_eq!(cut.iter().map(|c| c.len()).collect::<Vec<_>>(), [24, 24, 24, 24, 4]);
    }

    #[test]
    fn transactions_stay_within_4_mb_whatever_the_metadata() {
        let big: Map<String, String> =
            (0..ledger::metadata::MAX_KEYS).map(|i| (format!("{i:0>40}"), "€".repeat(500))).collect();
        let transfers: Vec<_> = (0..60)
            .map(|i| {
                let mut t = transfer(&format!("t{i}"), "bank", "a", 1);
                t.metadata = Metadata::parse(big.clone()).unwrap();
                t
            })
            .collect();
        let steps = steps(&transfers);
        for chunk in chunks(&steps, false) {
            let bytes: usize = chunk
                .iter()
                .map(|s| {
                    items::item_size(&items::transfer_item(
                        &TenantId::parse("acme").unwrap(),
                        s.decision.outcome().unwrap(),
                    ))
                })
                .sum();
            assert!(bytes < MAX_TRANSACTION_BYTES, "{bytes} bytes in {} transfers", chunk.len());
            assert!(chunk.len() < 60);
        }
    }

    #[test]
    fn the_longest_linked_chain_of_the_largest_members_fits_one_transaction() {
        // The largest metadata in an item (four-byte characters), and in JSON (control characters,
        // six bytes each there).
        for character in ["€", "\u{1}"] {
            longest_chain_fits(character);
        }
    }

    fn longest_chain_fits(character: &str) {
        let big: Map<String, String> =
            (0..ledger::metadata::MAX_KEYS).map(|i| (format!("{i:0>40}"), character.repeat(500))).collect();
        let heavy = |mut t: NewTransfer| {
            t.metadata = Metadata::parse(big.clone()).unwrap();
            t
        };
        let n = ledger::linked::MAX_LINKED;
        // The worst members: a hold that expires (record, its two listings, two entries, event),
        // and a post of one (record, two entries, event, the hold resolved), every record with
        // the most metadata, each on accounts of its own.
        let accounts: Vec<_> = (0..2 * n + 2)
            .map(|i| fixtures::account(&format!("a{i}"), true).open(NOW).balance_state())
            .collect();
        let mut planner = Planner::new(accounts, NOW);
        let hold_steps: Vec<Step> = (0..n)
            .map(|i| {
                let hold = heavy(fixtures::hold(
                    &format!("h{i}"),
                    &format!("a{}", 2 * i),
                    &format!("a{}", 2 * i + 1),
                    5,
                    Some(60),
                ));
                let decision = planner.decide(&hold, None);
                Step {
                    decision,
                    claim: None,
                    linked: i + 1 < n,
                    correlation: Some("x".repeat(128)),
                    acted_on: None,
                    shards_checked: Vec::new(),
                }
            })
            .collect();
        let holds: Vec<Transfer> = hold_steps.iter().map(|s| s.decision.outcome().unwrap().clone()).collect();
        let mut planner = planner.with_stored(holds);
        let posts: Vec<Step> = (0..n)
            .map(|i| Step {
                decision: planner
                    .decide(&heavy(fixtures::post(&format!("p{i}"), &format!("h{i}"), None)), None),
                claim: None,
                linked: i + 1 < n,
                correlation: Some("x".repeat(128)),
                acted_on: None,
                shards_checked: Vec::new(),
            })
            .collect();
        assert!(posts.iter().all(|s| matches!(s.decision, Decision::Commit { amends: Some(_), .. })));
        for chain in [&hold_steps, &posts] {
            // A batch's progress update and its `batch.settled` event.
            let (mut items, mut bytes) = (2, UPDATE_BYTES);
            for step in chain {
                let (own_items, own_bytes, accounts) = cost(step);
                items += own_items + accounts.len();
                bytes += own_bytes + accounts.len() * UPDATE_BYTES;
            }
            assert!(items <= MAX_TRANSACTION_ITEMS, "{items} items");
            assert!(bytes <= MAX_TRANSACTION_BYTES, "{bytes} bytes");
            assert_eq!(chunks(chain, true).len(), 1);
        }
        // And the event the cost counts is as large as the event written.
        let tenant = TenantId::parse("acme").unwrap();
        let event = Event::of_decision(&tenant, &posts[0].decision).unwrap();
        let item = events::event_item(&tenant, &event, posts[0].correlation.as_deref()).unwrap();
        let counted = event_size(posts[0].decision.outcome().unwrap());
        assert!(items::item_size(&item) <= counted, "{} > {counted}", items::item_size(&item));
    }
}
