//! Batches of transfers submitted for asynchronous application.

use std::collections::BTreeSet;

use crate::error::LedgerError;
use crate::field::FieldError;
use crate::ids::BatchId;
use crate::transfer::NewTransfer;

pub const MAX_BATCH_TRANSFERS: usize = 1_000;

/// 1 to 1,000 transfers with distinct ids, in the order they are to be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferBatch {
    id: BatchId,
    transfers: Vec<NewTransfer>,
}

impl TransferBatch {
    pub fn new(id: BatchId, transfers: Vec<NewTransfer>) -> Result<Self, LedgerError> {
        if transfers.is_empty() || transfers.len() > MAX_BATCH_TRANSFERS {
            let reason = format!("must hold 1 to {MAX_BATCH_TRANSFERS} transfers");
            return Err(LedgerError::invalid("transfers", FieldError::new(reason)));
        }
        let mut seen = BTreeSet::new();
        for (i, t) in transfers.iter().enumerate() {
            if !seen.insert(&t.id) {
                let reason = format!("{} appears twice in the batch", t.id);
                return Err(LedgerError::invalid(format!("transfers[{i}].id"), FieldError::new(reason)));
            }
        }
        Ok(Self { id, transfers })
    }

    pub fn id(&self) -> &BatchId {
        &self.id
    }

    pub fn transfers(&self) -> &[NewTransfer] {
        &self.transfers
    }
}

/// Where each transfer of a batch stands. `queued` counts those enqueued and not yet applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchCounts {
    pub total: u64,
    pub enqueued: u64,
    pub not_enqueued: u64,
    pub queued: u64,
    pub committed: u64,
    pub rejected: u64,
    /// Rejections by reason code: the rule codes, and `idempotency_conflict` for a transfer whose id
    /// already held another transfer.
    pub rejected_by_reason: std::collections::BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::transfer;

    fn t(id: &str) -> NewTransfer {
        transfer(id, "a", "b", 1)
    }

    #[test]
    fn a_batch_holds_1_to_1000_distinct_transfers() {
        let id = BatchId::parse("b1").unwrap();
        assert!(TransferBatch::new(id.clone(), vec![]).is_err());
        assert!(TransferBatch::new(id.clone(), (0..1000).map(|i| t(&format!("t{i}"))).collect()).is_ok());
        assert!(TransferBatch::new(id.clone(), (0..1001).map(|i| t(&format!("t{i}"))).collect()).is_err());
        match TransferBatch::new(id, vec![t("x"), t("y"), t("x")]) {
            Err(LedgerError::InvalidField { field, .. }) => assert_eq!(field, "transfers[2].id"),
            other => panic!("{other:?}"),
        }
    }
}
