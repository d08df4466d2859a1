//! The business rules that refuse a transfer: stable, machine-readable codes that are part of the
//! API, and what each names.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, TransferId};

/// How many reversals one transfer can have: its record lists them all, and stays small.
pub const MAX_REVERSALS: usize = 100;

/// A business rule that refused a transfer (or an account change). Stable, machine-readable:
/// `code()` is part of the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum RuleViolation {
    /// Debit and credit name the same account.
    SameAccount,
    /// One of the two accounts does not exist (in this tenant).
    AccountNotFound {
        account_id: AccountId,
    },
    /// An account's currency differs from the transfer's.
    CurrencyMismatch {
        account_id: AccountId,
    },
    /// The debit would take an account without overdraft below zero.
    InsufficientFunds {
        account_id: AccountId,
    },
    /// A posted total would leave the range the ledger can store (see `money::POSTED_LIMIT`).
    BalanceLimitExceeded {
        account_id: AccountId,
    },
    /// The credit would take the account above its `max_balance` (pending credits counted).
    MaxBalanceExceeded {
        account_id: AccountId,
    },
    /// The account is frozen: nothing may leave it (or, frozen whole, enter it).
    AccountFrozen {
        account_id: AccountId,
    },
    /// The account is closed: nothing may enter or leave it, and it cannot change.
    AccountClosed {
        account_id: AccountId,
    },
    /// An account is closed only at a zero balance with nothing pending.
    AccountNotEmpty {
        account_id: AccountId,
    },
    /// An imported transfer's `effective_at` is later than the instant it is decided at.
    EffectiveAtInFuture,
    /// An imported transfer's `effective_at` is before the account's latest entry (or its
    /// opening): each account's history is imported in time order.
    EffectiveAtBeforeLatestEntry {
        account_id: AccountId,
    },
    /// A post or void names no hold of this tenant that is applied (absent, or still queued).
    PendingNotFound {
        pending_id: TransferId,
    },
    /// A post or void names a transfer that is not a hold (or a hold that was rejected).
    NotPending {
        pending_id: TransferId,
    },
    /// A post asks for more than the hold holds.
    ExceedsPendingAmount {
        pending_id: TransferId,
    },
    PendingAlreadyPosted {
        pending_id: TransferId,
    },
    PendingAlreadyVoided {
        pending_id: TransferId,
    },
    /// The hold's timeout passed: it is released and can be neither posted nor voided.
    PendingExpired {
        pending_id: TransferId,
    },
    /// A reversal names no transfer of this tenant that is applied (absent, or still queued).
    ReversedTransferNotFound {
        #[serde(rename = "reversed_transfer_id")]
        reversed_id: TransferId,
    },
    /// A reversal names a transfer that posted nothing it could move back: a rejected transfer, a
    /// hold (reverse the post that resolved it), a void, or another reversal.
    NotReversible {
        #[serde(rename = "reversed_transfer_id")]
        reversed_id: TransferId,
    },
    /// A reversal asks for more than the transfer posted less what is reversed already.
    ExceedsReversibleAmount {
        #[serde(rename = "reversed_transfer_id")]
        reversed_id: TransferId,
    },
    /// The transfer has `transfer::MAX_REVERSALS` reversals already.
    TooManyReversals {
        #[serde(rename = "reversed_transfer_id")]
        reversed_id: TransferId,
    },
    /// Another transfer of the same linked chain was refused, so none of the chain applies.
    LinkedFailed,
}

