//! Transfers, decided and written by the one engine (`crate::engine`) on every route: synchronous
//! creates and reads (`Transfers`), and the worker's and the sweeper's settlement of what was
//! queued or fell due (`Settlement`). Every store that implements the engine's `Book` has both.

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::error::StoreError;
use super::results::{Created, Page};
use crate::account::{AccountBalance, AccountVersion};
use crate::batch::Submission;
use crate::ids::{AccountId, BatchId, TenantId, TransferId};
use crate::linked::LinkedChain;
use crate::search::{SearchPosition, TransferQuery};
use crate::transfer::{NewTransfer, Transfer};

#[async_trait]
pub trait Transfers: Send + Sync {
    /// Applies `request` once. Returns the recorded transfer: committed (a hold: pending), or
    /// rejected by a rule (recorded too: the id is spent). A retry of the same request returns the
    /// id's outcome as `Created::Replayed` (status `queued` while a queued submission holds it); a
    /// request reusing the id with other fields is an `IdempotencyConflict`.
    async fn create_transfer(
        &self,
        tenant: &TenantId,
        request: NewTransfer,
        now: OffsetDateTime,
    ) -> Result<Created<Transfer>, StoreError>;

    /// Applies a linked chain once, whole or not at all: every member committed, or every member
    /// rejected (one by its own rule, the others `linked_failed`). A retry replays every outcome; a
    /// chain naming an id that holds anything else is an `IdempotencyConflict` naming
    /// `transfers[i]`'s fields, and writes nothing.
    async fn create_linked(
        &self,
        tenant: &TenantId,
        chain: LinkedChain,
        now: OffsetDateTime,
    ) -> Result<Created<Vec<Transfer>>, StoreError>;

    /// Applies `request` once, as `create_transfer` does, only if each account of `expected` is
    /// still at its version (the `ETag` the client read): otherwise `PreconditionFailed`, and
    /// nothing is written (the id is not spent). A replay of the id answers as it did, whatever
    /// the versions now.
    async fn create_transfer_if(
        &self,
        tenant: &TenantId,
        request: NewTransfer,
        expected: Vec<(AccountId, AccountVersion)>,
        now: OffsetDateTime,
    ) -> Result<Created<Transfer>, StoreError>;

    /// Decides `transfers` (a sequence, each linked chain whole) as the ledger would now, and
    /// writes nothing: no id is spent, no event is emitted. Each transfer's outcome as it would be
    /// recorded (an id that holds this very request: as recorded), and the accounts they move as
    /// the sequence would leave them. An id that holds another request is an
    /// `IdempotencyConflict`, as it would be.
    async fn dry_run(
        &self,
        tenant: &TenantId,
        transfers: Vec<NewTransfer>,
        now: OffsetDateTime,
    ) -> Result<DryRun, StoreError>;

    /// The transfer as it stands at `now`: a hold pending past its time is expired first, so a
    /// read never shows `expired` for a hold that a post in flight then posts.
    async fn get_transfer(
        &self,
        tenant: &TenantId,
        id: &TransferId,
        now: OffsetDateTime,
    ) -> Result<Transfer, StoreError>;

    /// Releases the holds pending past their time at `now` that hold money in `accounts`: what a
    /// read of an account's balances or a change of its policy does first, so that a hold past
    /// its time never lowers an available balance read nor refuses a change. How many it released.
    async fn release_overdue_holds(
        &self,
        tenant: &TenantId,
        accounts: &[AccountId],
        now: OffsetDateTime,
    ) -> Result<usize, StoreError>;
}

/// Changing what a transfer says about itself, after it is recorded: its metadata.
#[async_trait]
pub trait TransferChanges: Send + Sync {
    /// Merges `patch` into the transfer's metadata (`transfer_change::with_metadata`), with its
    /// `transfer.updated` event, only if the transfer is still as `read` (its status, reversals and
    /// revision): otherwise `PreconditionFailed`. Returns the transfer as it stands after
    /// (unchanged, and nothing written, if the patch sets what is there).
    async fn change_transfer_metadata(
        &self,
        tenant: &TenantId,
        read: &Transfer,
        patch: &BTreeMap<String, Option<String>>,
        now: OffsetDateTime,
    ) -> Result<Transfer, StoreError>;
}

/// What a dry run decided: each transfer's outcome, and the accounts they move as they would stand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DryRun {
    pub transfers: Vec<Transfer>,
    pub accounts: Vec<AccountBalance>,
}

/// Finding transfers: by account, status, kind, creation range, batch and metadata.
#[async_trait]
pub trait TransferSearch: Send + Sync {
    /// The tenant's transfers `query` selects, as they stand at `now`, newest first (a batch's:
    /// last submitted first), below `after` (a position a page returned). A page reads at most
    /// `page_size` candidates of the query's index (`TransferQuery::index`) and returns those that
    /// match: it may hold fewer, even none, with more to follow. A transfer whose answer was sent
    /// is found; a queued one only through its batch.
    async fn search_transfers(
        &self,
        tenant: &TenantId,
        query: &TransferQuery,
        page_size: u16,
        after: Option<&SearchPosition>,
        now: OffsetDateTime,
    ) -> Result<Page<Transfer, SearchPosition>, StoreError>;
}

/// How a queued transfer settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    Committed,
    /// Refused by a rule (its code).
    Rejected(String),
    /// Settled already (an earlier delivery, or the request that first held its id): nothing written.
    AlreadySettled,
}

/// What one run over a batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchRun {
    /// The transfers this run settled, in order.
    pub settled: Vec<Settled>,
    /// Every transfer of the batch is settled (or the batch was never accepted: nothing to do).
    pub done: bool,
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Holds released by this sweep.
    pub expired: usize,
    /// Listings of holds resolved meanwhile (posted, voided, or expired by another), removed.
    pub resolved: usize,
    /// The sweep stopped at its limit: more may be due (the next sweep takes them).
    pub more: bool,
}

#[async_trait]
pub trait Settlement: Send + Sync {
    /// Settles `batch` from its cursor on, in order, as far as it can now and at most until
    /// `until` (checked between writes). Not done means: try again later (it stayed contended, a
    /// transfer's id is held by a submission not applied yet, or its time was up). Concurrent and
    /// repeated runs cooperate: each transfer is applied and counted once.
    async fn settle_batch(
        &self,
        tenant: &TenantId,
        batch: &BatchId,
        now: OffsetDateTime,
        until: std::time::Instant,
    ) -> Result<BatchRun, StoreError>;

    /// Settles single transfers and linked chains queued with `Prefer: respond-async` (each chain
    /// whole). For each of their transfers in order, how it settled, or `None` if it could not be
    /// settled now (deliver it again).
    async fn settle_transfers(
        &self,
        tenant: &TenantId,
        submissions: &[Submission],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Settled>>, StoreError>;

    /// Releases at most `limit` holds that fell due up to `now` and are still pending, across
    /// tenants, fairly across the listing's shards of tenants (a tenant with masses of holds due
    /// delays only those that share its shard). Safe to run concurrently and repeatedly: each hold
    /// is released at most once.
    async fn expire_due_holds(&self, now: OffsetDateTime, limit: usize) -> Result<Sweep, StoreError>;
}
