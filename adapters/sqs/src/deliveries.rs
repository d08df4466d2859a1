//! The webhook queue on SQS. A message is one event to fan out to its tenant's endpoints
//! (`ledger::port::FanOut`), grouped by tenant, or one event to deliver to one endpoint, by ids
//! (`ledger::port::DeliveryJob`: the deliverer reads both, so a late or repeated message delivers
//! what is current, once), grouped by endpoint. SQS's fair queue serves the other groups first
//! while one group's messages pile up in flight: a tenant's flood of events, a slow or failing
//! endpoint. A retry is the same message made invisible until its time (`ChangeMessageVisibility`,
//! under 12 hours a time).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use ledger::port::{DeliveryJob, FanOut, QueueError, WebhookQueue};
use serde::Serialize;

use crate::{LazyClient, refused};

/// The longest wait one visibility change asks for: SQS allows 12 hours counted from the
/// message's receipt, and some of that has passed by the time the deliverer asks. A longer wait
/// is made of several.
pub const MAX_INVISIBLE: Duration = Duration::from_secs(11 * 3600 + 50 * 60);

/// The webhook queue on SQS.
#[derive(Clone, Debug)]
pub struct SqsWebhookQueue {
    client: LazyClient,
    url: String,
}

impl SqsWebhookQueue {
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

    /// Keeps a received message invisible for `wait` (at most `MAX_INVISIBLE`) from now.
    pub async fn postpone(&self, receipt_handle: &str, wait: Duration) -> Result<(), QueueError> {
        let seconds = wait.min(MAX_INVISIBLE).as_secs().max(1);
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(seconds).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(refused)?;
        Ok(())
    }
}

#[async_trait]
impl WebhookQueue for SqsWebhookQueue {
    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<(), QueueError> {
        self.send_all(jobs, |job| job.endpoint.as_str()).await
    }

    async fn fan_out(&self, events: &[FanOut]) -> Result<(), QueueError> {
        self.send_all(events, |event| event.tenant.as_str()).await
    }
}

impl SqsWebhookQueue {
    /// One message per item, in the group `group` names: 10 a call; entries SQS refuses are sent
    /// again, a few times.
    async fn send_all<T: Serialize>(
        &self,
        items: &[T],
        group: impl Fn(&T) -> &str,
    ) -> Result<(), QueueError> {
        for chunk in items.chunks(10) {
            let mut pending: Vec<SendMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let body = serde_json::to_string(item).map_err(|e| QueueError(e.to_string()))?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .message_group_id(group(item))
                        .build()
                        .map_err(|e| QueueError(e.to_string()))
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
                    .map_err(refused)?;
                let failed: Vec<&str> = out.failed.iter().map(|f| f.id.as_str()).collect();
                pending.retain(|entry| failed.contains(&entry.id.as_str()));
            }
            if !pending.is_empty() {
                return Err(QueueError(format!("{} deliveries refused by SQS", pending.len())));
            }
        }
        Ok(())
    }
}
