//! The one engine every transfer path runs through: synchronous transfers and chains, queued ones
//! settled by the worker, batches, and holds expired by a read, a post or the sweeper. It reads
//! what the transfers need from the store ([`Book`]), lets the pure planner (`crate::plan`)
//! decide each in order, and has the store write the decisions under conditions that fail if
//! anything read has moved. One rule for every cancelled write: nothing of it happened, so read
//! again and plan again, within one contention budget ([`Contention`]).
//!
//! So there is no read-then-write race: money cannot be applied twice, a hold resolves once, a
//! batch's transfers settle once each in order, and an account without overdraft never goes below
//! zero, whatever the interleaving. The engine writes nothing itself and reads no clock but the
//! monotonic one of its budget; it pauses through the store.

mod book;
mod contention;
mod create;
mod dry_run;
mod expiry;
mod run;
mod settle;

use async_trait::async_trait;
use time::OffsetDateTime;

pub use book::{
    AsRead, Book, DueHold, Progress, Request, State, Step, StoredTransfer, Turn, Written, chain_end,
    chain_members, outcome_counts, plan,
};
pub use contention::{CONTENTION_BUDGET, Contention, Level, MAX_PAUSE};
pub use expiry::SWEEP_OVERLAP_SECONDS;
pub use settle::WINDOW;

use crate::account::AccountVersion;
use crate::batch::Submission;
use crate::ids::{AccountId, BatchId, TenantId, TransferId};
use crate::linked::LinkedChain;
use crate::port::{BatchRun, Created, DryRun, Settled, Settlement, StoreError, Sweep, Transfers};
use crate::transfer::{NewTransfer, Transfer};

#[async_trait]
impl<B: Book> Transfers for B {
    async fn create_transfer(
        &self,
        tenant: &TenantId,
        request: NewTransfer,
        now: OffsetDateTime,
    ) -> Result<Created<Transfer>, StoreError> {
        let outcome = run::run(self, tenant, create::Create::new(vec![request]), now).await?;
        Ok(outcome.map(|mut one| one.remove(0)))
    }

    async fn create_linked(
        &self,
        tenant: &TenantId,
        chain: LinkedChain,
        now: OffsetDateTime,
    ) -> Result<Created<Vec<Transfer>>, StoreError> {
        run::run(self, tenant, create::Create::new(chain.into_transfers()), now).await
    }

    async fn create_transfer_if(
        &self,
        tenant: &TenantId,
        request: NewTransfer,
        expected: Vec<(AccountId, AccountVersion)>,
        now: OffsetDateTime,
    ) -> Result<Created<Transfer>, StoreError> {
        let outcome = run::run(self, tenant, create::Create::expecting(vec![request], expected), now).await?;
        Ok(outcome.map(|mut one| one.remove(0)))
    }

    async fn dry_run(
        &self,
        tenant: &TenantId,
        transfers: Vec<NewTransfer>,
        now: OffsetDateTime,
    ) -> Result<DryRun, StoreError> {
        dry_run::dry_run(self, tenant, transfers, now).await
    }

    async fn get_transfer(
        &self,
        tenant: &TenantId,
        id: &TransferId,
        now: OffsetDateTime,
    ) -> Result<Transfer, StoreError> {
        expiry::get_transfer(self, tenant, id, now).await
    }

    async fn release_overdue_holds(
        &self,
        tenant: &TenantId,
        accounts: &[AccountId],
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        expiry::release_overdue(self, tenant, accounts, now).await
    }
}

#[async_trait]
impl<B: Book> Settlement for B {
    async fn settle_batch(
        &self,
        tenant: &TenantId,
        batch: &BatchId,
        now: OffsetDateTime,
        until: std::time::Instant,
    ) -> Result<BatchRun, StoreError> {
        run::run(self, tenant, settle::SettleBatch::new(batch, until), now).await
    }

    async fn settle_transfers(
        &self,
        tenant: &TenantId,
        submissions: &[Submission],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Settled>>, StoreError> {
        run::run(self, tenant, settle::SettleQueued::new(submissions), now).await
    }

    async fn expire_due_holds(&self, now: OffsetDateTime, limit: usize) -> Result<Sweep, StoreError> {
        expiry::sweep(self, now, limit).await
    }
}
