//! The webhook delivery queue. A message is one event to deliver to one endpoint, by ids (the
//! deliverer reads both, so a late or repeated message delivers what is current, once). Its
//! `MessageGroupId` is the endpoint: SQS's fair queue then serves the other endpoints first while
//! one endpoint's messages pile up in flight (a slow or failing endpoint). A retry is the same
//! message made invisible until its time (`ChangeMessageVisibility`, under 12 hours a time).

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use ledger::{EndpointId, EventId, TenantId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{LazyClient, SendError};

/// The longest wait one visibility change asks for: SQS allows 12 hours counted from the
/// message's receipt, and some of that has passed by the time the deliverer asks. A longer wait
/// is made of several.
pub const MAX_INVISIBLE: Duration = Duration::from_secs(11 * 3600 + 50 * 60);

/// One delivery to make: `{"tenant": …, "endpoint": …, "event": …, "since": …}`. `since` is when
/// it was asked for (the event's publishing, a redelivery, a replay): attempts before it belong to
/// an earlier delivery of the same event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryJob {
    pub tenant: TenantId,
    pub endpoint: EndpointId,
    #[serde(with = "event_id")]
    pub event: EventId,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

mod event_id {
    use ledger::EventId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &EventId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EventId, D::Error> {
        EventId::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl DeliveryJob {
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

#[derive(Clone, Debug)]
pub struct DeliveryQueue {
    client: LazyClient,
    url: String,
}

impl DeliveryQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self::on_first_send(move || client, url)
    }

    /// A queue whose client `make` builds at its first use (the API's cold starts skip it).
    pub fn on_first_send(make: impl FnOnce() -> Client + Send + 'static, url: impl Into<String>) -> Self {
        Self { client: LazyClient::new(make), url: url.into() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Enqueues `jobs`, 10 a call; entries SQS refuses are sent again, a few times.
    pub async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<(), SendError> {
        for chunk in jobs.chunks(10) {
            let mut pending: Vec<SendMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .map(|(i, job)| {
                    let body = serde_json::to_string(job).map_err(|e| SendError(e.to_string()))?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .message_group_id(job.endpoint.as_str())
                        .build()
                        .map_err(|e| SendError(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            for attempt in 0..4u32 {
                if pending.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(pending.clone()))
                    .send()
                    .await
                    .map_err(|e| SendError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
                let failed: Vec<&str> = out.failed.iter().map(|f| f.id.as_str()).collect();
                pending.retain(|entry| failed.contains(&entry.id.as_str()));
            }
            if !pending.is_empty() {
                return Err(SendError(format!("{} deliveries refused by SQS", pending.len())));
            }
        }
        Ok(())
    }

    /// Keeps a received message invisible for `wait` (at most `MAX_INVISIBLE`) from now.
    pub async fn postpone(&self, receipt_handle: &str, wait: Duration) -> Result<(), SendError> {
        let seconds = wait.min(MAX_INVISIBLE).as_secs().max(1);
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(seconds).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| SendError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
