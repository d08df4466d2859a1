//! Events: the one each change writes in its own transaction (the outbox), read back by the events
//! API, the publisher and the deliverer.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::error::StoreError;
use super::results::Page;
use crate::event_type::{EventId, EventType};
use crate::ids::TenantId;

/// An event as stored: its JSON as published and served, and what routes and filters it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: EventId,
    pub tenant: TenantId,
    pub kind: EventType,
    pub created: OffsetDateTime,
    /// The event's JSON (`ledger::Event`'s), byte for byte what is delivered and returned.
    pub body: String,
    /// The id of the request whose work wrote the event.
    pub correlation_id: Option<String>,
}

impl StoredEvent {
    /// Where this event sits in its tenant's list.
    pub fn position(&self) -> EventPosition {
        EventPosition { at_nanos: self.created.unix_timestamp_nanos(), id: self.id.clone() }
    }
}

/// Where a list of events stands: the instant and id of the last event it covered. Events list
/// newest first, by instant then id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventPosition {
    pub at_nanos: i128,
    pub id: EventId,
}

/// What a list of events selects: a type, and `created` from `from` (inclusive) to `to` (exclusive).
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub kind: Option<EventType>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

impl EventFilter {
    /// Whether `event` is selected, at `now` (nothing older than the retention is).
    pub fn selects(&self, event: &StoredEvent, now: OffsetDateTime) -> bool {
        let oldest = now - crate::event::RETENTION;
        self.kind.is_none_or(|kind| kind == event.kind)
            && event.created >= self.from.map_or(oldest, |from| from.max(oldest))
            && self.to.is_none_or(|to| event.created < to)
    }
}

#[async_trait]
pub trait Events: Send + Sync {
    /// One event of the tenant, within its retention at `now`.
    async fn get_event(
        &self,
        tenant: &TenantId,
        id: &EventId,
        now: OffsetDateTime,
    ) -> Result<StoredEvent, StoreError>;

    /// The tenant's events `filter` selects, newest first, `page_size` a page, below `before` (a
    /// position a page returned). A page may hold fewer than `page_size` with more to follow.
    async fn list_events(
        &self,
        tenant: &TenantId,
        filter: &EventFilter,
        page_size: u16,
        before: Option<&EventPosition>,
        now: OffsetDateTime,
    ) -> Result<Page<StoredEvent, EventPosition>, StoreError>;
}
