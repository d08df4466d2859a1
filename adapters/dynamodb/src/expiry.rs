//! The hold listings: every pending hold with a timeout is listed by its expiry instant in each of
//! its two accounts' partitions, in the transaction that applies it (`writer`); its expiry unlists
//! it, and a post or void leaves the listings to whoever finds them due. A strongly consistent
//! Query of an account's listings finds its holds past their time (`overdue`); the debit account's
//! listing is also in the index, by hour and shard across tenants, where the sweeper
//! (`ledger::engine`) reads what fell due since its mark. Listings from before hold listings (one
//! item in a tenant-less partition) are still read by the sweeper and removed once handled.

use futures::future::try_join_all;
use futures::stream::{self, StreamExt, TryStreamExt};
use ledger::engine::DueHold;
use ledger::port::StoreError;
use ledger::{AccountId, TenantId, Transfer, TransferId, TransferStatus};

use crate::error::{moot_unless_written, sdk};
use crate::items::{Item, n, s};
use crate::keys::{self, key};
use crate::store::DynamoStore;

/// Shards the sweeper reads at once. Each read in flight holds a connection of its own, so a cold
/// sweeper opens this many, not one per shard (40, each a TLS handshake in AWS).
const SHARDS_AT_ONCE: usize = 4;

const DEBIT: &str = "debit_account_id";
const CREDIT: &str = "credit_account_id";

/// The listing items of `transfer` in its two accounts' partitions, if it is a pending hold with a
/// timeout; the debit account's is also in the index, for the sweeper.
pub fn listings(tenant: &TenantId, transfer: &Transfer) -> Vec<Item> {
    if transfer.status != TransferStatus::Pending {
        return Vec::new();
    }
    let Some(due) = DueHold::of(tenant, transfer) else { return Vec::new() };
    let Some(movement) = &transfer.movement else { return Vec::new() };
    listing_keys(&due)
        .into_iter()
        .enumerate()
        .map(|(i, mut item)| {
            item.insert("tenant".into(), s(tenant.as_str()));
            item.insert("transfer_id".into(), s(due.transfer.as_str()));
            item.insert(DEBIT.into(), s(movement.debit_account_id.as_str()));
            item.insert(CREDIT.into(), s(movement.credit_account_id.as_str()));
            if i == 0 {
                let shard = keys::expiry_shard(tenant, &due.transfer);
                item.insert(keys::GSI1_PK.into(), s(keys::expiry_index_pk(due.at, shard)));
                item.insert(keys::GSI1_SK.into(), s(keys::expiry_sk(due.at, tenant, &due.transfer)));
            }
            item
        })
        .collect()
}

/// The keys of the listings of `due`: one in each account's partition it names (the debit's
/// first), or, for a listing from before hold listings, that one.
pub(crate) fn listing_keys(due: &DueHold) -> Vec<Item> {
    if due.accounts.is_empty() {
        let shard = keys::legacy_expiry_shard(&due.tenant, &due.transfer);
        let sk = keys::expiry_sk(due.at, &due.tenant, &due.transfer);
        return vec![key(keys::legacy_expiry_pk(due.at, shard), &sk)];
    }
    let sk = keys::held_sk(due.at, &due.transfer);
    due.accounts.iter().map(|account| key(keys::account_pk(&due.tenant, account), &sk)).collect()
}

/// The hold a listing item names.
fn due_from(item: &Item, at: i64) -> Result<DueHold, StoreError> {
    let field = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    let corrupt = || StoreError::Corrupt(format!("hold listing {}", field(keys::SK)));
    let tenant = TenantId::parse(field("tenant")).map_err(|_| corrupt())?;
    let transfer = TransferId::parse(field("transfer_id")).map_err(|_| corrupt())?;
    let accounts = match (item.get(DEBIT), item.get(CREDIT)) {
        (None, None) => Vec::new(),
        _ => vec![
            AccountId::parse(field(DEBIT)).map_err(|_| corrupt())?,
            AccountId::parse(field(CREDIT)).map_err(|_| corrupt())?,
        ],
    };
    Ok(DueHold { tenant, transfer, at, accounts })
}

/// The instant a sort key (`{at:012}#…`, or `H#{at:012}#…`) lists.
fn listed_at(sk: &str) -> Option<i64> {
    sk.trim_start_matches(keys::HELD_SK_PREFIX).split('#').next()?.parse().ok()
}

/// Where one shard of the sweeper's listing is: the index, or the table (before hold listings).
#[derive(Clone, Copy)]
enum Shard {
    Index(u32),
    Legacy(u32),
}

