//! The backend served locally, as `cargo stack up` runs it (and the dashboard's test and screenshot):
//! the API router behind the local gateway, up to the template's `MaximumConcurrency` of worker
//! invocations fed from the queue, the publisher fed from the table's stream, the webhook deliverer
//! fed from its queue, the hold sweeper and the auditor on
//! their schedules, the metrics flushed as the
//! Lambda run loop flushes them, and the live dashboard.

use std::time::Duration;

use axum::Router;
use harness::metrics::local_metrics;
use harness::{DevAuth, EmulatedStack};

use crate::dashboard::{self, dashboard};

/// How often the local sweeper ticks (the template schedules it every minute; locally, expiry is
/// easier to watch at a shorter period).
pub const SWEEP_PERIOD: Duration = Duration::from_secs(5);

/// How often the local auditor checks the books (the template's default is every 15 minutes).
pub const AUDIT_PERIOD: Duration = Duration::from_secs(30);

/// Starts what runs beside the API: the worker invocations, the sweeper, the auditor, the periodic metrics flush
/// (for the worker's metrics), and the dashboard's queue sampling.
pub fn start_background(stack: &EmulatedStack) {
    tokio::spawn(stack.event_source.clone().run(stack.worker()));
    if let Some(stream) = &stack.stream_source {
        tokio::spawn(stream.clone().run(stack.publisher()));
    }
    tokio::spawn(stack.delivery_source.clone().run(stack.deliverer()));
    let store = stack.store.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SWEEP_PERIOD);
        loop {
            ticks.tick().await;
            // A failed sweep is logged by the handler's span and made up by the next tick.
            let _ = sweeper::handle(store.as_ref(), time::OffsetDateTime::now_utc()).await;
        }
    });
    let auditor = stack.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(AUDIT_PERIOD);
        loop {
            ticks.tick().await;
            // A failed run is logged by the handler and taken up again from its checkpoint.
            let _ = auditor.audit(time::OffsetDateTime::now_utc()).await;
        }
    });
    tokio::spawn(local_metrics().flush_every(Duration::from_millis(200)));
    tokio::spawn(dashboard().sample_queues(
        stack.sqs.clone(),
        stack.queue.url().to_owned(),
        stack.dead_letter_url.clone(),
    ));
}

/// The API (each request served on its own task, as concurrent Lambda instances would) and the
/// dashboard's routes.
pub fn app(stack: &EmulatedStack, auth: DevAuth) -> Router {
    stack.router(auth).merge(dashboard::routes())
}
