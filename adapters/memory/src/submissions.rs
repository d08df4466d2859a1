//! Queued submissions in memory: each claims its ids at once, under the lock, so a batch is
//! accepted whole or not at all without the DynamoDB store's claim-and-release protocol; what a
//! caller sees is the same (replays, conflicts naming fields, `transfer_in_flight`).

use async_trait::async_trait;
use ledger::engine::StoredTransfer;
use ledger::linked::LinkedChain;
use ledger::port::{BatchRecord, BatchStatus, Created, StoreError, Submissions};
use ledger::{
    BatchCounts, BatchId, LedgerError, NewTransfer, Owner, Submission, TenantId, Transfer, TransferBatch,
    TransferStatus,
};
use time::OffsetDateTime;

use crate::store::{MemoryStore, current_correlation};
use crate::tables::{BatchState, Tables};

impl Tables {
    fn claim(&mut self, tenant: &TenantId, queued: Transfer, owner: Owner) {
        let stored =
            StoredTransfer { transfer: queued, owner: Some(owner), correlation: current_correlation() };
        self.transfers.insert((tenant.clone(), stored.transfer.request.id.clone()), stored);
    }
}

/// Why the batch cannot be accepted with what its ids hold, if it cannot: every differing field,
/// else the first id another submission has queued.
fn refusal(tables: &Tables, tenant: &TenantId, batch: &TransferBatch) -> Result<(), LedgerError> {
    let (mut fields, mut in_flight) = (Vec::new(), None);
    let submission = Submission::Batch(batch.id().clone());
    for (position, transfer) in batch.transfers().iter().enumerate() {
        let Some(held) = tables.transfers.get(&(tenant.clone(), transfer.id.clone())) else { continue };
        if held.owner == Some(submission.owner(position as u32)) {
            continue;
        }
        let differing = held.transfer.differences(transfer);
        fields.extend(differing.iter().map(|f| format!("transfers[{position}].{f}")));
        if differing.is_empty() && held.transfer.status == TransferStatus::Queued {
            in_flight.get_or_insert_with(|| transfer.id.to_string());
        }
    }
    match in_flight {
        _ if !fields.is_empty() => Err(LedgerError::IdempotencyConflict { fields }),
        Some(id) => Err(LedgerError::InFlight { id }),
        None => Ok(()),
    }
}

#[async_trait]
impl Submissions for MemoryStore {
    async fn submit_batch(
        &self,
        tenant: &TenantId,
        batch: &TransferBatch,
        now: OffsetDateTime,
    ) -> Result<Created<BatchRecord>, StoreError> {
        let mut tables = self.tables();
        let key = (tenant.clone(), batch.id().clone());
        if let Some(existing) = tables.batches.get(&key) {
            if existing.transfers != batch.transfers() {
                return Err(LedgerError::IdempotencyConflict { fields: vec!["transfers".to_owned()] }.into());
            }
            return Ok(Created::Replayed(existing.record.clone()));
        }
        refusal(&tables, tenant, batch)?;
        let record =
            BatchRecord { id: batch.id().clone(), total: batch.transfers().len() as u64, created_at: now };
        let submission = Submission::Batch(batch.id().clone());
        for (position, transfer) in batch.transfers().iter().enumerate() {
            if !tables.transfers.contains_key(&(tenant.clone(), transfer.id.clone())) {
                tables.claim(tenant, transfer.clone().queued(now), submission.owner(position as u32));
            }
        }
        let ids = batch.transfers().iter().map(|t| t.id.clone()).collect();
        let counts = BatchCounts { total: record.total, ..BatchCounts::default() };
        let state = BatchState {
            record: record.clone(),
            transfers: batch.transfers().to_vec(),
            ids: Some(ids),
            cursor: 0,
            counts,
        };
        tables.batches.insert(key, state);
        Ok(Created::New(record))
    }

    async fn submit_transfer(
        &self,
        tenant: &TenantId,
        request: NewTransfer,
        now: OffsetDateTime,
    ) -> Result<Created<Transfer>, StoreError> {
        let mut tables = self.tables();
        match tables.transfers.get(&(tenant.clone(), request.id.clone())) {
            None => {
                let queued = request.queued(now);
                tables.claim(tenant, queued.clone(), Owner::Async);
                Ok(Created::New(queued))
            }
            // Respond-async transfers share one owner: the fields tell a replay from another request.
            Some(existing) => {
                let fields = existing.transfer.differences(&request);
                if fields.is_empty() {
                    Ok(Created::Replayed(existing.transfer.clone().observed(now)))
                } else {
                    Err(LedgerError::IdempotencyConflict {
                        fields: fields.into_iter().map(str::to_owned).collect(),
                    }
                    .into())
                }
            }
        }
    }

    async fn submit_linked(
        &self,
        tenant: &TenantId,
        chain: LinkedChain,
        now: OffsetDateTime,
    ) -> Result<Created<Vec<Transfer>>, StoreError> {
        let chain = chain.into_transfers();
        let mut tables = self.tables();
        let held: Vec<Option<Transfer>> = chain
            .iter()
            .map(|t| tables.transfers.get(&(tenant.clone(), t.id.clone())).map(|s| s.transfer.clone()))
            .collect();
        if held.iter().all(Option::is_none) {
            let owner = Submission::Linked(chain.iter().map(|t| t.id.clone()).collect()).owner(0);
            let queued: Vec<Transfer> = chain.into_iter().map(|t| t.queued(now)).collect();
            for transfer in &queued {
                tables.claim(tenant, transfer.clone(), owner.clone());
            }
            return Ok(Created::New(queued));
        }
        let (mut fields, mut replays) = (Vec::new(), Vec::new());
        for (i, (t, existing)) in chain.iter().zip(&held).enumerate() {
            if let Some(existing) = existing {
                fields.extend(existing.differences(t).iter().map(|f| format!("transfers[{i}].{f}")));
                replays.push(existing.clone().observed(now));
            }
        }
        if fields.is_empty() && replays.len() == chain.len() {
            return Ok(Created::Replayed(replays));
        }
        if fields.is_empty() {
            // Some ids hold these very transfers, claimed apart from this chain.
            fields = held
                .iter()
                .enumerate()
                .filter(|(_, h)| h.is_some())
                .map(|(i, _)| format!("transfers[{i}].id"))
                .collect();
        }
        Err(LedgerError::IdempotencyConflict { fields }.into())
    }

    async fn batch_status(&self, tenant: &TenantId, batch: &BatchId) -> Result<BatchStatus, StoreError> {
        self.tables().batch_status(tenant, batch)
    }
}
