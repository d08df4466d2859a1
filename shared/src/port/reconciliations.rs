//! Reconciliations with bank statements (`crate::reconcile`), kept once per account and statement.

use async_trait::async_trait;

use super::error::StoreError;
use super::results::Created;
use crate::hash256::Hash256;
use crate::ids::{AccountId, TenantId};
use crate::reconcile::Reconciliation;

#[async_trait]
pub trait Reconciliations: Send + Sync {
    /// Keeps `reconciliation` if its account has none for its statement yet; otherwise the one kept
    /// (`Replayed`): a statement counts once, whoever uploaded it first.
    async fn record_reconciliation(
        &self,
        tenant: &TenantId,
        reconciliation: &Reconciliation,
    ) -> Result<Created<Reconciliation>, StoreError>;

    /// The account's reconciliation of statement `id` (`not_found` if none).
    async fn get_reconciliation(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        id: &Hash256,
    ) -> Result<Reconciliation, StoreError>;
}
