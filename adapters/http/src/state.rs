//! What every request handler shares: built once at init, cloned per request (cheap).

use std::collections::BTreeMap;
use std::sync::Arc;

use ledger::TenantId;
use ledger::port::{Sealer, Store, TransferQueue, WebhookQueue};
use ledger::webhook::UrlPolicy;
use time::OffsetDateTime;

use crate::tenant_limits::TenantLimits;

#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn TransferQueue>,
    /// The claim of the verified token that names the tenant (see `ledger_config::tenant_claim`).
    pub tenant_claim: String,
    /// The tenant of each machine client (`client_id` claim) whose tokens carry no tenant claim.
    pub client_tenants: Arc<BTreeMap<String, TenantId>>,
    /// Each tenant's request limit (`rate_limit`); `None`: no limit.
    pub rate_limit: Option<TenantLimits>,
    /// Where redeliveries and replays of webhooks are queued, what endpoint URLs are accepted, and
    /// what seals signing secrets.
    pub webhooks: Option<Webhooks>,
    /// What every handler takes as now: the system's clock, or a test's.
    pub clock: Clock,
}

/// What the webhook routes need.
#[derive(Clone, Debug)]
pub struct Webhooks {
    pub queue: Arc<dyn WebhookQueue>,
    pub urls: UrlPolicy,
    pub sealer: Arc<dyn Sealer>,
}

/// Where the API reads the time.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> OffsetDateTime + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(OffsetDateTime::now_utc))
    }

    /// A clock that reads `now` (a test's, that it moves by hand).
    pub fn from_fn(now: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn TransferQueue>,
        tenant_claim: impl Into<String>,
    ) -> Self {
        let tenant_claim = tenant_claim.into();
        Self {
            store,
            queue,
            tenant_claim,
            client_tenants: Arc::default(),
            rate_limit: None,
            webhooks: None,
            clock: Clock::system(),
        }
    }

    /// The time as the API sees it.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// This state naming the tenant of each machine client in `tenants` (by its `client_id`).
    pub fn with_client_tenants(mut self, tenants: BTreeMap<String, TenantId>) -> Self {
        self.client_tenants = Arc::new(tenants);
        self
    }

    /// This state reading the time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// This state with webhook endpoints: deliveries asked for through the API go to `queue`,
    /// endpoint URLs must pass `urls`, and signing secrets are sealed by `sealer` before they are
    /// stored.
    pub fn with_webhooks(
        mut self,
        queue: Arc<dyn WebhookQueue>,
        urls: UrlPolicy,
        sealer: Arc<dyn Sealer>,
    ) -> Self {
        self.webhooks = Some(Webhooks { queue, urls, sealer });
        self
    }

    /// This state with every tenant held to `limit`, its buckets kept in the store.
    pub fn with_rate_limit(mut self, limit: Option<ledger::RateLimit>) -> Self {
        self.rate_limit = limit.map(|limit| TenantLimits::new(self.store.clone(), limit));
        self
    }
}
