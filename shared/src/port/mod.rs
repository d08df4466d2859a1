//! The store's port: what the API, the functions and the tools need of storage and queues, as
//! traits grouped by use, with their result types. `ledger-dynamodb` implements them on one
//! DynamoDB table; `ledger-memory` implements them in process (the fast test tier's twin); one
//! contract suite (`harness::contract`, in `tools/harness/src/contract/`) holds both to the same
//! behaviour. Only a function's `main.rs` names a concrete store: everything else holds an
//! `Arc<dyn Store>`.
//!
//! The transfer paths (`Transfers`, `Settlement`) are not implemented by the stores themselves: a
//! store implements the engine's [`Book`](crate::engine::Book) (read what a plan needs, write its
//! steps under conditions) and gets them from the one engine.

mod accounts;
mod books;
mod error;
mod events;
mod limits;
mod notary;
mod queues;
mod reconciliations;
mod results;
mod sealer;
mod submissions;
mod transfers;
mod webhooks;

pub use accounts::{
    Accounts, BalanceAt, EntryPosition, Statement, StatementRange, check_balance_at, invalid,
};
pub use books::{Archive, CheckpointRef, Checkpoints, TenantBooks, checkpoint_key};
pub use error::StoreError;
pub use events::{EventFilter, EventPosition, Events, StoredEvent};
pub use limits::{BucketWrite, BucketWritten, Limits};
pub use notary::Notary;
pub use queues::{DeliveryJob, FanOut, QueueError, TransferQueue, WebhookMessage, WebhookQueue, Work};
pub use reconciliations::Reconciliations;
pub use results::{Created, Page};
pub use sealer::Sealer;
pub use submissions::{BatchRecord, BatchStatus, Submissions};
pub use transfers::{
    BatchRun, DryRun, Settled, Settlement, Sweep, TransferChanges, TransferSearch, Transfers,
};
pub use webhooks::{
    Attempt, Delivery, DeliveryPosition, DeliveryStatus, Lease, MAX_ATTEMPTS_KEPT, WebhookDeliveries,
    WebhookEndpoints,
};

/// Everything the ledger stores, as one object: what a function's `main.rs` builds once and hands
/// to its handler as `Arc<dyn Store>`.
pub trait Store:
    Accounts
    + Transfers
    + TransferSearch
    + TransferChanges
    + Submissions
    + Settlement
    + Events
    + WebhookEndpoints
    + WebhookDeliveries
    + Limits
    + Checkpoints
    + Reconciliations
    + std::fmt::Debug
{
}

impl<T> Store for T where
    T: Accounts
        + Transfers
        + TransferSearch
        + TransferChanges
        + Submissions
        + Settlement
        + Events
        + WebhookEndpoints
        + WebhookDeliveries
        + Limits
        + Checkpoints
        + Reconciliations
        + std::fmt::Debug
{
}
