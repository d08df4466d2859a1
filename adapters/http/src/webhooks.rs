//! Webhook endpoints: add (the signing secret shown once), list, read, change, delete, rotate the
//! secret (the old one signs on for a day), list an endpoint's deliveries with their attempts,
//! redeliver an event on demand, replay the events since an instant that the endpoint missed.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use ledger::webhook::{EndpointFields, EndpointUrl, SigningSecret, Subscription, WebhookEndpoint};
use ledger::{EndpointId, EventId, LedgerError, TenantId};

use ledger::port::{Delivery, DeliveryJob, DeliveryStatus, EventFilter, StoreError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::body::ListBody;
use crate::cursor;
use crate::extract::{JsonBody, PageParams, invalid};
use crate::observe::record;
use crate::problem::ApiError;
use crate::rate_limit::Admitted;
use crate::state::{AppState, Webhooks};

/// The most events one replay request takes (those the endpoint receives), and never more than the
/// tenant's burst: each is one operation of its request limit. The answer's cursor carries on.
pub const MAX_REPLAY: usize = 1_000;
/// The most events one replay request scans to find them.
const MAX_REPLAY_SCAN: usize = 1_000;
/// Attempts to write a change over an endpoint that others change at the same time.
const REPLACE_ATTEMPTS: u32 = 5;

fn webhooks(app: &AppState) -> Result<&Webhooks, ApiError> {
    app.webhooks.as_ref().ok_or_else(|| {
        StoreError::Unavailable("webhooks are not configured in this deployment".into()).into()
    })
}

fn endpoint_id(raw: String) -> Result<EndpointId, ApiError> {
    let id = EndpointId::parse(raw).map_err(|e| ApiError::from(LedgerError::invalid("id", e)))?;
    record("endpointId", id.as_str());
    Ok(id)
}

fn fresh_secret() -> SigningSecret {
    SigningSecret::from_bytes(rand::random())
}

/// An endpoint with its signing secret: the answer to its creation and to a rotation, the only
/// times the secret is shown.
#[derive(Serialize)]
struct WithSecret<'a> {
    #[serde(flatten)]
    endpoint: &'a WebhookEndpoint,
    secret: &'a str,
}

