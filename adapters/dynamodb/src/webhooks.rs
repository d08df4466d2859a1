//! Webhook endpoints and their deliveries. An endpoint is one item (listed by the accounts' index,
//! under its own partition key); each event delivered to it has a delivery item in the endpoint's
//! partition, holding its attempts, keyed by the event's instant so they list newest first. A
//! counter item per tenant, written in the transaction that adds or deletes an endpoint, caps
//! them (`MAX_ENDPOINTS`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use ledger::port::{
    Attempt, Delivery, DeliveryPosition, DeliveryStatus, Lease, MAX_ATTEMPTS_KEPT, Page, StoreError,
    StoredEvent, WebhookDeliveries, WebhookEndpoints,
};
use ledger::webhook::{EndpointUrl, MAX_ENDPOINTS, SealedSecret, Secret, Subscription, WebhookEndpoint};
use ledger::{EndpointId, Event, EventId, EventType, LedgerError, TenantId};
use time::OffsetDateTime;

use crate::cancel::{Cancelled, cancellation};
use crate::error::{is_condition_failed, moot_unless_written, sdk, unbuilt};
use crate::items::{Item, Reader, n, number, put, put_if_new, s, timestamp};
use crate::keys::{
    self, ENDPOINT_COUNT_SK, ENDPOINT_SK, delivery_sk, endpoint_pk, endpoints_index_pk, key, lease_sk,
};
use crate::store::DynamoStore;
use crate::store::current_correlation;

const LEASE_UNTIL: &str = "until";
/// Attempts of an endpoint's creation or deletion that meet another one of the tenant's.
const COUNT_ATTEMPTS: u32 = 8;

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
                        let sealed = AttributeValue::B(Blob::new(secret.sealed.as_bytes()));
                        let mut m = HashMap::from([("sealed".to_owned(), sealed)]);
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
        // A secret stored in clear, before secrets were sealed, signs no more: rotate it.
        let Some(sealed) = m.get("sealed") else { continue };
        let sealed = sealed.as_b().map_err(|_| corrupt("secrets"))?;
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
        secrets.push(Secret { sealed: SealedSecret::from_bytes(sealed.as_ref().to_vec()), expires_at });
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
    StoreError::not_found("webhook endpoint", id)
}

#[async_trait]
impl WebhookEndpoints for DynamoStore {
    /// With the tenant's count moved up, only if it is under the cap.
    async fn create_endpoint(&self, tenant: &TenantId, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(endpoints_index_pk(tenant), ENDPOINT_COUNT_SK)))
            .update_expression("ADD endpoints :one")
            .condition_expression("attribute_not_exists(endpoints) OR endpoints < :cap")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(MAX_ENDPOINTS as u64))
            .build()
            .map_err(unbuilt)?;
        let item = endpoint_item(tenant, endpoint, 1);
        let count = TransactWriteItem::builder().update(count).build();
        // The id is generated, so new: a failed condition is the count's.
        match self.count_endpoints(count, put_if_new(&self.table, item)?).await? {
            true => Ok(()),
            false => {
                Err(LedgerError::LimitReached { what: "webhook endpoints", limit: MAX_ENDPOINTS }.into())
            }
        }
    }

    async fn get_endpoint(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
    ) -> Result<(WebhookEndpoint, u64), StoreError> {
        let found = self.get(key(endpoint_pk(tenant, id), ENDPOINT_SK)).await?;
        endpoint_from(&found.ok_or_else(|| not_found(id))?)
    }

    /// By the index: a moment behind.
    async fn list_endpoints(
        &self,
        tenant: &TenantId,
        page_size: u16,
        after: Option<&EndpointId>,
    ) -> Result<Page<WebhookEndpoint, EndpointId>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .expression_attribute_values(":pk", s(endpoints_index_pk(tenant)))
            .limit(i32::from(page_size) + 1);
        query = match after {
            Some(after) => query
                .key_condition_expression("gsi1pk = :pk AND gsi1sk > :after")
                .expression_attribute_values(":after", s(after.as_str())),
            None => query.key_condition_expression("gsi1pk = :pk"),
        };
        let mut found = query.send().await.map_err(sdk)?.items.unwrap_or_default();
        let more = found.len() > usize::from(page_size);
        found.truncate(usize::from(page_size));
        let endpoints: Vec<WebhookEndpoint> =
            found.iter().map(|i| endpoint_from(i).map(|(e, _)| e)).collect::<Result<_, _>>()?;
        let next = if more { endpoints.last().map(|e| e.id.clone()) } else { None };
        Ok(Page { items: endpoints, next })
    }

    /// With the tenant's count moved down (a count from before the cap, absent, stays at zero).
    async fn delete_endpoint(&self, tenant: &TenantId, id: &EndpointId) -> Result<(), StoreError> {
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(endpoints_index_pk(tenant), ENDPOINT_COUNT_SK)))
            .update_expression("SET endpoints = if_not_exists(endpoints, :one) - :one")
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(unbuilt)?;
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(endpoint_pk(tenant, id), ENDPOINT_SK)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(unbuilt)?;
        let count = TransactWriteItem::builder().update(count).build();
        // The count has no condition: a failed one is the endpoint's.
        match self.count_endpoints(count, TransactWriteItem::builder().delete(delete).build()).await? {
            true => Ok(()),
            false => Err(not_found(id)),
        }
    }

    async fn replace_endpoint(
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
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(sdk(err)),
        }
    }

    /// One transaction: the update and the event.
    async fn disable_endpoint(
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
            .map_err(unbuilt)?;
        let correlation = current_correlation();
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

    async fn endpoint_failing(
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
            Err(err) if is_condition_failed(&err) => Err(not_found(id)),
            Err(err) => Err(sdk(err)),
        }
    }

    async fn endpoint_healthy(&self, tenant: &TenantId, id: &EndpointId) -> Result<(), StoreError> {
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
}

