//! Both queues in memory: what the API and the publisher send, kept in order until a test or the
//! local tools take it (and hand it to the worker or the deliverer).

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use ledger::port::{DeliveryJob, QueueError, TransferQueue, WebhookQueue, Work};

#[derive(Clone, Debug, Default)]
pub struct MemoryQueues {
    work: Arc<Mutex<Vec<Work>>>,
    jobs: Arc<Mutex<Vec<DeliveryJob>>>,
}

impl MemoryQueues {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message of the transfer queue sent so far and not taken, in order.
    pub fn take_work(&self) -> Vec<Work> {
        std::mem::take(&mut *self.work.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Every delivery job queued so far and not taken, in order.
    pub fn take_jobs(&self) -> Vec<DeliveryJob> {
        std::mem::take(&mut *self.jobs.lock().unwrap_or_else(PoisonError::into_inner))
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
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(jobs);
        Ok(())
    }
}
