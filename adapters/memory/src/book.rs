//! The store as the engine sees it, in memory: a read is a snapshot under the lock; a write checks
//! every condition against the tables as they stand (DynamoDB evaluates a transaction's conditions
//! against the items before it), then applies all of it, or nothing and reports it cancelled.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use ledger::engine::{
    AsRead, Book, DueHold, Progress, State, Step, StoredTransfer, Written, chain_members, outcome_counts,
};
use ledger::port::{BatchStatus, EntryPosition, StoreError, StoredEvent};
use ledger::{
    AccountId, BatchId, Decision, Entry, Event, Owner, TenantId, Transfer, TransferId, TransferStatus,
};

use crate::store::{MemoryStore, current_correlation, stored};
use crate::tables::Tables;

/// What one write does, gathered step by step and checked before anything is applied.
#[derive(Default)]
struct Write {
    /// Transfer records put, with the claim each replaces (`None`: its id must be absent).
    puts: Vec<(Transfer, Option<Owner>)>,
    /// Transfers acted on and stored before this write, as this write leaves them, with what they
    /// must still be: `None` a pending hold; `Some(n)` a committed transfer with `n` reversals.
    amends: Vec<(Transfer, Option<usize>)>,
    entries: Vec<Entry>,
    events: Vec<StoredEvent>,
    /// Each account's last entry in the write: its balance is written once, as of that entry.
    balances: BTreeMap<AccountId, Entry>,
    /// The accounts refusals rest on: still at the versions read, or the write is cancelled.
    checked: BTreeSet<AccountId>,
    /// The transfers refusals acted on, as read: still so, unless this write writes them.
    acted_on: Vec<Transfer>,
}

impl Write {
    fn add(&mut self, tenant: &TenantId, step: &Step) -> Result<(), StoreError> {
        let put_here =
            |write: &Write, id: &TransferId| write.puts.iter().position(|(t, _)| &t.request.id == id);
        match &step.decision {
            Decision::Commit { transfer, debit, credit, amends } => {
                self.puts.push((transfer.clone(), step.claim.clone()));
                if let Some(amended) = amends {
                    self.amend(amended, put_here(self, &amended.request.id));
                }
                self.entries([debit, credit]);
            }
            Decision::Expire { hold, debit, credit } => {
                self.amend(hold, put_here(self, &hold.request.id));
                self.entries([debit, credit]);
            }
            Decision::Reject(transfer) => {
                self.puts.push((transfer.clone(), step.claim.clone()));
                self.checked.extend(step.decision.accounts().into_iter().cloned());
                self.acted_on.extend(step.acted_on.clone());
            }
            Decision::Replay(_) | Decision::Conflict { .. } => {}
        }
        if let Some(event) = Event::of_decision(tenant, &step.decision) {
            self.events.push(stored(tenant, &event, step.correlation.clone())?);
        }
        Ok(())
    }

    /// A transfer this step acts on, as it leaves it. One put earlier in this write is replaced;
    /// one stored before is conditioned on what it was read as.
    fn amend(&mut self, amended: &Transfer, put_here: Option<usize>) {
        if let Some(at) = put_here {
            self.puts[at].0 = amended.clone();
            return;
        }
        let id = &amended.request.id;
        match self.amends.iter_mut().find(|(t, _)| &t.request.id == id) {
            // Several reversals of one transfer: one update, conditioned as first read.
            Some((slot, _)) => *slot = amended.clone(),
            None => {
                let was = (amended.status == TransferStatus::Committed)
                    .then(|| amended.reversals.len().saturating_sub(1));
                self.amends.push((amended.clone(), was));
            }
        }
    }

    fn entries(&mut self, entries: [&Entry; 2]) {
        for entry in entries {
            self.entries.push(entry.clone());
            self.balances.insert(entry.account_id.clone(), entry.clone());
        }
    }

