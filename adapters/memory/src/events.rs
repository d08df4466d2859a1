//! Events in memory: written with the changes they tell of (`book`, `accounts`, `webhooks`), read
//! by id and listed newest first.

use std::ops::Bound;

use async_trait::async_trait;
use ledger::port::{EventFilter, EventPosition, Events, Page, StoreError, StoredEvent};
use ledger::{EventId, TenantId};
use time::OffsetDateTime;

use crate::store::MemoryStore;
use crate::tables::event_key;

#[async_trait]
impl Events for MemoryStore {
    async fn get_event(
        &self,
        tenant: &TenantId,
        id: &EventId,
        now: OffsetDateTime,
    ) -> Result<StoredEvent, StoreError> {
        let tables = self.tables();
        let found = tables
            .event_keys
            .get(&(tenant.clone(), id.clone()))
            .and_then(|key| tables.events.get(&(tenant.clone(), key.clone())));
        found
            .filter(|event| event.created + ledger::event::RETENTION > now)
            .cloned()
            .ok_or_else(|| StoreError::not_found("event", id))
    }

    async fn list_events(
        &self,
        tenant: &TenantId,
        filter: &EventFilter,
        page_size: u16,
        before: Option<&EventPosition>,
        now: OffsetDateTime,
    ) -> Result<Page<StoredEvent, EventPosition>, StoreError> {
        let tables = self.tables();
        let upper = match before {
            Some(before) => Bound::Excluded((tenant.clone(), event_key(before.at_nanos, &before.id))),
            None => Bound::Unbounded,
        };
        let mut found: Vec<StoredEvent> = tables
            .events
            .range((Bound::Unbounded, upper))
            .rev()
            .skip_while(|((t, _), _)| t > tenant)
            .take_while(|((t, _), _)| t == tenant)
            .map(|(_, event)| event)
            .filter(|event| filter.selects(event, now))
            .take(usize::from(page_size) + 1)
            .cloned()
            .collect();
        let more = found.len() > usize::from(page_size);
        found.truncate(usize::from(page_size));
        let next = if more { found.last().map(StoredEvent::position) } else { None };
        Ok(Page { items: found, next })
    }
}
