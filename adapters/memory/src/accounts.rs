//! Accounts in memory: opened once with their event, read with their balances, listed by id, and
//! their entries read back by position.

use std::ops::Bound;

use async_trait::async_trait;
use ledger::port::{
    Accounts, BalanceAt, Created, EntryPosition, Page, Statement, StatementRange, StoreError, invalid,
};
use ledger::{
    Account, AccountBalance, AccountChange, AccountId, AccountVersion, Balances, Entry, Event, LedgerError,
    MetadataMatch, NewAccount, TenantId,
};
use time::OffsetDateTime;

use crate::store::{MemoryStore, current_correlation, stored};
use crate::tables::Tables;

/// The position just after every entry that took effect at or before `at`.
fn until(at: OffsetDateTime) -> EntryPosition {
    EntryPosition { at_nanos: at.unix_timestamp_nanos(), shard: u16::MAX, sequence: u64::MAX }
}

impl Tables {
    fn account(&self, tenant: &TenantId, id: &AccountId) -> Result<Account, StoreError> {
        let key = (tenant.clone(), id.clone());
        let profile = self.profiles.get(&key).ok_or_else(|| StoreError::not_found("account", id))?;
        let balance = self
            .balances
            .get(&key)
            .ok_or_else(|| StoreError::Corrupt(format!("account {id} lacks its balance")))?;
        // The policy is the balance's: what transfers obey, and what a change sets.
        Ok(Account {
            allow_overdraft: balance.allow_overdraft,
            balances: balance.balances,
            entry_count: balance.entry_count,
            status: balance.status,
            bounds: balance.bounds,
            revision: balance.revision,
            ..profile.clone()
        })
    }

    /// The account's totals as of `at`; `field` names the instant in the error if it is before the
    /// account was opened (`None`: no such check).
    fn balance_until(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        at: OffsetDateTime,
        field: Option<&str>,
    ) -> Result<BalanceAt, StoreError> {
        let key = (tenant.clone(), account.clone());
        let profile = self.profiles.get(&key).ok_or_else(|| StoreError::not_found("account", account))?;
        let latest = self.entries.get(&key).and_then(|entries| entries.range(..=until(at)).next_back());
        if let Some((_, entry)) = latest {
            return Ok(BalanceAt { at, balances: entry.balances_after, entry_count: entry.sequence });
        }
        if let Some(field) = field.filter(|_| at < profile.created_at) {
            return Err(invalid(field, format!("is before the account was opened ({})", profile.created_at)));
        }
        Ok(BalanceAt { at, balances: Balances::default(), entry_count: 0 })
    }
}

#[async_trait]
impl Accounts for MemoryStore {
    async fn create_account(
        &self,
        tenant: &TenantId,
        request: NewAccount,
        now: OffsetDateTime,
    ) -> Result<Created<Account>, StoreError> {
        let account = request.clone().open(now);
        let event = stored(tenant, &Event::account_opened(tenant, &account), current_correlation())?;
        let mut tables = self.tables();
        let key = (tenant.clone(), account.id.clone());
        if tables.profiles.contains_key(&key) {
            let existing = tables.account(tenant, &account.id)?;
            let fields = request.differing_fields(&existing);
            return if fields.is_empty() {
                Ok(Created::Replayed(existing))
            } else {
                Err(LedgerError::IdempotencyConflict {
                    fields: fields.into_iter().map(str::to_owned).collect(),
                }
                .into())
            };
        }
        tables.balances.insert(key.clone(), account.balance_state());
        tables.profiles.insert(key, account.clone());
        tables.put_event(event);
        Ok(Created::New(account))
    }

    async fn get_account(&self, tenant: &TenantId, id: &AccountId) -> Result<Account, StoreError> {
        self.tables().account(tenant, id)
    }

    async fn account_balance(&self, tenant: &TenantId, id: &AccountId) -> Result<AccountBalance, StoreError> {
        let tables = self.tables();
        let balance = tables.balances.get(&(tenant.clone(), id.clone()));
        balance.cloned().ok_or_else(|| StoreError::not_found("account", id))
    }

