//! Webhook endpoints and their deliveries. An endpoint is one item (listed by the accounts' index,
//! under its own partition key); each event delivered to it has a delivery item in the endpoint's
//! partition, holding its attempts, keyed by the event's instant so they list newest first.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use ledger::webhook::{EndpointUrl, Secret, SigningSecret, Subscription, WebhookEndpoint};
use ledger::{EndpointId, Event, EventId, EventType, LedgerError, TenantId};
use time::OffsetDateTime;

use crate::cancel::cancellation;
use crate::engine::{key, put};
use crate::error::moot_unless_written;
use crate::events::StoredEvent;
use crate::items::{Item, Reader, n, number, s, timestamp};
use crate::{DynamoStore, Page, StoreError, keys};

pub const ENDPOINT_SK: &str = "W";
const DELIVERY_PREFIX: &str = "D#";
/// A delivery's lease: the one copy of its message attempting it now.
const LEASE_PREFIX: &str = "L#";
const LEASE_UNTIL: &str = "until";

pub fn endpoint_pk(tenant: &TenantId, endpoint: &EndpointId) -> String {
    format!("T#{tenant}#W#{endpoint}")
}

/// The index partition listing a tenant's endpoints.
pub fn endpoints_index_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#W")
}

/// Where an event's delivery sits in its endpoint's partition: by the event's instant, then id.
fn delivery_sk(event_created_nanos: i128, event: &EventId) -> String {
    event_sk(DELIVERY_PREFIX, event_created_nanos, event)
}

fn lease_sk(event: &StoredEvent) -> String {
    event_sk(LEASE_PREFIX, event.created.unix_timestamp_nanos(), &event.id)
}

/// An item of the endpoint's partition about one event, in the event's order.
fn event_sk(prefix: &str, event_created_nanos: i128, event: &EventId) -> String {
    format!("{prefix}{:020}#{event}", event_created_nanos.max(0))
}

/// Whether this copy of a delivery's message may attempt it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    /// It may, until the lease's end.
    Held,
    /// Another copy is attempting it, at the latest until then.
    Busy { until: OffsetDateTime },
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Attempted and to be tried again at `next_attempt_at`.
    Retrying,
    Delivered,
    /// The schedule is spent, the endpoint answered 410, or it was disabled before the next try.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [Self::Retrying, Self::Delivered, Self::Failed].into_iter().find(|s| s.as_str() == raw)
    }
}

/// One attempt to deliver an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub at: OffsetDateTime,
    /// The endpoint's status code (`None`: no answer).
    pub status_code: Option<u16>,
    /// Why there was no answer, or what the answer said, in a few words.
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// An event's delivery to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub endpoint_id: EndpointId,
    pub event_id: EventId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    pub next_attempt_at: Option<OffsetDateTime>,
}

fn endpoint_item(tenant: &TenantId, e: &WebhookEndpoint, version: u64) -> Item {
    let mut item: Item = HashMap::from([
        (keys::PK.into(), s(endpoint_pk(tenant, &e.id))),
        (keys::SK.into(), s(ENDPOINT_SK)),
        (keys::GSI1_PK.into(), s(endpoints_index_pk(tenant))),
        (keys::GSI1_SK.into(), s(e.id.as_str())),
        ("id".into(), s(e.id.as_str())),
        ("url".into(), s(e.url.as_str())),
        ("event_types".into(), AttributeValue::L(e.subscription.names().into_iter().map(s).collect())),
        ("description".into(), s(e.description.clone())),
        ("enabled".into(), AttributeValue::Bool(e.enabled)),
        ("created_at".into(), timestamp(e.created_at)),
        ("version".into(), n(version)),
        (
            "secrets".into(),
            AttributeValue::L(
                e.secrets
                    .iter()
                    .map(|secret| {
                        let mut m = HashMap::from([("secret".to_owned(), s(secret.secret.expose()))]);
                        if let Some(at) = secret.expires_at {
                            m.insert("expires_at".into(), timestamp(at));
                        }
                        AttributeValue::M(m)
                    })
                    .collect(),
            ),
        ),
    ]);
    if let Some(reason) = &e.disabled_reason {
        item.insert("disabled_reason".into(), s(reason.clone()));
    }
    if let Some(at) = e.failing_since {
        item.insert("failing_since".into(), timestamp(at));
    }
    item
}

