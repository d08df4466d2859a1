//! The publisher: the table's stream, filtered to event items (`sk = V`, inserts), carries each
//! event the ledger wrote in a change's own transaction; this function publishes them to the
//! EventBridge bus, and queues one fan-out message for each on the webhook queue, grouped by its
//! tenant: the deliverer then queues its deliveries to the tenant's endpoints that receive its
//! type (one per endpoint, `since` the event's instant, so a repeated fan-out makes no second
//! delivery). So the publisher's work per event is the same whatever a tenant's endpoints, and a
//! tenant's flood of events waits in its own group of the fair queue, not in the stream before
//! another tenant's. At least once: an event not published is reported as the batch's failure
//! (ReportBatchItemFailures), so the stream hands it, and every later record of its shard, back;
//! consumers drop what they have seen by the event's id. A record that is not an event is skipped
//! (logged as an error): nothing could ever publish it. An event EventBridge refuses for good (over
//! its size) fails the same way as a transient refusal, until the mapping sends it to the
//! dead-letter queue a day later.
//!
//! Every line about an event is logged in its span, which carries the event's id and type and the
//! correlation id of the request that caused it.

use std::sync::Arc;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use ledger::port::{FanOut, StoredEvent, WebhookQueue};
use ledger_eventbridge::EventBus;
use ledger_telemetry::metrics;
use time::OffsetDateTime;
use tracing::Span;

/// What the publisher writes to: the bus, and the webhook queue; and how it reads an event from a
/// stream record (the store's own item format).
#[derive(Clone, Debug)]
pub struct Publisher {
    pub bus: EventBus,
    pub deliveries: Arc<dyn WebhookQueue>,
    pub read_event: ReadEvent,
}

/// Reads the event a stream record's new image holds (`ledger_dynamodb::events::from_stream`).
pub type ReadEvent = fn(&EventRecord) -> Result<StoredEvent, String>;

/// Publishes the events of one batch of stream records; reports the first record (in stream order)
/// not published, so the stream hands back that one and every later one.
pub async fn handle(publisher: &Publisher, event: Event) -> DynamoDbEventResponse {
    let records = event.records.len();
    let mut events: Vec<(String, StoredEvent, Span)> = Vec::with_capacity(records);
    for record in event.records {
        let sequence = record.change.sequence_number.clone().unwrap_or_default();
        match parse(publisher, record) {
            Ok(event) => {
                let span = event_span(&event);
                span.in_scope(|| tracing::debug!("event received"));
                events.push((sequence, event, span));
            }
            // Not an event the ledger writes (the filter passes event inserts only): nothing can
            // ever publish it, and holding its shard for it would hold every event behind it.
            Err(why) => tracing::error!(sequence = %sequence, error = %why, "not an event: skipped"),
        }
    }
    let stored: Vec<StoredEvent> = events.iter().map(|(_, e, _)| e.clone()).collect();
    let outcomes = publisher.bus.publish(&stored).await;
    // Fanned out only once on the bus: one handed back is fanned out when it is published.
    let on_bus: Vec<FanOut> = stored
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_ok())
        .map(|(e, _)| FanOut { tenant: e.tenant.clone(), fan_out: e.id.clone(), since: e.created })
        .collect();
    let fanned_out = publisher.deliveries.fan_out(&on_bus).await.map_err(|e| e.to_string());
    let now = OffsetDateTime::now_utc();
    let (mut published, mut failed) = (0, None);
    for ((sequence, event, span), outcome) in events.iter().zip(outcomes) {
        let _entered = span.enter();
        let outcome = outcome.map_err(|e| e.to_string()).and_then(|()| fanned_out.clone());
        match outcome {
            Ok(()) => {
                published += 1;
                metrics::event_published((now - event.created).unsigned_abs());
                tracing::info!("event published");
            }
            Err(err) => {
                tracing::error!(error = %err, "event not published: its shard is handed back from here");
                failed.get_or_insert_with(|| sequence.clone());
            }
        }
    }
    tracing::info!(records, published, failed = failed.is_some(), "batch done");
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|sequence| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            failure
        })
        .collect();
    response
}

fn parse(publisher: &Publisher, record: EventRecord) -> Result<StoredEvent, String> {
    if record.event_name != "INSERT" {
        return Err(format!("a {} record: the mapping's filter passes inserts only", record.event_name));
    }
    (publisher.read_event)(&record)
}

fn event_span(event: &StoredEvent) -> Span {
    tracing::info_span!(
        "event",
        function = ledger_telemetry::Function::Publisher.as_str(),
        eventId = %event.id,
        eventType = event.kind.as_str(),
        tenant = event.tenant.as_str(),
        correlationId = event.correlation_id.as_deref(),
    )
}
