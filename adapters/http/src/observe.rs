//! The middleware around every request: it opens the span whose fields every log line of the request
//! carries (function, correlation id, then tenant and ids as handlers learn them), answers with the
//! correlation id, runs the request in its trace context (what it writes records the correlation
//! id; what it queues carries the context), and records the request's metrics.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use lambda_http::RequestExt;
use ledger_telemetry::correlation::{self, CORRELATION_HEADER, TRACE_HEADER};
use ledger_telemetry::{CorrelationId, Function, TraceContext, metrics};
use tracing::Instrument;
use tracing::field::Empty;

pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let correlation = CorrelationId::parse_or_generate(header(&request, CORRELATION_HEADER));
    // Lambda's context names the function's own X-Ray segment as the parent; the header only the
    // caller's.
    let xray = request
        .lambda_context_ref()
        .and_then(|ctx| ctx.xray_trace_id.clone())
        .or_else(|| header(&request, TRACE_HEADER).map(str::to_owned));
    let span = tracing::info_span!(
        "request",
        function = Function::Api.as_str(),
        correlationId = %correlation,
        method = %request.method(),
        path = request.uri().path(),
        tenant = Empty,
        accountId = Empty,
        transferId = Empty,
        pendingId = Empty,
        reversedId = Empty,
        batchId = Empty,
        eventId = Empty,
        endpointId = Empty,
    );
    let trace = TraceContext::new(correlation.clone(), xray);
    let mut response = correlation::scope(trace, next.run(request)).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    if let Ok(value) = HeaderValue::from_str(correlation.as_str()) {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    let status = response.status().as_u16();
    metrics::api_response(status, elapsed);
    span.in_scope(|| {
        tracing::info!(status, latencyMs = elapsed.as_secs_f64() * 1000.0, "request completed");
    });
    response
}

fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Names the tenant, account, transfer (and the hold a post or void names) or batch on the request's span, so every later line of the
/// request carries it.
pub fn record(field: &'static str, value: &str) {
    tracing::Span::current().record(field, value);
}
