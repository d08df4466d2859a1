//! Local tooling: the emulator, tables created from template.yaml, development tokens, and the
//! pieces the one-command local stack (`devstack`) and the tests share.

pub mod auth;
pub mod bench;
pub mod dashboard;
pub mod dlq;
pub mod emf;
pub mod emulator;
pub mod load;
pub mod paths;
pub mod poller;
pub mod queues;
pub mod setup;
pub mod template;
pub mod throttle;

use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use ledger_dynamodb::DynamoStore;
use ledger_http::AppState;
use ledger_sqs::TransferQueue;

pub use auth::DevAuth;
pub use emulator::Emulator;

/// The template's logical id of the ledger table.
pub const LEDGER_TABLE: &str = "LedgerTable";

/// Creates the ledger table under `name` in the emulator, shaped as template.yaml declares it.
pub async fn create_ledger_table(emulator: &Emulator, name: &str) -> std::io::Result<DynamoStore> {
    let client = emulator.dynamodb().await;
    template::table(&paths::template(), LEDGER_TABLE)?.create(&client, name).await?;
    Ok(DynamoStore::new(client, name))
}

/// The whole backend's state in the emulator: the table, the queues, and the worker's event source.
#[derive(Clone)]
pub struct Stack {
    pub store: DynamoStore,
    pub queue: TransferQueue,
    pub dead_letter_url: String,
    pub sqs: aws_sdk_sqs::Client,
    pub event_source: queues::EventSourceSpec,
}

impl Stack {
    /// Creates the table and the queues, shaped as template.yaml declares them, named with `prefix`.
    pub async fn create(
        emulator: &Emulator,
        prefix: &str,
        visibility_override: Option<u64>,
    ) -> std::io::Result<Stack> {
        let template = paths::template();
        let store = create_ledger_table(emulator, prefix).await?;
        let sqs = aws_sdk_sqs::Client::new(&emulator.sdk_config().await);
        let created = queues::queue(&template, queues::TRANSFER_QUEUE)?
            .create(&sqs, &template, prefix, visibility_override)
            .await?;
        let dead_letter_url =
            created.dead_letter_url.ok_or_else(|| std::io::Error::other("the transfer queue has no DLQ"))?;
        Ok(Stack {
            store,
            queue: TransferQueue::new(sqs.clone(), created.url),
            dead_letter_url,
            sqs,
            event_source: queues::event_source(&template, queues::WORKER_FUNCTION)?,
        })
    }

    pub fn state(&self) -> AppState {
        AppState::new(self.store.clone(), self.queue.clone())
    }

    /// The worker fed from the transfer queue, as Lambda's event source mapping would.
    pub fn worker(&self) -> poller::LocalEventSource {
        poller::LocalEventSource {
            client: self.sqs.clone(),
            queue_url: self.queue.url().to_owned(),
            spec: self.event_source,
        }
    }
}

/// A stack of its own for one test, in the process's shared emulator: tests run in parallel without
/// seeing each other's data. Queues get a 2 s visibility timeout so redeliveries happen in test time.
pub async fn fresh_stack() -> Stack {
    fresh_stack_with_visibility(2).await
}

/// As `fresh_stack`, with the queue's visibility timeout in seconds.
pub async fn fresh_stack_with_visibility(seconds: u64) -> Stack {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!("ledger-test-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    match Stack::create(Emulator::shared(), &name, Some(seconds)).await {
        Ok(stack) => stack,
        Err(err) => panic!("cannot create the stack {name}: {err}"),
    }
}

/// A ledger table of its own for one test (see `fresh_stack`).
pub async fn fresh_store() -> DynamoStore {
    fresh_stack().await.store
}

/// The API router as the local stack serves it: API Gateway's JWT check in front of the same router
/// the Lambda function runs, inside what the Lambda runtime adds around an invocation (a span with
/// its request id, a metrics flush after it).
pub fn local_router(state: AppState, auth: DevAuth) -> Router {
    ledger_http::router(state)
        .layer(axum::middleware::from_fn_with_state(auth, auth::authorize))
        .layer(axum::middleware::from_fn(dashboard::flush_after))
        .layer(axum::middleware::from_fn(local_invocation))
}

/// The span lambda_runtime opens around each invocation, with a local request id.
async fn local_invocation(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let span = tracing::info_span!("Lambda runtime invoke", requestId = %uuid::Uuid::new_v4());
    next.run(request).instrument(span).await
}
