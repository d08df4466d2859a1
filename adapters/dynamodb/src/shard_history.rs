//! A hot account's history read as one account (`ledger::shard`): its shards' entries merged in
//! the order of their positions (instant, shard, sequence: `EntryPosition`), each shown with the
//! account's totals and sequence right after it: the sums over the shards as of that entry.
//!
//! Each read is one Query per shard, all at once, and as many again for the shards' states where a
//! page starts. Shards are written by different writers, so an entry can land a moment after an
//! entry of another shard that took effect later: the last seconds of a hot account's merged
//! history may still gain an entry (and move the sequences after it); older history does not.

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::try_join_all;
use ledger::port::{BalanceAt, EntryPosition, Page, Statement, StatementRange, StoreError, invalid};
use ledger::{AccountId, Balances, Entry, TenantId};
use time::OffsetDateTime;

use crate::error::sdk;
use crate::items::{self, s};
use crate::keys::{self, ENTRY_SK_PREFIX};
use crate::store::DynamoStore;

/// Where a newest-first Query of a shard starts: below a sort key, or at it.
#[derive(Clone)]
enum Upper {
    Below(String),
    AtOrBelow(String),
}

/// The sort key below every entry of an instant.
fn instant_floor(at_nanos: i128) -> String {
    format!("{ENTRY_SK_PREFIX}{:020}#", at_nanos.max(0))
}

/// The sort key above every entry of an instant.
fn instant_ceiling(at_nanos: i128) -> String {
    format!("{ENTRY_SK_PREFIX}{:020}#~", at_nanos.max(0))
}

/// The sort key of the entry at `position` in its shard's partition.
fn sk(position: EntryPosition) -> String {
    keys::entry_sk(position)
}

/// Shard `shard`'s entries that merge before `position` (`through`: or at it): those of its
/// instant on a lower shard, its own earlier ones, and those of earlier instants on a higher one.
fn up_to(shard: u16, position: EntryPosition, through: bool) -> Upper {
    use std::cmp::Ordering::*;
    match shard.cmp(&position.shard) {
        Less => Upper::AtOrBelow(instant_ceiling(position.at_nanos)),
        Equal if through => Upper::AtOrBelow(sk(position)),
        Equal => Upper::Below(sk(position)),
        Greater => Upper::Below(instant_floor(position.at_nanos)),
    }
}

/// The lowest sort key of shard `shard`'s entries that merge after `position`.
fn after(shard: u16, position: EntryPosition) -> String {
    use std::cmp::Ordering::*;
    match shard.cmp(&position.shard) {
        Less => instant_ceiling(position.at_nanos),
        Equal => keys::entries_after(position),
        Greater => instant_floor(position.at_nanos),
    }
}

/// A shard's totals and entry count as of some position (zero before its first entry).
type ShardState = (Balances, u64);

fn state(entry: Option<&Entry>) -> ShardState {
    entry.map_or_else(ShardState::default, |e| (e.balances_after, e.sequence))
}

fn is_entry(item: &items::Item) -> bool {
    matches!(item.get(keys::SK), Some(AttributeValue::S(sk)) if sk.starts_with(ENTRY_SK_PREFIX))
}

fn sum(states: &[ShardState]) -> ShardState {
    let mut total = Balances::default();
    for (b, _) in states {
        total.debits_pending += b.debits_pending;
        total.debits_posted += b.debits_posted;
        total.credits_pending += b.credits_pending;
        total.credits_posted += b.credits_posted;
    }
    (total, states.iter().map(|(_, n)| n).sum())
}

/// `entries` (merged, oldest first) each shown as the account's: its totals and sequence the sums
/// over the shards as of it, from each shard's state before the first (`states`, left as of the
/// last).
fn as_one_account(entries: &mut [Entry], states: &mut [ShardState]) {
    for entry in entries {
        states[usize::from(entry.shard)] = (entry.balances_after, entry.sequence);
        (entry.balances_after, entry.sequence) = sum(states);
        entry.shard = 0;
    }
}

/// Merges the shards' pages (each in `order`), and keeps the first `page_size`: those, and
/// whether more followed.
fn merged(pages: Vec<Vec<Entry>>, page_size: u16, newest_first: bool) -> (Vec<Entry>, Vec<Entry>) {
    let mut all: Vec<Entry> = pages.into_iter().flatten().collect();
    all.sort_by_key(EntryPosition::of);
    if newest_first {
        all.reverse();
    }
    let rest = all.split_off(usize::from(page_size).min(all.len()));
    (all, rest)
}

