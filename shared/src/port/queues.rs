//! The queues between the functions: the transfer queue (the API's queued submissions, settled by
//! the worker) and the webhook queue (one event to fan out to its tenant's endpoints, sent by the
//! publisher; one event to deliver to one endpoint, made by the fan-out and by redeliveries; both
//! taken by the deliverer). Messages carry ids only: what to apply or deliver is read from the
//! store, so a duplicate, late or redriven message is harmless.

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

/// One event to fan out to the endpoints of its tenant that receive its type (its id names it):
/// `{"tenant": …, "fan_out": …, "since": …}`. The publisher's work per event, whatever the tenant's
/// endpoints; the deliverer makes the deliveries (`since` is passed on to them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanOut {
    pub tenant: TenantId,
    pub fan_out: EventId,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// A message of the webhook queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WebhookMessage {
    Deliver(DeliveryJob),
    FanOut(FanOut),
}

impl WebhookMessage {
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
    /// Queues one message per job, grouped by endpoint (a slow endpoint's backlog waits behind
    /// the others).
    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<(), QueueError>;

    /// Queues one message per event to fan out, grouped by tenant (a tenant's flood of events
    /// waits behind the other tenants').
    async fn fan_out(&self, events: &[FanOut]) -> Result<(), QueueError>;
}