    /// Whether every condition holds against `tables`.
    fn holds(
        &self,
        tables: &Tables,
        tenant: &TenantId,
        versions: &HashMap<AccountId, AsRead>,
        progress: Option<&Progress>,
    ) -> bool {
        let key = |id: &TransferId| (tenant.clone(), id.clone());
        let ids_as_read = self.puts.iter().all(|(transfer, claim)| {
            let stored = tables.transfers.get(&key(&transfer.request.id));
            match (claim, stored) {
                (None, stored) => stored.is_none(),
                (Some(owner), Some(stored)) => {
                    stored.transfer.status == TransferStatus::Queued && stored.owner.as_ref() == Some(owner)
                }
                (Some(_), None) => false,
            }
        });
        let acted_on_as_read = self.amends.iter().all(|(amended, was)| {
            let Some(stored) = tables.transfers.get(&key(&amended.request.id)) else { return false };
            match was {
                None => stored.transfer.status == TransferStatus::Pending,
                Some(count) => {
                    let sum: u64 = amended.reversals[..*count].iter().map(|r| r.amount.get()).sum();
                    stored.transfer.status == TransferStatus::Committed
                        && stored.transfer.reversed_amount() == sum
                }
            }
        });
        let balances_as_read = self.balances.keys().all(|account| {
            let stored = tables.balances.get(&(tenant.clone(), account.clone())).map(|b| b.version());
            stored == Some(versions.get(account).copied().unwrap_or_default().version)
        });
        let written = |id: &TransferId| {
            self.puts.iter().any(|(t, _)| &t.request.id == id)
                || self.amends.iter().any(|(t, _)| &t.request.id == id)
        };
        let acted_on_still_as_read =
            self.acted_on.iter().filter(|read| !written(&read.request.id)).all(|read| {
                tables.transfers.get(&key(&read.request.id)).is_some_and(|stored| {
                    stored.transfer.status == read.status && stored.transfer.reversals == read.reversals
                })
            });
        // An account that does not exist has no version: its absence is final.
        let refusals_as_read = self.checked.iter().all(|account| match versions.get(account) {
            Some(was) => {
                tables.balances.get(&(tenant.clone(), account.clone())).map(|b| b.version())
                    == Some(was.version)
            }
            None => true,
        });
        let cursor_as_read = progress.is_none_or(|progress| {
            tables
                .batches
                .get(&(tenant.clone(), progress.batch.clone()))
                .is_some_and(|b| b.cursor == progress.cursor)
        });
        ids_as_read
            && acted_on_as_read
            && balances_as_read
            && refusals_as_read
            && acted_on_still_as_read
            && cursor_as_read
    }

    fn apply(self, tables: &mut Tables, tenant: &TenantId) {
        // A claimed record records the request serving it, as a queued claim did; a new one nothing.
        let correlation = current_correlation();
        for (transfer, claim) in self.puts {
            let correlation = claim.as_ref().and(correlation.clone());
            let stored = StoredTransfer { transfer, owner: claim, correlation };
            put(tables, tenant, stored);
        }
        // An acted-on record keeps what else it held: its claim, and its metadata as last changed
        // (DynamoDB updates only the resolution or the reversals of it).
        for (mut transfer, _) in self.amends {
            let key = (tenant.clone(), transfer.request.id.clone());
            let (owner, correlation) = match tables.transfers.get(&key) {
                Some(stored) => {
                    transfer.request.metadata = stored.transfer.request.metadata.clone();
                    transfer.revision = stored.transfer.revision;
                    (stored.owner.clone(), stored.correlation.clone())
                }
                None => Default::default(),
            };
            put(tables, tenant, StoredTransfer { transfer, owner, correlation });
        }
        for entry in self.entries {
            let account = (tenant.clone(), entry.account_id.clone());
            // Gapless: each entry follows on from the account's last, and moves its totals exactly
            // as its effect says (a write decided on items read apart never gets here).
            let before = tables.balances.get(&account).map(|b| (b.entry_count, b.balances));
            let history = tables.entries.entry(account.clone()).or_default();
            let (last, totals) = match history.last_key_value() {
                Some((_, last)) => (last.sequence, last.balances_after),
                None => before.unwrap_or_default(),
            };
            assert_eq!(entry.sequence, last + 1, "account {}: entries not gapless", entry.account_id);
            let moved = totals.after(entry.direction, entry.effect, entry.amount);
            assert_eq!(
                moved,
                Some(entry.balances_after),
                "account {}: totals not conserved",
                entry.account_id
            );
            history.insert(EntryPosition::of(&entry), entry);
        }
        for (account, latest) in self.balances {
            if let Some(balance) = tables.balances.get_mut(&(tenant.clone(), account)) {
                // Gapless: the write's entries of an account follow on from its version.
                debug_assert!(
                    latest.sequence > balance.entry_count,
                    "sequence {} after {}",
                    latest.sequence,
                    balance.entry_count
                );
                balance.balances = latest.balances_after;
                balance.entry_count = latest.sequence;
                balance.last_entry_at = Some(latest.created_at);
                balance.head = latest.hash;
            }
        }
        for event in self.events {
            tables.put_event(event);
        }
    }
}