impl DynamoStore {
    /// Shard `shard`'s entries from `upper` down, newest first, at most `limit`.
    async fn shard_newest(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        shard: u16,
        upper: Upper,
        limit: u16,
    ) -> Result<Vec<Entry>, StoreError> {
        let (condition, upper) = match upper {
            Upper::Below(sk) => ("pk = :pk AND sk < :upper", sk),
            Upper::AtOrBelow(sk) => ("pk = :pk AND sk <= :upper", sk),
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            .expression_attribute_values(":pk", s(keys::shard_pk(tenant, account, shard)))
            .expression_attribute_values(":upper", s(upper))
            .scan_index_forward(false)
            .consistent_read(true)
            // The account's own items sort below its entries: one more finds the last entry.
            .limit(i32::from(limit) + 2)
            .send()
            .await
            .map_err(sdk)?;
        let entries = out.items().iter().filter(|i| is_entry(i)).take(usize::from(limit));
        entries.map(|item| items::entry_from(item).map(|e| Entry { shard, ..e })).collect()
    }

    /// Shard `shard`'s entries from `lower` up to `upper` (both sort keys, inclusive), oldest
    /// first, at most `limit`.
    async fn shard_oldest(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        shard: u16,
        (lower, upper): (String, String),
        limit: u16,
    ) -> Result<Vec<Entry>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lower AND :upper")
            .expression_attribute_values(":pk", s(keys::shard_pk(tenant, account, shard)))
            .expression_attribute_values(":lower", s(lower))
            .expression_attribute_values(":upper", s(upper))
            .consistent_read(true)
            .limit(i32::from(limit))
            .send()
            .await
            .map_err(sdk)?;
        let entries = out.items().iter().filter(|i| is_entry(i));
        entries.map(|item| items::entry_from(item).map(|e| Entry { shard, ..e })).collect()
    }

    /// Each shard's state as of its last entry up to `upper(shard)`.
    async fn shard_states(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        shards: u16,
        upper: impl Fn(u16) -> Upper,
    ) -> Result<Vec<ShardState>, StoreError> {
        let states = (0..shards).map(|shard| {
            let upper = upper(shard);
            async move {
                Ok::<_, StoreError>(state(self.shard_newest(tenant, account, shard, upper, 1).await?.first()))
            }
        });
        try_join_all(states).await
    }

    /// A page of a hot account's entries, newest first, before `before` (`None`: from the latest).
    pub(crate) async fn hot_entries(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        shards: u16,
        page_size: u16,
        before: Option<EntryPosition>,
    ) -> Result<Page<Entry, EntryPosition>, StoreError> {
        let pages = (0..shards).map(|shard| {
            let upper = before.map_or(Upper::Below(keys::ENTRIES_END.to_owned()), |p| up_to(shard, p, false));
            self.shard_newest(tenant, account, shard, upper, page_size + 1)
        });
        let (mut page, rest) = merged(try_join_all(pages).await?, page_size, true);
        let next = if rest.is_empty() { None } else { page.last().map(EntryPosition::of) };
        // Each shard's state below the page: the newest of its entries the page left out (each
        // shard's page holds one more than the page: if none was left out, it has no more).
        let mut states: Vec<ShardState> =
            (0..shards).map(|shard| state(rest.iter().find(|e| e.shard == shard))).collect();
        page.reverse();
        as_one_account(&mut page, &mut states);
        page.reverse();
        Ok(Page { items: page, next })
    }

    /// A hot account's totals as of `at` (`field`: as `balance_until`'s).
    pub(crate) async fn hot_balance_at(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        shards: u16,
        at: OffsetDateTime,
        field: Option<&str>,
    ) -> Result<BalanceAt, StoreError> {
        let until = instant_ceiling(at.unix_timestamp_nanos());
        // The main shard's read tells whether the account existed then.
        let main = self.balance_until(tenant, account, at, field);
        let others = self.shard_states(tenant, account, shards, |_| Upper::AtOrBelow(until.clone()));
        let (main, mut states) = futures::try_join!(main, others)?;
        states[0] = (main.balances, main.entry_count);
        let (balances, entry_count) = sum(&states);
        Ok(BalanceAt { at, balances, entry_count })
    }

