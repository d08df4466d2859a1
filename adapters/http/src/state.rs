//! What every request handler shares: built once at init, cloned per request (cheap).

use ledger_dynamodb::DynamoStore;
use ledger_sqs::TransferQueue;

#[derive(Clone, Debug)]
pub struct AppState {
    pub store: DynamoStore,
    pub queue: TransferQueue,
    /// The claim of the verified token that names the tenant (see `ledger_config::tenant_claim`).
    pub tenant_claim: String,
}

impl AppState {
    pub fn new(store: DynamoStore, queue: TransferQueue, tenant_claim: impl Into<String>) -> Self {
        Self { store, queue, tenant_claim: tenant_claim.into() }
    }
}