    async fn change_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
        change: &AccountChange,
        expected: Option<AccountVersion>,
        now: OffsetDateTime,
    ) -> Result<Account, StoreError> {
        let mut tables = self.tables();
        let account = tables.account(tenant, id)?;
        if expected.is_some_and(|version| version != account.version()) {
            return Err(LedgerError::PreconditionFailed { what: "account", id: id.to_string() }.into());
        }
        let Some(changed) = change.decide(&account)? else { return Ok(account) };
        let event = Event::account_changed(tenant, change.event_type(), &changed, now);
        let event = stored(tenant, &event, current_correlation())?;
        let key = (tenant.clone(), id.clone());
        let balance = tables.balances.get_mut(&key).ok_or_else(|| StoreError::not_found("account", id))?;
        // A change moves no money: the history's end stays where it is.
        *balance = ledger::AccountBalance {
            last_entry_at: balance.last_entry_at,
            head: balance.head,
            ..changed.balance_state()
        };
        if let Some(profile) = tables.profiles.get_mut(&key) {
            profile.metadata = changed.metadata.clone();
        }
        tables.put_event(event);
        Ok(changed)
    }

    async fn list_accounts(
        &self,
        tenant: &TenantId,
        metadata: &MetadataMatch,
        page_size: u16,
        after: Option<&AccountId>,
    ) -> Result<Page<Account, AccountId>, StoreError> {
        let tables = self.tables();
        // The candidates: the accounts listed under the first pair (DynamoDB's index), or all.
        let listed = |profile: &crate::tables::Profile| {
            metadata.pairs().iter().next().is_none_or(|(k, v)| profile.metadata.as_map().get(k) == Some(v))
        };
        let start = match after {
            Some(after) => Bound::Excluded((tenant.clone(), after.clone())),
            None => Bound::Unbounded,
        };
        let ids: Vec<AccountId> = tables
            .profiles
            .range((start, Bound::Unbounded))
            .map(|((t, id), _)| (t, id))
            .skip_while(|(t, _)| *t < tenant)
            .take_while(|(t, _)| *t == tenant)
            .filter(|(t, id)| tables.profiles.get(&((*t).clone(), (*id).clone())).is_some_and(listed))
            .map(|(_, id)| id.clone())
            .take(usize::from(page_size) + 1)
            .collect();
        let mut accounts = ids.iter().map(|id| tables.account(tenant, id)).collect::<Result<Vec<_>, _>>()?;
        let more = accounts.len() > usize::from(page_size);
        accounts.truncate(usize::from(page_size));
        let next = if more { accounts.last().map(|a| a.id.clone()) } else { None };
        accounts.retain(|a| metadata.pairs().iter().all(|(k, v)| a.metadata.as_map().get(k) == Some(v)));
        Ok(Page { items: accounts, next })
    }

    async fn shard_balances(
        &self,
        tenant: &TenantId,
        page_size: u16,
        after: Option<&AccountId>,
    ) -> Result<Page<AccountBalance, AccountId>, StoreError> {
        // One balance per account here: a hot account's shards are the DynamoDB store's.
        let tables = self.tables();
        let start = match after {
            Some(after) => Bound::Excluded((tenant.clone(), after.clone())),
            None => Bound::Unbounded,
        };
        let mut balances: Vec<AccountBalance> = tables
            .profiles
            .range((start, Bound::Unbounded))
            .map(|((t, id), _)| (t, id))
            .skip_while(|(t, _)| *t < tenant)
            .take_while(|(t, _)| *t == tenant)
            .filter_map(|(t, id)| tables.balances.get(&(t.clone(), id.clone())).cloned())
            .take(usize::from(page_size) + 1)
            .collect();
        let more = balances.len() > usize::from(page_size);
        balances.truncate(usize::from(page_size));
        let next = if more { balances.last().map(|b| b.id.clone()) } else { None };
        Ok(Page { items: balances, next })
    }

    async fn shard_entries(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        shard: u16,
        from: u64,
    ) -> Result<Vec<Entry>, StoreError> {
        let tables = self.tables();
        let entries = tables.entries.get(&(tenant.clone(), account.clone()));
        Ok(entries
            .into_iter()
            .flat_map(|entries| entries.values())
            .filter(|entry| entry.shard == shard && entry.sequence >= from)
            .cloned()
            .collect())
    }

    async fn list_entries(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        page_size: u16,
        before: Option<EntryPosition>,
    ) -> Result<Page<Entry, EntryPosition>, StoreError> {
        let tables = self.tables();
        let key = (tenant.clone(), account.clone());
        if !tables.profiles.contains_key(&key) {
            return Err(StoreError::not_found("account", account));
        }
        let upper = before.map_or(Bound::Unbounded, Bound::Excluded);
        let mut entries: Vec<Entry> = tables
            .entries
            .get(&key)
            .map(|entries| {
                entries
                    .range((Bound::Unbounded, upper))
                    .rev()
                    .take(usize::from(page_size) + 1)
                    .map(|(_, e)| e.clone())
                    .collect()
            })
            .unwrap_or_default();
        let more = entries.len() > usize::from(page_size);
        entries.truncate(usize::from(page_size));
        let next = if more { entries.last().map(EntryPosition::of) } else { None };
        Ok(Page { items: entries, next })
    }

    async fn balance_at(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<BalanceAt, StoreError> {
        ledger::port::check_balance_at(at, now)?;
        self.tables().balance_until(tenant, account, at, Some("at"))
    }

    async fn statement(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        range: StatementRange,
        now: OffsetDateTime,
    ) -> Result<Statement, StoreError> {
        range.check(now)?;
        let from = range.start();
        let (lower, upper) = (until(from), until(range.to));
        let start = match range.after {
            Some(after) if after <= lower || after > upper => {
                return Err(invalid("cursor", "is not a cursor of this statement".into()));
            }
            Some(after) => after,
            None => lower,
        };
        let tables = self.tables();
        let opening = tables.balance_until(tenant, account, from, None)?;
        let key = (tenant.clone(), account.clone());
        let mut entries: Vec<Entry> = tables
            .entries
            .get(&key)
            .map(|entries| {
                entries
                    .range((Bound::Excluded(start), Bound::Included(upper)))
                    .take(usize::from(range.page_size) + 1)
                    .map(|(_, e)| e.clone())
                    .collect()
            })
            .unwrap_or_default();
        let next = if entries.len() > usize::from(range.page_size) {
            entries.truncate(usize::from(range.page_size));
            entries.last().map(EntryPosition::of)
        } else {
            None
        };
        let closing = match (&next, entries.last(), range.after) {
            (Some(_), _, _) => None,
            (None, Some(last), _) => {
                Some(BalanceAt { at: range.to, balances: last.balances_after, entry_count: last.sequence })
            }
            (None, None, None) => Some(BalanceAt { at: range.to, ..opening.clone() }),
            // An empty page after a cursor (the entries ended exactly at the previous page).
            (None, None, Some(_)) => Some(tables.balance_until(tenant, account, range.to, None)?),
        };
        Ok(Statement { opening, entries, closing, next })
    }
}
