//! Webhook endpoints (versioned, as on DynamoDB: every change moves the version, and a replace is
//! conditioned on it) and their deliveries, each with its attempts and its lease.

use std::ops::Bound;

use async_trait::async_trait;
use ledger::port::{
    Attempt, Delivery, DeliveryPosition, DeliveryStatus, Lease, MAX_ATTEMPTS_KEPT, Page, StoreError,
    StoredEvent, WebhookDeliveries, WebhookEndpoints,
};
use ledger::webhook::{MAX_ENDPOINTS, WebhookEndpoint};
use ledger::{EndpointId, Event, LedgerError, TenantId};
use time::OffsetDateTime;

use crate::store::{MemoryStore, current_correlation, stored};
use crate::tables::{EventKey, event_key};

fn not_found(id: &EndpointId) -> StoreError {
    StoreError::not_found("webhook endpoint", id)
}

fn delivery_key(event: &StoredEvent) -> EventKey {
    event_key(event.created.unix_timestamp_nanos(), &event.id)
}

#[async_trait]
impl WebhookEndpoints for MemoryStore {
    async fn create_endpoint(&self, tenant: &TenantId, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        let mut tables = self.tables();
        let key = (tenant.clone(), endpoint.id.clone());
        if tables.endpoints.contains_key(&key) {
            return Err(StoreError::Unexpected(format!("webhook endpoint {} exists", endpoint.id)));
        }
        if tables.endpoints.keys().filter(|(t, _)| t == tenant).count() >= MAX_ENDPOINTS {
            return Err(LedgerError::LimitReached { what: "webhook endpoints", limit: MAX_ENDPOINTS }.into());
        }
        tables.endpoints.insert(key, (endpoint.clone(), 1));
        Ok(())
    }

    async fn get_endpoint(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
    ) -> Result<(WebhookEndpoint, u64), StoreError> {
        self.tables().endpoints.get(&(tenant.clone(), id.clone())).cloned().ok_or_else(|| not_found(id))
    }

    async fn list_endpoints(
        &self,
        tenant: &TenantId,
        page_size: u16,
        after: Option<&EndpointId>,
    ) -> Result<Page<WebhookEndpoint, EndpointId>, StoreError> {
        let tables = self.tables();
        let start = match after {
            Some(after) => Bound::Excluded((tenant.clone(), after.clone())),
            None => Bound::Unbounded,
        };
        let mut found: Vec<WebhookEndpoint> = tables
            .endpoints
            .range((start, Bound::Unbounded))
            .skip_while(|((t, _), _)| t < tenant)
            .take_while(|((t, _), _)| t == tenant)
            .take(usize::from(page_size) + 1)
            .map(|(_, (endpoint, _))| endpoint.clone())
            .collect();
        let more = found.len() > usize::from(page_size);
        found.truncate(usize::from(page_size));
        let next = if more { found.last().map(|e| e.id.clone()) } else { None };
        Ok(Page { items: found, next })
    }

    async fn delete_endpoint(&self, tenant: &TenantId, id: &EndpointId) -> Result<(), StoreError> {
        self.tables().endpoints.remove(&(tenant.clone(), id.clone())).map(|_| ()).ok_or_else(|| not_found(id))
    }

