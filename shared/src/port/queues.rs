//! The queues between the functions: the transfer queue (the API's queued submissions, settled by
//! the worker) and the webhook queue (one event to deliver to one endpoint, made by the publisher
//! and by redeliveries, taken by the deliverer). Messages carry ids only: what to apply or deliver
//! is read from the store, so a duplicate, late or redriven message is harmless.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::batch::Submission;
use crate::event_type::EventId;
use crate::ids::{EndpointId, TenantId};

/// One message of the transfer queue: `{"tenant": "acme", "batch": "b1"}`,
/// `{"tenant": "acme", "transfer": "t1"}` or `{"tenant": "acme", "linked": ["t1", "t2"]}`.
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

/// One delivery to make: `{"tenant": …, "endpoint": …, "event": …, "since": …}`. `since` is when
/// it was asked for (the event's publishing, a redelivery, a replay): attempts before it belong to
/// an earlier delivery of the same event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryJob {
    pub tenant: TenantId,
    pub endpoint: EndpointId,
    pub event: EventId,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

impl DeliveryJob {
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

/// A queue did not take a message: the request that sent it may be sent again.
#[derive(Debug, thiserror::Error)]
#[error("the queue did not take the message: {0}")]
pub struct QueueError(pub String);

#[async_trait]
pub trait TransferQueue: Send + Sync + std::fmt::Debug {
    /// Sends the one message that has the worker settle `work`. The request's correlation id and
    /// trace travel with it (the sender's task-local context, `ledger_telemetry::correlation`).
    async fn send(&self, work: &Work) -> Result<(), QueueError>;
}

#[async_trait]
pub trait WebhookQueue: Send + Sync + std::fmt::Debug {
    /// Queues one message per job.
    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<(), QueueError>;
}
