//! Both queues in memory. The transfer queue's messages are kept in order until the fast tier takes
//! them for the worker (`take_work`); the webhook queue's messages are kept, as a queue would, with
//! no deliverer behind them (webhook delivery runs on the emulators).

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use ledger::port::{DeliveryJob, FanOut, QueueError, TransferQueue, WebhookMessage, WebhookQueue, Work};

#[derive(Clone, Debug, Default)]
pub struct MemoryQueues {
    work: Arc<Mutex<Vec<Work>>>,
    webhooks: Arc<Mutex<Vec<WebhookMessage>>>,
}

impl MemoryQueues {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message of the transfer queue sent so far and not taken, in order.
    pub fn take_work(&self) -> Vec<Work> {
        std::mem::take(&mut *self.work.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl TransferQueue for MemoryQueues {
    async fn send(&self, work: &Work) -> Result<(), QueueError> {
        self.work.lock().unwrap_or_else(PoisonError::into_inner).push(work.clone());
        Ok(())
    }
}

#[async_trait]
impl WebhookQueue for MemoryQueues {
    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<(), QueueError> {
        let messages = jobs.iter().cloned().map(WebhookMessage::Deliver);
        self.webhooks.lock().unwrap_or_else(PoisonError::into_inner).extend(messages);
        Ok(())
    }

    async fn fan_out(&self, events: &[FanOut]) -> Result<(), QueueError> {
        let messages = events.iter().cloned().map(WebhookMessage::FanOut);
        self.webhooks.lock().unwrap_or_else(PoisonError::into_inner).extend(messages);
        Ok(())
    }
}
