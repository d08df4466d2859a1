//! Reconciliations in process: kept once per account and statement.

use async_trait::async_trait;
use ledger::chain::Hash256;
use ledger::port::{Created, Reconciliations, StoreError};
use ledger::reconcile::Reconciliation;
use ledger::{AccountId, TenantId};

use crate::store::MemoryStore;

#[async_trait]
impl Reconciliations for MemoryStore {
    async fn record_reconciliation(
        &self,
        tenant: &TenantId,
        reconciliation: &Reconciliation,
    ) -> Result<Created<Reconciliation>, StoreError> {
        let mut tables = self.tables();
        let key = (tenant.clone(), reconciliation.account_id.clone(), reconciliation.id);
        if let Some(kept) = tables.reconciliations.get(&key) {
            return Ok(Created::Replayed(kept.clone()));
        }
        tables.reconciliations.insert(key, reconciliation.clone());
        Ok(Created::New(reconciliation.clone()))
    }

    async fn get_reconciliation(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        id: &Hash256,
    ) -> Result<Reconciliation, StoreError> {
        let tables = self.tables();
        let key = (tenant.clone(), account.clone(), *id);
        tables.reconciliations.get(&key).cloned().ok_or_else(|| StoreError::not_found("reconciliation", id))
    }
}
