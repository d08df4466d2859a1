//! The ledger's store on DynamoDB. One table (key design in `keys`); a transfer is one conditional
//! TransactWriteItems decided by the one engine (`engine`) every route shares; every call is
//! tenant-scoped by its keys.

mod accounts;
mod balance_cache;
mod batches;
mod cancel;
pub mod client;
mod engine;
mod error;
pub mod events;
mod expiry;
mod history;
pub mod items;
pub mod keys;
mod limits;
mod queued;
mod reads;
mod retry;
mod transfers;
pub mod webhooks;

pub use batches::{BatchRecord, BatchStatus};
pub use engine::{MAX_TRANSACTION_BYTES, MAX_TRANSACTION_ITEMS};
pub use error::StoreError;
pub use events::{EventFilter, EventPosition, StoredEvent};
pub use expiry::{Sweep, listing as expiry_listing};
pub use history::{BalanceAt, Statement};
pub use keys::EntryPosition;
pub use limits::{Admission, TenantLimits};
pub use queued::{BatchRun, Settled};
pub use transfers::CONTENTION_BUDGET;

use std::sync::Arc;

use aws_sdk_dynamodb::Client;

/// The result of an idempotent create: either it wrote a new item, or the id already held an
/// identical request and this is a replay of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created<T> {
    New(T),
    Replayed(T),
}

impl<T> Created<T> {
    pub fn value(&self) -> &T {
        match self {
            Created::New(v) | Created::Replayed(v) => v,
        }
    }

    pub fn is_replay(&self) -> bool {
        matches!(self, Created::Replayed(_))
    }
}

/// One page of a list, and where the next starts (`None`: this was the last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// The DynamoDB-backed ledger store. Cheap to clone (clones share the balance cache); build it once
/// at init.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    balances: Arc<balance_cache::BalanceCache>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), balances: Arc::default() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}
