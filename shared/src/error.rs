//! The domain's errors: why the ledger refused an operation (a value that did not parse is a
//! [`FieldError`], in `field`; a business rule that refused a transfer is a [`RuleViolation`], in
//! `rule`).

use crate::field::FieldError;
use crate::ids::TransferId;
use crate::rule::RuleViolation;
use crate::transfer::Transfer;

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
    /// The client's copy of the resource (`If-Match`) is not its current version.
    #[error("{what} {id} changed since the version the request names (If-Match); read it again")]
    PreconditionFailed { what: &'static str, id: String },
    /// A change that must name the version it changes (`If-Match`) did not.
    #[error("this change must name the version it changes: send If-Match with the resource's ETag")]
    PreconditionRequired,
    /// The tenant has as many of `what` as it may (`limit`): nothing was written.
    #[error("the tenant has {limit} {what}, the most it may have: delete one first")]
    LimitReached { what: &'static str, limit: usize },
    /// A linked chain was refused: `transfer_id` by `rule`, the others `linked_failed`; `transfers`
    /// is every member as recorded.
    #[error("transfer {transfer_id} of the linked chain was refused ({rule}), so none of the chain applies")]
    ChainRejected { transfer_id: TransferId, rule: RuleViolation, transfers: Vec<Transfer> },
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
