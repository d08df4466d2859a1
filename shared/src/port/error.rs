//! The port's one error type: what any store answers when an operation did not happen.

use crate::error::LedgerError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The ledger refused the operation: the caller's request is at fault.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The store stayed throttled or unreachable through every retry, or the items stayed contended
    /// past the engine's budget: the same request may succeed later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A stored item does not parse: a fault of the store, never of the request.
    #[error("corrupt item: {0}")]
    Corrupt(String),
    /// Anything else the store answered that the code does not expect.
    #[error("unexpected store error: {0}")]
    Unexpected(String),
}

impl StoreError {
    /// `what` `id` does not exist (for this tenant).
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        LedgerError::NotFound { what, id: id.to_string() }.into()
    }

    /// Whether the ledger answered that something does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::Ledger(LedgerError::NotFound { .. }))
    }
}
