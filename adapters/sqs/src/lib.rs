//! The transfer queue on SQS. A message is one transfer of one batch; the worker applies it with the
//! same rules and idempotency as the synchronous path, so a duplicate delivery is harmless. Each
//! message carries the request's correlation id (a message attribute) and X-Ray trace header (the
//! `AWSTraceHeader` system attribute), so the worker's logs and trace join the API's.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    SendMessageBatchRequestEntry,
};
use futures::stream::{self, StreamExt};
use ledger::{BatchId, NewTransfer, TenantId};
use ledger_telemetry::TraceContext;
use ledger_telemetry::correlation::CORRELATION_ATTRIBUTE;
use serde::{Deserialize, Serialize};

/// Messages per SendMessageBatch call (the SQS maximum).
pub const SEND_BATCH_SIZE: usize = 10;
/// SendMessageBatch calls in flight at once.
const SEND_CONCURRENCY: usize = 8;

/// The body of one queued-transfer message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedTransfer {
    pub tenant: TenantId,
    pub batch_id: BatchId,
    /// The transfer's position in its batch: transfers are applied in this order.
    pub index: u32,
    pub transfer: NewTransfer,
}

impl QueuedTransfer {
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

#[derive(Clone, Debug)]
pub struct TransferQueue {
    client: Client,
    url: String,
}

impl TransferQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends the messages with SendMessageBatch, several calls in parallel. Returns the indexes that
    /// SQS acknowledged; any other was not enqueued (a failed call, or an entry SQS refused).
    pub async fn send(&self, messages: &[QueuedTransfer], trace: &TraceContext) -> Vec<u32> {
        // Owned chunks: the futures must not borrow from a closure argument to stay `Send`.
        let chunks: Vec<Vec<QueuedTransfer>> = messages.chunks(SEND_BATCH_SIZE).map(<[_]>::to_vec).collect();
        stream::iter(chunks.into_iter().map(|chunk| self.send_chunk(chunk, trace)))
            .buffer_unordered(SEND_CONCURRENCY)
            .concat()
            .await
    }

    async fn send_chunk(&self, chunk: Vec<QueuedTransfer>, trace: &TraceContext) -> Vec<u32> {
        let mut entries = Vec::with_capacity(chunk.len());
        let correlation = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(trace.correlation.as_str())
            .build()
            .ok();
        let xray = trace.xray.as_ref().and_then(|header| {
            MessageSystemAttributeValue::builder().data_type("String").string_value(header).build().ok()
        });
        for message in &chunk {
            let Ok(body) = serde_json::to_string(message) else { continue };
            match SendMessageBatchRequestEntry::builder()
                .id(message.index.to_string())
                .message_body(body)
                .set_message_attributes(
                    correlation
                        .clone()
                        .map(|value| [(CORRELATION_ATTRIBUTE.to_owned(), value)].into_iter().collect()),
                )
                .set_message_system_attributes(xray.clone().map(|value| {
                    [(MessageSystemAttributeNameForSends::AwsTraceHeader, value)].into_iter().collect()
                }))
                .build()
            {
                Ok(entry) => entries.push(entry),
                Err(err) => tracing::error!(error = %err, "cannot build a queue entry"),
            }
        }
        match self.client.send_message_batch().queue_url(&self.url).set_entries(Some(entries)).send().await {
            Ok(out) => {
                for failed in out.failed() {
                    tracing::warn!(
                        entry = failed.id(),
                        code = failed.code(),
                        "SQS refused a queued transfer"
                    );
                }
                out.successful().iter().filter_map(|ok| ok.id().parse().ok()).collect()
            }
            Err(err) => {
                let err = aws_sdk_sqs::error::DisplayErrorContext(err);
                tracing::warn!(error = %err, "SendMessageBatch failed");
                Vec::new()
            }
        }
    }
}
