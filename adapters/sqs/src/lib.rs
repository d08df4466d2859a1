//! The transfer queue on SQS. A message is one submission to settle: a batch, or a transfer sent
//! with `Prefer: respond-async`. It carries ids only; what to apply, and in which order, the worker
//! reads from the store, so a duplicate, late or redriven message is harmless. Each message carries
//! the request's correlation id (a message attribute) and X-Ray trace header (the `AWSTraceHeader`
//! system attribute), so the worker's logs and trace join the API's. Its `MessageGroupId` is the
//! tenant: on a standard queue that makes SQS a fair queue, which delivers quiet tenants' messages
//! first while one tenant has a backlog, with no FIFO limits (no ordering, no throughput cap).

pub mod deliveries;

use std::sync::{Arc, LazyLock};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
};
use ledger::{Submission, TenantId};
use ledger_telemetry::TraceContext;
use ledger_telemetry::correlation::CORRELATION_ATTRIBUTE;
use serde::{Deserialize, Serialize};

/// The body of one message: `{"tenant": "acme", "batch": "b1"}` or `{"tenant": "acme", "transfer": "t1"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Work {
    pub tenant: TenantId,
    #[serde(flatten)]
    pub submission: Submission,
}

impl Work {
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

/// The queue did not take a message.
#[derive(Debug, thiserror::Error)]
#[error("the transfer queue did not take the message: {0}")]
pub struct SendError(pub(crate) String);

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

#[derive(Clone, Debug)]
pub struct TransferQueue {
    client: LazyClient,
    url: String,
}

impl TransferQueue {
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

    /// Sends one message (SendMessage; the SDK retries transient errors).
    pub async fn send(&self, work: &Work, trace: &TraceContext) -> Result<(), SendError> {
        let body = serde_json::to_string(work).map_err(|e| SendError(e.to_string()))?;
        let correlation = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(trace.correlation.as_str())
            .build()
            .map_err(|e| SendError(e.to_string()))?;
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
            .map_err(|e| SendError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
