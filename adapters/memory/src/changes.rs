//! Changes to a recorded transfer in memory: its metadata, only while it is as the client read it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use ledger::port::{StoreError, TransferChanges};
use ledger::{Event, LedgerError, TenantId, Transfer};
use time::OffsetDateTime;

use crate::store::{MemoryStore, current_correlation, stored};

#[async_trait]
impl TransferChanges for MemoryStore {
    async fn change_transfer_metadata(
        &self,
        tenant: &TenantId,
        read: &Transfer,
        patch: &BTreeMap<String, Option<String>>,
        now: OffsetDateTime,
    ) -> Result<Transfer, StoreError> {
        let Some(changed) = ledger::transfer_change::with_metadata(read, patch)? else {
            return Ok(read.clone());
        };
        let event = stored(tenant, &Event::transfer_updated(tenant, &changed, now), current_correlation())?;
        let mut tables = self.tables();
        let key = (tenant.clone(), read.request.id.clone());
        let entry = tables.transfers.get_mut(&key);
        // As read: its status, reversals and revision (what every other change of it moves).
        let as_read = entry.as_ref().is_some_and(|s| {
            (&s.transfer.status, &s.transfer.reversals, s.transfer.revision)
                == (&read.status, &read.reversals, read.revision)
        });
        let Some(entry) = entry.filter(|_| as_read) else {
            return Err(LedgerError::PreconditionFailed {
                what: "transfer",
                id: read.request.id.to_string(),
            }
            .into());
        };
        entry.transfer.request.metadata = changed.request.metadata.clone();
        entry.transfer.revision = changed.revision;
        tables.put_event(event);
        Ok(changed)
    }
}
