//! Accounts: what a client asks to open, and what the ledger holds.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::AccountId;
use crate::metadata::Metadata;
use crate::money::{Balances, Currency};

/// A request to open an account. Its id is the idempotency key of the request. Its JSON is the
/// API's request body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewAccount {
    pub id: AccountId,
    pub currency: Currency,
    pub allow_overdraft: bool,
    pub metadata: Metadata,
}

/// An account as the ledger holds it. Its JSON is the API's (and its events'): the totals with the
/// balance and what is available, without the internal version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub currency: Currency,
    pub allow_overdraft: bool,
    pub metadata: Metadata,
    pub created_at: OffsetDateTime,
    pub balances: Balances,
    /// How many entries the account has (see [`AccountBalance::entry_count`]).
    pub entry_count: u64,
}

/// The part of an account a transfer reads and changes: the rule inputs (immutable) and the totals.
/// Stored apart from the account's descriptive fields, so a transfer never rewrites those.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalance {
    pub id: AccountId,
    pub currency: Currency,
    pub allow_overdraft: bool,
    #[serde(flatten)]
    pub balances: Balances,
    /// How many entries the account has: the sequence number of its latest entry. It versions the
    /// balance, so a write conditioned on it cannot race another.
    pub entry_count: u64,
    /// The instant its latest entry took effect (before any: when it was opened): the next one
    /// takes effect no earlier, so the account's history is in time order as it is in sequence
    /// order, and never begins before the account (see `posting::apply`).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_entry_at: Option<OffsetDateTime>,
}

#[derive(Serialize)]
struct AccountView<'a> {
    id: &'a AccountId,
    currency: Currency,
    allow_overdraft: bool,
    metadata: &'a Metadata,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    debits_pending: u128,
    debits_posted: u128,
    credits_pending: u128,
    credits_posted: u128,
    balance: i128,
    /// The balance less pending debits: what the account may still spend without overdraft.
    available: i128,
}

impl Serialize for Account {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let b = &self.balances;
        AccountView {
            id: &self.id,
            currency: self.currency,
            allow_overdraft: self.allow_overdraft,
            metadata: &self.metadata,
            created_at: self.created_at,
            debits_pending: b.debits_pending,
            debits_posted: b.debits_posted,
            credits_pending: b.credits_pending,
            credits_posted: b.credits_posted,
            balance: b.balance(),
            available: b.available(),
        }
        .serialize(serializer)
    }
}

impl Account {
    pub fn balance_state(&self) -> AccountBalance {
        AccountBalance {
            id: self.id.clone(),
            currency: self.currency,
            allow_overdraft: self.allow_overdraft,
            balances: self.balances,
            entry_count: self.entry_count,
            last_entry_at: Some(self.created_at),
        }
    }
}

impl NewAccount {
    pub fn open(self, now: OffsetDateTime) -> Account {
        Account {
            id: self.id,
            currency: self.currency,
            allow_overdraft: self.allow_overdraft,
            metadata: self.metadata,
            created_at: now,
            balances: Balances::default(),
            entry_count: 0,
        }
    }

    /// The client-supplied fields on which `existing` differs from this request, in a fixed order.
    /// Empty means the request replays the one that created `existing`.
    pub fn differing_fields(&self, existing: &Account) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.currency != existing.currency {
            fields.push("currency");
        }
        if self.allow_overdraft != existing.allow_overdraft {
            fields.push("allow_overdraft");
        }
        if self.metadata != existing.metadata {
            fields.push("metadata");
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn new_account() -> NewAccount {
        NewAccount {
            id: AccountId::parse("a").unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            allow_overdraft: false,
            metadata: Metadata::default(),
        }
    }

    #[test]
    fn opens_with_zero_balances() {
        let account = new_account().open(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(account.balances.balance(), 0);
        assert_eq!(account.entry_count, 0);
    }

    #[test]
    fn replay_has_no_differing_fields_and_changes_are_named() {
        let existing = new_account().open(OffsetDateTime::UNIX_EPOCH);
        assert!(new_account().differing_fields(&existing).is_empty());
        let mut changed = new_account();
        changed.currency = Currency::parse("USD").unwrap();
        changed.metadata = Metadata::parse(BTreeMap::from([("k".into(), "v".into())])).unwrap();
        assert_eq!(changed.differing_fields(&existing), vec!["currency", "metadata"]);
    }
}
