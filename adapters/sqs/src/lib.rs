//! The queues of the port (`ledger::port::{TransferQueue, WebhookQueue}`) on SQS.
//!
//! The transfer queue: a message is one submission to settle (`ledger::port::Work`): a batch, or a
//! transfer or chain sent with `Prefer: respond-async`. Each message carries the request's
//! correlation id (a message attribute) and X-Ray trace header (the `AWSTraceHeader` system
//! attribute), so the worker's logs and trace join the API's. Its `MessageGroupId` is the tenant:
//! on a standard queue that makes SQS a fair queue, which delivers quiet tenants' messages first
//! while one tenant has a backlog, with no FIFO limits (no ordering, no throughput cap).

pub mod deliveries;

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
};
use ledger::port::{QueueError, TransferQueue, Work};
use ledger_telemetry::correlation::{CORRELATION_ATTRIBUTE, current_trace};
use ledger_telemetry::{CorrelationId, TraceContext};

/// An SDK error as the port reports a queue's refusal.
pub(crate) fn refused<E: std::error::Error + 'static>(err: E) -> QueueError {
    QueueError(aws_sdk_sqs::error::DisplayErrorContext(err).to_string())
}

type MakeClient = Box<dyn FnOnce() -> Client + Send>;

/// An SQS client built at its first use: a cold start that never sends never pays for it (0.2 ms
/// of init, mostly SQS's endpoint rules).
#[derive(Clone)]
pub(crate) struct LazyClient(Arc<LazyLock<Client, MakeClient>>);

impl LazyClient {
    pub(crate) fn new(make: impl FnOnce() -> Client + Send + 'static) -> Self {
        Self(Arc::new(LazyLock::new(Box::new(make))))
    }
}

impl std::ops::Deref for LazyClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.0
    }
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LazyClient")
    }
}

/// What an SQS-triggered function answers: the messages to deliver again (ReportBatchItemFailures).
pub fn batch_response(failed: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// The transfer queue on SQS.
#[derive(Clone, Debug)]
pub struct SqsTransferQueue {
    client: LazyClient,
    url: String,
}

impl SqsTransferQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self::on_first_send(move || client, url)
    }

    /// A queue whose client `make` builds at the first send: a cold start that serves only
    /// synchronous requests never pays for it.
    pub fn on_first_send(make: impl FnOnce() -> Client + Send + 'static, url: impl Into<String>) -> Self {
        Self { client: LazyClient::new(make), url: url.into() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

#[async_trait]
impl TransferQueue for SqsTransferQueue {
    /// One SendMessage (the SDK retries transient errors), with the sender's trace context (a new
    /// correlation id if it runs in none).
    async fn send(&self, work: &Work) -> Result<(), QueueError> {
        let trace = current_trace().unwrap_or_else(|| TraceContext::new(CorrelationId::generate(), None));
        let body = serde_json::to_string(work).map_err(|e| QueueError(e.to_string()))?;
        let correlation = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(trace.correlation.as_str())
            .build()
            .map_err(|e| QueueError(e.to_string()))?;
        let xray = trace.xray.as_ref().and_then(|header| {
            MessageSystemAttributeValue::builder().data_type("String").string_value(header).build().ok()
        });
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_group_id(work.tenant.as_str())
            .message_attributes(CORRELATION_ATTRIBUTE, correlation)
            .set_message_system_attributes(xray.map(|value| {
                [(MessageSystemAttributeNameForSends::AwsTraceHeader, value)].into_iter().collect()
            }))
            .send()
            .await
            .map_err(refused)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::{Submission, TenantId};

    #[test]
    fn a_message_names_its_submission_by_kind() {
        let work = Work {
            tenant: TenantId::parse("acme").unwrap(),
            submission: Submission::Batch(ledger::BatchId::parse("b1").unwrap()),
        };
        let body = serde_json::to_string(&work).unwrap();
        assert_eq!(body, r#"{"tenant":"acme","batch":"b1"}"#);
        assert_eq!(Work::parse(&body).unwrap(), work);
        let single = Work::parse(r#"{"tenant":"acme","transfer":"t1"}"#).unwrap();
        assert!(matches!(single.submission, Submission::Transfer(_)));
        assert!(Work::parse(r#"{"tenant":"acme"}"#).is_err());
    }
}
