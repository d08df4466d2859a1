//! An account's chains as the table holds them (`ledger::chain`): each shard's balance item and
//! every entry of the shard, oldest first. What the verifier checks.

use aws_sdk_dynamodb::types::AttributeValue;
use ledger::chain::ChainHead;
use ledger::port::StoreError;
use ledger::{AccountId, Entry, TenantId};

use crate::error::sdk;
use crate::items::{self, Item, s};
use crate::keys;
use crate::store::DynamoStore;

/// One shard of an account as the table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardChain {
    pub shard: u16,
    /// Its balance item (`None`: the table has none).
    pub head: Option<ChainHead>,
    /// Its entries in the order of their keys: oldest first.
    pub entries: Vec<Entry>,
}

impl DynamoStore {
    /// Every shard of `account`, the main one first (`None`: no such account). Meant for a table
    /// at rest (a restored copy, or one no one writes): on a live one, an entry written after its
    /// balance was read shows as a count that differs.
    pub async fn chains(
        &self,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<Option<Vec<ShardChain>>, StoreError> {
        let (entries, Some(main)) = self.chain(tenant, account, 0).await? else { return Ok(None) };
        let mut chains = vec![ShardChain { shard: 0, head: Some(ChainHead::of(&main)), entries }];
        for shard in 1..main.shard_items {
            let (entries, balance) = self.chain(tenant, account, shard).await?;
            chains.push(ShardChain { shard, head: balance.as_ref().map(ChainHead::of), entries });
        }
        Ok(Some(chains))
    }

    /// Shard `shard`'s entries from sequence `from` on, oldest first: read newest first, a page at
    /// a time, down to the first one before `from` (entries are keyed in sequence order).
    pub(crate) async fn entries_from(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        shard: u16,
        from: u64,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :last")
                .expression_attribute_values(":pk", s(keys::shard_pk(tenant, account, shard)))
                .expression_attribute_values(":first", s(keys::ENTRY_SK_PREFIX))
                .expression_attribute_values(":last", s(keys::ENTRIES_END))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(sdk)?;
            for item in out.items() {
                let entry = Entry { shard, ..items::entry_from(item)? };
                if entry.sequence < from {
                    entries.reverse();
                    return Ok(entries);
                }
                entries.push(entry);
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => {
                    entries.reverse();
                    return Ok(entries);
                }
            }
        }
    }

    /// Shard `shard`'s entries, oldest first, and its balance: every item of its partition.
    async fn chain(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        shard: u16,
    ) -> Result<(Vec<Entry>, Option<ledger::AccountBalance>), StoreError> {
        let (mut entries, mut balance) = (Vec::new(), None);
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(keys::shard_pk(tenant, account, shard)))
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(sdk)?;
            for item in out.items() {
                match item.get(keys::SK) {
                    Some(AttributeValue::S(sk)) if sk.starts_with(keys::ENTRY_SK_PREFIX) => {
                        entries.push(Entry { shard, ..items::entry_from(item)? })
                    }
                    Some(AttributeValue::S(sk)) if sk == keys::BALANCE_SK => {
                        balance = Some(items::balance_from(item)?)
                    }
                    _ => {}
                }
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok((entries, balance)),
            }
        }
    }
}
