//! Accounts: what a client asks to open, and what the ledger holds: its balances, and the policy
//! its balance obeys (its status and its bounds), which may change after it is opened.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::field::FieldError;
use crate::hash256::Hash256;
use crate::ids::AccountId;
use crate::metadata::Metadata;
use crate::money::{Balances, Currency, Limit};
use crate::shard::ShardCount;

/// A request to open an account. Its id is the idempotency key of the request. Its JSON is the
/// API's request body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewAccount {
    pub id: AccountId,
    pub currency: Currency,
    pub allow_overdraft: bool,
    pub metadata: Metadata,
    /// Its bounds from the start (`Bounds::check` holds).
    #[serde(flatten)]
    pub bounds: Bounds,
    /// Imported history: the past instant it was opened at (none: when it is created). Its
    /// imported transfers take effect no earlier.
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub effective_at: Option<OffsetDateTime>,
    /// Hot from the start: how many shards its balance spreads over (`crate::shard`).
    #[serde(skip_serializing_if = "is_one")]
    pub shards: ShardCount,
}

fn is_one(shards: &ShardCount) -> bool {
    !shards.is_hot()
}

/// Where an account stands in its life. Only an open account moves money both ways; freezing is
/// undone by unfreezing; closing is final.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    #[default]
    Open,
    /// Nothing may leave it (a fraud or compliance hold): credits still land.
    DebitsFrozen,
    /// Nothing may enter or leave it.
    Frozen,
    /// Closed at a zero balance with no pending holds: nothing may enter or leave it, ever.
    Closed,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::DebitsFrozen => "debits_frozen",
            Self::Frozen => "frozen",
            Self::Closed => "closed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Open, Self::DebitsFrozen, Self::Frozen, Self::Closed].into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether money may leave the account.
    pub fn debits_allowed(self) -> bool {
        self == Self::Open
    }

    /// Whether money may enter the account.
    pub fn credits_allowed(self) -> bool {
        matches!(self, Self::Open | Self::DebitsFrozen)
    }
}

/// An account's balance bounds besides `allow_overdraft`, both enforced by the planner on every
/// route and every kind of transfer, pending holds counted:
/// - `overdraft_limit`: a credit line: without `allow_overdraft` (which allows any overdraft),
///   `available` (the balance less pending debits) may go down to minus this (none: zero);
/// - `max_balance`: the balance plus pending credits (what it would be once every incoming hold
///   posts) may not go above it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overdraft_limit: Option<Limit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_balance: Option<Limit>,
}

impl Bounds {
    /// Refuses an overdraft limit beside `allow_overdraft` (which allows any overdraft already):
    /// the error is about the field `overdraft_limit`.
    pub fn check(&self, allow_overdraft: bool) -> Result<(), FieldError> {
        if allow_overdraft && self.overdraft_limit.is_some() {
            return Err(FieldError::new("cannot be set with allow_overdraft (which allows any overdraft)"));
        }
        Ok(())
    }

    /// Refuses an account with shards (`shard_items` above one: hot, or once hot) and a maximum
    /// balance: its credits spread over shards that no one item bounds. The error is about the
    /// field `shards`.
    pub fn check_shards(&self, shard_items: u16) -> Result<(), FieldError> {
        if shard_items > 1 && self.max_balance.is_some() {
            return Err(FieldError::new("cannot be more than 1 with a max_balance"));
        }
        Ok(())
    }
}

/// An account's version: how many entries it has and how many times its policy or metadata
/// changed. Every change of the account moves one of the two; a write conditioned on both cannot
/// race another (`ETag` of the account).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountVersion {
    pub entries: u64,
    pub revision: u64,
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
    pub status: AccountStatus,
    pub bounds: Bounds,
    /// How many times its policy or metadata changed (see [`AccountVersion`]).
    pub revision: u64,
    /// How many shards new writes spread over (`crate::shard`).
    pub shards: ShardCount,
    /// How many shards it has (see [`AccountBalance::shard_items`]).
    pub shard_items: u16,
}

/// The part of an account a transfer reads and changes: the rule inputs (its policy, which only an
/// account change moves) and the totals. Stored apart from the account's descriptive fields, so a
/// transfer never rewrites those.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalance {
    pub id: AccountId,
    pub currency: Currency,
    pub allow_overdraft: bool,
    #[serde(default)]
    pub status: AccountStatus,
    #[serde(flatten)]
    pub bounds: Bounds,
    /// How many times the policy or the metadata changed: with `entry_count`, the version every
    /// write of the account is conditioned on.
    #[serde(default)]
    pub revision: u64,
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
    /// How many shards new writes spread over (policy: more than one, the account is hot).
    #[serde(default)]
    pub shards: ShardCount,
    /// How many shards the account has: the most it ever spread over (a hot account un-marked
    /// keeps its shards, read and drained as the account's).
    #[serde(default = "one")]
    pub shard_items: u16,
    /// Which of the account's shards this balance is (`crate::shard`): 0, the main one, for an
    /// account that is not hot, and for the account as one.
    #[serde(default)]
    pub shard: u16,
    /// The funds moved into this shard from the account's others (less those moved out): what
    /// shifts headroom between shards. Zero over the whole account.
    #[serde(default)]
    pub moved: i128,
    /// The hash of its latest entry (`crate::chain`): where its history must end.
    #[serde(default)]
    pub head: Hash256,
}

