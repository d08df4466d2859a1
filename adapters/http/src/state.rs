//! What every request handler shares: built once at init, cloned per request (cheap).

use ledger::webhook::UrlPolicy;
use ledger_dynamodb::{DynamoStore, TenantLimits};
use ledger_sqs::TransferQueue;
use ledger_sqs::deliveries::DeliveryQueue;

#[derive(Clone, Debug)]
pub struct AppState {
    pub store: DynamoStore,
    pub queue: TransferQueue,
    /// The claim of the verified token that names the tenant (see `ledger_config::tenant_claim`).
    pub tenant_claim: String,
    /// Each tenant's request limit (`limit`); `None`: no limit.
    pub limits: Option<TenantLimits>,
    /// Where redeliveries and replays of webhooks are queued, and what endpoint URLs are accepted.
    pub webhooks: Option<(DeliveryQueue, UrlPolicy)>,
}

impl AppState {
    pub fn new(store: DynamoStore, queue: TransferQueue, tenant_claim: impl Into<String>) -> Self {
        Self { store, queue, tenant_claim: tenant_claim.into(), limits: None, webhooks: None }
    }

    /// This state with webhook endpoints: deliveries asked for through the API go to `queue`, and
    /// endpoint URLs must pass `urls`.
    pub fn with_webhooks(mut self, queue: DeliveryQueue, urls: UrlPolicy) -> Self {
        self.webhooks = Some((queue, urls));
        self
    }

    /// This state with every tenant held to `limit`, kept in the store's table.
    pub fn with_tenant_limit(mut self, limit: Option<ledger::RateLimit>) -> Self {
        self.limits = limit.map(|limit| TenantLimits::new(self.store.clone(), limit));
        self
    }
}