/// An endpoint item, and the version it was read at.
fn endpoint_from(item: &Item) -> Result<(WebhookEndpoint, u64), StoreError> {
    let r = Reader(item);
    let corrupt = |what: &str| r.corrupt(what, "does not parse");
    let names: Vec<String> = match item.get("event_types") {
        Some(AttributeValue::L(list)) => list.iter().filter_map(|v| v.as_s().ok().cloned()).collect(),
        _ => return Err(corrupt("event_types")),
    };
    let mut secrets = Vec::new();
    for secret in item.get("secrets").and_then(|v| v.as_l().ok()).into_iter().flatten() {
        let m = secret.as_m().map_err(|_| corrupt("secrets"))?;
        let raw = m.get("secret").and_then(|v| v.as_s().ok()).ok_or_else(|| corrupt("secrets"))?;
        let expires_at = m
            .get("expires_at")
            .map(|v| {
                v.as_s()
                    .ok()
                    .and_then(|t| {
                        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
                    })
                    .ok_or_else(|| corrupt("secrets"))
            })
            .transpose()?;
        secrets.push(Secret { secret: SigningSecret::stored(raw.clone()), expires_at });
    }
    let endpoint = WebhookEndpoint {
        id: r.parsed("id", |v| EndpointId::parse(v))?,
        url: EndpointUrl::stored(r.str("url")?.to_owned()),
        subscription: Subscription::parse(&names).map_err(|_| corrupt("event_types"))?,
        description: r.opt_str("description")?.unwrap_or_default().to_owned(),
        enabled: r.bool("enabled")?,
        disabled_reason: r.opt_str("disabled_reason")?.map(str::to_owned),
        created_at: r.timestamp("created_at")?,
        failing_since: r.opt_str("failing_since")?.map(|_| r.timestamp("failing_since")).transpose()?,
        secrets,
    };
    Ok((endpoint, r.num("version")?))
}

fn delivery_from(item: &Item) -> Result<Delivery, StoreError> {
    let r = Reader(item);
    let mut attempts = Vec::new();
    for attempt in item.get("attempts").and_then(|v| v.as_l().ok()).into_iter().flatten() {
        let m = attempt.as_m().map_err(|_| r.corrupt("attempts", "does not parse"))?;
        let a = Reader(m);
        attempts.push(Attempt {
            at: a.timestamp("at")?,
            status_code: a.0.get("status_code").map(|_| a.num("status_code")).transpose()?,
            error: a.opt_str("error")?.map(str::to_owned),
            duration_ms: a.num("duration_ms")?,
        });
    }
    Ok(Delivery {
        endpoint_id: r.parsed("endpoint_id", |v| EndpointId::parse(v))?,
        event_id: r.parsed("event_id", EventId::parse)?,
        event_type: r.parsed("event_type", EventType::parse)?,
        status: r.parsed("status", |v| DeliveryStatus::parse(v).ok_or(()))?,
        attempts,
        next_attempt_at: r.opt_str("next_attempt_at")?.map(|_| r.timestamp("next_attempt_at")).transpose()?,
    })
}

fn not_found(id: &EndpointId) -> StoreError {
    LedgerError::NotFound { what: "webhook endpoint", id: id.to_string() }.into()
}

fn unexpected(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(e.to_string())
}

impl DynamoStore {
    /// Stores a new endpoint (its id is generated, so new).
    pub async fn create_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpoint,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(endpoint_item(tenant, endpoint, 1)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await?;
        Ok(())
    }

    /// The endpoint, read consistently, with its version.
    pub async fn get_endpoint(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
    ) -> Result<(WebhookEndpoint, u64), StoreError> {
        let found = self.get(key(endpoint_pk(tenant, id), ENDPOINT_SK)).await?;
        endpoint_from(&found.ok_or_else(|| not_found(id))?)
    }

