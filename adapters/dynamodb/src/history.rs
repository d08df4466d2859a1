//! An account's past: its balances as of an instant, and statements between two instants, each a
//! constant number of Queries whatever the length of its history.
//!
//! Entries are keyed by the instant they took effect, then their sequence (`keys::entry_sk`), and an
//! account's entries take effect in sequence order (`ledger::posting::apply`). So the balance as of
//! an instant is the totals after the last entry keyed at or before it: ONE descending Query of
//! the account's item collection, limit 2. The account's own items (profile `A`, balance `B`) sort
//! below every entry, so when no entry precedes the instant the same Query returns them instead,
//! and tells whether the account existed then.

use aws_sdk_dynamodb::types::AttributeValue;
use ledger::port::{BalanceAt, EntryPosition, Statement, StatementRange, StoreError, invalid};
use ledger::{AccountId, Balances, TenantId};
use time::OffsetDateTime;

use crate::error::sdk;
use crate::items::{self, Item, s};
use crate::keys;
use crate::store::DynamoStore;

fn is_entry(item: &Item) -> bool {
    matches!(item.get(keys::SK), Some(AttributeValue::S(sk)) if sk.starts_with(keys::ENTRY_SK_PREFIX))
}

impl DynamoStore {
    /// The account's totals as of `at` (entries that took effect at or before it): one Query.
    /// `field` names the instant in the error if it is before the account was opened (`None`: no
    /// such check, the balance before any entry is zero).
    pub(crate) async fn balance_until(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        at: OffsetDateTime,
        field: Option<&str>,
    ) -> Result<BalanceAt, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk <= :until")
            .expression_attribute_values(":pk", s(keys::account_pk(tenant, account)))
            .expression_attribute_values(":until", s(keys::entries_until(at)))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(2)
            .send()
            .await
            .map_err(sdk)?;
        let found = out.items();
        match found.first() {
            None => Err(StoreError::not_found("account", account)),
            Some(item) if is_entry(item) => {
                let entry = items::entry_from(item)?;
                Ok(BalanceAt { at, balances: entry.balances_after, entry_count: entry.sequence })
            }
            Some(_) => {
                let profile = found
                    .iter()
                    .find(|item| {
                        item.get(keys::SK).and_then(|v| v.as_s().ok()).map(String::as_str)
                            == Some(keys::ACCOUNT_SK)
                    })
                    .ok_or_else(|| StoreError::Corrupt(format!("account {account} lacks its profile")))?;
                let opened = items::created_at(profile)?;
                if let Some(field) = field.filter(|_| at < opened) {
                    return Err(invalid(field, format!("is before the account was opened ({opened})")));
                }
                Ok(BalanceAt { at, balances: Balances::default(), entry_count: 0 })
            }
        }
    }

    /// A page of the account's statement (`range`, checked): at most `page_size` entries after
    /// `after` (the previous page's last), oldest first. Two Queries at once: the opening balance,
    /// and the page (`page_size + 1` entries, to know whether more follow); a third, rarely, for
    /// the closing balance of an empty last page.
    pub(crate) async fn statement_page(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        range: StatementRange,
    ) -> Result<Statement, StoreError> {
        let StatementRange { to, page_size, after, .. } = range;
        // A statement may start before the account was opened: it opens at zero.
        let from = range.start();
        let (lower, upper) = (keys::entries_until(from), keys::entries_until(to));
        let start = match after {
            Some(position) => {
                let sk = keys::entry_sk(position);
                if sk <= lower || sk > upper {
                    return Err(invalid("cursor", "is not a cursor of this statement".into()));
                }
                keys::entries_after(position)
            }
            None => lower,
        };
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :start AND :until")
            .expression_attribute_values(":pk", s(keys::account_pk(tenant, account)))
            .expression_attribute_values(":start", s(start))
            .expression_attribute_values(":until", s(upper))
            .consistent_read(true)
            .limit(i32::from(page_size) + 1)
            .send();
        let (opening, page) = tokio::join!(self.balance_until(tenant, account, from, None), page);
        let opening = opening?;
        let mut entries =
            page.map_err(sdk)?.items().iter().map(items::entry_from).collect::<Result<Vec<_>, _>>()?;
        let next = if entries.len() > usize::from(page_size) {
            entries.truncate(usize::from(page_size));
            entries.last().map(EntryPosition::of)
        } else {
            None
        };
        let closing = match (&next, entries.last(), after) {
            (Some(_), _, _) => None,
            (None, Some(last), _) => {
                Some(BalanceAt { at: to, balances: last.balances_after, entry_count: last.sequence })
            }
            (None, None, None) => Some(BalanceAt { at: to, ..opening.clone() }),
            // An empty page after a cursor (the entries ended exactly at the previous page).
            (None, None, Some(_)) => Some(self.balance_until(tenant, account, to, None).await?),
        };
        Ok(Statement { opening, entries, closing, next })
    }
}