    /// A page of a hot account's statement (`range`, checked), as `statement_page`'s.
    pub(crate) async fn hot_statement(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        shards: u16,
        range: StatementRange,
    ) -> Result<Statement, StoreError> {
        let StatementRange { to, page_size, after: cursor, .. } = range;
        let from = range.start();
        let (from_nanos, to_nanos) = (from.unix_timestamp_nanos(), to.unix_timestamp_nanos());
        if let Some(p) = cursor
            && (p.at_nanos <= from_nanos || p.at_nanos > to_nanos || p.shard >= shards)
        {
            return Err(invalid("cursor", "is not a cursor of this statement".into()));
        }
        let upper = keys::entries_until(to);
        let pages = (0..shards).map(|shard| {
            let lower = cursor.map_or_else(|| instant_ceiling(from_nanos), |p| after(shard, p));
            self.shard_oldest(tenant, account, shard, (lower, upper.clone()), page_size + 1)
        });
        let opening =
            self.shard_states(tenant, account, shards, |_| Upper::AtOrBelow(instant_ceiling(from_nanos)));
        let at_cursor = async {
            match cursor {
                Some(p) => {
                    self.shard_states(tenant, account, shards, |shard| up_to(shard, p, true)).await.map(Some)
                }
                None => Ok(None),
            }
        };
        let (pages, opening, at_cursor) = futures::try_join!(try_join_all(pages), opening, at_cursor)?;
        let (mut entries, rest) = merged(pages, page_size, false);
        let next = if rest.is_empty() { None } else { entries.last().map(EntryPosition::of) };
        let mut states = at_cursor.unwrap_or_else(|| opening.clone());
        as_one_account(&mut entries, &mut states);
        let (balances, entry_count) = sum(&opening);
        let opening = BalanceAt { at: from, balances, entry_count };
        let closing = next.is_none().then(|| {
            let (balances, entry_count) = sum(&states);
            BalanceAt { at: to, balances, entry_count }
        });
        Ok(Statement { opening, entries, closing, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::fixtures;

    fn entry(shard: u16, at: i64, sequence: u64, credits: u128) -> Entry {
        let t = OffsetDateTime::from_unix_timestamp(at).unwrap();
        let tr = fixtures::committed(fixtures::transfer("t", "bank", "hot", 1), t);
        Entry {
            account_id: AccountId::parse("hot").unwrap(),
            sequence,
            transfer_id: tr.request.id,
            direction: ledger::Direction::Credit,
            effect: ledger::Effect::Posted,
            amount: ledger::Amount::new(1).unwrap(),
            counterparty_account_id: AccountId::parse("bank").unwrap(),
            balances_after: Balances { credits_posted: credits, ..Balances::default() },
            created_at: t,
            shard,
            hash: Default::default(),
        }
    }

    #[test]
    fn shards_merge_by_instant_then_shard_and_read_as_one_account() {
        // Shard 0 took 5 at t=1 and 2 more at t=3; shard 1 took 10 at t=2 and at t=3.
        let pages =
            vec![vec![entry(0, 1, 1, 5), entry(0, 3, 2, 7)], vec![entry(1, 2, 1, 10), entry(1, 3, 2, 20)]];
        let (mut page, rest) = merged(pages, 3, false);
        assert_eq!(rest.len(), 1);
        let mut states = vec![ShardState::default(); 2];
        as_one_account(&mut page, &mut states);
        let shown: Vec<(i64, u64, u128)> = page
            .iter()
            .map(|e| (e.created_at.unix_timestamp(), e.sequence, e.balances_after.credits_posted))
            .collect();
        assert_eq!(shown, [(1, 1, 5), (2, 2, 15), (3, 3, 17)]);
        assert!(page.iter().all(|e| e.shard == 0), "shown as the account's");
        // The rest starts where the page left off: shard 1's entry at t=3 after shard 0's.
        assert_eq!((rest[0].shard, rest[0].created_at.unix_timestamp()), (1, 3));
    }

    #[test]
    fn a_cursor_splits_each_shard_where_the_merged_order_does() {
        let cursor = EntryPosition { at_nanos: 3_000, shard: 1, sequence: 9 };
        // Shard 0 at the cursor's instant merges before it; shard 2 at that instant after it.
        assert!(matches!(up_to(0, cursor, false), Upper::AtOrBelow(k) if k == instant_ceiling(3_000)));
        assert!(matches!(up_to(1, cursor, false), Upper::Below(k) if k == sk(cursor)));
        assert!(matches!(up_to(1, cursor, true), Upper::AtOrBelow(k) if k == sk(cursor)));
        assert!(matches!(up_to(2, cursor, false), Upper::Below(k) if k == instant_floor(3_000)));
        assert_eq!(after(0, cursor), instant_ceiling(3_000));
        assert_eq!(after(2, cursor), instant_floor(3_000));
        assert!(after(1, cursor) > sk(cursor));
    }
}
