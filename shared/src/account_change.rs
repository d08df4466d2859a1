//! Changes to an account after it is opened: freeze, unfreeze, close, and new bounds or metadata.
//! Each is decided here, pure, on the account as it stands; the store writes it conditioned on the
//! account's version as read ([`crate::account::AccountVersion`]), which every transfer's write is
//! conditioned on too, so a change and the transfers racing it are ordered one way or the other,
//! never mixed.

use std::collections::BTreeMap;

use crate::account::{Account, AccountStatus, Bounds};
use crate::error::LedgerError;
use crate::event_type::EventType;
use crate::money::Limit;
use crate::rule::RuleViolation;
use crate::shard::ShardCount;

/// What a client asks to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountChange {
    /// Freeze the account: `debits_only`, nothing may leave it; otherwise nothing may move.
    Freeze {
        debits_only: bool,
    },
    Unfreeze,
    /// Close it, for good: only at a zero balance with nothing pending.
    Close,
    /// New bounds or metadata (a JSON merge patch: absent fields stay as they are).
    Update(AccountUpdate),
}

/// The fields of a merge patch of an account: `None` keeps a field; for a bound, `Some(None)`
/// removes it; for metadata, each key given is set, or removed if its value is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    pub allow_overdraft: Option<bool>,
    pub overdraft_limit: Option<Option<Limit>>,
    pub max_balance: Option<Option<Limit>>,
    pub metadata: Option<BTreeMap<String, Option<String>>>,
    /// How many shards new writes spread over: more than one marks the account hot, one un-marks
    /// it (it keeps its shards: `AccountBalance::shard_items`).
    pub shards: Option<ShardCount>,
}

impl AccountChange {
    /// The event a change of this kind is.
    pub fn event_type(&self) -> EventType {
        match self {
            Self::Freeze { .. } => EventType::AccountFrozen,
            Self::Unfreeze => EventType::AccountUnfrozen,
            Self::Close => EventType::AccountClosed,
            Self::Update(_) => EventType::AccountUpdated,
        }
    }