    async fn replace_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpoint,
        version: u64,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        match tables.endpoints.get_mut(&(tenant.clone(), endpoint.id.clone())) {
            Some(stored) if stored.1 == version => {
                *stored = (endpoint.clone(), version + 1);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn disable_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpoint,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let Some((stored, version)) = tables.endpoints.get_mut(&(tenant.clone(), endpoint.id.clone())) else {
            return Ok(false);
        };
        if !stored.enabled {
            return Ok(false);
        }
        stored.enabled = false;
        stored.disabled_reason = Some(reason.to_owned());
        *version += 1;
        // The event names the endpoint as the caller saw it, disabled (as on DynamoDB).
        let disabled =
            WebhookEndpoint { enabled: false, disabled_reason: Some(reason.to_owned()), ..endpoint.clone() };
        let event = stored_event(tenant, &Event::endpoint_disabled(tenant, &disabled, now))?;
        tables.put_event(event);
        Ok(true)
    }

    async fn endpoint_failing(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime, StoreError> {
        let mut tables = self.tables();
        let (endpoint, version) =
            tables.endpoints.get_mut(&(tenant.clone(), id.clone())).ok_or_else(|| not_found(id))?;
        *version += 1;
        Ok(*endpoint.failing_since.get_or_insert(now))
    }

    async fn endpoint_healthy(&self, tenant: &TenantId, id: &EndpointId) -> Result<(), StoreError> {
        if let Some((endpoint, version)) = self.tables().endpoints.get_mut(&(tenant.clone(), id.clone())) {
            endpoint.failing_since = None;
            *version += 1;
        }
        Ok(())
    }
}

fn stored_event(tenant: &TenantId, event: &Event) -> Result<StoredEvent, StoreError> {
    stored(tenant, event, current_correlation())
}

#[async_trait]
impl WebhookDeliveries for MemoryStore {
    async fn delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
    ) -> Result<Option<Delivery>, StoreError> {
        Ok(self.tables().deliveries.get(&(tenant.clone(), endpoint.clone(), delivery_key(event))).cloned())
    }

    async fn record_attempt(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
        attempt: &Attempt,
        status: DeliveryStatus,
        next_attempt_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables();
        let delivery = tables
            .deliveries
            .entry((tenant.clone(), endpoint.clone(), delivery_key(event)))
            .or_insert_with(|| Delivery {
                endpoint_id: endpoint.clone(),
                event_id: event.id.clone(),
                event_type: event.kind,
                status,
                attempts: Vec::new(),
                next_attempt_at: None,
            });
        delivery.status = status;
        delivery.attempts.push(attempt.clone());
        let over = delivery.attempts.len().saturating_sub(MAX_ATTEMPTS_KEPT);
        delivery.attempts.drain(..over);
        delivery.next_attempt_at = next_attempt_at;
        Ok(())
    }

    async fn give_up_delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables();
        if let Some(delivery) =
            tables.deliveries.get_mut(&(tenant.clone(), endpoint.clone(), delivery_key(event)))
            && delivery.status == DeliveryStatus::Retrying
        {
            delivery.status = DeliveryStatus::Failed;
            delivery.next_attempt_at = None;
        }
        Ok(())
    }

    async fn lease_delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Lease, StoreError> {
        let mut tables = self.tables();
        let lease =
            tables.leases.entry((tenant.clone(), endpoint.clone(), delivery_key(event))).or_insert(until);
        if *lease == until || *lease <= now {
            *lease = until;
            Ok(Lease::Held)
        } else {
            Ok(Lease::Busy { until: *lease })
        }
    }

    async fn release_delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables();
        let key = (tenant.clone(), endpoint.clone(), delivery_key(event));
        if tables.leases.get(&key) == Some(&until) {
            tables.leases.remove(&key);
        }
        Ok(())
    }

    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        page_size: u16,
        before: Option<&DeliveryPosition>,
    ) -> Result<Page<Delivery, DeliveryPosition>, StoreError> {
        let tables = self.tables();
        let upper = match before {
            Some(before) => {
                Bound::Excluded((tenant.clone(), endpoint.clone(), event_key(before.at_nanos, &before.event)))
            }
            None => Bound::Unbounded,
        };
        let mut found: Vec<(EventKey, Delivery)> = tables
            .deliveries
            .range((Bound::Unbounded, upper))
            .rev()
            .skip_while(|((t, e, _), _)| (t, e) > (tenant, endpoint))
            .take_while(|((t, e, _), _)| (t, e) == (tenant, endpoint))
            .take(usize::from(page_size) + 1)
            .map(|((_, _, key), delivery)| (key.clone(), delivery.clone()))
            .collect();
        let more = found.len() > usize::from(page_size);
        found.truncate(usize::from(page_size));
        let next = match found.last() {
            Some(((at_nanos, _), delivery)) if more => {
                Some(DeliveryPosition { at_nanos: *at_nanos, event: delivery.event_id.clone() })
            }
            _ => None,
        };
        Ok(Page { items: found.into_iter().map(|(_, d)| d).collect(), next })
    }
}
