//! What every request handler shares: built once at init, cloned per request (cheap).

use ledger_dynamodb::DynamoStore;
use ledger_sqs::TransferQueue;

/// The claim of the verified token that names the tenant, unless `TENANT_CLAIM` says otherwise.
pub const DEFAULT_TENANT_CLAIM: &str = "tenant_id";

#[derive(Clone, Debug)]
pub struct AppState {
    pub store: DynamoStore,
    pub queue: TransferQueue,
    pub tenant_claim: String,
}

impl AppState {
    pub fn new(store: DynamoStore, queue: TransferQueue) -> Self {
        Self { store, queue, tenant_claim: DEFAULT_TENANT_CLAIM.to_owned() }
    }

    pub fn with_tenant_claim(mut self, claim: impl Into<String>) -> Self {
        self.tenant_claim = claim.into();
        self
    }
}
