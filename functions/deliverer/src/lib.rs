//! The deliverer: a message of the webhook queue is an event to fan out (the publisher's), or one
//! event to deliver to one endpoint. A fan-out queues one delivery to each endpoint of the event's
//! tenant that receives its type (at most `MAX_ENDPOINTS`), grouped by endpoint. A delivery
//! reads both (a deleted or disabled endpoint, or an event past its retention, ends the delivery,
//! failed if it was to be retried),
//! makes one signed attempt, records it on the delivery, and then:
//! - 2xx: delivered;
//! - 410: the endpoint is disabled, with an event that says so;
//! - anything else (a timeout, another status): tried again on Standard Webhooks' schedule
//!   (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h, with jitter; longer if `Retry-After`
//!   asks), by keeping the message invisible until then and handing it back; after the last, or
//!   once the endpoint has failed every delivery for 5 days (then disabled, with its event), failed.
//!
//! A message seen again before its time (a duplicate, or the next 12-hour step of a long wait) is
//! put back until then without an attempt; one whose delivery already succeeded is dropped.
//! Messages of one endpoint in a batch go one after another, different endpoints' at once, so a
//! slow endpoint holds only its own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use ledger::EndpointId;
use ledger::port::{
    Attempt, DeliveryJob, DeliveryStatus, FanOut, Lease, Sealer, Store, StoreError, StoredEvent,
    WebhookMessage, WebhookQueue,
};
use ledger::webhook::{DISABLE_AFTER_FAILING, Verdict, WebhookEndpoint, next_attempt_in};
use ledger_sqs::deliveries::SqsWebhookQueue;
use ledger_telemetry::metrics;
use ledger_webhooks::WebhookClient;
use time::OffsetDateTime;
use tracing::{Instrument, Span};

/// How much longer than an attempt's timeout its lease lasts: the writes after the answer (with
/// the SDK's retries under throttling) and instances' clocks a few seconds apart.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

pub struct Deliverer {
    pub store: Arc<dyn Store>,
    /// Opens the endpoints' sealed signing secrets.
    pub sealer: Arc<dyn Sealer>,
    /// The queue its messages come from: a retry is the same message kept invisible until its time.
    pub queue: SqsWebhookQueue,
    pub http: WebhookClient,
}

/// Where a delivery stands for one message.
enum Standing {
    /// To be attempted now, as its attempt `number` (this run's count, from 1).
    Due { number: u32 },
    /// Decided, or not yet due.
    Settled(Next),
}

/// What became of one message.
enum Next {
    /// Nothing more to do: delete it.
    Done,
    /// Hand it back, invisible for this long.
    Later(Duration),
}