    /// The account once changed (its revision moved on), or `None` if the change changes nothing
    /// (freezing a frozen account, a patch that sets what is there): nothing is written then. A
    /// closed account changes no more (closing it again changes nothing, so a retried close is
    /// answered as the first was); a new policy must admit the balances as they stand.
    pub fn decide(&self, account: &Account) -> Result<Option<Account>, LedgerError> {
        let account_id = || account.id.clone();
        if account.status == AccountStatus::Closed {
            if *self == Self::Close {
                return Ok(None);
            }
            return Err(RuleViolation::AccountClosed { account_id: account_id() }.into());
        }
        let mut changed = account.clone();
        match self {
            Self::Freeze { debits_only } => {
                changed.status =
                    if *debits_only { AccountStatus::DebitsFrozen } else { AccountStatus::Frozen };
            }
            Self::Unfreeze => changed.status = AccountStatus::Open,
            Self::Close => {
                let b = &account.balances;
                if b.balance() != 0 || b.debits_pending != 0 || b.credits_pending != 0 {
                    return Err(RuleViolation::AccountNotEmpty { account_id: account_id() }.into());
                }
                changed.status = AccountStatus::Closed;
            }
            Self::Update(update) => {
                if let Some(allow) = update.allow_overdraft {
                    changed.allow_overdraft = allow;
                }
                let bounds = Bounds {
                    overdraft_limit: update.overdraft_limit.unwrap_or(account.bounds.overdraft_limit),
                    max_balance: update.max_balance.unwrap_or(account.bounds.max_balance),
                };
                bounds
                    .check(changed.allow_overdraft)
                    .map_err(|e| LedgerError::invalid("overdraft_limit", e))?;
                changed.bounds = bounds;
                if let Some(shards) = update.shards {
                    changed.shards = shards;
                    changed.shard_items = changed.shard_items.max(shards.get());
                }
                bounds.check_shards(changed.shard_items).map_err(|e| LedgerError::invalid("shards", e))?;
                if let Some(patch) = &update.metadata {
                    changed.metadata =
                        account.metadata.merged(patch).map_err(|e| LedgerError::invalid("metadata", e))?;
                }
                if let Some(rule) = changed.balance_state().crossed(&account.balances) {
                    return Err(rule.into());
                }
            }
        }
        if changed == *account {
            return Ok(None);
        }
        changed.revision += 1;
        Ok(Some(changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::money::Balances;
    use time::OffsetDateTime;

    fn account(balance: i128) -> Account {
        let mut account = fixtures::account("a", false).open(OffsetDateTime::UNIX_EPOCH);
        account.balances = Balances { credits_posted: balance.max(0) as u128, ..Balances::default() };
        account
    }

    fn limit(n: u64) -> Limit {
        Limit::new(n).unwrap()
    }

    fn code(result: Result<Option<Account>, LedgerError>) -> String {
        match result {
            Err(LedgerError::Rejected(rule)) => rule.code().to_owned(),
            Err(LedgerError::InvalidField { field, .. }) => format!("invalid {field}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn freezing_twice_changes_once_and_unfreezing_opens_again() {
        let open = account(0);
        let frozen = AccountChange::Freeze { debits_only: true }.decide(&open).unwrap().unwrap();
        assert_eq!((frozen.status, frozen.revision), (AccountStatus::DebitsFrozen, 1));
        assert_eq!(AccountChange::Freeze { debits_only: true }.decide(&frozen).unwrap(), None);
        let whole = AccountChange::Freeze { debits_only: false }.decide(&frozen).unwrap().unwrap();
        assert_eq!((whole.status, whole.revision), (AccountStatus::Frozen, 2));
        let thawed = AccountChange::Unfreeze.decide(&whole).unwrap().unwrap();
        assert_eq!((thawed.status, thawed.revision), (AccountStatus::Open, 3));
        assert_eq!(AccountChange::Unfreeze.decide(&thawed).unwrap(), None);
    }

    #[test]
    fn closing_needs_zero_and_nothing_pending_and_is_final() {
        assert_eq!(code(AccountChange::Close.decide(&account(5))), "account_not_empty");
        let mut held = account(0);
        held.balances.credits_pending = 1;
        assert_eq!(code(AccountChange::Close.decide(&held)), "account_not_empty");
        let closed = AccountChange::Close.decide(&account(0)).unwrap().unwrap();
        assert_eq!(closed.status, AccountStatus::Closed);
        // Closed again (a retry): nothing changes; anything else is refused.
        assert_eq!(AccountChange::Close.decide(&closed).unwrap(), None);
        for change in [
            AccountChange::Unfreeze,
            AccountChange::Freeze { debits_only: false },
            AccountChange::Update(AccountUpdate::default()),
        ] {
            assert_eq!(code(change.decide(&closed)), "account_closed");
        }
    }

    #[test]
    fn bounds_change_only_to_what_the_balances_admit() {
        let rich = account(100);
        let cap = |n| {
            AccountChange::Update(AccountUpdate { max_balance: Some(Some(limit(n))), ..Default::default() })
        };
        assert_eq!(code(cap(99).decide(&rich)), "max_balance_exceeded");
        assert_eq!(cap(100).decide(&rich).unwrap().unwrap().bounds.max_balance, Some(limit(100)));
        let mut overdrawn = account(0);
        overdrawn.allow_overdraft = true;
        overdrawn.balances.debits_posted = 50;
        let line = |n| {
            AccountChange::Update(AccountUpdate {
                allow_overdraft: Some(false),
                overdraft_limit: Some(Some(limit(n))),
                ..Default::default()
            })
        };
        assert_eq!(code(line(49).decide(&overdrawn)), "insufficient_funds");
        let limited = line(50).decide(&overdrawn).unwrap().unwrap();
        assert_eq!((limited.allow_overdraft, limited.bounds.overdraft_limit), (false, Some(limit(50))));
        // A limit beside allow_overdraft is refused; removing a bound is `Some(None)`.
        let both = AccountUpdate { allow_overdraft: Some(true), ..Default::default() };
        assert_eq!(code(AccountChange::Update(both).decide(&limited)), "invalid overdraft_limit");
        let removed = AccountChange::Update(AccountUpdate { max_balance: Some(None), ..Default::default() })
            .decide(&cap(100).decide(&rich).unwrap().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(removed.bounds.max_balance, None);
    }

    #[test]
    fn metadata_merges_keys_and_a_patch_that_sets_what_is_there_changes_nothing() {
        let patch = |pairs: &[(&str, Option<&str>)]| {
            AccountChange::Update(AccountUpdate {
                metadata: Some(pairs.iter().map(|(k, v)| (k.to_string(), v.map(str::to_owned))).collect()),
                ..Default::default()
            })
        };
        let one = patch(&[("a", Some("1")), ("b", Some("2"))]).decide(&account(0)).unwrap().unwrap();
        let two = patch(&[("a", None), ("c", Some("3"))]).decide(&one).unwrap().unwrap();
        let keys: Vec<_> = two.metadata.as_map().iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!((keys, two.revision), (vec!["b=2".to_owned(), "c=3".to_owned()], 2));
        assert_eq!(patch(&[("b", Some("2"))]).decide(&two).unwrap(), None);
        assert_eq!(code(patch(&[("", Some("x"))]).decide(&two)), "invalid metadata");
    }
}