fn one() -> u16 {
    1
}

impl AccountBalance {
    pub fn version(&self) -> AccountVersion {
        AccountVersion { entries: self.entry_count, revision: self.revision }
    }

    /// The lowest `available` this balance may reach: `None` without bound (`allow_overdraft`).
    /// For a shard of a hot account, its part of the floor: the main shard holds the overdraft
    /// limit, and funds moved in lower it (`crate::shard`).
    pub fn floor(&self) -> Option<i128> {
        let limit = if self.shard == 0 { self.bounds.overdraft_limit.map_or(0, Limit::get) } else { 0 };
        (!self.allow_overdraft).then_some(-i128::from(limit) - self.moved)
    }

    /// What this balance may still spend before its floor (`None`: it has none).
    pub fn headroom(&self) -> Option<i128> {
        self.floor().map(|floor| self.balances.available() - floor)
    }

    /// The balance as it stands on its account's other shards too (a hot account's policy, on
    /// every shard): spread over more than one shard, or having been.
    pub fn is_sharded(&self) -> bool {
        self.shard_items > 1
    }

    /// Whether `balances` take `available` below the account's floor.
    pub fn below_floor(&self, balances: &Balances) -> bool {
        self.floor().is_some_and(|floor| balances.available() < floor)
    }

    /// Whether `balances` take the balance with pending credits above the account's maximum.
    pub fn above_max(&self, balances: &Balances) -> bool {
        // Every total is <= POSTED_LIMIT, so the sum fits i128.
        let ceiling = balances.balance() + balances.credits_pending as i128;
        self.bounds.max_balance.is_some_and(|max| ceiling > i128::from(max.get()))
    }

    /// The bound `balances` break, if any: what refuses a policy that does not admit the account
    /// as it stands.
    pub fn crossed(&self, balances: &Balances) -> Option<crate::rule::RuleViolation> {
        use crate::rule::RuleViolation;
        let account_id = self.id.clone();
        if self.below_floor(balances) {
            return Some(RuleViolation::InsufficientFunds { account_id });
        }
        self.above_max(balances).then_some(RuleViolation::MaxBalanceExceeded { account_id })
    }
}

#[derive(Serialize)]
struct AccountView<'a> {
    id: &'a AccountId,
    currency: Currency,
    allow_overdraft: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    overdraft_limit: Option<Limit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_balance: Option<Limit>,
    status: AccountStatus,
    metadata: &'a Metadata,
    #[serde(skip_serializing_if = "is_one")]
    shards: ShardCount,
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
            overdraft_limit: self.bounds.overdraft_limit,
            max_balance: self.bounds.max_balance,
            status: self.status,
            metadata: &self.metadata,
            shards: self.shards,
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
            status: self.status,
            bounds: self.bounds,
            revision: self.revision,
            balances: self.balances,
            entry_count: self.entry_count,
            last_entry_at: Some(self.created_at),
            shards: self.shards,
            shard_items: self.shard_items,
            shard: 0,
            moved: 0,
            head: Hash256::GENESIS,
        }
    }

    pub fn version(&self) -> AccountVersion {
        AccountVersion { entries: self.entry_count, revision: self.revision }
    }
}

impl NewAccount {
    pub fn open(self, now: OffsetDateTime) -> Account {
        Account {
            id: self.id,
            currency: self.currency,
            allow_overdraft: self.allow_overdraft,
            metadata: self.metadata,
            created_at: self.effective_at.unwrap_or(now),
            balances: Balances::default(),
            entry_count: 0,
            status: AccountStatus::Open,
            bounds: self.bounds,
            revision: 0,
            shards: self.shards,
            shard_items: self.shards.get(),
        }
    }

    /// The client-supplied fields on which `existing` differs from this request, in a fixed order.
    /// Empty means the request replays the one that created `existing`. Once the account was
    /// changed (`revision`), only what no change moves (the currency) tells: a retry of its
    /// creation then replays the account as it stands.
    pub fn differing_fields(&self, existing: &Account) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.currency != existing.currency {
            fields.push("currency");
        }
        if self.effective_at.is_some_and(|at| at != existing.created_at) {
            fields.push("effective_at");
        }
        if existing.revision > 0 {
            return fields;
        }
        let changeable = [
            ("allow_overdraft", self.allow_overdraft != existing.allow_overdraft),
            ("metadata", self.metadata != existing.metadata),
            ("overdraft_limit", self.bounds.overdraft_limit != existing.bounds.overdraft_limit),
            ("max_balance", self.bounds.max_balance != existing.bounds.max_balance),
            ("shards", self.shards != existing.shards),
        ];
        fields.extend(changeable.into_iter().filter(|(_, differs)| *differs).map(|(name, _)| name));
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
            bounds: Bounds::default(),
            effective_at: None,
            shards: ShardCount::ONE,
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
