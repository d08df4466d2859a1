//! A hot account's shards (`ledger::shard`): read all at once, and funds moved between them (a
//! gather) in one transaction conditioned on each shard it touches.

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use ledger::engine::AsRead;
use ledger::escrow::Moves;
use ledger::port::StoreError;
use ledger::{AccountBalance, AccountId, TenantId};

use crate::cancel::cancellation;
use crate::error::unbuilt;
use crate::items::{self, n, s};
use crate::keys;
use crate::store::DynamoStore;
use crate::writer::{as_read_condition, as_read_values};

impl DynamoStore {
    /// The `count` shards of `account`, by a consistent BatchGetItem: each as it stood when read
    /// (a write conditioned on them finds any that moved since).
    pub(crate) async fn shards_of(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        count: u16,
    ) -> Result<Vec<AccountBalance>, StoreError> {
        shards_found(account, count, self.batch_get(keys::shard_keys(tenant, account, count)).await?)
    }

    /// The `count` shards of `account` read at one instant (a TransactGetItems).
    pub(crate) async fn shard_snapshot(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        count: u16,
    ) -> Result<Vec<AccountBalance>, StoreError> {
        shards_found(account, count, self.snapshot(keys::shard_keys(tenant, account, count)).await?)
    }

    /// Sets each shard's `moved` as `moves` has it, only if every one is still as read. Whether it
    /// landed (`false`: a shard moved meanwhile, or another transaction held one).
    pub(crate) async fn write_moves(&self, tenant: &TenantId, moves: &Moves) -> Result<bool, StoreError> {
        let writes = moves
            .iter()
            .map(|(shard, moved)| self.move_funds(tenant, shard, *moved))
            .collect::<Result<Vec<_>, _>>()?;
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(true),
            Err(err) => cancellation(err).map(|_| false),
        }
    }

    fn move_funds(
        &self,
        tenant: &TenantId,
        shard: &AccountBalance,
        moved: i128,
    ) -> Result<TransactWriteItem, StoreError> {
        let was = AsRead::of(shard);
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::shard_pk(tenant, &shard.id, shard.shard)))
            .key(keys::SK, s(keys::BALANCE_SK))
            .update_expression("SET moved = :new ADD writes :one")
            .condition_expression(as_read_condition(was))
            .expression_attribute_values(":new", n(moved))
            .expression_attribute_values(":one", n(1));
        for (name, value) in as_read_values(was) {
            update = update.expression_attribute_values(name, value);
        }
        Ok(TransactWriteItem::builder().update(update.build().map_err(unbuilt)?).build())
    }
}

/// The shards read (`items`), in order: all `count` of them, or the store is corrupt.
fn shards_found(
    account: &AccountId,
    count: u16,
    items: Vec<items::Item>,
) -> Result<Vec<AccountBalance>, StoreError> {
    let mut shards: Vec<AccountBalance> = items.iter().map(items::balance_from).collect::<Result<_, _>>()?;
    if shards.len() != usize::from(count.max(1)) {
        return Err(StoreError::Corrupt(format!("account {account} lacks a shard's balance item")));
    }
    shards.sort_by_key(|s| s.shard);
    Ok(shards)
}
