//! Events: the item each change writes in its own transaction (the outbox the table's stream
//! carries to the publisher), and the events API's reads of them.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use ledger::port::{EventFilter, EventPosition, Events, Page, StoreError, StoredEvent};
use ledger::{Event, EventId, EventType, TenantId};
use time::OffsetDateTime;

use crate::error::sdk;
use crate::items::{CORRELATION, Item, n, s};
use crate::keys::{self, key};
use crate::store::DynamoStore;

/// The attribute DynamoDB's TTL deletes items by (unix seconds), as template.yaml declares it.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// Attributes of an event item.
pub const BODY: &str = "body";
pub const TYPE: &str = "type";
pub const TENANT: &str = "tenant";

/// The item of `event`, caused by the request `correlation`, kept for `ledger::event::RETENTION`.
pub fn event_item(tenant: &TenantId, event: &Event, correlation: Option<&str>) -> Result<Item, StoreError> {
    let body = serde_json::to_string(event).map_err(|e| StoreError::Unexpected(e.to_string()))?;
    let at = event.created.unix_timestamp_nanos();
    let mut item: Item = HashMap::from([
        (keys::PK.into(), s(keys::event_pk(tenant, &event.id))),
        (keys::SK.into(), s(keys::EVENT_SK)),
        (keys::GSI1_PK.into(), s(keys::events_index_pk(tenant, keys::event_shard(&event.id)))),
        (keys::GSI1_SK.into(), s(keys::events_index_sk(at, &event.id))),
        ("id".into(), s(event.id.to_string())),
        (TENANT.into(), s(tenant.as_str())),
        (TYPE.into(), s(event.kind().as_str())),
        ("created_nanos".into(), n(at)),
        (TTL_ATTRIBUTE.into(), n((event.created + ledger::event::RETENTION).unix_timestamp())),
        (BODY.into(), s(body)),
    ]);
    if let Some(correlation) = correlation {
        item.insert(CORRELATION.into(), s(correlation));
    }
    Ok(item)
}

/// An event item as read back, from the table or from its stream.
pub fn event_from(item: &HashMap<String, AttributeValue>) -> Result<StoredEvent, StoreError> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("an event item lacks `{name}`")))
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("an event item's {what} does not parse"));
    let created = item
        .get("created_nanos")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i128>().ok())
        .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
        .ok_or_else(|| corrupt("created_nanos"))?;
    Ok(StoredEvent {
        id: EventId::parse(text("id")?).map_err(|_| corrupt("id"))?,
        tenant: TenantId::parse(text(TENANT)?.as_str()).map_err(|_| corrupt("tenant"))?,
        kind: EventType::parse(text(TYPE)?).map_err(|_| corrupt("type"))?,
        created,
        body: text(BODY)?.clone(),
        correlation_id: item.get(CORRELATION).and_then(|v| v.as_s().ok()).cloned(),
    })
}

#[async_trait]
impl Events for DynamoStore {
    /// One GetItem.
    async fn get_event(
        &self,
        tenant: &TenantId,
        id: &EventId,
        now: OffsetDateTime,
    ) -> Result<StoredEvent, StoreError> {
        let found = self.get(key(keys::event_pk(tenant, id), keys::EVENT_SK)).await?;
        let not_found = || StoreError::not_found("event", id);
        let event = event_from(&found.ok_or_else(not_found)?)?;
        // TTL deletes within days of expiry, not at once: an expired event is gone to the API.
        if event.created + ledger::event::RETENTION <= now {
            return Err(not_found());
        }
        Ok(event)
    }

    /// One Query of each index shard; the merged page reaches only as far down as every shard was
    /// read, so it skips none.
    async fn list_events(
        &self,
        tenant: &TenantId,
        filter: &EventFilter,
        page_size: u16,
        before: Option<&EventPosition>,
        now: OffsetDateTime,
    ) -> Result<Page<StoredEvent, EventPosition>, StoreError> {
        let oldest = (now - ledger::event::RETENTION).unix_timestamp_nanos();
        let low =
            keys::events_index_bound(filter.from.map_or(oldest, |f| f.unix_timestamp_nanos().max(oldest)));
        // No key equals a bound (keys are `{nanos}#{id}`), so these inclusive bounds exclude them.
        let mut high = keys::events_index_bound(filter.to.map_or(i128::MAX, |t| t.unix_timestamp_nanos()));
        let before = before.map(keys::event_position_sk);
        if let Some(before) = &before {
            high = high.min(before.clone());
        }
        if low >= high {
            return Ok(Page { items: Vec::new(), next: None });
        }
        let shards = (0..keys::EVENT_SHARDS)
            .map(|shard| self.events_shard(tenant, shard, filter, &low, &high, page_size));
        let mut found: Vec<(String, Item)> = Vec::new();
        // The lowest key down to which every shard that has more was read.
        let mut floor: Option<String> = None;
        for (items, last_read) in futures::future::try_join_all(shards).await? {
            found.extend(items);
            if let Some(last_read) = last_read {
                floor = floor.max(Some(last_read));
            }
        }
        found.retain(|(sk, _)| Some(sk) != before.as_ref() && floor.as_ref().is_none_or(|f| sk >= f));
        found.sort_by(|a, b| b.0.cmp(&a.0));
        let more = found.len() > usize::from(page_size);
        found.truncate(usize::from(page_size));
        let next = match (more, found.last(), floor) {
            (true, Some((sk, _)), _) => Some(sk.clone()),
            (_, _, Some(floor)) => Some(floor),
            _ => None,
        };
        let next = next
            .map(|sk| keys::event_position(&sk).ok_or_else(|| StoreError::Corrupt(format!("event key {sk}"))))
            .transpose()?;
        let items = found.iter().map(|(_, item)| event_from(item)).collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }
}

/// The event a stream record's new image holds (what the publisher reads).
pub fn from_stream(record: &aws_lambda_events::dynamodb::EventRecord) -> Result<StoredEvent, String> {
    let image: HashMap<String, AttributeValue> = record.change.new_image.clone().into();
    event_from(&image).map_err(|e| e.to_string())
}

impl DynamoStore {
    /// One shard's events between `low` and `high` (inclusive), newest first, at most `page_size` + 1
    /// read; with the key of the last read when the shard has more.
    async fn events_shard(
        &self,
        tenant: &TenantId,
        shard: u32,
        filter: &EventFilter,
        low: &str,
        high: &str,
        page_size: u16,
    ) -> Result<(Vec<(String, Item)>, Option<String>), StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("gsi1pk = :pk AND gsi1sk BETWEEN :low AND :high")
            .expression_attribute_values(":pk", s(keys::events_index_pk(tenant, shard)))
            .expression_attribute_values(":low", s(low))
            .expression_attribute_values(":high", s(high))
            .scan_index_forward(false)
            .limit(i32::from(page_size) + 1);
        if let Some(kind) = filter.kind {
            query = query
                .filter_expression("#type = :type")
                .expression_attribute_names("#type", TYPE)
                .expression_attribute_values(":type", s(kind.as_str()));
        }
        let out = query.send().await.map_err(sdk)?;
        let sort_key = |item: &HashMap<String, AttributeValue>| {
            item.get(keys::GSI1_SK).and_then(|v| v.as_s().ok()).cloned()
        };
        let last_read = out.last_evaluated_key.as_ref().and_then(sort_key);
        let items =
            out.items.unwrap_or_default().into_iter().filter_map(|item| Some((sort_key(&item)?, item)));
        Ok((items.collect(), last_read))
    }
}
