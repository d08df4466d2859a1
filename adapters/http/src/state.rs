//! What every request handler shares: built once at init, cloned per request (cheap).

use ledger_dynamodb::{DynamoStore, TenantLimits};
use ledger_sqs::TransferQueue;

#[derive(Clone, Debug)]
pub struct AppState {
    pub store: DynamoStore,
    pub queue: TransferQueue,
    /// The claim of the verified token that names the tenant (see `ledger_config::tenant_claim`).
    pub tenant_claim: String,
    /// Each tenant's request limit (`limit`); `None`: no limit.
    pub limits: Option<TenantLimits>,
}

impl AppState {
    pub fn new(store: DynamoStore, queue: TransferQueue, tenant_claim: impl Into<String>) -> Self {
        Self { store, queue, tenant_claim: tenant_claim.into(), limits: None }
    }

    /// This state with every tenant held to `limit`, kept in the store's table.
    pub fn with_tenant_limit(mut self, limit: Option<ledger::RateLimit>) -> Self {
        self.limits = limit.map(|limit| TenantLimits::new(self.store.clone(), limit));
        self
    }
}