/// Stores a transfer's record: a pending hold with a timeout is listed by its expiry, and an
/// expired one unlisted (a posted or voided one stays listed until found, as on DynamoDB).
fn put(tables: &mut Tables, tenant: &TenantId, stored: StoredTransfer) {
    if let Some(due) = DueHold::of(tenant, &stored.transfer) {
        match stored.transfer.status {
            TransferStatus::Pending => {
                for account in &due.accounts {
                    tables.held.insert((tenant.clone(), account.clone(), due.at, due.transfer.clone()));
                }
                tables.expiry.insert((due.at, due.tenant, due.transfer), due.accounts);
            }
            TransferStatus::Expired => unlist(tables, &due),
            _ => {}
        }
    }
    tables.transfers.insert((tenant.clone(), stored.transfer.request.id.clone()), stored);
}

fn unlist(tables: &mut Tables, hold: &DueHold) {
    tables.expiry.remove(&(hold.at, hold.tenant.clone(), hold.transfer.clone()));
    for account in &hold.accounts {
        tables.held.remove(&(hold.tenant.clone(), account.clone(), hold.at, hold.transfer.clone()));
    }
}

#[async_trait]
impl Book for MemoryStore {
    async fn read(
        &self,
        tenant: &TenantId,
        ids: &[TransferId],
        accounts: &[AccountId],
    ) -> Result<State, StoreError> {
        let tables = self.tables();
        let mut state = State::default();
        for id in ids {
            if let Some(stored) = tables.transfers.get(&(tenant.clone(), id.clone())) {
                state.transfers.insert(id.clone(), stored.clone());
            }
        }
        let found = accounts.iter().filter_map(|id| tables.balances.get(&(tenant.clone(), id.clone())));
        state.accounts.extend(found.cloned());
        Ok(state)
    }

    async fn write(
        &self,
        tenant: &TenantId,
        steps: &[Step],
        versions: &mut HashMap<AccountId, AsRead>,
        progress: Option<&mut Progress>,
    ) -> Result<Written, StoreError> {
        let mut write = Write::default();
        for step in steps {
            write.add(tenant, step)?;
        }
        let ids: HashSet<&TransferId> = write.puts.iter().map(|(t, _)| &t.request.id).collect();
        debug_assert_eq!(ids.len(), write.puts.len(), "an id put twice in one write");
        let counts = outcome_counts(steps);
        let settled = progress.as_deref().map(|progress| progress.after(tenant, steps.len(), &counts));
        let mut tables = self.tables();
        if !write.holds(&tables, tenant, versions, progress.as_deref()) {
            return Ok(Written::cancelled_after(0));
        }
        for (account, entry) in &write.balances {
            versions.entry(account.clone()).or_default().version.entries = entry.sequence;
        }
        write.apply(&mut tables, tenant);
        for (transfer, chain) in chain_members(steps) {
            tables.chains.insert((tenant.clone(), transfer.request.id.clone()), chain.clone());
        }
        if let (Some(progress), Some((batch, event))) = (progress, settled) {
            if let Some(state) = tables.batches.get_mut(&(tenant.clone(), progress.batch.clone())) {
                state.cursor += steps.len() as u64;
                state.counts = batch.counts.clone();
            }
            if let Some(event) = event {
                tables.put_event(stored(tenant, &event, current_correlation())?);
            }
            progress.cursor += steps.len() as u64;
            progress.batch_as_read = batch;
        }
        Ok(Written::landed(steps.len()))
    }

