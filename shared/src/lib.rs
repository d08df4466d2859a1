//! The ledger's domain: accounts, transfers, money, the double-entry rules and their errors.
//!
//! Pure: no I/O, no clock (callers pass `now`), no AWS types. Adapters translate at the edges.

pub mod account;
pub mod batch;
pub mod error;
pub mod event;
pub mod field;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod ids;
pub mod linked;
pub mod metadata;
pub mod money;
pub mod plan;
pub mod posting;
pub mod rate;
pub mod transfer;
pub mod webhook;

pub use account::{Account, AccountBalance, NewAccount};
pub use batch::{Batch, BatchCounts, Submission, TransferBatch};
pub use error::{LedgerError, RuleSubject, RuleViolation};
pub use event::{Event, EventId, EventObject, EventType};
pub use field::FieldError;
pub use ids::{AccountId, BatchId, EndpointId, TenantId, TransferId};
pub use metadata::Metadata;
pub use money::{Amount, Balances, Currency, Effect};
pub use plan::{Decision, Planner};
pub use posting::{Direction, Entry, apply};
pub use rate::{RateLimit, Verdict};
pub use transfer::{
    MAX_REVERSALS, Movement, NewTransfer, Reversal, Timeout, Transfer, TransferFields, TransferKind,
    TransferStatus,
};