    /// A page of the tenant's endpoints, by id (the index: a moment behind).
    pub async fn list_endpoints(
        &self,
        tenant: &TenantId,
        limit: u16,
        after: Option<&EndpointId>,
    ) -> Result<Page<WebhookEndpoint, EndpointId>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .expression_attribute_values(":pk", s(endpoints_index_pk(tenant)))
            .limit(i32::from(limit) + 1);
        query = match after {
            Some(after) => query
                .key_condition_expression("gsi1pk = :pk AND gsi1sk > :after")
                .expression_attribute_values(":after", s(after.as_str())),
            None => query.key_condition_expression("gsi1pk = :pk"),
        };
        let mut found = query.send().await?.items.unwrap_or_default();
        let more = found.len() > usize::from(limit);
        found.truncate(usize::from(limit));
        let endpoints: Vec<WebhookEndpoint> =
            found.iter().map(|i| endpoint_from(i).map(|(e, _)| e)).collect::<Result<_, _>>()?;
        let next = if more { endpoints.last().map(|e| e.id.clone()) } else { None };
        Ok(Page { items: endpoints, next })
    }

    /// Every endpoint of the tenant that receives events of `kind` (what the publisher fans out to).
    pub async fn receivers(
        &self,
        tenant: &TenantId,
        kind: EventType,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_endpoints(tenant, 100, after.as_ref()).await?;
            all.extend(page.items.into_iter().filter(|e| e.receives(kind)));
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    pub async fn delete_endpoint(&self, tenant: &TenantId, id: &EndpointId) -> Result<(), StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(endpoint_pk(tenant, id), ENDPOINT_SK)))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(not_found(id))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Writes `endpoint` over the one read at `version`; `Ok(false)` if it changed meanwhile.
    pub async fn replace_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpoint,
        version: u64,
    ) -> Result<bool, StoreError> {
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(endpoint_item(tenant, endpoint, version + 1)))
            .condition_expression("version = :was")
            .expression_attribute_values(":was", n(version))
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Ok(false)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Disables an enabled endpoint for `reason`, and writes the event that says so in the same
    /// transaction; `Ok(false)` if it was not enabled (or is gone).
    pub async fn disable_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpoint,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let disabled =
            WebhookEndpoint { enabled: false, disabled_reason: Some(reason.to_owned()), ..endpoint.clone() };
        let event = Event::endpoint_disabled(tenant, &disabled, now);
        let update = Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(endpoint_pk(tenant, &endpoint.id)))
            .key(keys::SK, s(ENDPOINT_SK))
            .update_expression("SET enabled = :false, disabled_reason = :reason ADD version :one")
            .condition_expression("enabled = :true")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(unexpected)?;
        let correlation = ledger_telemetry::correlation::current().map(|c| c.as_str().to_owned());
        let sent = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(put(
                &self.table,
                crate::events::event_item(tenant, &event, correlation.as_deref())?,
            )?)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(err) => cancellation(err).map(|_| false),
        }
    }

    /// Notes a failed delivery: the endpoint has failed since `now` unless it already had. Returns
    /// since when it has been failing.
    pub async fn endpoint_failing(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(endpoint_pk(tenant, id), ENDPOINT_SK)))
            // The version moves, so a change written over a stale read (PATCH, rotation) fails
            // and is redone rather than undoing this.
            .update_expression("SET failing_since = if_not_exists(failing_since, :now) ADD version :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => Reader(&out.attributes.unwrap_or_default()).timestamp("failing_since"),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(not_found(id))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Notes a successful delivery: the endpoint is failing no more.
    pub async fn endpoint_healthy(&self, tenant: &TenantId, id: &EndpointId) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(endpoint_pk(tenant, id), ENDPOINT_SK)))
            .update_expression("REMOVE failing_since ADD version :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        moot_unless_written(out)
    }

    /// The delivery of `event` to `endpoint`, if attempted.
    pub async fn delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
    ) -> Result<Option<Delivery>, StoreError> {
        let sk = delivery_sk(event.created.unix_timestamp_nanos(), &event.id);
        self.get(key(endpoint_pk(tenant, endpoint), &sk)).await?.as_ref().map(delivery_from).transpose()
    }

    /// Records an attempt to deliver `event` to `endpoint` and where the delivery now stands.
    pub async fn record_attempt(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
        attempt: &Attempt,
        status: DeliveryStatus,
        next_attempt_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let mut one = HashMap::from([
            ("at".to_owned(), timestamp(attempt.at)),
            ("duration_ms".to_owned(), n(attempt.duration_ms)),
        ]);
        if let Some(code) = attempt.status_code {
            one.insert("status_code".into(), n(code));
        }
        if let Some(error) = &attempt.error {
            one.insert("error".into(), s(error.clone()));
        }
        let mut set = vec![
            "endpoint_id = :endpoint",
            "event_id = :event",
            "event_type = :type",
            "#status = :status",
            "expires_at = :expires",
            "attempts = list_append(if_not_exists(attempts, :none), :one)",
        ];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                endpoint_pk(tenant, endpoint),
                &delivery_sk(event.created.unix_timestamp_nanos(), &event.id),
            )))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":endpoint", s(endpoint.as_str()))
            .expression_attribute_values(":event", s(event.id.to_string()))
            .expression_attribute_values(":type", s(event.kind.as_str()))
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(
                ":expires",
                n((attempt.at + ledger::event::RETENTION).unix_timestamp()),
            )
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":one", AttributeValue::L(vec![AttributeValue::M(one)]));
        let clause = match next_attempt_at {
            Some(at) => {
                update = update.expression_attribute_values(":next", timestamp(at));
                set.push("next_attempt_at = :next");
                format!("SET {}", set.join(", "))
            }
            None => format!("SET {} REMOVE next_attempt_at", set.join(", ")),
        };
        update.update_expression(clause).send().await?;
        Ok(())
    }

    /// Ends a delivery that was to be tried again as failed, with no attempt: its endpoint was
    /// disabled first. A delivery never attempted, or already decided, stays as it is.
    pub async fn give_up_delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
    ) -> Result<(), StoreError> {
        let sk = delivery_sk(event.created.unix_timestamp_nanos(), &event.id);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(endpoint_pk(tenant, endpoint), &sk)))
            .update_expression("SET #status = :failed REMOVE next_attempt_at")
            .condition_expression("#status = :retrying")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":failed", s(DeliveryStatus::Failed.as_str()))
            .expression_attribute_values(":retrying", s(DeliveryStatus::Retrying.as_str()))
            .send()
            .await;
        moot_unless_written(out)
    }

    /// Leases the delivery of `event` to `endpoint` until `until`, unless another copy of its
    /// message holds an unexpired lease: two copies received at once (SQS delivers at least once)
    /// would otherwise both attempt it. The holder reads the delivery after leasing it, so it sees
    /// every attempt that a copy before it recorded. `until` is the holder's clock and `now` the
    /// taker's: the lease's margin covers instances' clocks a few seconds apart.
    pub async fn lease_delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Lease, StoreError> {
        let item = HashMap::from([
            (keys::PK.to_owned(), s(endpoint_pk(tenant, endpoint))),
            (keys::SK.to_owned(), s(lease_sk(event))),
            (LEASE_UNTIL.to_owned(), n(until.unix_timestamp_nanos())),
            // Released leases, and those of holders killed meanwhile, are gone within a day or two.
            (crate::events::TTL_ATTRIBUTE.to_owned(), n(until.unix_timestamp() + 3_600)),
        ]);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #until <= :now")
            .expression_attribute_names("#until", LEASE_UNTIL)
            .expression_attribute_values(":now", n(now.unix_timestamp_nanos()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Lease::Held),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let held_until = failed
                        .item()
                        .and_then(|item| number::<i128>(item.get(LEASE_UNTIL)))
                        .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok());
                    Ok(Lease::Busy { until: held_until.unwrap_or(until) })
                }
                _ => Err(err.into()),
            },
        }
    }

    /// Ends the lease taken until `until`, if it is still this holder's. (An update, not a delete:
    /// the deliverer may not delete the table's items; the TTL removes it.)
    pub async fn release_delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(endpoint_pk(tenant, endpoint), &lease_sk(event))))
            .update_expression("SET #until = :over")
            .condition_expression("#until = :until")
            .expression_attribute_names("#until", LEASE_UNTIL)
            .expression_attribute_values(":until", n(until.unix_timestamp_nanos()))
            .expression_attribute_values(":over", n(0))
            .send()
            .await;
        moot_unless_written(released)
    }

    /// A page of the endpoint's deliveries, newest event first, below `before` (a position a page
    /// returned).
    pub async fn list_deliveries(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        limit: u16,
        before: Option<&str>,
    ) -> Result<Page<Delivery, String>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(endpoint_pk(tenant, endpoint)))
            .scan_index_forward(false)
            .limit(i32::from(limit) + 1);
        let query = match before {
            Some(before) => query
                .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :before")
                .expression_attribute_values(":low", s(DELIVERY_PREFIX))
                .expression_attribute_values(":before", s(before)),
            None => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(DELIVERY_PREFIX)),
        };
        let mut found = query.send().await?.items.unwrap_or_default();
        found.retain(|item| item.get(keys::SK).and_then(|v| v.as_s().ok()).map(String::as_str) != before);
        let more = found.len() > usize::from(limit);
        found.truncate(usize::from(limit));
        let next = if more {
            found.last().and_then(|i| i.get(keys::SK)).and_then(|v| v.as_s().ok()).cloned()
        } else {
            None
        };
        let items = found.iter().map(delivery_from).collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }
}
