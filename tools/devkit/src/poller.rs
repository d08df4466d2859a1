//! The local stand-in for Lambda's SQS event source mapping: it receives from the emulator's queue,
//! hands the worker the same `SqsEvent` shape Lambda would, deletes what the worker did not report
//! as failed, and leaves the failed ones to reappear after the visibility timeout (and, after
//! maxReceiveCount receives, in the dead-letter queue), as SQS does.

use std::io;

use std::time::{Duration, Instant};
use tracing::Instrument;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use ledger_dynamodb::DynamoStore;

use crate::queues::EventSourceSpec;

pub struct LocalEventSource {
    pub client: Client,
    pub queue_url: String,
    pub spec: EventSourceSpec,
}

/// What one poll did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Poll {
    pub received: usize,
    pub failed: usize,
}

fn sqs_err(e: impl std::error::Error + 'static) -> io::Error {
    io::Error::other(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

impl LocalEventSource {
    /// Gathers up to the batch size within the batching window, then invokes the worker once.
    pub async fn poll_once(&self, store: &DynamoStore) -> io::Result<Poll> {
        let started = Instant::now();
        let window = Duration::from_secs(self.spec.batching_window_secs);
        let mut messages = Vec::new();
        while messages.len() < self.spec.batch_size {
            let want = (self.spec.batch_size - messages.len()).min(10) as i32;
            let out = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(want)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(sqs_err)?;
            let got = out.messages.unwrap_or_default();
            let empty = got.is_empty();
            messages.extend(got);
            if empty || started.elapsed() >= window {
                break;
            }
        }
        if messages.is_empty() {
            return Ok(Poll::default());
        }
        let records: Vec<SqsMessage> = messages
            .iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = m.message_id.clone();
                record.receipt_handle = m.receipt_handle.clone();
                record.body = m.body.clone();
                record.md5_of_body = m.md5_of_body.clone();
                record.attributes =
                    m.attributes.iter().flatten().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect();
                record.message_attributes = m
                    .message_attributes
                    .iter()
                    .flatten()
                    .map(|(name, value)| {
                        let mut attribute = SqsMessageAttribute::default();
                        attribute.string_value = value.string_value.clone();
                        attribute.data_type = Some(value.data_type.clone());
                        (name.clone(), attribute)
                    })
                    .collect();
                record.event_source = Some("aws:sqs".into());
                record
            })
            .collect();
        let mut event = SqsEvent::default();
        event.records = records;
        let invocation = tracing::info_span!("Lambda runtime invoke", requestId = %uuid::Uuid::new_v4());
        let response = worker::handle(store, event).instrument(invocation).await;
        let failed: Vec<&str> =
            response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !failed.contains(&m.message_id().unwrap_or_default()))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        for chunk in done.chunks(10) {
            self.client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(sqs_err)?;
        }
        Ok(Poll { received: messages.len(), failed: failed.len() })
    }

    /// Polls until `idle` consecutive polls find nothing. Returns every poll's figures.
    pub async fn drain(&self, store: &DynamoStore, idle: usize) -> io::Result<Vec<Poll>> {
        let mut polls = Vec::new();
        let mut empty = 0;
        while empty < idle {
            let poll = self.poll_once(store).await?;
            if poll.received == 0 {
                empty += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            } else {
                empty = 0;
                polls.push(poll);
            }
        }
        Ok(polls)
    }

    /// Polls forever (the local stack's worker).
    pub async fn run(self, store: DynamoStore) {
        loop {
            match self.poll_once(&store).await {
                Ok(poll) if poll.received > 0 => {
                    tracing::info!(received = poll.received, failed = poll.failed, "worker batch applied")
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(err) => {
                    tracing::warn!(error = %err, "worker poll failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