impl Deliverer {
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failed = Vec::new();
        let mut by_endpoint: BTreeMap<EndpointId, Vec<(SqsMessage, DeliveryJob)>> = BTreeMap::new();
        let mut fan_outs = Vec::new();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            match record.body.as_deref().map(WebhookMessage::parse) {
                Some(Ok(WebhookMessage::Deliver(job))) => {
                    by_endpoint.entry(job.endpoint.clone()).or_default().push((record, job))
                }
                Some(Ok(WebhookMessage::FanOut(event))) => fan_outs.push((id, event)),
                _ => {
                    tracing::error!(messageId = %id, "not a webhook message: reported as failed, it will end in the dead-letter queue");
                    failed.push(id);
                }
            }
        }
        let fan_outs = fan_outs.into_iter().map(|(id, event)| async move {
            let span = tracing::info_span!(
                "fan_out",
                function = ledger_telemetry::Function::Deliverer.as_str(),
                messageId = %id,
                tenant = event.tenant.as_str(),
                eventId = %event.fan_out,
            );
            match self.fan_out(&event).instrument(span.clone()).await {
                Ok(()) => None,
                Err(err) => {
                    span.in_scope(|| tracing::error!(error = %err, "event not fanned out: received again"));
                    Some(id)
                }
            }
        });
        let endpoints = by_endpoint.into_values().map(|messages| async move {
            let mut failed = Vec::new();
            for (record, job) in messages {
                let span = job_span(&record, &job);
                let next = self.deliver(&job).instrument(span.clone()).await;
                let id = record.message_id.clone().unwrap_or_default();
                let _entered = span.enter();
                match next {
                    Ok(Next::Done) => {}
                    Ok(Next::Later(wait)) => {
                        let receipt = record.receipt_handle.as_deref().unwrap_or_default();
                        if let Err(err) = self.queue.postpone(receipt, wait).await {
                            // It comes back after the queue's visibility timeout instead.
                            tracing::warn!(error = %err, "could not postpone the message");
                        }
                        failed.push(id);
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "delivery not decided: delivered again");
                        failed.push(id);
                    }
                }
            }
            failed
        });
        let (fanned, delivered) =
            tokio::join!(futures::future::join_all(fan_outs), futures::future::join_all(endpoints));
        failed.extend(fanned.into_iter().flatten());
        for endpoint_failed in delivered {
            failed.extend(endpoint_failed);
        }
        ledger_sqs::batch_response(failed)
    }

    /// Queues one delivery of the event to each endpoint of its tenant that receives its type.
    async fn fan_out(&self, event: &FanOut) -> Result<(), StoreError> {
        let endpoints = self.store.receivers(&event.tenant, event.fan_out.kind()).await?;
        let jobs: Vec<DeliveryJob> = endpoints
            .into_iter()
            .map(|endpoint| DeliveryJob {
                tenant: event.tenant.clone(),
                endpoint: endpoint.id,
                event: event.fan_out.clone(),
                since: event.since,
            })
            .collect();
        self.queue.enqueue(&jobs).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        tracing::info!(endpoints = jobs.len(), "event fanned out");
        Ok(())
    }

    async fn deliver(&self, job: &DeliveryJob) -> Result<Next, StoreError> {
        let now = OffsetDateTime::now_utc();
        let endpoint = match self.store.get_endpoint(&job.tenant, &job.endpoint).await {
            Ok((endpoint, _)) => endpoint,
            Err(err) if err.is_not_found() => return Ok(dropped("the endpoint is deleted")),
            Err(err) => return Err(err),
        };
        let event = match self.store.get_event(&job.tenant, &job.event, now).await {
            Ok(event) => event,
            Err(err) if err.is_not_found() => return Ok(dropped("the event is past its retention")),
            Err(err) => return Err(err),
        };
        if !endpoint.enabled {
            // Listed as failed, not as retrying forever: it is redelivered or replayed on demand.
            // (Not under the lease: an attempt in flight may write `retrying` over it, and the
            // message's next receipt gives up again.)
            self.store.give_up_delivery(&job.tenant, &job.endpoint, &event).await?;
            return Ok(dropped("the endpoint is disabled"));
        }
        Span::current().record("correlationId", event.correlation_id.as_deref());
        // Decided or not yet due: no lease needed to say so.
        if let Standing::Settled(next) = self.standing(job, &event, now).await? {
            return Ok(next);
        }
        let (tenant, id) = (&job.tenant, &job.endpoint);
        let now = OffsetDateTime::now_utc();
        let lease_until = now + self.http.timeout() + LEASE_MARGIN;
        if let Lease::Busy { until } = self.store.lease_delivery(tenant, id, &event, now, lease_until).await?
        {
            tracing::info!("another copy of the message is attempting it: put back until it is done");
            return Ok(Next::Later((until - now).unsigned_abs().max(Duration::from_secs(1))));
        }
        // Read again under the lease: a copy that held it just before may have attempted.
        let decided = match self.standing(job, &event, now).await {
            Ok(Standing::Due { number }) => self.attempt(job, &endpoint, &event, number, now).await,
            Ok(Standing::Settled(next)) => Ok(next),
            Err(err) => Err(err),
        };
        if let Err(err) = self.store.release_delivery(tenant, id, &event, lease_until).await {
            // It lapses at its end instead.
            tracing::warn!(error = %err, "could not release the delivery's lease");
        }
        decided
    }

    /// Where the delivery `job` asks for stands at `now`.
    async fn standing(
        &self,
        job: &DeliveryJob,
        event: &StoredEvent,
        now: OffsetDateTime,
    ) -> Result<Standing, StoreError> {
        let delivery = self.store.delivery(&job.tenant, &job.endpoint, event).await?;
        let earlier =
            delivery.as_ref().map(|d| d.attempts.iter().filter(|a| a.at >= job.since).count()).unwrap_or(0);
        if let Some(delivery) = &delivery {
            let this_run = earlier > 0;
            if this_run && delivery.status != DeliveryStatus::Retrying {
                tracing::info!(
                    status = delivery.status.as_str(),
                    "delivery already decided: message dropped"
                );
                return Ok(Standing::Settled(Next::Done));
            }
            if let Some(at) =
                delivery.next_attempt_at.filter(|at| this_run && *at > now + time::Duration::seconds(1))
            {
                return Ok(Standing::Settled(Next::Later((at - now).unsigned_abs())));
            }
        }
        Ok(Standing::Due { number: u32::try_from(earlier).unwrap_or(u32::MAX).saturating_add(1) })
    }

    /// Attempt `number` of the delivery, made while holding its lease, and what follows from its
    /// answer.
    async fn attempt(
        &self,
        job: &DeliveryJob,
        endpoint: &WebhookEndpoint,
        event: &StoredEvent,
        number: u32,
        now: OffsetDateTime,
    ) -> Result<Next, StoreError> {
        let sealed: Vec<_> = endpoint.signing_secrets(now).collect();
        let opened = sealed.iter().map(|s| self.sealer.open(&job.tenant, &job.endpoint, s));
        let secrets = futures::future::try_join_all(opened).await?;
        let answer = self.http.attempt(endpoint, &secrets, event, now).await;
        let attempt = Attempt {
            at: now,
            status_code: answer.status,
            error: answer.detail.clone(),
            duration_ms: u64::try_from(answer.took.as_millis()).unwrap_or(u64::MAX),
        };
        tracing::info!(
            attempt = number,
            status = answer.status,
            tookMs = attempt.duration_ms,
            "delivery attempted"
        );
        let (tenant, id) = (&job.tenant, &job.endpoint);
        match Verdict::of(answer.status) {
            Verdict::Delivered => {
                self.store
                    .record_attempt(tenant, id, event, &attempt, DeliveryStatus::Delivered, None)
                    .await?;
                if endpoint.failing_since.is_some() {
                    self.store.endpoint_healthy(tenant, id).await?;
                }
                metrics::webhook_delivery("delivered");
                metrics::webhook_delivered((OffsetDateTime::now_utc() - event.created).unsigned_abs());
                tracing::info!("event delivered");
                Ok(Next::Done)
            }
            Verdict::Gone => {
                self.store.record_attempt(tenant, id, event, &attempt, DeliveryStatus::Failed, None).await?;
                self.store.disable_endpoint(tenant, endpoint, "the endpoint answered 410 Gone", now).await?;
                metrics::webhook_delivery("gone");
                tracing::warn!("the endpoint answered 410 Gone: disabled");
                Ok(Next::Done)
            }
            Verdict::Retry => {
                metrics::webhook_undelivered((now - event.created).unsigned_abs());
                let failing_since = self.store.endpoint_failing(tenant, id, now).await?;
                let next = next_attempt_in(number, answer.retry_after, rand::random());
                let given_up = now - failing_since >= DISABLE_AFTER_FAILING;
                match next.filter(|_| !given_up) {
                    Some(wait) => {
                        let at = now + wait;
                        self.store
                            .record_attempt(tenant, id, event, &attempt, DeliveryStatus::Retrying, Some(at))
                            .await?;
                        metrics::webhook_delivery("retried");
                        tracing::info!(retryInS = wait.as_secs(), "delivery failed: tried again later");
                        Ok(Next::Later(wait))
                    }
                    None => {
                        self.store
                            .record_attempt(tenant, id, event, &attempt, DeliveryStatus::Failed, None)
                            .await?;
                        metrics::webhook_delivery("failed");
                        if given_up {
                            let reason = "every delivery failed for 5 days";
                            self.store.disable_endpoint(tenant, endpoint, reason, now).await?;
                            tracing::warn!("{reason}: the endpoint is disabled");
                        } else {
                            tracing::warn!("delivery failed on its last attempt: given up");
                        }
                        Ok(Next::Done)
                    }
                }
            }
        }
    }
}

fn dropped(why: &str) -> Next {
    metrics::webhook_delivery("dropped");
    tracing::info!(why, "delivery dropped");
    Next::Done
}

fn job_span(record: &SqsMessage, job: &DeliveryJob) -> Span {
    tracing::info_span!(
        "delivery",
        function = ledger_telemetry::Function::Deliverer.as_str(),
        messageId = record.message_id.as_deref().unwrap_or_default(),
        receiveCount = record.attributes.get("ApproximateReceiveCount").map(String::as_str),
        tenant = job.tenant.as_str(),
        endpointId = job.endpoint.as_str(),
        eventId = %job.event,
        correlationId = tracing::field::Empty,
    )
}
