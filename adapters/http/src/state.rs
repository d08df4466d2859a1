//! What every request handler shares: built once at init, cloned per request (cheap).

use std::sync::Arc;

use ledger::port::{Store, TransferQueue, WebhookQueue};
use ledger::webhook::UrlPolicy;

use crate::rate_limit::TenantLimits;

#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn TransferQueue>,
    /// The claim of the verified token that names the tenant (see `ledger_config::tenant_claim`).
    pub tenant_claim: String,
    /// Each tenant's request limit (`rate_limit`); `None`: no limit.
    pub rate_limit: Option<TenantLimits>,
    /// Where redeliveries and replays of webhooks are queued, and what endpoint URLs are accepted.
    pub webhooks: Option<(Arc<dyn WebhookQueue>, UrlPolicy)>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn TransferQueue>,
        tenant_claim: impl Into<String>,
    ) -> Self {
        Self { store, queue, tenant_claim: tenant_claim.into(), rate_limit: None, webhooks: None }
    }

    /// This state with webhook endpoints: deliveries asked for through the API go to `queue`, and
    /// endpoint URLs must pass `urls`.
    pub fn with_webhooks(mut self, queue: Arc<dyn WebhookQueue>, urls: UrlPolicy) -> Self {
        self.webhooks = Some((queue, urls));
        self
    }

    /// This state with every tenant held to `limit`, its buckets kept in the store.
    pub fn with_rate_limit(mut self, limit: Option<ledger::RateLimit>) -> Self {
        self.rate_limit = limit.map(|limit| TenantLimits::new(self.store.clone(), limit));
        self
    }
}