    async fn batch_ids(
        &self,
        tenant: &TenantId,
        batch: &BatchId,
    ) -> Result<Option<Vec<TransferId>>, StoreError> {
        Ok(self.tables().batches.get(&(tenant.clone(), batch.clone())).and_then(|b| b.ids.clone()))
    }

    async fn batch_progress(&self, tenant: &TenantId, batch: &BatchId) -> Result<BatchStatus, StoreError> {
        self.tables().batch_status(tenant, batch)
    }

    /// Fair across tenants: one of each tenant's earliest in turn, up to `limit`.
    async fn due_holds(&self, from: i64, to: i64, limit: usize) -> Result<(Vec<DueHold>, bool), StoreError> {
        let tables = self.tables();
        let mut by_tenant: BTreeMap<&TenantId, std::collections::VecDeque<DueHold>> = BTreeMap::new();
        let listed = tables.expiry.iter().filter(|((at, _, _), _)| (from..=to).contains(at));
        for ((at, tenant, transfer), accounts) in listed {
            let hold = DueHold {
                tenant: tenant.clone(),
                transfer: transfer.clone(),
                at: *at,
                accounts: accounts.clone(),
            };
            by_tenant.entry(tenant).or_default().push_back(hold);
        }
        let mut due = Vec::new();
        while due.len() < limit && by_tenant.values().any(|q| !q.is_empty()) {
            for queue in by_tenant.values_mut() {
                if due.len() < limit
                    && let Some(hold) = queue.pop_front()
                {
                    due.push(hold);
                }
            }
        }
        Ok((due, by_tenant.values().all(|q| q.is_empty())))
    }

    async fn overdue_holds(
        &self,
        tenant: &TenantId,
        accounts: &[AccountId],
        at: i64,
        limit: usize,
    ) -> Result<Vec<DueHold>, StoreError> {
        let tables = self.tables();
        let mut due: Vec<DueHold> = Vec::new();
        for account in accounts {
            let listed =
                tables.held.iter().filter(|(t, a, due_at, _)| t == tenant && a == account && *due_at <= at);
            for (t, a, due_at, transfer) in listed {
                if due.len() < limit && !due.iter().any(|d| &d.transfer == transfer) {
                    let accounts = tables.expiry.get(&(*due_at, t.clone(), transfer.clone())).cloned();
                    due.push(DueHold {
                        tenant: t.clone(),
                        transfer: transfer.clone(),
                        at: *due_at,
                        accounts: accounts.unwrap_or_else(|| vec![a.clone()]),
                    });
                }
            }
        }
        Ok(due)
    }

    async fn unlist(&self, hold: &DueHold) -> Result<(), StoreError> {
        unlist(&mut self.tables(), hold);
        Ok(())
    }

    async fn swept_until(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.tables().swept_until)
    }

    async fn advance_sweep(&self, to: i64) -> Result<(), StoreError> {
        let mut tables = self.tables();
        tables.swept_until = tables.swept_until.max(Some(to));
        Ok(())
    }

    async fn pause(&self, pause: Duration) {
        tokio::time::sleep(pause).await;
    }

    fn correlation(&self) -> Option<String> {
        current_correlation()
    }
}

impl Tables {
    pub(crate) fn batch_status(&self, tenant: &TenantId, batch: &BatchId) -> Result<BatchStatus, StoreError> {
        let state = self
            .batches
            .get(&(tenant.clone(), batch.clone()))
            .ok_or_else(|| StoreError::not_found("batch", batch))?;
        let mut counts = state.counts.clone();
        counts.total = state.record.total;
        counts.queued = state.record.total.saturating_sub(state.cursor);
        Ok(BatchStatus { record: state.record.clone(), counts })
    }
}
