//! The store as the engine sees it (`ledger::engine::Book`): one consistent read of what a plan
//! needs, its steps written as conditional transactions (`writer`), a batch's ids and progress,
//! and the expiry listing.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use ledger::engine::{AsRead, Book, DueHold, Level, Progress, State, Step, Turn, Written};
use ledger::escrow::Moves;
use ledger::port::{BatchStatus, StoreError};
use ledger::{AccountBalance, AccountId, BatchId, TenantId, TransferId};

use crate::items;
use crate::keys::{self, key};
use crate::store::DynamoStore;
use crate::store::current_correlation;

#[async_trait]
impl Book for DynamoStore {
    /// Consistent BatchGetItems (100 keys a call) of the transfer items and balance items, each
    /// asked once (a BatchGetItem refuses a key twice).
    async fn read(
        &self,
        tenant: &TenantId,
        ids: &[TransferId],
        accounts: &[AccountId],
    ) -> Result<State, StoreError> {
        let (ids, accounts): (BTreeSet<_>, BTreeSet<_>) = (ids.iter().collect(), accounts.iter().collect());
        let transfers = ids.into_iter().map(|id| key(keys::transfer_pk(tenant, id), keys::TRANSFER_SK));
        // A hot account is read on the shard this container writes (its main shard at first).
        let balances = accounts
            .into_iter()
            .map(|id| key(keys::shard_pk(tenant, id, self.balances.shard(tenant, id)), keys::BALANCE_SK));
        let mut state = State::default();
        for item in self.batch_get(transfers.chain(balances).collect()).await? {
            match item.get(keys::SK).and_then(|v| v.as_s().ok()).map(String::as_str) {
                Some(keys::BALANCE_SK) => {
                    let balance = items::balance_from(&item)?;
                    // Noted hot (or no longer): later reads draw among the shards it spreads over.
                    self.balances.put(tenant, &balance);
                    state.accounts.push(balance);
                }
                Some(keys::TRANSFER_SK) => {
                    let stored = items::stored_transfer(&item)?;
                    state.transfers.insert(stored.transfer.request.id.clone(), stored);
                }
                _ => return Err(StoreError::Unexpected("a batch read returned an unasked item".into())),
            }
        }
        // A shard its account no longer spreads over (un-marked, or fewer shards): read again
        // on one it does.
        let outside: Vec<AccountId> =
            state.accounts.iter().filter(|a| a.shard >= a.shards.get()).map(|a| a.id.clone()).collect();
        if !outside.is_empty() {
            state.accounts.retain(|a| !outside.contains(&a.id));
            let keys = outside
                .iter()
                .map(|id| key(keys::shard_pk(tenant, id, self.balances.shard(tenant, id)), keys::BALANCE_SK));
            for item in self.batch_get(keys.collect()).await? {
                state.accounts.push(items::balance_from(&item)?);
            }
        }
        Ok(state)
    }

    async fn write(
        &self,
        tenant: &TenantId,
        steps: &[Step],
        versions: &mut HashMap<AccountId, AsRead>,
        progress: Option<&mut Progress>,
    ) -> Result<Written, StoreError> {
        self.write_steps(tenant, steps, versions, progress).await
    }

    async fn read_main(
        &self,
        tenant: &TenantId,
        accounts: &[AccountId],
    ) -> Result<Vec<AccountBalance>, StoreError> {
        let ids: BTreeSet<_> = accounts.iter().collect();
        let keys = ids.into_iter().map(|id| key(keys::account_pk(tenant, id), keys::BALANCE_SK)).collect();
        self.batch_get(keys).await?.iter().map(items::balance_from).collect()
    }

    async fn read_shards(
        &self,
        tenant: &TenantId,
        view: &AccountBalance,
    ) -> Result<Vec<AccountBalance>, StoreError> {
        self.shards_of(tenant, &view.id, view.shard_items).await
    }

    async fn rebalance(&self, tenant: &TenantId, moves: &Moves) -> Result<bool, StoreError> {
        let landed = self.write_moves(tenant, moves).await?;
        if landed {
            for (shard, moved) in moves {
                self.balances.put(tenant, &AccountBalance { moved: *moved, ..shard.clone() });
            }
        }
        Ok(landed)
    }

    async fn batch_ids(
        &self,
        tenant: &TenantId,
        batch: &BatchId,
    ) -> Result<Option<Vec<TransferId>>, StoreError> {
        self.accepted_ids(tenant, batch).await
    }

    async fn batch_progress(&self, tenant: &TenantId, batch: &BatchId) -> Result<BatchStatus, StoreError> {
        self.read_batch(tenant, batch).await
    }

    async fn due_holds(&self, from: i64, to: i64, limit: usize) -> Result<(Vec<DueHold>, bool), StoreError> {
        self.listed_due(from, to, limit).await
    }

    async fn overdue_holds(
        &self,
        tenant: &TenantId,
        accounts: &[AccountId],
        at: i64,
        limit: usize,
    ) -> Result<Vec<DueHold>, StoreError> {
        self.listed_overdue(tenant, accounts, at, limit).await
    }

    async fn unlist(&self, hold: &DueHold) -> Result<(), StoreError> {
        self.unlist_due(hold).await
    }

    async fn swept_until(&self) -> Result<Option<i64>, StoreError> {
        self.sweep_mark().await
    }

    async fn advance_sweep(&self, to: i64) -> Result<(), StoreError> {
        self.move_sweep_mark(to).await
    }

    async fn pause(&self, pause: Duration) {
        tokio::time::sleep(pause).await;
    }

    fn correlation(&self) -> Option<String> {
        current_correlation()
    }

    fn cached_balance(&self, tenant: &TenantId, account: &AccountId) -> Option<AccountBalance> {
        self.balances.get(tenant, account)
    }

    fn cache_balance(&self, tenant: &TenantId, balance: &AccountBalance) {
        self.balances.put(tenant, balance);
    }

    fn forget_balance(&self, tenant: &TenantId, account: &AccountId) {
        self.balances.forget(tenant, account);
    }

    fn contention_level(&self, tenant: &TenantId, accounts: &[AccountId]) -> Level {
        self.balances.level(tenant, accounts)
    }

    fn note_try(&self, tenant: &TenantId, accounts: &[AccountId], landed: bool) {
        self.balances.note_try(tenant, accounts, landed);
    }

    async fn take_turn(&self, tenant: &TenantId, accounts: &[AccountId]) -> Turn {
        // A hot account's writers spread over its shards instead (`BalanceCache::shard`).
        let cold = accounts.iter().filter(|account| !self.balances.is_hot(tenant, account));
        self.turns.take(tenant, cold).await
    }
}