#[async_trait]
impl WebhookDeliveries for DynamoStore {
    async fn delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
    ) -> Result<Option<Delivery>, StoreError> {
        let sk = delivery_sk(&DeliveryPosition::of(event));
        self.get(key(endpoint_pk(tenant, endpoint), &sk)).await?.as_ref().map(delivery_from).transpose()
    }

    async fn record_attempt(
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
            .set_key(Some(key(endpoint_pk(tenant, endpoint), &delivery_sk(&DeliveryPosition::of(event)))))
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
        let key = key(endpoint_pk(tenant, endpoint), &delivery_sk(&DeliveryPosition::of(event)));
        let updated = update
            .update_expression(clause)
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(sdk)?;
        let kept = updated
            .attributes()
            .and_then(|a| a.get("attempts"))
            .and_then(|v| v.as_l().ok())
            .map_or(0, Vec::len);
        if kept > MAX_ATTEMPTS_KEPT {
            // The oldest go, unless the list moved meanwhile (then the next attempt trims it).
            let oldest: Vec<String> =
                (0..kept - MAX_ATTEMPTS_KEPT).map(|i| format!("attempts[{i}]")).collect();
            let trimmed = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression(format!("REMOVE {}", oldest.join(", ")))
                .condition_expression("size(attempts) = :kept")
                .expression_attribute_values(":kept", n(kept as u64))
                .send()
                .await;
            moot_unless_written(trimmed)?;
        }
        Ok(())
    }

    async fn give_up_delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
    ) -> Result<(), StoreError> {
        let sk = delivery_sk(&DeliveryPosition::of(event));
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

    /// One conditional PutItem of the lease's item (its own, beside the delivery's): the holder
    /// reads the delivery after leasing it, so it sees every attempt a copy before it recorded.
    async fn lease_delivery(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        event: &StoredEvent,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Lease, StoreError> {
        let item = HashMap::from([
            (keys::PK.to_owned(), s(endpoint_pk(tenant, endpoint))),
            (keys::SK.to_owned(), s(lease_sk(&DeliveryPosition::of(event)))),
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
                _ => Err(sdk(err)),
            },
        }
    }

    /// An update, not a delete: the deliverer may not delete the table's items; the TTL removes it.
    async fn release_delivery(
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
            .set_key(Some(key(endpoint_pk(tenant, endpoint), &lease_sk(&DeliveryPosition::of(event)))))
            .update_expression("SET #until = :over")
            .condition_expression("#until = :until")
            .expression_attribute_names("#until", LEASE_UNTIL)
            .expression_attribute_values(":until", n(until.unix_timestamp_nanos()))
            .expression_attribute_values(":over", n(0))
            .send()
            .await;
        moot_unless_written(released)
    }

    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        page_size: u16,
        before: Option<&DeliveryPosition>,
    ) -> Result<Page<Delivery, DeliveryPosition>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(endpoint_pk(tenant, endpoint)))
            .scan_index_forward(false)
            .limit(i32::from(page_size) + 1);
        // Strictly below the cursor's delivery (nothing of an endpoint's partition sorts below its
        // deliveries), or every delivery.
        let query = match before {
            Some(before) => query
                .key_condition_expression("pk = :pk AND sk < :before")
                .expression_attribute_values(":before", s(delivery_sk(before))),
            None => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(keys::DELIVERY_PREFIX)),
        };
        let mut found = query.send().await.map_err(sdk)?.items.unwrap_or_default();
        let sk_of = |item: &Item| item.get(keys::SK).and_then(|v| v.as_s().ok()).cloned();
        let more = found.len() > usize::from(page_size);
        found.truncate(usize::from(page_size));
        let next = match found.last().and_then(sk_of) {
            Some(sk) if more => Some(
                keys::delivery_position(&sk)
                    .ok_or_else(|| StoreError::Corrupt(format!("delivery key {sk}")))?,
            ),
            _ => None,
        };
        let items = found.iter().map(delivery_from).collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }
}

impl DynamoStore {
    /// Writes the tenant's endpoint count (`count`) and an endpoint (`change`) together, redone
    /// while it meets another change of the count. `Ok(false)`: a condition failed.
    async fn count_endpoints(
        &self,
        count: TransactWriteItem,
        change: TransactWriteItem,
    ) -> Result<bool, StoreError> {
        for attempt in 1..=COUNT_ATTEMPTS {
            let sent = self
                .client
                .transact_write_items()
                .transact_items(count.clone())
                .transact_items(change.clone())
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(true),
                Err(err) => match cancellation(err)? {
                    Cancelled::Conditions(_) => return Ok(false),
                    Cancelled::Contended => {
                        tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt))).await;
                    }
                },
            }
        }
        Err(StoreError::Unavailable("the tenant's webhook endpoints stayed contended".into()))
    }
}
