//! The events API: `GET /v1/events` (newest first, by type and `created` range) and
//! `GET /v1/events/{id}`. Events are served byte for byte as they were written and delivered.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use ledger::port::{EventFilter, StoreError, StoredEvent};
use ledger::{EventId, EventType, LedgerError};
use serde_json::value::RawValue;
use std::collections::HashMap;

use crate::body::ListBody;
use crate::cursor;
use crate::extract::{Instants, PageParams, invalid};
use crate::observe::record;
use crate::problem::ApiError;
use crate::rate_limit::Admitted;
use crate::state::AppState;

fn raw(event: StoredEvent) -> Result<Box<RawValue>, ApiError> {
    RawValue::from_string(event.body).map_err(|e| ApiError::Store(StoreError::Corrupt(e.to_string())))
}

/// `GET /v1/events?type=…&from=…&to=…`: `from` inclusive, `to` exclusive, both RFC 3339.
pub async fn list_events(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Query(query): Query<HashMap<String, String>>,
    instants: Instants,
    page: PageParams,
) -> Result<Json<ListBody<Box<RawValue>>>, ApiError> {
    let kind = query
        .get("type")
        .map(|raw| EventType::parse(raw).map_err(|e| ApiError::from(LedgerError::invalid("type", e))))
        .transpose()?;
    let filter = EventFilter { kind, from: instants.get("from")?, to: instants.get("to")? };
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from >= to
    {
        return Err(invalid("to", "must be later than `from`"));
    }
    let before = page.cursor.as_deref().map(cursor::parse_event_cursor).transpose()?;
    let found = app.store.list_events(&tenant, &filter, page.size, before.as_ref(), app.now()).await?;
    Ok(Json(ListBody {
        data: found.items.into_iter().map(raw).collect::<Result<_, _>>()?,
        next_cursor: found.next.as_ref().map(cursor::event_cursor),
    }))
}

pub async fn get_event(
    State(app): State<AppState>,
    Admitted(tenant): Admitted,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = EventId::parse(&id).map_err(|e| ApiError::from(LedgerError::invalid("id", e)))?;
    let event = app.store.get_event(&tenant, &id, app.now()).await?;
    record("eventId", &event.id.to_string());
    Ok(Json(raw(event)?).into_response())
}