impl RuleViolation {
    /// Every rule code, once.
    pub const CODES: [&'static str; 22] = [
        "same_account",
        "account_not_found",
        "currency_mismatch",
        "insufficient_funds",
        "balance_limit_exceeded",
        "max_balance_exceeded",
        "account_frozen",
        "account_closed",
        "account_not_empty",
        "effective_at_in_future",
        "effective_at_before_latest_entry",
        "pending_not_found",
        "not_pending",
        "exceeds_pending_amount",
        "pending_already_posted",
        "pending_already_voided",
        "pending_expired",
        "reversed_transfer_not_found",
        "not_reversible",
        "exceeds_reversible_amount",
        "too_many_reversals",
        "linked_failed",
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Self::SameAccount => "same_account",
            Self::AccountNotFound { .. } => "account_not_found",
            Self::CurrencyMismatch { .. } => "currency_mismatch",
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::BalanceLimitExceeded { .. } => "balance_limit_exceeded",
            Self::MaxBalanceExceeded { .. } => "max_balance_exceeded",
            Self::AccountFrozen { .. } => "account_frozen",
            Self::AccountClosed { .. } => "account_closed",
            Self::AccountNotEmpty { .. } => "account_not_empty",
            Self::EffectiveAtInFuture => "effective_at_in_future",
            Self::EffectiveAtBeforeLatestEntry { .. } => "effective_at_before_latest_entry",
            Self::PendingNotFound { .. } => "pending_not_found",
            Self::NotPending { .. } => "not_pending",
            Self::ExceedsPendingAmount { .. } => "exceeds_pending_amount",
            Self::PendingAlreadyPosted { .. } => "pending_already_posted",
            Self::PendingAlreadyVoided { .. } => "pending_already_voided",
            Self::PendingExpired { .. } => "pending_expired",
            Self::ReversedTransferNotFound { .. } => "reversed_transfer_not_found",
            Self::NotReversible { .. } => "not_reversible",
            Self::ExceedsReversibleAmount { .. } => "exceeds_reversible_amount",
            Self::TooManyReversals { .. } => "too_many_reversals",
            Self::LinkedFailed => "linked_failed",
        }
    }

    /// The account the rule is about, if it is about one.
    pub fn account_id(&self) -> Option<&AccountId> {
        match self {
            Self::AccountNotFound { account_id }
            | Self::CurrencyMismatch { account_id }
            | Self::InsufficientFunds { account_id }
            | Self::BalanceLimitExceeded { account_id }
            | Self::MaxBalanceExceeded { account_id }
            | Self::AccountFrozen { account_id }
            | Self::AccountClosed { account_id }
            | Self::AccountNotEmpty { account_id }
            | Self::EffectiveAtBeforeLatestEntry { account_id } => Some(account_id),
            _ => None,
        }
    }

    /// The account whose pending amounts the refusal counts, if it counts any: its available
    /// balance (less pending debits, and so less every hold out of it) or its balance with pending
    /// credits (and so every hold into it). A hold past its time must not count: it is released
    /// before such a refusal stands.
    pub fn counts_pending_of(&self) -> Option<&AccountId> {
        match self {
            Self::InsufficientFunds { account_id }
            | Self::MaxBalanceExceeded { account_id }
            | Self::AccountNotEmpty { account_id } => Some(account_id),
            _ => None,
        }
    }

    /// The hold the rule is about, if it is about one.
    pub fn pending_id(&self) -> Option<&TransferId> {
        match self {
            Self::PendingNotFound { pending_id }
            | Self::NotPending { pending_id }
            | Self::ExceedsPendingAmount { pending_id }
            | Self::PendingAlreadyPosted { pending_id }
            | Self::PendingAlreadyVoided { pending_id }
            | Self::PendingExpired { pending_id } => Some(pending_id),
            _ => None,
        }
    }

    /// The transfer a reversal rule is about.
    pub fn reversed_id(&self) -> Option<&TransferId> {
        match self {
            Self::ReversedTransferNotFound { reversed_id }
            | Self::NotReversible { reversed_id }
            | Self::ExceedsReversibleAmount { reversed_id }
            | Self::TooManyReversals { reversed_id } => Some(reversed_id),
            _ => None,
        }
    }

    /// The rule of `code` about its subject (an account, a hold or a reversed transfer, whichever
    /// it is about): how a stored rejection is read back. `None` if the code is unknown or its
    /// subject is missing.
    pub fn from_code(code: &str, subject: RuleSubject) -> Option<Self> {
        let RuleSubject { account, pending, reversed } = subject;
        Some(match code {
            "same_account" => Self::SameAccount,
            "account_not_found" => Self::AccountNotFound { account_id: account? },
            "currency_mismatch" => Self::CurrencyMismatch { account_id: account? },
            "insufficient_funds" => Self::InsufficientFunds { account_id: account? },
            "balance_limit_exceeded" => Self::BalanceLimitExceeded { account_id: account? },
            "max_balance_exceeded" => Self::MaxBalanceExceeded { account_id: account? },
            "account_frozen" => Self::AccountFrozen { account_id: account? },
            "account_closed" => Self::AccountClosed { account_id: account? },
            "account_not_empty" => Self::AccountNotEmpty { account_id: account? },
            "effective_at_in_future" => Self::EffectiveAtInFuture,
            "effective_at_before_latest_entry" => Self::EffectiveAtBeforeLatestEntry { account_id: account? },
            "pending_not_found" => Self::PendingNotFound { pending_id: pending? },
            "not_pending" => Self::NotPending { pending_id: pending? },
            "exceeds_pending_amount" => Self::ExceedsPendingAmount { pending_id: pending? },
            "pending_already_posted" => Self::PendingAlreadyPosted { pending_id: pending? },
            "pending_already_voided" => Self::PendingAlreadyVoided { pending_id: pending? },
            "pending_expired" => Self::PendingExpired { pending_id: pending? },
            "reversed_transfer_not_found" => Self::ReversedTransferNotFound { reversed_id: reversed? },
            "not_reversible" => Self::NotReversible { reversed_id: reversed? },
            "exceeds_reversible_amount" => Self::ExceedsReversibleAmount { reversed_id: reversed? },
            "too_many_reversals" => Self::TooManyReversals { reversed_id: reversed? },
            "linked_failed" => Self::LinkedFailed,
            _ => return None,
        })
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
                write!(f, "account {account_id} lacks the funds (its overdraft limit included)")
            }
            Self::BalanceLimitExceeded { account_id } => {
                write!(f, "account {account_id} would exceed the largest storable total")
            }
            Self::MaxBalanceExceeded { account_id } => write!(
                f,
                "account {account_id} would hold more than its max_balance (pending credits counted)"
            ),
            Self::AccountFrozen { account_id } => write!(f, "account {account_id} is frozen"),
            Self::AccountClosed { account_id } => write!(f, "account {account_id} is closed"),
            Self::EffectiveAtInFuture => f.write_str("effective_at is in the future"),
            Self::EffectiveAtBeforeLatestEntry { account_id } => write!(
                f,
                "effective_at is before the latest entry (or the opening) of account {account_id}: import each \
                 account's history in time order"
            ),
            Self::AccountNotEmpty { account_id } => write!(
                f,
                "account {account_id} has a balance or pending holds: it can be closed only at zero with \
                 nothing pending"
            ),
            Self::PendingNotFound { pending_id } => write!(f, "no applied hold {pending_id} exists"),
            Self::NotPending { pending_id } => {
                write!(f, "transfer {pending_id} is not a hold (pending: true) that was applied")
            }
            Self::ExceedsPendingAmount { pending_id } => {
                write!(f, "the amount exceeds what hold {pending_id} holds")
            }
            Self::PendingAlreadyPosted { pending_id } => write!(f, "hold {pending_id} is already posted"),
            Self::PendingAlreadyVoided { pending_id } => write!(f, "hold {pending_id} is already voided"),
            Self::PendingExpired { pending_id } => write!(f, "hold {pending_id} has expired"),
            Self::ReversedTransferNotFound { reversed_id } => {
                write!(f, "no applied transfer {reversed_id} exists")
            }
            Self::NotReversible { reversed_id } => write!(
                f,
                "transfer {reversed_id} posted nothing a reversal can move back (only committed transfers \
                 and posts of holds can be reversed)"
            ),
            Self::ExceedsReversibleAmount { reversed_id } => {
                write!(f, "the amount exceeds what remains of transfer {reversed_id} to reverse")
            }
            Self::TooManyReversals { reversed_id } => write!(
                f,
                "transfer {reversed_id} has {} reversals, the most a transfer can have",
                MAX_REVERSALS
            ),
            Self::LinkedFailed => {
                f.write_str("another transfer of its linked chain was refused, so none of the chain applies")
            }
        }
    }
}

/// What a stored rule names, by kind: see [`RuleViolation::from_code`].
#[derive(Clone, Debug, Default)]
pub struct RuleSubject {
    pub account: Option<AccountId>,
    pub pending: Option<TransferId>,
    pub reversed: Option<TransferId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_code_is_listed_once_and_parses_back_to_itself() {
        let id = || TransferId::parse("t-1").unwrap();
        let subject = || RuleSubject {
            account: Some(AccountId::parse("a-1").unwrap()),
            pending: Some(id()),
            reversed: Some(id()),
        };
        let mut seen = std::collections::BTreeSet::new();
        for code in RuleViolation::CODES {
            assert!(seen.insert(code), "{code} twice");
            assert_eq!(RuleViolation::from_code(code, subject()).map(|r| r.code()), Some(code));
        }
    }
}