impl DynamoStore {
    /// The listings due from `from` to `to` (unix seconds, inclusive), at most `per_shard` of each
    /// shard, taken one shard after another in turn up to `limit`; and whether that is all of them.
    pub(crate) async fn listed_due(
        &self,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<(Vec<DueHold>, bool), StoreError> {
        let shards: Vec<Shard> = (0..keys::EXPIRY_SHARDS)
            .map(Shard::Index)
            .chain((0..keys::LEGACY_EXPIRY_SHARDS).map(Shard::Legacy))
            .collect();
        let per_shard = limit.div_ceil(shards.len()).max(1);
        let listed: Vec<_> =
            stream::iter(shards.into_iter().map(|shard| self.listed_in(shard, from, to, per_shard)))
                .buffered(SHARDS_AT_ONCE)
                .try_collect()
                .await?;
        let whole = listed.iter().all(|(_, whole)| *whole);
        let mut queues: Vec<std::collections::VecDeque<DueHold>> =
            listed.into_iter().map(|(due, _)| due.into()).collect();
        let mut due = Vec::new();
        while due.len() < limit && queues.iter().any(|q| !q.is_empty()) {
            for queue in &mut queues {
                if due.len() < limit
                    && let Some(hold) = queue.pop_front()
                {
                    due.push(hold);
                }
            }
        }
        Ok((due, whole && queues.iter().all(|q| q.is_empty())))
    }

    /// At most `limit` listings of one shard due from `from` to `to`, hour after hour; and whether
    /// that is all of them.
    async fn listed_in(
        &self,
        shard: Shard,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<(Vec<DueHold>, bool), StoreError> {
        let mut due = Vec::new();
        for hour in from.div_euclid(3600)..=to.div_euclid(3600) {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":from", s(keys::expiry_sk_bound(from)))
                .expression_attribute_values(":to", s(keys::expiry_sk_bound(to + 1)))
                .limit(i32::try_from(limit - due.len()).unwrap_or(i32::MAX));
            let query = match shard {
                Shard::Index(shard) => query
                    .index_name(keys::GSI1)
                    .key_condition_expression("gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(keys::expiry_index_pk(hour * 3600, shard))),
                Shard::Legacy(shard) => query
                    .consistent_read(true)
                    .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(keys::legacy_expiry_pk(hour * 3600, shard))),
            };
            let out = query.send().await.map_err(sdk)?;
            let sort_key = match shard {
                Shard::Index(_) => keys::GSI1_SK,
                Shard::Legacy(_) => keys::SK,
            };
            for item in out.items() {
                let sk =
                    item.get(sort_key).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default();
                let at = listed_at(sk).ok_or_else(|| StoreError::Corrupt(format!("hold listing {sk}")))?;
                due.push(due_from(item, at)?);
            }
            if out.last_evaluated_key().is_some() {
                return Ok((due, false));
            }
        }
        Ok((due, true))
    }

    /// At most `limit` holds listed due by `at` in the accounts' partitions, read consistently.
    pub(crate) async fn listed_overdue(
        &self,
        tenant: &TenantId,
        accounts: &[AccountId],
        at: i64,
        limit: usize,
    ) -> Result<Vec<DueHold>, StoreError> {
        let queries = accounts.iter().map(|account| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(keys::account_pk(tenant, account)))
                .expression_attribute_values(":from", s(keys::HELD_SK_PREFIX))
                .expression_attribute_values(":to", s(keys::held_sk_bound(at + 1)))
                .consistent_read(true)
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
        });
        let mut due: Vec<DueHold> = Vec::new();
        for out in try_join_all(queries).await.map_err(sdk)? {
            for item in out.items() {
                let sk =
                    item.get(keys::SK).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default();
                let at = listed_at(sk).ok_or_else(|| StoreError::Corrupt(format!("hold listing {sk}")))?;
                let hold = due_from(item, at)?;
                if due.len() < limit && !due.iter().any(|d| d.transfer == hold.transfer) {
                    due.push(hold);
                }
            }
        }
        Ok(due)
    }

    pub(crate) async fn unlist_due(&self, due: &DueHold) -> Result<(), StoreError> {
        let deletes = listing_keys(due)
            .into_iter()
            .map(|listing| self.client.delete_item().table_name(&self.table).set_key(Some(listing)).send());
        try_join_all(deletes).await.map_err(sdk)?;
        Ok(())
    }

    /// Until when the sweeps have looked (the sweep cursor's item).
    pub(crate) async fn sweep_mark(&self) -> Result<Option<i64>, StoreError> {
        let cursor = self.get(key(keys::SWEEP_PK.into(), keys::SWEEP_SK)).await?;
        Ok(cursor.as_ref().and_then(|c| c.get("swept_until")?.as_n().ok()?.parse().ok()))
    }

    /// Moves the sweep cursor to `to`; a failed condition means a later sweep moved it further.
    pub(crate) async fn move_sweep_mark(&self, to: i64) -> Result<(), StoreError> {
        let moved = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::SWEEP_PK.into(), keys::SWEEP_SK)))
            .update_expression("SET swept_until = :now")
            .condition_expression("attribute_not_exists(swept_until) OR swept_until < :now")
            .expression_attribute_values(":now", n(to))
            .send()
            .await;
        moot_unless_written(moved)
    }
}
