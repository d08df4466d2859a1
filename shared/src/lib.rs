//! The ledger's domain: accounts, transfers, money, the double-entry rules and their errors; the
//! store's port (`port`), and the one engine (`engine`) that runs every transfer path against it.
//!
//! Pure: no I/O, no business clock (callers pass `now`), no AWS types. Adapters implement the port
//! and translate at the edges.

pub mod account;
pub mod account_change;
pub mod audit;
pub mod batch;
pub mod binding;
pub mod books;
pub mod chain;
pub mod digest;
pub mod engine;
pub mod error;
pub mod escrow;
pub mod event;
pub mod event_type;
pub mod field;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod hash256;
pub mod ids;
pub mod linked;
pub mod merkle;
pub mod metadata;
pub mod money;
pub mod notarize;
pub mod plan;
pub mod port;
pub mod posting;
pub mod rate;
pub mod reconcile;
pub mod reconciler;
pub mod rule;
pub mod search;
pub mod shard;
pub mod transfer;
pub mod transfer_change;
pub mod webhook;

pub use account::{Account, AccountBalance, AccountStatus, AccountVersion, Bounds, NewAccount};
pub use account_change::{AccountChange, AccountUpdate};
pub use batch::{Batch, BatchCounts, Owner, Submission, TransferBatch};
pub use error::LedgerError;
pub use event::{Event, EventObject};
pub use event_type::{EventId, EventType};
pub use field::FieldError;
pub use ids::{AccountId, BatchId, EndpointId, TenantId, TransferId};
pub use metadata::Metadata;
pub use money::{Amount, Balances, Currency, Effect, Limit};
pub use plan::{Decision, Planner};
pub use posting::{Direction, Entry, apply};
pub use rate::{RateLimit, Verdict};
pub use rule::{RuleSubject, RuleViolation};
pub use search::{KindName, MetadataMatch, SearchIndex, SearchPosition, StatusName, TransferQuery};
pub use shard::{MAX_SHARDS, ShardCount};
pub use transfer::{
    MAX_REVERSALS, Movement, NewTransfer, Reversal, Timeout, Transfer, TransferFields, TransferKind,
    TransferStatus,
};
