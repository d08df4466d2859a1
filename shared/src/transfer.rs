//! Transfers: what a client asks to move, and what the ledger records about it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::RuleViolation;
use crate::ids::{AccountId, TransferId};
use crate::metadata::Metadata;
use crate::money::{Amount, Currency};

/// A request to move `amount` from the debit account to the credit account. Its id is the
/// idempotency key of the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTransfer {
    pub id: TransferId,
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    pub amount: Amount,
    pub currency: Currency,
    #[serde(default)]
    pub metadata: Metadata,
}

/// What became of a transfer. A rejected transfer's id is spent: the ledger records the rejection
/// once and answers every retry of the same request with it (as TigerBeetle and Stripe do).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TransferStatus {
    /// Accepted for asynchronous application and not applied yet.
    Queued,
    Committed,
    Rejected {
        reason: RuleViolation,
    },
}

/// A transfer as the ledger records it. Immutable once written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    #[serde(flatten)]
    pub request: NewTransfer,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(flatten)]
    pub status: TransferStatus,
}

impl NewTransfer {
    /// The rules that need no account: checked before any read.
    pub fn check_static(&self) -> Result<(), RuleViolation> {
        if self.debit_account_id == self.credit_account_id {
            return Err(RuleViolation::SameAccount);
        }
        Ok(())
    }

    /// The client-supplied fields on which `existing` differs from this request, in a fixed order.
    /// Empty means the request replays the one that created `existing`.
    pub fn differing_fields(&self, existing: &NewTransfer) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.debit_account_id != existing.debit_account_id {
            fields.push("debit_account_id");
        }
        if self.credit_account_id != existing.credit_account_id {
            fields.push("credit_account_id");
        }
        if self.amount != existing.amount {
            fields.push("amount");
        }
        if self.currency != existing.currency {
            fields.push("currency");
        }
        if self.metadata != existing.metadata {
            fields.push("metadata");
        }
        fields
    }

    pub fn committed(self, now: OffsetDateTime) -> Transfer {
        Transfer { request: self, created_at: now, status: TransferStatus::Committed }
    }

    pub fn queued(self, now: OffsetDateTime) -> Transfer {
        Transfer { request: self, created_at: now, status: TransferStatus::Queued }
    }

    pub fn rejected(self, reason: RuleViolation, now: OffsetDateTime) -> Transfer {
        Transfer { request: self, created_at: now, status: TransferStatus::Rejected { reason } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(debit: &str, credit: &str, amount: u64) -> NewTransfer {
        crate::fixtures::transfer("t1", debit, credit, amount)
    }

    #[test]
    fn same_account_is_refused_before_any_read() {
        assert_eq!(transfer("a", "a", 1).check_static(), Err(RuleViolation::SameAccount));
        assert_eq!(transfer("a", "b", 1).check_static(), Ok(()));
    }

    #[test]
    fn differing_fields_names_each_change() {
        let original = transfer("a", "b", 5);
        assert!(original.differing_fields(&original.clone()).is_empty());
        let other = transfer("b", "a", 6);
        assert_eq!(
            other.differing_fields(&original),
            vec!["debit_account_id", "credit_account_id", "amount"]
        );
    }

    #[test]
    fn serialises_flat_with_status() {
        let t = transfer("a", "b", 5).rejected(RuleViolation::SameAccount, OffsetDateTime::UNIX_EPOCH);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["status"], "rejected");
        assert_eq!(json["reason"]["code"], "same_account");
        assert_eq!(json["amount"], 5);
        let back: Transfer = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
    }
}
