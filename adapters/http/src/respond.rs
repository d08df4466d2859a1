//! How successful writes are answered: 201 for a new resource, 200 for an idempotent replay, 202 for
//! work accepted for later, with the replay header set in one place.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use ledger::port::Created;
use ledger_telemetry::metrics;
use serde::Serialize;

/// Set on a response that replays the outcome of an earlier request with the same id.
pub const REPLAY_HEADER: &str = "idempotent-replayed";

/// 201 with the new resource, or 200 with the replayed one.
pub fn created<T>(outcome: Created<T>, body: impl IntoResponse) -> Response {
    let replayed = outcome.is_replay();
    let status = if replayed { StatusCode::OK } else { StatusCode::CREATED };
    with_replay_flag((status, body).into_response(), replayed)
}

/// 202 with where to follow the work up.
pub fn accepted(location: String, replayed: bool, body: impl Serialize) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    with_replay_flag(response, replayed)
}

/// The one place a replay is marked, and so the one place replays are counted.
pub fn with_replay_flag(mut response: Response, replayed: bool) -> Response {
    if replayed {
        metrics::idempotent_replay();
        response.headers_mut().insert(REPLAY_HEADER, HeaderValue::from_static("true"));
    }
    response
}
