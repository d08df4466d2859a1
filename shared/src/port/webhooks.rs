//! Webhook endpoints (what the API manages and the publisher fans out to) and their deliveries
//! (what the deliverer records, one per event and endpoint, with its attempts).

use async_trait::async_trait;
use time::OffsetDateTime;

use super::error::StoreError;
use super::events::StoredEvent;
use super::results::Page;
use crate::event_type::{EventId, EventType};
use crate::ids::{EndpointId, TenantId};
use crate::webhook::WebhookEndpoint;

/// Whether this copy of a delivery's message may attempt it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    /// It may, until the lease's end.
    Held,
    /// Another copy is attempting it, at the latest until then.
    Busy { until: OffsetDateTime },
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Attempted and to be tried again at `next_attempt_at`.
    Retrying,
    Delivered,
    /// The schedule is spent, the endpoint answered 410, or it was disabled before the next try.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Retrying, Self::Delivered, Self::Failed].into_iter().find(|s| s.as_str() == raw)
    }
}

/// The most attempts a delivery keeps (the newest): three whole retry schedules. Redeliveries on
/// demand add attempts to the same delivery; its item stays small however many are asked for.
pub const MAX_ATTEMPTS_KEPT: usize = 30;

/// One attempt to deliver an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub at: OffsetDateTime,
    /// The endpoint's status code (`None`: no answer).
    pub status_code: Option<u16>,
    /// Why there was no answer, or what the answer said, in a few words.
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// An event's delivery to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub endpoint_id: EndpointId,
    pub event_id: EventId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// Where a list of an endpoint's deliveries stands: the instant and id of the last delivery's
/// event. Deliveries list newest event first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryPosition {
    pub at_nanos: i128,
    pub event: EventId,
}

impl DeliveryPosition {
    /// Where the delivery of `event` sits among its endpoint's.
    pub fn of(event: &StoredEvent) -> Self {
        Self { at_nanos: event.created.unix_timestamp_nanos(), event: event.id.clone() }
    }
}

#[async_trait]
pub trait WebhookEndpoints: Send + Sync {
    /// Stores a new endpoint (its id is generated, so new), at version 1.
    async fn create_endpoint(&self, tenant: &TenantId, endpoint: &WebhookEndpoint) -> Result<(), StoreError>;

    /// The endpoint, read consistently, with its version.
    async fn get_endpoint(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
    ) -> Result<(WebhookEndpoint, u64), StoreError>;

    /// A page of the tenant's endpoints, by id, after `after`.
    async fn list_endpoints(
        &self,
        tenant: &TenantId,
        page_size: u16,
        after: Option<&EndpointId>,
    ) -> Result<Page<WebhookEndpoint, EndpointId>, StoreError>;

    /// Every endpoint of the tenant that receives events of `kind` (what the publisher fans out to).
    async fn receivers(
        &self,
        tenant: &TenantId,
        kind: EventType,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_endpoints(tenant, 100, after.as_ref()).await?;
            all.extend(page.items.into_iter().filter(|e| e.receives(kind)));
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Deletes the endpoint (`not_found` if there is none).
    async fn delete_endpoint(&self, tenant: &TenantId, id: &EndpointId) -> Result<(), StoreError>;

    /// Writes `endpoint` over the one read at `version` (the stored version moves on);
    /// `Ok(false)` if it changed meanwhile.
    async fn replace_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpoint,
        version: u64,
    ) -> Result<bool, StoreError>;

    /// Disables an enabled endpoint for `reason`, with the `webhook_endpoint.disabled` event that
    /// says so, together; `Ok(false)` if it was not enabled (or is gone).
    async fn disable_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpoint,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Notes a failed delivery: the endpoint has failed since `now` unless it already had (its
    /// version moves). Returns since when it has been failing.
    async fn endpoint_failing(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime, StoreError>;

    /// Notes a successful delivery: the endpoint is failing no more (its version moves).
    async fn endpoint_healthy(&self, tenant: &TenantId, id: &EndpointId) -> Result<(), StoreError>;
}

#[async_trait]
pub trait WebhookDeliveries: Send + Sync {
    /// The delivery of `event` to `endpoint`, if attempted.
    async fn delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
    ) -> Result<Option<Delivery>, StoreError>;

    /// Records an attempt to deliver `event` to `endpoint` and where the delivery now stands,
    /// keeping the newest `MAX_ATTEMPTS_KEPT` attempts.
    async fn record_attempt(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
        attempt: &Attempt,
        status: DeliveryStatus,
        next_attempt_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError>;

    /// Ends a delivery that was to be tried again as failed, with no attempt (its endpoint was
    /// disabled first). A delivery never attempted, or already decided, stays as it is.
    async fn give_up_delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
    ) -> Result<(), StoreError>;

    /// Leases the delivery until `until` (the holder's clock), unless another copy of its message
    /// holds a lease not over at `now` (the taker's clock): two copies received at once would
    /// otherwise both attempt it.
    async fn lease_delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Lease, StoreError>;

    /// Ends the lease taken until `until`, if it is still this holder's.
    async fn release_delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
        until: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// A page of the endpoint's deliveries, newest event first, below `before`.
    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        page_size: u16,
        before: Option<&DeliveryPosition>,
    ) -> Result<Page<Delivery, DeliveryPosition>, StoreError>;
}
