//! Queued submissions, the API's side: a batch, or one transfer or linked chain sent with
//! `Prefer: respond-async`. Submitting claims every transfer id at once, so one id has one outcome
//! on every route: each id holds the transfer `queued`, owned by its submission, until the worker
//! settles it (`Settlement`). A batch is accepted whole or not at all.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::error::StoreError;
use super::results::Created;
use crate::batch::{Batch, BatchCounts, TransferBatch};
use crate::ids::{BatchId, TenantId};
use crate::linked::LinkedChain;
use crate::transfer::{NewTransfer, Transfer};

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
}

impl BatchStatus {
    /// The batch as the ledger reports it.
    pub fn batch(self) -> Batch {
        Batch { id: self.record.id, created_at: self.record.created_at, counts: self.counts }
    }

    /// How many of the batch's transfers, in order, are settled: where its settlement stands.
    pub fn cursor(&self) -> u64 {
        self.counts.total.saturating_sub(self.counts.queued)
    }
}

#[async_trait]
pub trait Submissions: Send + Sync {
    /// Records `batch` and claims all its transfer ids for it, or nothing: `IdempotencyConflict`
    /// naming each differing field (`transfers[3].amount`) if an id holds another transfer, or
    /// `InFlight` if an id is queued by another submission. Posting the same batch again is a
    /// replay; another batch under the same id is a conflict.
    async fn submit_batch(
        &self,
        tenant: &TenantId,
        batch: &TransferBatch,
        now: OffsetDateTime,
    ) -> Result<Created<BatchRecord>, StoreError>;

    /// Claims one transfer's id. Returns the queued transfer, or, if the id already holds the same
    /// transfer (queued or settled), that one as a replay (as it stands at `now`).
    async fn submit_transfer(
        &self,
        tenant: &TenantId,
        request: NewTransfer,
        now: OffsetDateTime,
    ) -> Result<Created<Transfer>, StoreError>;

    /// Claims a linked chain whole (every member queued at once, or none), so the worker always
    /// finds it whole. A retry of the same chain replays its members as they stand; a chain naming
    /// an id that holds anything else is an `IdempotencyConflict` naming `transfers[i]`'s fields.
    async fn submit_linked(
        &self,
        tenant: &TenantId,
        chain: LinkedChain,
        now: OffsetDateTime,
    ) -> Result<Created<Vec<Transfer>>, StoreError>;

    /// The batch's record and counts (`not_found` before it is recorded).
    async fn batch_status(&self, tenant: &TenantId, batch: &BatchId) -> Result<BatchStatus, StoreError>;
}
