//! Where a test's backend runs: in process (`MemoryStack`: the memory store and queues, the fast
//! tier) or on the emulators (`EmulatedStack`: DynamoDB Local and moto, shaped by template.yaml). The
//! scenarios (`scenarios`) and the store contract (`contract`) run on either.

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use ledger::port::{Store, StoreError, Sweep};
use ledger_http::AppState;
use time::OffsetDateTime;

use crate::faults::Faults;

#[async_trait]
pub trait Backend: Clone + Send + Sync + 'static {
    /// The store the functions use.
    fn store(&self) -> Arc<dyn Store>;

    /// What the API's handlers share, as the API function builds it.
    fn state(&self) -> AppState;

    /// The faults injected (the gateway's, for a router in front of this backend).
    fn faults(&self) -> Arc<Faults>;

    /// Invokes the worker, as the queue's event source would, until nothing is queued. Returns
    /// how many messages it handled.
    async fn settle_queued(&self) -> io::Result<usize>;

    /// Runs the hold sweeper once, as its schedule would, with the clock at `now`.
    async fn sweep(&self, now: OffsetDateTime) -> Result<Sweep, StoreError> {
        sweeper::handle(self.store().as_ref(), now).await
    }
}
