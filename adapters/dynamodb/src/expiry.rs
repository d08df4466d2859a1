//! The expiry listing: every pending hold with a timeout is listed by its expiry instant in the
//! transaction that applies it (`writer`), and unlisted in the one that resolves it; the sweeper
//! (`ledger::engine`) reads what fell due since its mark. The one tenant-less partition family:
//! it spreads the holds due in one hour over `keys::EXPIRY_SHARDS` partitions, and its items carry
//! the tenant the sweeper then reads under.

use ledger::engine::DueHold;
use ledger::port::StoreError;
use ledger::{TenantId, Transfer, TransferId, TransferStatus};

use crate::error::{moot_unless_written, sdk};
use crate::items::{Item, n, s};
use crate::keys::{self, key};
use crate::store::DynamoStore;

/// The expiry listing item of `transfer`, if it is a pending hold with a timeout.
pub fn listing(tenant: &TenantId, transfer: &Transfer) -> Option<Item> {
    if transfer.status != TransferStatus::Pending {
        return None;
    }
    let mut item = listing_key(tenant, transfer)?;
    item.insert("tenant".into(), s(tenant.as_str()));
    item.insert("transfer_id".into(), s(transfer.request.id.as_str()));
    Some(item)
}

/// The key of the listing of `hold`, if it has a timeout.
pub(crate) fn listing_key(tenant: &TenantId, hold: &Transfer) -> Option<Item> {
    DueHold::of(tenant, hold).map(|due| key_of(&due))
}

fn key_of(due: &DueHold) -> Item {
    let shard = keys::expiry_shard(&due.tenant, &due.transfer);
    key(keys::expiry_pk(due.at, shard), &keys::expiry_sk(due.at, &due.tenant, &due.transfer))
}

impl DynamoStore {
    /// The listings due from `from` to `to` (unix seconds, inclusive): one Query a shard an hour.
    pub(crate) async fn listed_due(&self, from: i64, to: i64) -> Result<Vec<DueHold>, StoreError> {
        let mut due = Vec::new();
        for hour in from.div_euclid(3600)..=to.div_euclid(3600) {
            for shard in 0..keys::EXPIRY_SHARDS {
                due.extend(self.listed(keys::expiry_pk(hour * 3600, shard), from, to).await?);
            }
        }
        Ok(due)
    }

    /// The listings in partition `pk` due from `from` to `to` (unix seconds, inclusive).
    async fn listed(&self, pk: String, from: i64, to: i64) -> Result<Vec<DueHold>, StoreError> {
        let pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":from", s(keys::expiry_sk_bound(from)))
            .expression_attribute_values(":to", s(keys::expiry_sk_bound(to + 1)))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let listed: Vec<Item> = pages.try_collect().await.map_err(sdk)?;
        listed
            .into_iter()
            .map(|item| {
                let field =
                    |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                let sk = field(keys::SK);
                let at = sk.split('#').next().and_then(|at| at.parse().ok());
                match (TenantId::parse(field("tenant")), TransferId::parse(field("transfer_id")), at) {
                    (Ok(tenant), Ok(transfer), Some(at)) => Ok(DueHold { tenant, transfer, at }),
                    _ => Err(StoreError::Corrupt(format!("expiry listing {sk}"))),
                }
            })
            .collect()
    }

    pub(crate) async fn unlist_due(&self, due: &DueHold) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_of(due)))
            .send()
            .await
            .map_err(sdk)?;
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
