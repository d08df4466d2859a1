//! The domain's errors: why the ledger refused an operation (a value that did not parse is a
//! [`FieldError`], in `field`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::field::FieldError;
use crate::ids::AccountId;

/// A business rule that refused a transfer. Stable, machine-readable: `code()` is part of the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum RuleViolation {
    /// Debit and credit name the same account.
    SameAccount,
    /// One of the two accounts does not exist (in this tenant).
    AccountNotFound { account_id: AccountId },
    /// An account's currency differs from the transfer's.
    CurrencyMismatch { account_id: AccountId },
    /// The debit would take an account without overdraft below zero.
    InsufficientFunds { account_id: AccountId },
    /// A posted total would leave the range the ledger can store (see `money::POSTED_LIMIT`).
    BalanceLimitExceeded { account_id: AccountId },
}

impl RuleViolation {
    pub fn code(&self) -> &'static str {
        match self {
            Self::SameAccount => "same_account",
            Self::AccountNotFound { .. } => "account_not_found",
            Self::CurrencyMismatch { .. } => "currency_mismatch",
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::BalanceLimitExceeded { .. } => "balance_limit_exceeded",
        }
    }

    /// The account the rule is about, if it is about one.
    pub fn account_id(&self) -> Option<&AccountId> {
        match self {
            Self::SameAccount => None,
            Self::AccountNotFound { account_id }
            | Self::CurrencyMismatch { account_id }
            | Self::InsufficientFunds { account_id }
            | Self::BalanceLimitExceeded { account_id } => Some(account_id),
        }
    }
}

impl fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SameAccount => f.write_str("the debit and credit accounts are the same"),
            Self::AccountNotFound { account_id } => write!(f, "account {account_id} does not exist"),
            Self::CurrencyMismatch { account_id } => {
                write!(f, "account {account_id} holds another currency than the transfer")
            }
            Self::InsufficientFunds { account_id } => {
                write!(f, "account {account_id} does not allow overdraft and lacks the funds")
            }
            Self::BalanceLimitExceeded { account_id } => {
                write!(f, "account {account_id} would exceed the largest storable total")
            }
        }
    }
}

/// Everything the ledger can refuse, independent of where the request came from or where data lives.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("{field}: {error}")]
    InvalidField { field: String, error: FieldError },
    #[error("{0}")]
    Rejected(RuleViolation),
    /// The id exists with other fields: the request is not a replay of the original.
    #[error("the id exists with different values for: {}", fields.join(", "))]
    IdempotencyConflict { fields: Vec<String> },
    /// A batch names a transfer id that another submission has queued and not applied yet.
    #[error("transfer {id} is queued by another submission and not applied yet; post again once it is")]
    InFlight { id: String },
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
}

impl LedgerError {
    pub fn invalid(field: impl Into<String>, error: FieldError) -> Self {
        Self::InvalidField { field: field.into(), error }
    }
}

impl From<RuleViolation> for LedgerError {
    fn from(rule: RuleViolation) -> Self {
        Self::Rejected(rule)
    }
}
