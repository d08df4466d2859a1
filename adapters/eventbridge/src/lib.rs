//! The ledger's events on an EventBridge custom bus. One entry per event: `source` the ledger's,
//! `detail-type` the event's type, `detail` the event's JSON with the correlation id of the request
//! that caused it. PutEvents takes at most 10 entries and 256 KB a call and may refuse some entries
//! of a call (throttling, internal errors): those are sent again, with backoff, a few times; what
//! still fails is reported per event, so the caller can hand it back to its source.

use std::time::Duration;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use ledger::port::StoredEvent;

/// PutEvents' limits: entries a call, and bytes a call (as EventBridge counts an entry's size).
pub const MAX_ENTRIES: usize = 10;
pub const MAX_CALL_BYTES: usize = 256 * 1024;
/// Calls for one entry before it is reported failed.
const ATTEMPTS: u32 = 4;

/// Why an event was not published.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("the event is {0} bytes as an EventBridge entry, over PutEvents' 256 KB")]
    TooLarge(usize),
    #[error("EventBridge refused the entry: {0}")]
    Refused(String),
}

#[derive(Clone, Debug)]
pub struct EventBus {
    client: Client,
    bus: String,
    source: String,
}

/// One entry, ready to send.
struct Entry {
    index: usize,
    size: usize,
    entry: PutEventsRequestEntry,
}

impl EventBus {
    pub fn new(client: Client, bus: impl Into<String>, source: impl Into<String>) -> Self {
        Self { client, bus: bus.into(), source: source.into() }
    }

    pub fn name(&self) -> &str {
        &self.bus
    }

    /// Publishes `events`; the outcome of each, in order.
    pub async fn publish(&self, events: &[StoredEvent]) -> Vec<Result<(), PublishError>> {
        let mut outcomes: Vec<Result<(), PublishError>> = vec![Ok(()); events.len()];
        let mut pending = Vec::new();
        for (index, event) in events.iter().enumerate() {
            match self.entry(index, event) {
                Ok(entry) => pending.push(entry),
                Err(err) => outcomes[index] = Err(err),
            }
        }
        for attempt in 0..ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let mut refused = Vec::new();
            for call in calls(pending) {
                refused.extend(self.put(call, &mut outcomes).await);
            }
            pending = refused;
        }
        outcomes
    }

    fn entry(&self, index: usize, event: &StoredEvent) -> Result<Entry, PublishError> {
        let detail = detail(event);
        let detail_type = event.kind.as_str();
        // As EventBridge sizes an entry: its strings in UTF-8 bytes, 14 bytes for the time.
        let size = self.source.len() + detail_type.len() + detail.len() + self.bus.len() + 14;
        if size > MAX_CALL_BYTES {
            return Err(PublishError::TooLarge(size));
        }
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&self.source)
            .detail_type(detail_type)
            .detail(detail)
            .time(
                DateTime::from_nanos(event.created.unix_timestamp_nanos()).unwrap_or(DateTime::from_secs(0)),
            )
            .build();
        Ok(Entry { index, size, entry })
    }

    /// One PutEvents call; returns the entries to send again.
    async fn put(&self, call: Vec<Entry>, outcomes: &mut [Result<(), PublishError>]) -> Vec<Entry> {
        let entries = call.iter().map(|e| e.entry.clone()).collect();
        match self.client.put_events().set_entries(Some(entries)).send().await {
            Ok(out) => {
                let results = out.entries.unwrap_or_default();
                let mut again = Vec::new();
                for (i, entry) in call.into_iter().enumerate() {
                    match results.get(i).and_then(|r| r.error_code.clone()) {
                        None if results.get(i).is_some() => outcomes[entry.index] = Ok(()),
                        code => {
                            let why = code.unwrap_or_else(|| "no result for the entry".into());
                            tracing::warn!(error = %why, "EventBridge refused an entry: sent again");
                            outcomes[entry.index] = Err(PublishError::Refused(why));
                            again.push(entry);
                        }
                    }
                }
                again
            }
            Err(err) => {
                let why = aws_sdk_eventbridge::error::DisplayErrorContext(err).to_string();
                tracing::warn!(error = %why, "PutEvents failed: its entries are sent again");
                for entry in &call {
                    outcomes[entry.index] = Err(PublishError::Refused(why.clone()));
                }
                call
            }
        }
    }
}

/// The event's JSON with `correlation_id` added (`null` when no request caused it).
fn detail(event: &StoredEvent) -> String {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&event.body) {
        Ok(mut fields) => {
            fields.insert("correlation_id".into(), event.correlation_id.clone().into());
            serde_json::Value::Object(fields).to_string()
        }
        // Not an object: the body as stored (the store writes objects only).
        Err(_) => event.body.clone(),
    }
}

/// `entries` cut, in order, into calls within PutEvents' limits.
fn calls(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut calls: Vec<Vec<Entry>> = Vec::new();
    let mut bytes = 0;
    for entry in entries {
        match calls.last_mut() {
            Some(call) if call.len() < MAX_ENTRIES && bytes + entry.size <= MAX_CALL_BYTES => {
                bytes += entry.size;
                call.push(entry);
            }
            _ => {
                bytes = entry.size;
                calls.push(vec![entry]);
            }
        }
    }
    calls
}

/// 100, 200, 400 ms…, each with up to as much again of jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 100u64 << attempt.saturating_sub(1).min(6);
    Duration::from_millis(base + rand::random_range(0..=base))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: usize, size: usize) -> Entry {
        Entry { index, size, entry: PutEventsRequestEntry::builder().build() }
    }

    #[test]
    fn calls_hold_at_most_10_entries_and_256_kb_in_order() {
        let sizes = [1_000; 25];
        let cut = calls(sizes.iter().enumerate().map(|(i, s)| entry(i, *s)).collect());
        assert_eq!(cut.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
        let big = [100_000, 100_000, 100_000, 10, 200_000];
        let cut = calls(big.iter().enumerate().map(|(i, s)| entry(i, *s)).collect());
        let indexes: Vec<Vec<usize>> = cut.iter().map(|c| c.iter().map(|e| e.index).collect()).collect();
        assert_eq!(indexes, [vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[test]
    fn the_detail_is_the_event_with_its_correlation_id() {
        let event = StoredEvent {
            id: ledger::EventId::parse("transfer.committed:t1").unwrap(),
            tenant: ledger::TenantId::parse("acme").unwrap(),
            kind: ledger::EventType::TransferCommitted,
            created: time::OffsetDateTime::UNIX_EPOCH,
            body: r#"{"id":"transfer.committed:t1","type":"transfer.committed"}"#.into(),
            correlation_id: Some("order-1".into()),
        };
        let detail: serde_json::Value = serde_json::from_str(&detail(&event)).unwrap();
        assert_eq!(detail["id"], "transfer.committed:t1");
        assert_eq!(detail["correlation_id"], "order-1");
    }
}
