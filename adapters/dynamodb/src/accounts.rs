//! Accounts: create (idempotent), get, list (by the accounts index), and list an account's entries.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use ledger::{Account, AccountId, Entry, Event, LedgerError, NewAccount, TenantId};
use time::OffsetDateTime;

use crate::cancel::{Cancelled, cancellation};
use crate::engine::{key, put, put_if_new};
use crate::items::{self, Item, s};
use crate::keys::EntryPosition;
use crate::retry::{MAX_ATTEMPTS, backoff};
use crate::{Created, DynamoStore, Page, StoreError, keys};

impl DynamoStore {
    /// One TransactWriteItems putting the profile and the balance item, each only if new (redone if
    /// it only met another transaction). If the id exists, the stored account is read and compared
    /// with the request: replay or conflict.
    pub async fn create_account(
        &self,
        tenant: &TenantId,
        request: NewAccount,
        now: OffsetDateTime,
    ) -> Result<Created<Account>, StoreError> {
        let account = request.clone().open(now);
        let event = Event::account_opened(tenant, &account);
        let correlation = ledger_telemetry::correlation::current().map(|c| c.as_str().to_owned());
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let written = self
                .client
                .transact_write_items()
                .transact_items(put_if_new(&self.table, items::profile_item(tenant, &account))?)
                .transact_items(put_if_new(
                    &self.table,
                    items::balance_item(tenant, &account.balance_state()),
                )?)
                .transact_items(put(
                    &self.table,
                    crate::events::event_item(tenant, &event, correlation.as_deref())?,
                )?)
                .send()
                .await;
            let err = match written {
                Ok(_) => return Ok(Created::New(account)),
                Err(err) => err,
            };
            if let Cancelled::Contended = cancellation(err)? {
                continue;
            }
            let existing = self.get_account(tenant, &account.id).await?;
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
        Err(StoreError::Unavailable(format!("account {} stayed contended", account.id)))
    }

    /// One strongly consistent Query of the account's profile and balance items.
    pub async fn get_account(&self, tenant: &TenantId, id: &AccountId) -> Result<Account, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk <= :balance")
            .expression_attribute_values(":pk", s(keys::account_pk(tenant, id)))
            .expression_attribute_values(":balance", s(keys::BALANCE_SK))
            .consistent_read(true)
            .send()
            .await?;
        match out.items() {
            [] => Err(LedgerError::NotFound { what: "account", id: id.to_string() }.into()),
            [profile, balance] => items::account_from(profile, balance),
            _ => Err(StoreError::Corrupt(format!("account {id} lacks its profile or balance item"))),
        }
    }

    /// The account's version (its entry count): one consistent GetItem of its balance item, the
    /// attribute alone. What a conditional GET revalidates against.
    pub async fn account_version(&self, tenant: &TenantId, id: &AccountId) -> Result<u64, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::account_pk(tenant, id), keys::BALANCE_SK)))
            .projection_expression("entry_count")
            .consistent_read(true)
            .send()
            .await?;
        let item = out.item.ok_or_else(|| LedgerError::NotFound { what: "account", id: id.to_string() })?;
        item.get("entry_count")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("account {id}: entry_count is missing")))
    }

    /// One Query of the accounts index, ascending by id, then one TransactGetItems of the page's
    /// balance items: the balances of a page are one snapshot, so they always sum as the ledger's
    /// totals did at one instant (a BatchGetItem could read one account before a transfer and its
    /// counterparty after it). The index is eventually consistent: an account created a moment ago
    /// may be missing from a list for a moment.
    pub async fn list_accounts(
        &self,
        tenant: &TenantId,
        limit: u16,
        after: Option<&AccountId>,
    ) -> Result<Page<Account, AccountId>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .expression_attribute_values(":pk", s(keys::accounts_index_pk(tenant)))
            // One more than asked: whether it comes back says whether there is a next page.
            .limit(i32::from(limit) + 1);
        query = match after {
            Some(after) => query
                .key_condition_expression("gsi1pk = :pk AND gsi1sk > :after")
                .expression_attribute_values(":after", s(after.as_str())),
            None => query.key_condition_expression("gsi1pk = :pk"),
        };
        let mut profiles = query.send().await?.items.unwrap_or_default();
        let next_after = profiles.len() > usize::from(limit);
        profiles.truncate(usize::from(limit));
        let balance_keys = profiles
            .iter()
            .filter_map(|p| p.get(keys::PK))
            .filter_map(|pk| pk.as_s().ok())
            .map(|pk| key(pk.clone(), keys::BALANCE_SK));
        let pk_of = |item: &Item| item.get(keys::PK).and_then(|v| v.as_s().ok()).cloned();
        let balances: HashMap<String, Item> = self
            .snapshot(balance_keys.collect())
            .await?
            .into_iter()
            .filter_map(|item| Some((pk_of(&item)?, item)))
            .collect();
        let mut accounts = Vec::with_capacity(profiles.len());
        for profile in &profiles {
            let balance = pk_of(profile).and_then(|pk| balances.get(&pk));
            let balance =
                balance.ok_or_else(|| StoreError::Corrupt("an account lacks its balance item".into()))?;
            accounts.push(items::account_from(profile, balance)?);
        }
        let next = if next_after { accounts.last().map(|a| a.id.clone()) } else { None };
        Ok(Page { items: accounts, next })
    }

    /// One Query of the account's item collection, newest entry first. The account's own items sort
    /// below every entry, so the same query proves the account exists when it has no entries (or
    /// none left past the cursor) at no extra call.
    pub async fn list_entries(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        limit: u16,
        before: Option<EntryPosition>,
    ) -> Result<Page<Entry, EntryPosition>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(keys::account_pk(tenant, account)))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(i32::from(limit) + 1);
        query = match before {
            Some(position) => query
                .key_condition_expression("pk = :pk AND sk < :before")
                .expression_attribute_values(":before", s(keys::entry_sk(position))),
            None => query.key_condition_expression("pk = :pk"),
        };
        let out = query.send().await?;
        if out.items().is_empty() {
            return Err(LedgerError::NotFound { what: "account", id: account.to_string() }.into());
        }
        let is_entry = |item: &&items::Item| matches!(item.get(keys::SK), Some(AttributeValue::S(sk)) if sk.starts_with(keys::ENTRY_SK_PREFIX));
        let mut entries =
            out.items().iter().filter(is_entry).map(items::entry_from).collect::<Result<Vec<_>, _>>()?;
        let next = paginate(&mut entries, limit, EntryPosition::of);
        Ok(Page { items: entries, next })
    }
}

/// Cuts a `limit + 1` result down to `limit` and returns the cursor of the last kept item if
/// anything was cut.
fn paginate<T, C>(items: &mut Vec<T>, limit: u16, cursor: impl Fn(&T) -> C) -> Option<C> {
    let limit = usize::from(limit);
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    }
}
