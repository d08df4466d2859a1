//! The backend in process: the memory store and queues (`ledger-memory`), the API's router, and the
//! worker's handler invoked on what the API queued. No emulator, no network: the fast tier.

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use ledger::port::{Store, Work};
use ledger::webhook::UrlPolicy;
use ledger_http::AppState;
use ledger_memory::{MemoryQueues, MemoryStore};

use crate::backend::Backend;
use crate::faults::{FaultPlan, Faults};

/// The worker function's `Timeout` (template.yaml): how long each of its runs here may take.
const WORKER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Rounds of the worker before a drain gives up: messages a round could not settle (a batch
/// waiting for another submission's transfer) come back in the next.
const MAX_ROUNDS: usize = 100;

#[derive(Clone)]
pub struct MemoryStack {
    pub store: Arc<dyn Store>,
    pub queues: MemoryQueues,
    pub tenant_claim: String,
    pub tenant_limit: Option<ledger::RateLimit>,
    /// The API's clock (`None`: the system's).
    pub clock: Option<ledger_http::Clock>,
    faults: Arc<Faults>,
}

impl Default for MemoryStack {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStack {
    pub fn new() -> Self {
        Self {
            store: Arc::new(MemoryStore::new()),
            queues: MemoryQueues::new(),
            tenant_claim: ledger_config::DEFAULT_TENANT_CLAIM.to_owned(),
            tenant_limit: None,
            clock: None,
            faults: Arc::new(Faults::new(FaultPlan::none())),
        }
    }

    /// This stack with every tenant held to `limit`, on the API's `clock`.
    pub fn with_limit(mut self, limit: ledger::RateLimit, clock: ledger_http::Clock) -> Self {
        self.tenant_limit = Some(limit);
        self.clock = Some(clock);
        self
    }
}

/// An SQS event of `work`, one record each, as the event source hands the worker its messages.
pub fn sqs_event(work: &[Work]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = work
        .iter()
        .enumerate()
        .map(|(i, work)| {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("m{i}"));
            record.body = serde_json::to_string(work).ok();
            record
        })
        .collect();
    event
}

#[async_trait]
impl Backend for MemoryStack {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    fn state(&self) -> AppState {
        let queues = Arc::new(self.queues.clone());
        let state = AppState::new(self.store.clone(), queues.clone(), self.tenant_claim.clone())
            .with_rate_limit(self.tenant_limit)
            .with_webhooks(queues, UrlPolicy::LOCAL, Arc::new(ledger_kms::LocalSealer::new()));
        match &self.clock {
            Some(clock) => state.with_clock(clock.clone()),
            None => state,
        }
    }

    fn faults(&self) -> Arc<Faults> {
        self.faults.clone()
    }

    async fn settle_queued(&self) -> io::Result<usize> {
        let mut handled = 0;
        for _ in 0..MAX_ROUNDS {
            let work = self.queues.take_work();
            if work.is_empty() {
                return Ok(handled);
            }
            handled += work.len();
            let deadline = std::time::Instant::now() + WORKER_TIMEOUT;
            let response =
                worker::handle(self.store.as_ref(), &self.queues, sqs_event(&work), deadline).await;
            for failure in response.batch_item_failures {
                let again = failure.item_identifier.trim_start_matches('m').parse::<usize>().ok();
                if let Some(work) = again.and_then(|i| work.get(i)) {
                    ledger::port::TransferQueue::send(&self.queues, work).await.map_err(io::Error::other)?;
                }
            }
        }
        Err(io::Error::other("the worker kept failing the queued work"))
    }
}