pub async fn create_endpoint(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    JsonBody(body): JsonBody<EndpointFields>,
) -> Result<Response, ApiError> {
    let webhooks = webhooks(&app)?;
    let request =
        body.parse(webhooks.urls).map_err(|(field, e)| ApiError::from(LedgerError::invalid(field, e)))?;
    let (id, secret) = (EndpointId::generate(), fresh_secret());
    let sealed = webhooks.sealer.seal(&tenant, &id, &secret).await?;
    let endpoint = request.open(id, sealed, app.now());
    record("endpointId", endpoint.id.as_str());
    app.store.create_endpoint(&tenant, &endpoint).await?;
    tracing::info!("webhook endpoint created");
    let body = WithSecret { endpoint: &endpoint, secret: secret.expose() };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn list_endpoints(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    page: PageParams,
) -> Result<Json<ListBody<WebhookEndpoint>>, ApiError> {
    let after = page.cursor.as_deref().map(cursor::parse_endpoint_cursor).transpose()?;
    let found = app.store.list_endpoints(&tenant, page.size, after.as_ref()).await?;
    Ok(Json(ListBody { data: found.items, next_cursor: found.next.as_ref().map(cursor::endpoint_cursor) }))
}

pub async fn get_endpoint(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
) -> Result<Json<WebhookEndpoint>, ApiError> {
    let id = endpoint_id(id)?;
    Ok(Json(app.store.get_endpoint(&tenant, &id).await?.0))
}

pub async fn delete_endpoint(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = endpoint_id(id)?;
    app.store.delete_endpoint(&tenant, &id).await?;
    tracing::info!("webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// What `PATCH` may change; absent fields stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointChanges {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// Reads the endpoint, applies `change`, writes it back if nobody changed it meanwhile (else
/// again, from a fresh read).
async fn replace(
    app: &AppState,
    tenant: &TenantId,
    id: &EndpointId,
    change: impl Fn(&WebhookEndpoint) -> Result<WebhookEndpoint, ApiError>,
) -> Result<WebhookEndpoint, ApiError> {
    for _ in 0..REPLACE_ATTEMPTS {
        let (endpoint, version) = app.store.get_endpoint(tenant, id).await?;
        let changed = change(&endpoint)?;
        if app.store.replace_endpoint(tenant, &changed, version).await? {
            return Ok(changed);
        }
    }
    Err(StoreError::Unavailable(format!("webhook endpoint {id} stayed contended")).into())
}

pub async fn update_endpoint(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    JsonBody(changes): JsonBody<EndpointChanges>,
) -> Result<Json<WebhookEndpoint>, ApiError> {
    let id = endpoint_id(id)?;
    let urls = webhooks(&app)?.urls;
    let url = changes
        .url
        .as_deref()
        .map(|raw| EndpointUrl::parse(raw, urls).map_err(|e| ApiError::from(LedgerError::invalid("url", e))))
        .transpose()?;
    let subscription = changes
        .event_types
        .as_deref()
        .map(|raw| {
            Subscription::parse(raw).map_err(|e| ApiError::from(LedgerError::invalid("event_types", e)))
        })
        .transpose()?;
    if changes
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > ledger::webhook::MAX_DESCRIPTION_CHARS)
    {
        return Err(invalid("description", "must be at most 500 characters"));
    }
    let updated = replace(&app, &tenant, &id, |endpoint| {
        let mut changed = endpoint.clone();
        if let Some(url) = &url {
            changed.url = url.clone();
        }
        if let Some(subscription) = &subscription {
            changed.subscription = subscription.clone();
        }
        if let Some(description) = &changes.description {
            changed.description = description.clone();
        }
        if let Some(enabled) = changes.enabled {
            // Enabling again starts afresh: no reason, not failing.
            if enabled && !changed.enabled {
                changed.disabled_reason = None;
                changed.failing_since = None;
            }
            changed.enabled = enabled;
        }
        Ok(changed)
    })
    .await?;
    tracing::info!("webhook endpoint updated");
    Ok(Json(updated))
}

pub async fn rotate_secret(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = endpoint_id(id)?;
    let secret = fresh_secret();
    let sealed = webhooks(&app)?.sealer.seal(&tenant, &id, &secret).await?;
    let now = app.now();
    let rotated = replace(&app, &tenant, &id, |endpoint| Ok(endpoint.rotated(sealed.clone(), now))).await?;
    tracing::info!("webhook endpoint secret rotated");
    Ok(Json(WithSecret { endpoint: &rotated, secret: secret.expose() }).into_response())
}

#[derive(Serialize)]
pub struct AttemptBody {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    duration_ms: u64,
}

#[derive(Serialize)]
pub struct DeliveryBody {
    event_id: String,
    event_type: &'static str,
    status: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    next_attempt_at: Option<OffsetDateTime>,
    attempts: Vec<AttemptBody>,
}

impl From<Delivery> for DeliveryBody {
    fn from(d: Delivery) -> Self {
        Self {
            event_id: d.event_id.to_string(),
            event_type: d.event_type.as_str(),
            status: d.status.as_str(),
            next_attempt_at: d.next_attempt_at,
            attempts: d
                .attempts
                .into_iter()
                .map(|a| AttemptBody {
                    at: a.at,
                    status_code: a.status_code,
                    error: a.error,
                    duration_ms: a.duration_ms,
                })
                .collect(),
        }
    }
}

pub async fn list_deliveries(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    page: PageParams,
) -> Result<Json<ListBody<DeliveryBody>>, ApiError> {
    let id = endpoint_id(id)?;
    app.store.get_endpoint(&tenant, &id).await?;
    let before = page.cursor.as_deref().map(cursor::parse_delivery_cursor).transpose()?;
    let found = app.store.list_deliveries(&tenant, &id, page.size, before.as_ref()).await?;
    Ok(Json(ListBody {
        data: found.items.into_iter().map(DeliveryBody::from).collect(),
        next_cursor: found.next.as_ref().map(cursor::delivery_cursor),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redeliver {
    event_id: String,
}

#[derive(Serialize)]
struct Queued {
    queued: usize,
    /// Of a replay: the events the endpoint had already received, not queued again.
    #[serde(skip_serializing_if = "Option::is_none")]
    already_delivered: Option<usize>,
    /// Set when a replay stopped before the newest event: send it again with this cursor.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `POST …/deliveries {"event_id"}`: delivers the event to the endpoint again, as a new delivery
/// with attempts of its own (whatever became of earlier ones).
pub async fn redeliver(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Redeliver>,
) -> Result<Response, ApiError> {
    let id = endpoint_id(id)?;
    let queue = &webhooks(&app)?.queue;
    let event_id =
        EventId::parse(&body.event_id).map_err(|e| ApiError::from(LedgerError::invalid("event_id", e)))?;
    let (endpoint, _) = app.store.get_endpoint(&tenant, &id).await?;
    if !endpoint.enabled {
        return Err(invalid("id", "names a disabled endpoint: enable it first (PATCH enabled: true)"));
    }
    let event = app.store.get_event(&tenant, &event_id, app.now()).await?;
    let job = DeliveryJob { tenant, endpoint: id, event: event.id, since: app.now() };
    queue.enqueue(std::slice::from_ref(&job)).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
    tracing::info!(eventId = %job.event, "redelivery queued");
    Ok((StatusCode::ACCEPTED, Json(Queued { queued: 1, already_delivered: None, next_cursor: None }))
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// RFC 3339: the events created at or after it.
    from: String,
    #[serde(default)]
    cursor: Option<String>,
}

/// `POST …/replay {"from"}`: delivers every event since `from` that the endpoint receives and has
/// not received (no delivery of it `delivered`), newest first, up to the tenant's burst (at most
/// `MAX_REPLAY`) a request, each one operation of the tenant's limit; `next_cursor` carries on. So
/// a replay repeated queues nothing the endpoint has; two at once may queue an event twice, and
/// the deliverer makes one delivery of it (a copy queued before the event's delivery is dropped).
/// Redelivering one delivered event stays an explicit call (`redeliver`).
pub async fn replay(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Replay>,
) -> Result<Response, ApiError> {
    let id = endpoint_id(id)?;
    let queue = &webhooks(&app)?.queue;
    let from = OffsetDateTime::parse(&body.from, &time::format_description::well_known::Rfc3339)
        .map_err(|_| invalid("from", "must be an RFC 3339 instant, e.g. 2026-11-28T10:15:35Z"))?;
    let mut position = body.cursor.as_deref().map(cursor::parse_event_cursor).transpose()?;
    let (endpoint, _) = app.store.get_endpoint(&tenant, &id).await?;
    if !endpoint.enabled {
        return Err(invalid("id", "names a disabled endpoint: enable it first (PATCH enabled: true)"));
    }
    let now = app.now();
    // What a full bucket holds once the request itself is paid for.
    let budget = app
        .rate_limit
        .as_ref()
        .map_or(MAX_REPLAY, |limits| {
            usize::try_from(limits.limit().burst().saturating_sub(1)).unwrap_or(MAX_REPLAY)
        })
        .clamp(1, MAX_REPLAY);
    let filter = EventFilter { kind: None, from: Some(from), to: None };
    let (mut received, mut scanned) = (Vec::new(), 0);
    loop {
        // No page holds more than the budget left, so none is cut within.
        let size = u16::try_from((budget - received.len()).min(100)).unwrap_or(100);
        let page = app.store.list_events(&tenant, &filter, size, position.as_ref(), now).await?;
        scanned += page.items.len();
        received.extend(page.items.into_iter().filter(|e| endpoint.subscription.includes(e.kind)));
        position = page.next;
        if position.is_none() || received.len() >= budget || scanned >= MAX_REPLAY_SCAN {
            break;
        }
    }
    crate::rate_limit::spend(&app, &tenant, crate::rate_limit::operations(received.len())).await?;
    let deliveries =
        futures::future::try_join_all(received.iter().map(|e| app.store.delivery(&tenant, &id, e)));
    let delivered = |d: &Option<Delivery>| d.as_ref().is_some_and(|d| d.status == DeliveryStatus::Delivered);
    let missed: Vec<DeliveryJob> = received
        .iter()
        .zip(deliveries.await?)
        .filter(|(_, delivery)| !delivered(delivery))
        .map(|(e, _)| DeliveryJob {
            tenant: tenant.clone(),
            endpoint: id.clone(),
            event: e.id.clone(),
            since: now,
        })
        .collect();
    queue.enqueue(&missed).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let already_delivered = received.len() - missed.len();
    tracing::info!(queued = missed.len(), already_delivered, "replay queued");
    let body = Queued {
        queued: missed.len(),
        already_delivered: Some(already_delivered),
        next_cursor: position.as_ref().map(cursor::event_cursor),
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
